#!/usr/bin/env python3
"""Independent PyTorch reference of longconv's Hyena language model (safari's ConvLMHeadModel).

Written from the model facts (shared refs, sections 0-2), not from longconv's C code, with the
state-dict names of safari so a longconv state file loads with a strict load_state_dict.

    reference_hyena.py check STATE.h5 [--dtype auto|float64|float32|bfloat16] [--device cpu|cuda] [--tol T] [--init]
                                      [--exact-eps]

STATE.h5 comes from `longconv dump CONFIG --out STATE.h5 [--ckpt CKPT]`: the config, one batch,
every parameter and every gradient of the mean loss. `check` rebuilds the model from the config,
loads the parameters, runs the batch forward and backward and compares the loss and each
gradient (relative L2 error per tensor, and the largest absolute difference), plus the fixed
buffers against their formulas. A cuda (bf16) state is compared by default with the reference run
under bf16 autocast, as safari trains; cpu64 and cpu states with a float64 reference. Tolerances:
default_tol. Exit status 0 when everything is within tolerance, 1 otherwise, 2 on usage errors.

    reference_hyena.py bench CONFIG.yaml [--batch B] [--seq L] [--steps N] [--warmup N]
                                         [--dtype bfloat16|float32] [--device cuda|cpu] [--json FILE]

`bench` is the PyTorch eager baseline of `longconv bench train`: the same model and micro-batch
(train.batch_size x data.seq_len unless --batch/--seq; one micro-batch per step), random tokens,
safari's GPT-2 initialization, fp32 master weights under bf16 autocast, AdamW(fused=False) with
the config's lr, betas, eps and weight decay per longconv's parameter groups (constant lr: the
schedule does not change the time), gradient-norm clipping at train.grad_clip, and the model's
dropout. Each step is timed
with torch.cuda.synchronize after it; reported: ms/step, tokens/s, model FLOPs/token and MFU (the
formula of longconv's model_flops_per_token and the same datasheet peak), and
torch.cuda.max_memory_allocated() as the peak memory (plus max_memory_reserved and the device's
used-memory growth, which also count the caching allocator's slack and the libraries' buffers).
"""
import argparse
import inspect
import json
import math
import signal
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# config: the resolved YAML that longconv stores (sections of `key: value` lines)
# ---------------------------------------------------------------------------------------------


def _yaml_scalar(text):
    """One scalar as written by longconv's config_to_yaml: int, float, bool, enum or "string"."""
    s = text.strip()
    if s.startswith('"') and s.endswith('"') and len(s) >= 2:
        # escapes written: \" \\ \n \t \xHH \uHHHH
        return s[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape") \
            if "\\" in s else s[1:-1]
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(s.replace("_", ""))
    except ValueError:
        pass
    try:
        # PyYAML would leave '1e-05' (no dot) a string; parse every number ourselves
        return float(s.replace("_", ""))
    except ValueError:
        return s


def parse_config(text):
    """{'model': {...}, 'data': {...}, 'train': {...}} from the two-level YAML."""
    cfg, section = {}, None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if '"' not in raw else raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            section = line.rstrip(":").strip()
            cfg[section] = {}
            continue
        key, _, value = line.strip().partition(":")
        if section is None:
            raise ValueError("config: key '%s' outside a section" % key)
        cfg[section][key.strip()] = _yaml_scalar(value)
    return cfg


class HyenaConfig:
    """The model hyper-parameters, from the config sections."""

    def __init__(self, cfg, exact_eps=False):
        m, d = cfg["model"], cfg["data"]
        if m.get("arch", "hyena_lm") != "hyena_lm":
            raise ValueError("model.arch '%s' is not the Hyena LM" % m.get("arch"))
        self.d_model = int(m["d_model"])
        self.n_layer = int(m["n_layer"])
        self.d_inner = int(m["d_inner"])
        self.vocab_size = int(m["vocab_size"])
        pad = int(m["vocab_pad_multiple"])
        self.vocab_padded = (self.vocab_size + pad - 1) // pad * pad
        self.l_max = int(m["l_max"]) or int(d["seq_len"])
        self.short_filter_order = int(m["short_filter_order"])
        self.filter_order = int(m["filter_order"])
        self.emb_dim = int(m["filter_emb_dim"])
        self.inner_mlps = int(m["filter_inner_mlps"])
        self.sine_freq = float(m["filter_sine_freq"])
        self.modulate = bool(m["filter_modulate"])
        self.fast_decay_pct = float(m["filter_fast_decay_pct"])
        self.slow_decay_pct = float(m["filter_slow_decay_pct"])
        self.target = float(m["filter_target"])
        self.shift = float(m["filter_shift"])
        self.z_trainable = bool(m["filter_pos_emb_trainable"])
        # LayerNorm epsilon as an fp32 number: longconv's ops take eps as a C float (cpu64 too), and
        # PyTorch's fp32/bf16 LayerNorm kernels (safari's training) also compute with eps rounded to
        # float. With the exact 1e-5 (--exact-eps) the fp64 gradients differ by ~1e-9 relative.
        self.ln_eps = float(m["ln_eps"]) if exact_eps else float(np.float32(m["ln_eps"]))
        self.init_std = float(m["init_std"])
        self.embed_dropout = float(m["embed_dropout"])
        self.resid_dropout = float(m["resid_dropout"])
        self.seq_len = int(d["seq_len"])


# ---------------------------------------------------------------------------------------------
# the model (safari: src/models/sequence/hyena.py, long_conv_lm.py; flash_attn Block and Mlp)
# ---------------------------------------------------------------------------------------------


def fftconv(u, k, D):
    """y[b,c,t] = sum_{s<=t} k[c,s] u[b,c,t-s] + D[c] u[b,c,t].   u [B,C,L], k [C,L], D [C].

    Zero padding to n = 2L makes the circular FFT convolution linear (no wrap-around). safari
    writes it as irfft(rfft(u) * rfft(k)/n, norm='forward'), i.e. the 1/n moved from the inverse
    to the filter: the same product as torch's default (backward-normalized) irfft below."""
    L = u.shape[-1]
    n = 2 * L
    # as safari: u cast to the filter's precision (at least fp32: under bf16 autocast the FFT runs
    # in fp32), the result cast back to u's dtype
    ft = torch.promote_types(k.dtype, torch.float32)
    uf, kf = u.to(ft), k.to(ft)
    y = torch.fft.irfft(torch.fft.rfft(uf, n=n) * torch.fft.rfft(kf, n=n), n=n)[..., :L]
    return (y + uf * D.unsqueeze(-1)).to(u.dtype)


class PositionalEmbedding(nn.Module):
    """z [1, l_max, emb] = [t, cos(f w), -sin(f w)], t = linspace(0, 1, l_max), w = 2 pi n / l_max."""

    def __init__(self, emb_dim, l_max, trainable):
        super().__init__()
        if emb_dim % 2 == 0 or emb_dim < 3:
            raise ValueError("filter_emb_dim must be odd and >= 3")
        t = torch.linspace(0, 1, l_max, dtype=torch.float64)[None, :, None]
        bands = (emb_dim - 1) // 2
        w = 2 * math.pi * torch.arange(l_max, dtype=torch.float64)[None, :, None] / l_max
        f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)[None, None]
        zc = torch.exp(-1j * f * w)
        z = torch.cat([t, zc.real, zc.imag], dim=-1)
        # OptimModule.register: lr 0 -> buffer, else a trained parameter (both in the state dict)
        if trainable:
            self.z = nn.Parameter(z)
        else:
            self.register_buffer("z", z)
        self.register_buffer("t", t)

    def forward(self, L):
        return self.z[:, :L], self.t[:, :L]


class Sin(nn.Module):
    """sin(freq * x) with a trained frequency vector [1, order]."""

    def __init__(self, dim, w):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim, dtype=torch.float64))

    def forward(self, x):
        return torch.sin(self.freq * x)


class ExponentialModulation(nn.Module):
    """h[t,c] * (exp(-t |delta_c|) + shift), delta = linspace(ln(target)/slow, ln(target)/fast, d)."""

    def __init__(self, d, fast_decay_pct, slow_decay_pct, target, shift):
        super().__init__()
        self.shift = shift
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, d, dtype=torch.float64)[None, None])

    def forward(self, t, x):
        return x * (torch.exp(-t * self.deltas.abs()) + self.shift)


class HyenaFilter(nn.Module):
    """Implicit long filter k [L, d] = modulation(MLP(z)) and the filter bias D [d]."""

    def __init__(self, c):
        super().__init__()
        self.modulate = c.modulate
        self.bias = nn.Parameter(torch.randn(c.d_model, dtype=torch.float64))
        self.pos_emb = PositionalEmbedding(c.emb_dim, c.l_max, c.z_trainable)
        act = Sin(c.filter_order, c.sine_freq)  # ONE module in every slot: one shared freq
        layers = [nn.Linear(c.emb_dim, c.filter_order), act]
        for _ in range(c.inner_mlps):
            layers += [nn.Linear(c.filter_order, c.filter_order), act]
        layers.append(nn.Linear(c.filter_order, c.d_model, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = ExponentialModulation(c.d_model, c.fast_decay_pct, c.slow_decay_pct, c.target, c.shift)

    def filter(self, L):
        z, t = self.pos_emb(L)
        h = self.implicit_filter(z)
        if self.modulate:
            h = self.modulation(t, h)
        return h  # [1, L, d]


class HyenaOperator(nn.Module):
    """Order-2 Hyena: in_proj -> short conv -> (x0, x1, v); y = x0 * longconv(v * x1) -> out_proj."""

    def __init__(self, c):
        super().__init__()
        d = c.d_model
        self.d, self.l_max = d, c.l_max
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        K = c.short_filter_order
        self.short_filter = nn.Conv1d(3 * d, 3 * d, kernel_size=K, groups=3 * d, padding=K - 1)
        self.filter_fn = HyenaFilter(c)

    def forward(self, u):  # u [B, L, d]
        L = u.shape[1]
        if L > self.l_max:
            raise ValueError("sequence length %d exceeds l_max %d" % (L, self.l_max))
        u = self.in_proj(u).transpose(1, 2)            # [B, 3d, L]
        uc = self.short_filter(u)[..., :L]             # causal: keep the first L outputs
        x0, x1, v = uc.split(self.d, dim=1)
        k = self.filter_fn.filter(L)[0].transpose(0, 1)  # [d, L]
        v = fftconv(v * x1, k, self.filter_fn.bias)
        y = (v * x0).transpose(1, 2)                   # [B, L, d]
        return self.out_proj(y)


class Mlp(nn.Module):
    def __init__(self, d, d_inner):
        super().__init__()
        self.fc1 = nn.Linear(d, d_inner)
        self.fc2 = nn.Linear(d_inner, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def _dropout(x, p, training):
    """safari's dropout sites (embedding, each residual branch); `check` refuses p > 0."""
    return F.dropout(x, p, True) if training and p > 0 else x


class Block(nn.Module):
    """Pre-LN: x += dropout(mixer(norm1(x))); x += dropout(mlp(norm2(x)))."""

    def __init__(self, c):
        super().__init__()
        self.p = c.resid_dropout
        self.norm1 = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.mixer = HyenaOperator(c)
        self.norm2 = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.mlp = Mlp(c.d_model, c.d_inner)

    def forward(self, x):
        x = x + _dropout(self.mixer(self.norm1(x)), self.p, self.training)
        return x + _dropout(self.mlp(self.norm2(x)), self.p, self.training)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_padded, c.d_model)


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.p = c.embed_dropout

    def forward(self, tokens):
        x = _dropout(self.embeddings.word_embeddings(tokens), self.p, self.training)
        for layer in self.layers:
            x = layer(x)
        return self.ln_f(x)


class ConvLMHeadModel(nn.Module):
    """Hyena LM with the head tied to the word embeddings (no bias): logits [B, L, Vp]."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.backbone = Backbone(c)
        self.lm_head = nn.Linear(c.d_model, c.vocab_padded, bias=False)
        self.lm_head.weight = self.backbone.embeddings.word_embeddings.weight

    def forward(self, tokens):
        return self.lm_head(self.backbone(tokens))


def lm_loss(logits, targets, vocab_size):
    """Mean cross-entropy over targets >= 0, softmax over the first vocab_size columns.
    (longconv's convention; safari's loss runs the softmax over all padded columns.)"""
    mask = targets >= 0
    return F.cross_entropy(logits[..., :vocab_size][mask], targets[mask].long(), reduction="mean")


# ---------------------------------------------------------------------------------------------
# state files and the comparison
# ---------------------------------------------------------------------------------------------

TIED_ALIASES = {"lm_head.weight": "backbone.embeddings.word_embeddings.weight"}


def shared_freq_aliases(c):
    """safari's state dict lists the one Sin module under every slot it fills (1, 3, 5, ...);
    longconv stores only slot 1. Map the others to it."""
    out = {}
    for layer in range(c.n_layer):
        p = "backbone.layers.%d.mixer.filter_fn.implicit_filter." % layer
        for j in range(1, c.inner_mlps + 1):
            out[p + "%d.freq" % (2 * j + 1)] = p + "1.freq"
    return out


def default_tol(backend, dtype):
    """Relative tolerance per compared quantity, from the precision of both sides.

    cpu64 vs a float64 reference: both are exact fp64 arithmetic that differ only in summation
      order and FFT algorithm (FFTW vs pocketfft); rounding is ~1e-16 per operation and grows to
      ~1e-13 over the model's depth and B*L-term gradient sums; 1e-9 leaves 1e4x room for
      cancellation in small gradients (a tensor whose gradient is far below its terms' sizes).
      Measured: 1.5e-15 (tiny configs), 5.5e-15 (Hyena-s width, 2 layers, L = 2048).
    fp32 on either side, the other fp32 or fp64: unit roundoff 6e-8; errors of ~1e-6 accumulate
      over the dot products (length d_inner, Vp), the 2L-point FFTs and the layer stack, and
      cancellation in bias and filter gradients amplifies them 10-100x: 1e-4 (measured 3e-6).
    cuda (bf16) vs the bfloat16 reference (safari's autocast): the weights are rounded to bf16
      identically on both sides (longconv's compute copy, autocast's cast); they differ in which
      activations are rounded (unit roundoff 2^-9 = 2e-3; longconv stores every activation in
      bf16, autocast keeps LayerNorm, FFT and elementwise outputs in fp32), a few roundings in
      series per layer: 3e-2 (measured <= 1.2e-2 at init, after 50 and 300 steps, and at
      Hyena-s width).
    bf16 on one side only: the bf16 rounding of the filter-MLP weights and of each Sin input x
      becomes a phase error freq * |x| * 2^-9 (freq = 14 in Hyena-s), which grows as training
      grows freq and the MLP weights: the filter-MLP, freq and z gradients were off by 3e-2 after
      50 steps and 9e-2 after 300 (tiny config), as much as safari's own bf16 autocast is off
      from fp64. Only a sanity check: 0.15."""
    bf16 = (backend == "cuda") + (dtype == torch.bfloat16)
    if bf16 == 2:
        return 3e-2
    if bf16 == 1:
        return 0.15
    return 1e-9 if backend == "cpu64" and dtype == torch.float64 else 1e-4


class Report:
    def __init__(self):
        self.rows = []  # (name, rel, maxabs, tol, ok, note)

    def add(self, name, rel, maxabs, tol, note=""):
        ok = bool(rel <= tol)  # NaN fails
        self.rows.append((name, rel, maxabs, tol, ok, note))

    def print(self, out=sys.stdout):
        w = max([len(r[0]) for r in self.rows] + [8])
        out.write("%-*s  %11s  %11s  %9s  %s\n" % (w, "quantity", "rel.err", "max.abs", "tol", "result"))
        for name, rel, maxabs, tol, ok, note in sorted(self.rows, key=lambda r: (-_sortkey(r[1]), r[0])):
            out.write("%-*s  %11.3e  %11.3e  %9.1e  %s%s\n" % (w, name, rel, maxabs, tol, "ok" if ok else "FAIL",
                                                                "  " + note if note else ""))
        n_ok = sum(r[4] for r in self.rows)
        out.write("%d passed, %d failed\n" % (n_ok, len(self.rows) - n_ok))
        return len(self.rows) - n_ok


def _sortkey(x):
    return math.inf if math.isnan(x) else x


def rel_l2(a, ref):
    """||a - ref|| / ||ref|| (0 when both are zero; inf when only ref is)."""
    diff = float(np.linalg.norm((a - ref).ravel()))
    den = float(np.linalg.norm(ref.ravel()))
    if den == 0:
        return 0.0 if diff == 0 else math.inf
    return diff / den


def load_state(path):
    import h5py
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != "longconv-state":
            raise ValueError("%s: attribute format is %r, expected 'longconv-state'" % (path, fmt))
        st = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        st["inputs"] = f["inputs"][()]
        st["targets"] = f["targets"][()]
        st["params"] = {k: f["params"][k][()] for k in f["params"]}
        st["grads"] = {k: f["grads"][k][()] for k in f["grads"]}
    return st


def build_model(c, params, dtype, device):
    """The model with the state's parameters, loaded with a strict load_state_dict."""
    torch.manual_seed(0)  # init values are all overwritten; only shapes matter
    model = ConvLMHeadModel(c).to(torch.float64)  # load the fp64 values unrounded
    sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
    for alias, src in list(TIED_ALIASES.items()) + list(shared_freq_aliases(c).items()):
        if alias in sd:
            raise ValueError("state file has %s, which longconv does not write" % alias)
        if src in sd:
            sd[alias] = sd[src]
    model.load_state_dict(sd, strict=True)
    return model.to(device=device, dtype=dtype)


def check_buffers(c, params, tol_buf, report, init):
    """The fixed buffers (t, deltas) must equal their formulas; z too when it is not trained or the
    state is at init."""
    pe = PositionalEmbedding(c.emb_dim, c.l_max, False)
    mod = ExponentialModulation(c.d_model, c.fast_decay_pct, c.slow_decay_pct, c.target, c.shift)
    formulas = {"filter_fn.pos_emb.t": pe.t.numpy(), "filter_fn.modulation.deltas": mod.deltas.numpy()}
    if init or not c.z_trainable:
        formulas["filter_fn.pos_emb.z"] = pe.z.numpy()
    for layer in range(c.n_layer):
        for suffix, want in formulas.items():
            name = "backbone.layers.%d.mixer.%s" % (layer, suffix)
            got = params[name]
            report.add("value " + name, rel_l2(got, want), float(np.abs(got - want).max()), tol_buf)


def check_init(c, params, report):
    """--init: constants exact, random inits within sampling error of their distributions."""
    n_layer = c.n_layer
    for name, v in sorted(params.items()):
        kind = None
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "backbone.ln_f.weight":
            kind, want = "const", 1.0
        elif name.endswith(".bias") and "short_filter" not in name and not name.endswith("filter_fn.bias"):
            kind, want = "const", 0.0
        elif name.endswith(".freq"):
            kind, want = "const", c.sine_freq
        elif name.endswith("short_filter.weight") or name.endswith("short_filter.bias"):
            kind, want = "uniform", 1.0 / math.sqrt(c.short_filter_order)
        elif name.endswith("filter_fn.bias"):
            kind, want = "normal", 1.0
        elif name.endswith("out_proj.weight") or name.endswith("fc2.weight"):
            kind, want = "normal", c.init_std / math.sqrt(2.0 * n_layer)
        elif name.endswith(".weight"):
            kind, want = "normal", c.init_std
        if kind is None:
            continue
        if kind == "const":
            err = float(np.abs(v - want).max())
            report.add("init " + name, err, err, 0.0, "== %g" % want)
            continue
        n = v.size
        if kind == "uniform":
            # U(-a, a): every |x| <= a (up to fp32 rounding of a), rms a/sqrt(3)
            over = float(max(np.abs(v).max() - want, 0.0))
            report.add("init %s (|x|<=%.3g)" % (name, want), over / want, over, 1e-7)
            sd, sd_want = float(np.sqrt(np.mean(v * v))), want / math.sqrt(3.0)
        else:
            sd, sd_want = float(np.sqrt(np.mean(v * v))), want
        # the sample rms of n draws has relative standard error ~1/sqrt(2n) (normal) or less
        # (uniform); 5 standard errors, floored at 3 % for tiny tensors, never flakes
        tol = max(5.0 / math.sqrt(2.0 * n), 0.03) if n >= 8 else 1.0
        report.add("init %s (rms %.3g)" % (name, sd_want), abs(sd / sd_want - 1.0), abs(sd - sd_want), tol)


def run_check(args):
    st = load_state(args.state)
    cfg = parse_config(st["config"])
    c = HyenaConfig(cfg, exact_eps=args.exact_eps)
    if c.embed_dropout != 0 or c.resid_dropout != 0:
        sys.stderr.write("%s: model.embed_dropout = %g, model.resid_dropout = %g: dropout must be 0 for a "
                         "deterministic comparison (dump with model.embed_dropout=0 model.resid_dropout=0)\n"
                         % (args.state, c.embed_dropout, c.resid_dropout))
        return 2
    backend = st.get("backend", "?")
    # bfloat16: fp32 weights under bf16 autocast, as safari trains (FFT, LayerNorm and loss in fp32);
    # auto: the precision of the dump's backend (bf16 for cuda), else fp64
    if args.dtype == "auto":
        args.dtype = "bfloat16" if backend == "cuda" else "float64"
    dtype = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    device = torch.device(args.device)
    tol = args.tol if args.tol is not None else default_tol(backend, dtype)
    inputs = torch.from_numpy(st["inputs"].astype(np.int64)).to(device)
    targets = torch.from_numpy(st["targets"].astype(np.int64)).to(device)
    if inputs.shape[1] != c.seq_len:
        sys.stderr.write("%s: inputs are [%d, %d], config data.seq_len is %d\n"
                         % (args.state, inputs.shape[0], inputs.shape[1], c.seq_len))
        return 2
    try:
        model = build_model(c, st["params"], torch.float32 if dtype == torch.bfloat16 else dtype, device)
    except (RuntimeError, ValueError) as e:
        sys.stderr.write("%s: the parameters do not match the reference model:\n%s\n" % (args.state, e))
        return 1

    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        loss = lm_loss(model(inputs), targets, c.vocab_size)
    loss.backward()
    ref_loss = float(loss.detach().cpu().double())

    report = Report()
    lc_loss = float(st["loss"])
    report.add("loss (lc %.10g, ref %.10g)" % (lc_loss, ref_loss), abs(lc_loss - ref_loss) / abs(ref_loss),
               abs(lc_loss - ref_loss), tol)
    n_tgt = int((st["targets"] >= 0).sum())
    if int(st.get("n_targets", n_tgt)) != n_tgt:
        report.add("n_targets", math.inf, math.inf, 0.0, "file says %s, targets >= 0: %d" % (st["n_targets"], n_tgt))

    named = dict(model.named_parameters())  # shared tensors appear once, under their first name
    buffers = dict(model.named_buffers())
    for name, lc_grad in st["grads"].items():
        if name in named:
            g = named[name].grad
            ref = np.zeros(lc_grad.shape) if g is None else g.detach().cpu().double().numpy()
        elif name in buffers:
            ref = np.zeros(lc_grad.shape)  # buffers are not trained: longconv must report zeros
        else:
            report.add("grad " + name, math.inf, math.inf, tol, "not in the reference model")
            continue
        if ref.shape != lc_grad.shape:
            report.add("grad " + name, math.inf, math.inf, tol, "shape %s vs %s" % (lc_grad.shape, ref.shape))
            continue
        report.add("grad " + name, rel_l2(lc_grad, ref), float(np.abs(lc_grad - ref).max()) if ref.size else 0.0, tol)
    for name in named:
        if name not in st["grads"]:
            report.add("grad " + name, math.inf, math.inf, tol, "missing from the state file")

    # Buffers hold the precision of the run that wrote them: fp64 formulas when a cpu64 dump starts
    # at init; otherwise they may have passed through an fp32 checkpoint (rounding 6e-8 relative).
    check_buffers(c, st["params"], 1e-12 if backend == "cpu64" and args.init else 1e-6, report, args.init)
    if args.init:
        check_init(c, st["params"], report)

    print("%s: backend %s, reference %s on %s, batch %d x %d, %d targets, tolerance %.1e"
          % (args.state, backend, args.dtype, args.device, inputs.shape[0], inputs.shape[1], n_tgt, tol))
    failed = report.print()
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# bench: the PyTorch eager training step, timed
# ---------------------------------------------------------------------------------------------

# Defaults of the keys bench reads that a config file may leave out (src/core/config.h).
CONFIG_DEFAULTS = {
    "model": {"arch": "hyena_lm", "d_model": 128, "n_layer": 2, "d_inner": 256, "vocab_size": 50257,
              "vocab_pad_multiple": 8, "l_max": 0, "short_filter_order": 3, "filter_order": 64,
              "filter_emb_dim": 33, "filter_inner_mlps": 2, "filter_sine_freq": 1.0, "filter_modulate": True,
              "filter_fast_decay_pct": 0.3, "filter_slow_decay_pct": 1.5, "filter_target": 0.01,
              "filter_shift": 0.0, "filter_pos_emb_trainable": True, "embed_dropout": 0.1, "resid_dropout": 0.0,
              "ln_eps": 1e-5, "init_std": 0.02},
    "data": {"seq_len": 256},
    "train": {"batch_size": 8, "lr": 6e-4, "weight_decay": 0.1, "decay_all": False, "beta1": 0.9, "beta2": 0.999,
              "adam_eps": 1e-8, "filter_lr": 6e-4, "filter_wd": 0.0, "pos_emb_lr": 6e-4, "grad_clip": 1.0,
              "seed": 2222},
}

# Dense bf16 tensor-core peaks, as longconv's cuda_peak_bf16_flops (more specific names first).
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
             ("A100", 312e12), ("L40S", 362e12), ("A10", 125e12), ("L4", 121e12)]


def model_flops_per_token(c, L):
    """longconv's model_flops_per_token: 6 x matmul weights per token + 3 x the forward long convs."""
    d, di = float(c.d_model), float(c.d_inner)
    matmul = c.n_layer * (4.0 * d * d + 2.0 * d * di) + float(c.vocab_padded) * d
    n = 2.0 * L
    conv = d * (2.0 * 2.5 * n * math.log2(n) + 6.0 * n) / L
    return 6.0 * matmul + 3.0 * c.n_layer * conv


def optimizer_groups(model, t):
    """longconv's groups (src/model/params.h): filter MLP and freq, z, decayed matrices, the rest."""
    decay, no_decay, filt, pos = [], [], [], []
    for name, p in model.named_parameters():  # the tied head appears once
        if "implicit_filter" in name:
            filt.append(p)
        elif name.endswith("pos_emb.z"):
            pos.append(p)
        elif p.dim() >= 2 and "word_embeddings" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    wd_rest = float(t["weight_decay"]) if t["decay_all"] else 0.0
    groups = [{"params": decay, "lr": float(t["lr"]), "weight_decay": float(t["weight_decay"])},
              {"params": no_decay, "lr": float(t["lr"]), "weight_decay": wd_rest},
              {"params": filt, "lr": float(t["filter_lr"]), "weight_decay": float(t["filter_wd"])},
              {"params": pos, "lr": float(t["pos_emb_lr"]), "weight_decay": 0.0}]
    return [g for g in groups if g["params"] and g["lr"] > 0]


def gpt2_init(model, c):
    """safari's _init_weights (GPT-2 style), so the bench's losses start near ln V: Linear and
    Embedding weights N(0, init_std), out_proj and fc2 N(0, init_std / sqrt(2 n_layer)), Linear
    biases 0; the Hyena filter keeps its own init. (PyTorch's defaults give N(0, 1) embeddings,
    which through the tied head start the loss near 100.)"""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if "filter_fn" in name:
                continue
            if isinstance(mod, nn.Linear) and mod is not model.lm_head:
                rescale = name.endswith("out_proj") or name.endswith("fc2")
                mod.weight.normal_(0.0, c.init_std / math.sqrt(2.0 * c.n_layer) if rescale else c.init_std)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.Embedding):
                mod.weight.normal_(0.0, c.init_std)


def run_bench(args):
    with open(args.config) as f:
        cfg = parse_config(f.read())
    for sec, keys in CONFIG_DEFAULTS.items():
        for k, v in keys.items():
            cfg.setdefault(sec, {}).setdefault(k, v)
    if args.seq:
        cfg["data"]["seq_len"] = args.seq
    c = HyenaConfig(cfg)
    t = cfg["train"]
    B, L = args.batch or int(t["batch_size"]), c.seq_len
    if L > c.l_max:
        sys.stderr.write("--seq %d exceeds model.l_max %d\n" % (L, c.l_max))
        return 2
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    bf16 = args.dtype == "bfloat16"
    torch.manual_seed(int(t["seed"]))
    if cuda:
        torch.cuda.init()
        torch.zeros(1, device=device)  # the context, before the baseline
        torch.cuda.synchronize()
        free0, total = torch.cuda.mem_get_info()
    model = ConvLMHeadModel(c).to(device=device, dtype=torch.float32)  # fp32 master weights
    gpt2_init(model, c)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt_kw = {"betas": (float(t["beta1"]), float(t["beta2"])), "eps": float(t["adam_eps"])}
    if "fused" in inspect.signature(torch.optim.AdamW).parameters:
        opt_kw["fused"] = False
    opt = torch.optim.AdamW(optimizer_groups(model, t), **opt_kw)
    clip = float(t["grad_clip"])
    V, Vp = c.vocab_size, c.vocab_padded

    def step():
        tok = torch.randint(0, V, (B, L + 1), device=device)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(tok[:, :-1])
            # every target is valid: the plain loss, no boolean mask (which would sync the host)
            loss = F.cross_entropy(logits.reshape(-1, Vp)[:, :V], tok[:, 1:].reshape(-1))
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    times, losses = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    mean = sum(times) / len(times)
    srt = sorted(times)
    median = srt[len(srt) // 2] if len(srt) % 2 else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])
    fpt = model_flops_per_token(c, L)
    tok_s = B * L / mean
    res = {"bench": "train-pytorch-eager", "device": device.type, "gpu": "", "torch": torch.__version__,
           "dtype": args.dtype, "d_model": c.d_model, "n_layer": c.n_layer, "batch_size": B, "seq_len": L,
           "grad_accum": 1, "steps": args.steps, "warmup": args.warmup,
           "trainable_params": sum(p.numel() for p in params), "tokens_per_step": B * L,
           "ms_per_step": 1e3 * mean, "ms_per_step_median": 1e3 * median, "ms_per_step_min": 1e3 * srt[0],
           "tokens_per_s": tok_s, "flops_per_token": fpt, "peak_flops": None, "mfu": None,
           "loss_first": losses[0], "loss_last": losses[-1], "peak_memory_bytes": None,
           "max_memory_reserved_bytes": None, "device_used_growth_bytes": None}
    if cuda:
        name = torch.cuda.get_device_name(device)
        peak = next((f for key, f in PEAK_BF16 if key in name), None)
        free1, _ = torch.cuda.mem_get_info()
        res.update(gpu=name, peak_flops=peak, mfu=tok_s * fpt / peak if peak else None,
                   peak_memory_bytes=torch.cuda.max_memory_allocated(device),
                   max_memory_reserved_bytes=torch.cuda.max_memory_reserved(device),
                   device_used_growth_bytes=free0 - free1)
    mib = 1.0 / (1 << 20)
    print("reference bench | PyTorch %s eager | %s%s | %s | micro-batch %d x %d | %d trainable parameters"
          % (torch.__version__, device.type, " | " + res["gpu"] if res["gpu"] else "", args.dtype, B, L,
             res["trainable_params"]))
    print("  steps %d (after %d warm-up) | loss %.4f -> %.4f" % (args.steps, args.warmup, losses[0], losses[-1]))
    print("  ms/step: mean %.2f | median %.2f | min %.2f" % (1e3 * mean, 1e3 * median, 1e3 * srt[0]))
    print("  tokens/s %.0f | model FLOPs/token %.4g | %.1f TFLOP/s | MFU %s"
          % (tok_s, fpt, tok_s * fpt / 1e12, "%.2f%%" % (100 * res["mfu"]) if res["mfu"] else "n/a"))
    if cuda:
        print("  memory: max_memory_allocated %.1f MiB | max_memory_reserved %.1f MiB | device used growth %.1f MiB"
              % (res["peak_memory_bytes"] * mib, res["max_memory_reserved_bytes"] * mib,
                 res["device_used_growth_bytes"] * mib))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
        print("wrote %s" % args.json)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    ck = sub.add_parser("check", help="compare a `longconv dump` state with the reference")
    ck.add_argument("state", help="STATE.h5 from `longconv dump`")
    ck.add_argument("--dtype", choices=["auto", "float64", "float32", "bfloat16"], default="auto",
                    help="reference precision (bfloat16: fp32 weights under bf16 autocast; "
                         "auto: bfloat16 for a cuda state, else float64)")
    ck.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ck.add_argument("--tol", type=float, default=None, help="relative tolerance (default: from backend and dtype)")
    ck.add_argument("--init", action="store_true",
                    help="the state is at initialization: also check z and the init distributions")
    ck.add_argument("--exact-eps", action="store_true",
                    help="LayerNorm eps exactly as configured (default: rounded to fp32, as longconv)")
    bn = sub.add_parser("bench", help="time the PyTorch eager training step (baseline of `longconv bench train`)")
    bn.add_argument("config", help="CONFIG.yaml (as given to longconv)")
    bn.add_argument("--batch", type=int, default=0, help="micro-batch (default train.batch_size)")
    bn.add_argument("--seq", type=int, default=0, help="sequence length (default data.seq_len)")
    bn.add_argument("--steps", type=int, default=10, help="timed steps")
    bn.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    bn.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16",
                    help="bfloat16: fp32 weights under bf16 autocast (safari's training)")
    bn.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    bn.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `check ... | head` ends quietly
    if args.cmd not in ("check", "bench"):
        ap.print_help(sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("--device cuda: torch.cuda is not available\n")
        return 2
    if args.cmd == "bench":
        if args.steps < 1 or args.warmup < 0:
            sys.stderr.write("bench: --steps must be >= 1 and --warmup >= 0\n")
            return 2
        return run_bench(args)
    if args.device == "cuda":
        # exact fp32 matmuls (no TF32) so the float32 reference is really fp32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
