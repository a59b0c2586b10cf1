#!/usr/bin/python3
"""Cross-check of longconv's Hyena LM against the PyTorch reference (scripts/reference_hyena.py).

A tiny token file and config in a temp dir; `longconv dump` writes the loss and every gradient of
one batch; the reference recomputes them:
  (a) at init, cpu64 dump vs float64 reference (tight tolerance; also buffers, z and init laws);
  (b) after 3 fp32 training steps (trained biases, filters, z), cpu64 dump vs float64 reference;
  (c) the same checkpoint dumped by the fp32 cpu backend, vs float64, float32 and bf16-autocast
      references;
plus: the checker fails on a gradient perturbed by 1e-6, refuses dropout, and the reference's
FFT conv and config parser are checked against direct computations.

Exit status 0: passed; 1: failed; 77: skipped (torch, h5py or the longconv binary missing).
Environment: LONGCONV_BIN = path of the longconv binary (set by CTest).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "reference_hyena.py")
sys.path.insert(0, os.path.join(REPO, "scripts"))

passed = failed = 0

CONFIG = """model:
  arch: hyena_lm
  d_model: 16
  n_layer: 2
  d_inner: 32
  vocab_size: 97          # padded to 104: the padding rows and columns are exercised
  vocab_pad_multiple: 8
  l_max: 48               # > seq_len: the filter uses the first 32 rows of z
  short_filter_order: 3
  filter_order: 8
  filter_emb_dim: 5
  filter_inner_mlps: 2
  filter_sine_freq: 14
  filter_modulate: true
  filter_pos_emb_trainable: true
  embed_dropout: 0
  resid_dropout: 0
data:
  path: {tokens}
  seq_len: 32
train:
  device: cpu64
  threads: 2
  batch_size: 2
  lr: 1e-2                # large, so 3 steps move every parameter visibly
  filter_lr: 1e-2
  pos_emb_lr: 1e-2
  log_every: 1
  out_dir: {run}
"""


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return p.returncode, p.stdout


def worst(out, prefix):
    """Largest rel.err among the table rows whose quantity starts with prefix."""
    errs = [float(m.group(1)) for m in re.finditer(r"^%s\S*(?: \([^)]*\))?\s+(\S+)\s" % re.escape(prefix), out, re.M)]
    return max(errs) if errs else float("nan")


def reference_check(state, what, extra=(), expect_rc=0):
    rc, out = run([sys.executable, SCRIPT, "check", state] + list(extra))
    if expect_rc == 2:
        print("%-44s rc %d: %s" % (what, rc, out.strip().splitlines()[-1][:120] if out.strip() else ""))
    else:
        loss_err, grad_err = worst(out, "loss"), worst(out, "grad ")
        print("%-44s loss rel.err %.2e, worst gradient rel.err %.2e (rc %d)" % (what, loss_err, grad_err, rc))
    check(rc == expect_rc, "%s: reference_hyena.py check exited %d, expected %d:\n%s" % (what, rc, expect_rc, out))
    check(re.search(r"^\d+ passed, \d+ failed$", out, re.M) is not None or expect_rc == 2,
          "%s: no summary line" % what)
    return out


def write_tokens(path):
    import h5py
    import numpy as np
    rng = np.random.default_rng()
    with h5py.File(path, "w") as f:
        f.attrs.update(format="longconv-tokens", version=1, vocab_size=97, tokenizer="test", eot_token=96)
        for split, n in (("train", 4000), ("val", 1000)):
            f.create_group(split).create_dataset("tokens", data=rng.integers(0, 97, n).astype(np.uint16))


def test_fftconv_and_parser():
    """The reference's own pieces against direct computations."""
    import numpy as np
    import torch
    import reference_hyena as R
    B, C, L = 2, 3, 17
    u, k, D = torch.randn(B, C, L, dtype=torch.float64), torch.randn(C, L, dtype=torch.float64), \
        torch.randn(C, dtype=torch.float64)
    y = R.fftconv(u, k, D).numpy()
    un, kn, Dn = u.numpy(), k.numpy(), D.numpy()
    want = np.zeros((B, C, L))
    for b in range(B):
        for c in range(C):
            for t in range(L):
                want[b, c, t] = sum(kn[c, s] * un[b, c, t - s] for s in range(t + 1)) + Dn[c] * un[b, c, t]
    err = np.abs(y - want).max() / np.abs(want).max()
    # fp64 FFT of size 34: rounding ~1e-16 * log2(34) per output; 1e-13 is a generous bound
    print("fftconv vs direct causal conv: rel.err %.2e (bound 1e-13)" % err)
    check(err < 1e-13, "fftconv differs from the direct causal convolution: %.3e" % err)

    cfg = R.parse_config('model:\n  ln_eps: 1e-05\n  filter_modulate: false\n  d_model: 16\n'
                         'data:\n  path: "a \\"b\\"\\\\c"\n  seq_len: 32\n')
    check(cfg["model"]["ln_eps"] == 1e-5 and cfg["model"]["filter_modulate"] is False and
          cfg["model"]["d_model"] == 16 and cfg["data"]["path"] == 'a "b"\\c' and cfg["data"]["seq_len"] == 32,
          "parse_config: %r" % cfg)


def perturbed_copy(src, dst, name, rel):
    import h5py
    import numpy as np
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        g = f["grads"][name]
        v = g[()]
        g[...] = v + rel * np.linalg.norm(v) / np.sqrt(v.size)


def main():
    try:
        import h5py  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print("SKIP: %s not importable by %s" % (e.name, sys.executable))
        return 77
    lc = os.environ.get("LONGCONV_BIN", "")
    if not lc or not os.access(lc, os.X_OK):
        print("SKIP: LONGCONV_BIN (%r) is not an executable longconv binary" % lc)
        return 77

    test_fftconv_and_parser()
    tmp = tempfile.mkdtemp(prefix="lc_ref_")
    try:
        tokens, run_dir = os.path.join(tmp, "tokens.h5"), os.path.join(tmp, "run")
        cfg = os.path.join(tmp, "tiny.yaml")
        write_tokens(tokens)
        with open(cfg, "w") as f:
            f.write(CONFIG.format(tokens=tokens, run=run_dir))
        st = {k: os.path.join(tmp, k + ".h5") for k in ("init64", "trained64", "trained32", "dropout")}

        # (a) at init, fp64 on both sides
        rc, out = run([lc, "dump", cfg, "--out", st["init64"]])
        check(rc == 0, "longconv dump (init, cpu64) failed:\n" + out)
        if rc == 0:
            reference_check(st["init64"], "(a) init, cpu64 vs float64", ["--init"])

        # (b) 3 fp32 training steps, then the checkpoint in fp64
        rc, out = run([lc, "train", cfg, "train.device=cpu", "train.max_steps=3", "train.warmup_steps=0",
                       "train.eval_batches=1"])
        check(rc == 0, "longconv train failed:\n" + out)
        ckpt = os.path.join(run_dir, "ckpt_00000003.h5")
        check(os.path.exists(ckpt), "no checkpoint %s" % ckpt)
        if os.path.exists(ckpt):
            rc, out = run([lc, "dump", cfg, "--out", st["trained64"], "--ckpt", ckpt])
            check(rc == 0, "longconv dump (trained, cpu64) failed:\n" + out)
            if rc == 0:
                with h5py.File(st["trained64"], "r") as f:
                    p = f["params"]
                    for name in ("backbone.layers.0.mixer.in_proj.bias", "backbone.layers.1.mlp.fc2.bias",
                                 "backbone.layers.0.mixer.filter_fn.implicit_filter.2.bias", "backbone.ln_f.bias"):
                        check(abs(p[name][()]).max() > 1e-4, "%s not trained (still ~0)" % name)
                    check(abs(p["backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq"][()] - 14).max() > 1e-4,
                          "the Sin frequency was not trained")
                reference_check(st["trained64"], "(b) trained, cpu64 vs float64")
                # a gradient off by 1e-6 (relative) must fail the fp64 check, naming the tensor
                bad = os.path.join(tmp, "bad.h5")
                name = "backbone.layers.1.mixer.filter_fn.bias"
                perturbed_copy(st["trained64"], bad, name, 1e-6)
                out = reference_check(bad, "    perturbed %s" % name.split("layers.")[1], expect_rc=1)
                check(re.search(r"^grad %s\s.*FAIL$" % re.escape(name), out, re.M) is not None,
                      "the perturbed gradient is not reported as failed:\n" + out)

            # (c) the fp32 backend, against fp64 and fp32 references
            rc, out = run([lc, "dump", cfg, "--out", st["trained32"], "--ckpt", ckpt, "train.device=cpu"])
            check(rc == 0, "longconv dump (trained, cpu) failed:\n" + out)
            if rc == 0:
                reference_check(st["trained32"], "(c) trained, cpu (fp32) vs float64")
                reference_check(st["trained32"], "    trained, cpu (fp32) vs float32", ["--dtype", "float32"])
                # the bf16-autocast reference (the default for cuda states) runs on the CPU too
                reference_check(st["trained32"], "    trained, cpu (fp32) vs bf16 autocast", ["--dtype", "bfloat16"])

        # dropout makes the dump nondeterministic: the checker must refuse it
        rc, out = run([lc, "dump", cfg, "--out", st["dropout"], "model.embed_dropout=0.1"])
        check(rc == 0, "longconv dump (dropout) failed:\n" + out)
        if rc == 0:
            out = reference_check(st["dropout"], "dropout 0.1 is refused", expect_rc=2)
            check("dropout must be 0" in out, "no dropout message:\n" + out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
