#!/usr/bin/python3
"""Plot train and validation loss against step from longconv run folders.

    scripts/plot_log.py runs/hyena-s                       # -> runs/hyena-s/loss.png
    scripts/plot_log.py runs/a runs/b --out cmp.png --smooth 20
    scripts/plot_log.py runs/a/log.jsonl                   # a log file works too

Each run folder holds log.jsonl, one JSON object per line:
    {"type": "train", "step": 10, "loss": 7.1, "lr": 6e-4, "grad_norm": 1.3, "tokens_per_s": 5e4}
    {"type": "eval",  "step": 500, "val_loss": 5.2, "val_ppl": 181.3}
Other record types, non-finite values and unparsable lines (e.g. a half-written last line of
a run in progress) are skipped. Train loss is drawn faint, with a trailing moving average of
--smooth N points on top; validation loss as markers. Several runs are overlaid, one colour
each, labelled by folder name. Default output: RUN/loss.png for one run, ./loss.png for
several. Prints, per run, the last train loss and the best validation loss.
"""
import argparse
import json
import math
import os
import sys


def read_log(path):
    """(train [(step, loss)], eval [(step, val_loss)]) from a log.jsonl."""
    train, evals = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                print("%s:%d: not JSON, skipped" % (path, n), file=sys.stderr)
                continue
            if not isinstance(r, dict):
                continue
            kind, key, dest = r.get("type"), None, None
            if kind == "train":
                key, dest = "loss", train
            elif kind == "eval":
                key, dest = "val_loss", evals
            else:
                continue
            step, v = r.get("step"), r.get(key)
            if isinstance(step, (int, float)) and isinstance(v, (int, float)) and math.isfinite(v):
                dest.append((step, float(v)))
    return train, evals


def moving_average(ys, n):
    """Trailing mean over up to n points (fewer at the start), so the curve starts at step 1."""
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= n:
            acc -= ys[i - n]
        out.append(acc / min(i + 1, n))
    return out


def log_path(run):
    return run if os.path.isfile(run) else os.path.join(run, "log.jsonl")


def run_label(run):
    p = os.path.normpath(run)
    if os.path.isfile(p):
        p = os.path.dirname(p) or p
    return os.path.basename(os.path.abspath(p))


def plot(runs, out, smooth):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for i, run in enumerate(runs):
        path = log_path(run)
        if not os.path.isfile(path):
            raise SystemExit("error: %s: no such file" % path)
        train, evals = read_log(path)
        c, label = colors[i % len(colors)], run_label(run)
        if train:
            xs, ys = zip(*train)
            if smooth > 1:
                ax.plot(xs, ys, color=c, alpha=0.25, linewidth=0.8)
                ax.plot(xs, moving_average(list(ys), smooth), color=c, linewidth=1.5,
                        label="%s train (avg %d)" % (label, smooth))
            else:
                ax.plot(xs, ys, color=c, linewidth=1.2, label=label + " train")
            drawn += 1
        if evals:
            xs, ys = zip(*evals)
            ax.plot(xs, ys, color=c, linestyle="--", marker="o", markersize=4, label=label + " val")
            drawn += 1
        last = "%.4f at step %g" % (train[-1][1], train[-1][0]) if train else "-"
        best = "%.4f at step %g" % min((v, s) for s, v in evals) if evals else "-"
        print("%s: %d train, %d eval records; last train loss %s; best val loss %s"
              % (label, len(train), len(evals), last, best))
    if drawn == 0:
        print("warning: no train or eval records found", file=sys.stderr)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    ax.set_title("loss: " + ", ".join(run_label(r) for r in runs))
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    print("wrote", out)


def main(argv):
    ap = argparse.ArgumentParser(description="Plot train/val loss vs step from run folders.",
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) or log.jsonl file(s)")
    ap.add_argument("--out", default=None, help="PNG path (RUN/loss.png or ./loss.png)")
    ap.add_argument("--smooth", type=int, default=1, metavar="N",
                    help="moving average of N train points (1 = none)")
    a = ap.parse_args(argv)
    if a.smooth < 1:
        ap.error("--smooth must be >= 1")
    out = a.out
    if out is None:
        r = a.runs[0]
        out = os.path.join(r if os.path.isdir(r) else os.path.dirname(r) or ".", "loss.png") \
            if len(a.runs) == 1 else "loss.png"
    plot(a.runs, out, a.smooth)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
