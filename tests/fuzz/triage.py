#!/usr/bin/python3
"""Replays fuzz findings and sorts them into bugs of ours and bugs of the libraries.

    triage.py HARNESS_BINARY [-libFuzzer_flag=...] INPUT...
(scripts/fuzz.sh --triage passes the flags and sets the sanitizer options)

One line per input: "<input>: ours|library|none: <verdict> | lib: <frame> | ours: <frame>".
Exit status 1 when any input is a finding of ours, else 0.

Rules (docs/reliability.md): a report of a harness check (FINDING), of UBSan (only our code is
instrumented), of LeakSanitizer (library leaks are suppressed in lsan.supp), a timeout or an
out-of-memory is ours. An ASan report is the library's when its innermost frame with an owner
is in libhdf5/libyaml and the bad memory is not ours: neither a stack variable of one of our
functions nor a block whose allocation stack reaches our code before the library's. A timeout,
an out-of-memory or a crash signal belongs to whoever owns the innermost frame of its stack; for
resident memory over the limit, that of the largest allocation (replayed with malloc_limit_mb
at the RSS limit, then at a quarter of it, so that libFuzzer stops at an allocation that large),
else of the code running after 1 s.
"""
import os
import re
import subprocess
import sys

FRAME = re.compile(r"^\s+#\d+ 0x[0-9a-f]+ (?:in (\S+))?(.*)$")  # frames without symbols have no "in f"
LIBS = ("libhdf5", "libyaml")


def owner(frame_rest):
    """'ours', 'lib' or None (sanitizer runtime, libFuzzer, libc) for one frame's location."""
    if "/src/" in frame_rest or "/tests/fuzz/" in frame_rest:
        return "ours"
    if any(lib in frame_rest for lib in LIBS):
        return "lib"
    return None


def frame_text(m):
    return (m.group(1) or "?") + m.group(2).split("(BuildId")[0].rstrip()


def first_owned(lines):
    """(owner, 'function location') of the innermost frame with an owner in a stack."""
    for line in lines:
        m = FRAME.match(line)
        if m and owner(m.group(2)):
            return owner(m.group(2)), frame_text(m)
    return None, "-"


def stack_after(lines, start):
    """The frames of the stack that starts after line index start."""
    out = []
    for line in lines[start + 1:]:
        if FRAME.match(line):
            out.append(line)
        elif out:
            break
    return out


def classify(log, path):
    lines = log.splitlines()
    frames = [FRAME.match(l) for l in lines if FRAME.match(l)]
    ours_frame = next((frame_text(m) for m in frames if owner(m.group(2)) == "ours"), "-")
    lib_frame = next((m.group(1) for m in frames if owner(m.group(2)) == "lib" and m.group(1)), "-")
    base = os.path.basename(path)
    finding = next((l.strip() for l in lines if l.startswith("FINDING")), None)
    if finding:
        return "ours", finding, lib_frame, ours_frame
    ubsan = next((l.split("runtime error:")[1].strip() for l in lines if "runtime error:" in l), None)
    if ubsan:
        return "ours", "UBSan: " + ubsan, lib_frame, ours_frame
    err = next((i for i, l in enumerate(lines) if re.search(r"ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)", l)), None)
    if err is None:
        return "none", "no finding on replay", lib_frame, ours_frame
    verdict = re.sub(r"^.*ERROR: ", "", lines[err]).split(" on address")[0].split(" (pc ")[0]
    if "LeakSanitizer" in lines[err]:
        return "ours", verdict, lib_frame, ours_frame
    who, where = first_owned(stack_after(lines, err))
    if who != "lib":
        return "ours", verdict, lib_frame, where
    # the library faulted: whose memory was it?
    for i, line in enumerate(lines):
        if "is located in stack of thread" in line:
            frame = next((l for l in lines[i + 1:i + 3] if FRAME.match(l)), "")
            if frame and owner(FRAME.match(frame).group(2)) == "ours":
                return "ours", verdict + " (a stack variable of ours)", lib_frame, ours_frame
        if re.match(r"^(previously )?allocated by thread", line):
            alloc_owner, alloc_where = first_owned(stack_after(lines, i))
            if alloc_owner == "ours":
                return "ours", verdict + " (a block allocated by " + alloc_where + ")", lib_frame, ours_frame
    return "library", verdict, lib_frame if lib_frame != "-" else where, ours_frame


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    rss = next((a.split("=")[1] for a in sys.argv[2:] if a.startswith("-rss_limit_mb=")), "2048")
    flags = [a for a in sys.argv[2:] if a.startswith("-")]
    inputs = [a for a in sys.argv[2:] if not a.startswith("-")]
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "fast_unwind_on_malloc=0:" + env.get("ASAN_OPTIONS", "")
    status = 0
    for path in inputs:
        run = subprocess.run([binary] + flags + ["-runs=3", path], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=300)
        log = run.stdout.decode("utf-8", "replace")
        who, verdict, lib, ours = classify(log, path)
        if "out-of-memory (used" in verdict:
            # the largest allocation: one at the RSS limit, else one at a quarter of it
            for limit in (int(rss), int(rss) // 4):
                run = subprocess.run([binary] + flags + ["-malloc_limit_mb=%d" % limit, "-runs=3", path], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
                big = run.stdout.decode("utf-8", "replace")
                if "out-of-memory (malloc(" in big:
                    who, _, lib, ours = classify(big, path)
                    verdict += " (largest: %s)" % re.search(r"out-of-memory \(malloc\(\d+\)\)", big).group(0)
                    break
            else:
                # memory that grows without one large malloc: where the code is after 1 s
                run = subprocess.run([binary] + flags + ["-timeout=1", "-runs=1", path], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
                slow = run.stdout.decode("utf-8", "replace")
                if "ERROR: libFuzzer: timeout" in slow:
                    who, _, lib, ours = classify(slow, path)
                    verdict += " (running after 1 s: see lib/ours)"
        print("%s: %s: %s | lib: %s | ours: %s" % (path, who, verdict, lib, ours))
        status |= who == "ours"
    return status


if __name__ == "__main__":
    sys.exit(main())
