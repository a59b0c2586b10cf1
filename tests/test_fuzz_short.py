#!/usr/bin/python3
"""Short run of the libFuzzer harnesses (tests/fuzz/, docs/reliability.md).

    /usr/bin/python3 tests/test_fuzz_short.py

Runs `scripts/fuzz.sh --short`: builds the harnesses with clang -fsanitize=fuzzer,address,undefined
into build-fuzz/ (cached between runs), replays the reproducers of fixed findings, then fuzzes
each harness for a few seconds (FUZZ_SHORT_SECONDS, default 5) from its seed corpus. Inputs that
fail are sorted by tests/fuzz/triage.py: known crashes inside libhdf5 do not fail the test.

Exit status 0: no finding of ours; 1: a finding (its input's path is printed) or a build error;
77: clang or libFuzzer is not installed (Debian: apt-get install clang libclang-rt-14-dev).
"""
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    t0 = time.time()
    run = subprocess.run(["bash", os.path.join(REPO, "scripts", "fuzz.sh"), "--short"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = run.stdout.decode("utf-8", "replace")
    sys.stdout.write(out)
    print("test_fuzz_short: scripts/fuzz.sh --short exited %d after %.1f s" % (run.returncode, time.time() - t0))
    if run.returncode == 77:
        print("SKIP: clang or libFuzzer is not installed")
        return 77
    if run.returncode != 0:
        print("FAIL: the short fuzz run reported a finding or failed to build (output above)")
        print("0 passed, 1 failed")
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
