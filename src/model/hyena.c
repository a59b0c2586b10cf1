#include "model/hyena.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

#define ACT(ops, n) ((size_t)(n) * (ops)->act_bytes)
#define ACC(ops, n) ((size_t)(n) * (ops)->acc_bytes)

static int add_param(ParamTable *t, const char *prefix, const char *name, InitKind init, double a,
                     ParamGroup g, const int64_t *shape, int ndim) {
    char full[160];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return params_add(t, full, init, a, g, shape, ndim);
}

void hyena_mixer_define(HyenaMixer *m, ParamTable *t, const ModelConfig *mc, int64_t l_max, int n_layer,
                        const char *prefix) {
    const int64_t d = mc->d_model, K = mc->short_filter_order, order = mc->filter_order, emb = mc->filter_emb_dim;
    m->d = (int)d;
    m->K = (int)K;
    m->order = (int)order;
    m->emb = (int)emb;
    m->l_max = l_max;
    m->n_lin = (int)mc->filter_inner_mlps + 2;
    m->shift = (float)mc->filter_shift;
    m->modulate = mc->filter_modulate;
    m->z_trainable = mc->filter_pos_emb_trainable;
    LC_ASSERT(m->n_lin <= HYENA_MAX_FILTER_LINEARS, "model.filter_inner_mlps too large");
    const double std = mc->init_std;
    /* GPT-2 scaled init: projections into the residual stream get std / sqrt(2 n_layer). */
    const double out_std = std / sqrt(2.0 * n_layer);
    /* PyTorch Conv1d default init for a depthwise conv: U(+-1/sqrt(fan_in)), fan_in = K. */
    const double conv_bound = 1.0 / sqrt((double)K);

    m->in_w = add_param(t, prefix, "in_proj.weight", INIT_NORMAL, std, GROUP_DECAY, DIMS(3 * d, d));
    m->in_b = add_param(t, prefix, "in_proj.bias", INIT_ZERO, 0, GROUP_NO_DECAY, DIMS(3 * d));
    m->sf_w = add_param(t, prefix, "short_filter.weight", INIT_UNIFORM, conv_bound, GROUP_DECAY, DIMS(3 * d, 1, K));
    m->sf_b = add_param(t, prefix, "short_filter.bias", INIT_UNIFORM, conv_bound, GROUP_NO_DECAY, DIMS(3 * d));
    m->z = add_param(t, prefix, "filter_fn.pos_emb.z", INIT_HOST, 0,
                     m->z_trainable ? GROUP_POS_EMB : GROUP_FROZEN, DIMS(1, l_max, emb));
    m->t = add_param(t, prefix, "filter_fn.pos_emb.t", INIT_HOST, 0, GROUP_FROZEN, DIMS(1, l_max, 1));
    /* Sequential indices of safari's implicit_filter: Linear, Sin, (Linear, Sin) x inner, Linear. */
    char name[96];
    for (int j = 0; j < m->n_lin; j++) {
        int last = j == m->n_lin - 1;
        int64_t in = j == 0 ? emb : order, out = last ? d : order;
        snprintf(name, sizeof name, "filter_fn.implicit_filter.%d.weight", 2 * j);
        m->fw[j] = add_param(t, prefix, name, INIT_NORMAL, std, GROUP_FILTER, DIMS(out, in));
        m->fb[j] = -1;
        if (!last) {
            snprintf(name, sizeof name, "filter_fn.implicit_filter.%d.bias", 2 * j);
            m->fb[j] = add_param(t, prefix, name, INIT_ZERO, 0, GROUP_FILTER, DIMS(out));
        }
    }
    m->freq = add_param(t, prefix, "filter_fn.implicit_filter.1.freq", INIT_CONST, mc->filter_sine_freq,
                        GROUP_FILTER, DIMS(1, order));
    m->deltas = add_param(t, prefix, "filter_fn.modulation.deltas", INIT_HOST, 0, GROUP_FROZEN, DIMS(1, 1, d));
    m->D = add_param(t, prefix, "filter_fn.bias", INIT_NORMAL, 1.0, GROUP_NO_DECAY, DIMS(d));
    m->out_w = add_param(t, prefix, "out_proj.weight", INIT_NORMAL, out_std, GROUP_DECAY, DIMS(d, d));
    m->out_b = add_param(t, prefix, "out_proj.bias", INIT_ZERO, 0, GROUP_NO_DECAY, DIMS(d));
}

void hyena_mixer_init_host(const HyenaMixer *m, ParamTable *t, const Ops *ops, const ModelConfig *mc) {
    const int64_t lm = m->l_max, emb = m->emb, bands = (emb - 1) / 2;
    double *z = xmalloc((size_t)(lm * emb) * sizeof(double));
    double *tt = xmalloc((size_t)lm * sizeof(double));
    for (int64_t n = 0; n < lm; n++) {
        /* t = linspace(0, 1, l_max); w = 2 pi n / l_max; f = linspace(1e-4, bands - 1, bands);
         * z = [t, Re exp(-i f w), Im exp(-i f w)]. */
        tt[n] = lm > 1 ? (double)n / (double)(lm - 1) : 0.0;
        double w = 2.0 * M_PI * (double)n / (double)lm;
        z[n * emb] = tt[n];
        for (int64_t b = 0; b < bands; b++) {
            double f = bands > 1 ? 1e-4 + (double)b * ((double)(bands - 1) - 1e-4) / (double)(bands - 1) : 1e-4;
            z[n * emb + 1 + b] = cos(f * w);
            z[n * emb + 1 + bands + b] = -sin(f * w);
        }
    }
    params_upload(t, ops, m->z, z);
    params_upload(t, ops, m->t, tt);
    double *deltas = xmalloc((size_t)m->d * sizeof(double));
    double lo = log(mc->filter_target) / mc->filter_slow_decay_pct;
    double hi = log(mc->filter_target) / mc->filter_fast_decay_pct;
    for (int c = 0; c < m->d; c++) deltas[c] = m->d > 1 ? lo + (hi - lo) * c / (double)(m->d - 1) : lo;
    params_upload(t, ops, m->deltas, deltas);
    free(z);
    free(tt);
    free(deltas);
}

void hyena_mixer_bind(HyenaMixer *m, Arena *a, const Ops *ops, int B, int L) {
    const int64_t BL = (int64_t)B * L, d = m->d;
    m->xz = arena_take(a, ACT(ops, BL * 3 * d));
    m->u = arena_take(a, ACT(ops, BL * 3 * d));
    m->y = arena_take(a, ACT(ops, BL * d));
    m->yt = arena_take(a, ACT(ops, BL * d));
    for (int j = 0; j < m->n_lin; j++) {
        int64_t width = j == m->n_lin - 1 ? d : m->order;
        m->fa[j] = arena_take(a, ACT(ops, (int64_t)L * width));
        m->fs[j] = j == m->n_lin - 1 ? NULL : arena_take(a, ACT(ops, (int64_t)L * width));
    }
    m->k = arena_take(a, ACC(ops, (int64_t)L * d));
}

void hyena_scratch_bind(HyenaScratch *s, Arena *a, const Ops *ops, int B, int L, int d, int order, int emb) {
    const int64_t BL = (int64_t)B * L;
    s->dyt = arena_take(a, ACT(ops, BL * d));
    s->dy = arena_take(a, ACT(ops, BL * d));
    s->du = arena_take(a, ACT(ops, BL * 3 * d));
    s->dxz = arena_take(a, ACT(ops, BL * 3 * d));
    s->fdh = arena_take(a, ACT(ops, (int64_t)L * d));
    s->fds0 = arena_take(a, ACT(ops, (int64_t)L * order));
    s->fds1 = arena_take(a, ACT(ops, (int64_t)L * order));
    s->fdz = arena_take(a, ACT(ops, (int64_t)L * emb));
    s->dk = arena_take(a, ACC(ops, (int64_t)L * d));
}

#define PC(idx) param_compute(t, ops, (idx))
#define PM(idx) param_master(t, ops, (idx))
#define PG(idx) param_grad(t, ops, (idx))
#define PCB(idx) ((idx) >= 0 ? PC(idx) : NULL)
#define PGB(idx) ((idx) >= 0 ? PG(idx) : NULL)

/* k[d,L] from the first L rows of z (computed once per forward, shared by the batch). */
static void filter_forward(HyenaMixer *m, const ParamTable *t, const Ops *ops, int L) {
    const act_t *in = PC(m->z);
    int in_width = m->emb;
    for (int j = 0; j < m->n_lin; j++) {
        int last = j == m->n_lin - 1;
        int out_width = last ? m->d : m->order;
        ops->linear_fwd(m->fa[j], in, PC(m->fw[j]), PCB(m->fb[j]), L, in_width, out_width);
        if (last) break;
        ops->sin_fwd(m->fs[j], m->fa[j], PM(m->freq), L, out_width);
        in = m->fs[j];
        in_width = out_width;
    }
    ops->expmod_fwd(m->k, m->fa[m->n_lin - 1], PM(m->deltas), PM(m->t), m->shift, m->modulate, L, m->d);
}

static void filter_backward(HyenaMixer *m, const ParamTable *t, const Ops *ops, HyenaScratch *s, int L) {
    const int last = m->n_lin - 1;
    ops->expmod_bwd(s->fdh, s->dk, PM(m->deltas), PM(m->t), m->shift, m->modulate, L, m->d);
    act_t *dout = s->fdh, *spare[2] = {s->fds0, s->fds1};
    for (int j = last; j >= 0; j--) {
        int out_width = j == last ? m->d : m->order;
        if (j != last) {
            /* dout holds d(sin output j); turn it into d(linear output j) in place is not allowed
             * (inputs and outputs must not alias), so use the other spare buffer. */
            act_t *da = dout == spare[0] ? spare[1] : spare[0];
            ops->sin_bwd(da, PG(m->freq), dout, m->fa[j], PM(m->freq), L, out_width);
            dout = da;
        }
        const act_t *in = j == 0 ? PC(m->z) : m->fs[j - 1];
        int in_width = j == 0 ? m->emb : m->order;
        act_t *din;
        if (j == 0) din = m->z_trainable ? s->fdz : NULL;
        else din = dout == spare[0] ? spare[1] : spare[0];
        ops->linear_bwd(din, PG(m->fw[j]), PGB(m->fb[j]), dout, in, PC(m->fw[j]), L, in_width, out_width);
        dout = din;
    }
    if (m->z_trainable) ops->acc_add_act(PG(m->z), s->fdz, (int64_t)L * m->emb);
}

void hyena_mixer_forward(HyenaMixer *m, const ParamTable *t, const Ops *ops, act_t *out, const act_t *x, int B, int L) {
    const int64_t BL = (int64_t)B * L, d = m->d, dL = d * L;
    LC_ASSERT(L <= m->l_max, "sequence length %d exceeds the filter's l_max %lld", L, (long long)m->l_max);
    ops->linear_fwd(m->xz, x, PC(m->in_w), PC(m->in_b), BL, (int)d, (int)(3 * d));
    ops->shortconv_fwd(m->u, m->xz, PC(m->sf_w), PC(m->sf_b), B, L, (int)(3 * d), m->K);
    filter_forward(m, t, ops, L);
    const act_t *x0 = m->u, *x1 = lc_offset(m->u, dL, ops->act_bytes), *v = lc_offset(m->u, 2 * dL, ops->act_bytes);
    /* y = x0 ⊙ (k * (v ⊙ x1) + D ⊙ (v ⊙ x1)) */
    ops->fftconv_fwd(m->y, v, x1, x0, 3 * dL, m->k, L, PM(m->D), B, (int)d, L);
    ops->blc_from_bcl(m->yt, m->y, B, L, (int)d);
    ops->linear_fwd(out, m->yt, PC(m->out_w), PC(m->out_b), BL, (int)d, (int)d);
}

void hyena_mixer_backward(HyenaMixer *m, const ParamTable *t, const Ops *ops, HyenaScratch *s, act_t *dx,
                          const act_t *dout, const act_t *x, int B, int L) {
    const int64_t BL = (int64_t)B * L, d = m->d, dL = d * L;
    ops->linear_bwd(s->dyt, PG(m->out_w), PG(m->out_b), dout, m->yt, PC(m->out_w), BL, (int)d, (int)d);
    ops->bcl_from_blc(s->dy, s->dyt, B, L, (int)d);
    const size_t ab = ops->act_bytes;
    ops->fftconv_bwd(lc_offset(s->du, 2 * dL, ab), lc_offset(s->du, dL, ab), s->du, s->dk, PG(m->D), s->dy,
                     lc_offset(m->u, 2 * dL, ab), lc_offset(m->u, dL, ab), m->u, 3 * dL, m->k, L, PM(m->D),
                     B, (int)d, L);
    ops->shortconv_bwd(s->dxz, PG(m->sf_w), PG(m->sf_b), s->du, m->xz, PC(m->sf_w), B, L, (int)(3 * d), m->K);
    ops->linear_bwd(dx, PG(m->in_w), PG(m->in_b), s->dxz, x, PC(m->in_w), BL, (int)d, (int)(3 * d));
    filter_backward(m, t, ops, s, L);
}

double hyena_conv_flops_per_token(int d, int L) {
    /* Forward long conv per channel and token: two real FFTs of size 2L (input and inverse; the
     * filter's FFT is shared by the batch), each ~2.5 N log2 N flops, plus the pointwise product. */
    double n = 2.0 * L;
    return (double)d * (2.0 * 2.5 * n * log2(n) + 6.0 * n) / (double)L;
}
