#!/usr/bin/python3
"""Test of scripts/plot_log.py: fake log.jsonl files in a temp dir -> PNGs.

Exit status 0: passed; 1: failed; 77: skipped (matplotlib missing).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "plot_log.py")
sys.path.insert(0, os.path.join(REPO, "scripts"))

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def write_log(path, n_steps, scale):
    with open(path, "w") as f:
        for s in range(1, n_steps + 1):
            loss = scale * (2.0 + 8.0 * math.exp(-s / 50.0))
            f.write(json.dumps({"type": "train", "step": s, "loss": loss, "lr": 6e-4,
                                "grad_norm": 1.0, "tokens_per_s": 1e5}) + "\n")
            if s % 50 == 0:
                f.write(json.dumps({"type": "eval", "step": s, "val_loss": loss + 0.1,
                                    "val_ppl": math.exp(loss + 0.1)}) + "\n")
        f.write(json.dumps({"type": "config", "seq_len": 1024}) + "\n")   # ignored type
        f.write(json.dumps({"type": "train", "step": n_steps + 1, "loss": float("nan")}) + "\n")
        f.write('{"type": "train", "step": 9')                              # half-written line


def is_png(path):
    with open(path, "rb") as f:
        return os.path.getsize(path) > 1000 and f.read(8) == b"\x89PNG\r\n\x1a\n"


def main():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("SKIP: matplotlib not importable by", sys.executable)
        return 77
    import plot_log
    tmp = tempfile.mkdtemp(prefix="lc_plot_")
    try:
        a, b = os.path.join(tmp, "run_a"), os.path.join(tmp, "run_b")
        os.makedirs(a)
        os.makedirs(b)
        write_log(os.path.join(a, "log.jsonl"), 200, 1.0)
        write_log(os.path.join(b, "log.jsonl"), 150, 0.9)

        train, evals = plot_log.read_log(os.path.join(a, "log.jsonl"))
        check(len(train) == 200 and len(evals) == 4, "records read: %d, %d" % (len(train), len(evals)))
        check(plot_log.moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0], "moving average")

        r = subprocess.run([sys.executable, SCRIPT, a], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "single run failed: " + r.stderr)
        png = os.path.join(a, "loss.png")
        check(os.path.isfile(png) and is_png(png), "single run: %s is not a PNG" % png)
        check("best val loss" in r.stdout, "summary printed:\n" + r.stdout)

        out = os.path.join(tmp, "cmp.png")
        r = subprocess.run([sys.executable, SCRIPT, a, os.path.join(b, "log.jsonl"), "--out", out,
                            "--smooth", "10"], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "overlay failed: " + r.stderr)
        check(os.path.isfile(out) and is_png(out), "overlay: %s is not a PNG" % out)
        check("run_a" in r.stdout and "run_b" in r.stdout, "both runs summarized:\n" + r.stdout)

        r = subprocess.run([sys.executable, SCRIPT, os.path.join(tmp, "missing")],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode != 0, "a missing run folder must fail")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
