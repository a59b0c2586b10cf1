/* The Hyena operator (order 2) with its implicit long filter, as in safari's HyenaOperator:
 *   in_proj d->3d (bias); causal depthwise short conv (width K, bias) on all 3d channels;
 *   chunks x0 = [0,d), x1 = [d,2d), v = [2d,3d); v <- v ⊙ x1; v <- longconv(v, k) + D ⊙ v;
 *   y = v ⊙ x0; out_proj d->d (bias). No activation inside.
 * Implicit filter: z (positional features [l_max, emb]) -> Linear(emb->order) -> Sin ->
 *   [Linear(order->order) -> Sin] x inner -> Linear(order->d, no bias) -> exponential-decay
 *   modulation; all Sin share one frequency vector. */
#pragma once
#include "core/arena.h"
#include "core/config.h"
#include "model/params.h"

#define HYENA_MAX_FILTER_LINEARS 18

typedef struct HyenaMixer {
    int d, K, order, emb, n_lin; /* n_lin = inner + 2 linears in the filter MLP */
    int64_t l_max;
    float shift;
    int modulate, z_trainable;
    /* parameter table rows */
    int in_w, in_b, sf_w, sf_b, out_w, out_b, z, t, deltas, D, freq;
    int fw[HYENA_MAX_FILTER_LINEARS], fb[HYENA_MAX_FILTER_LINEARS]; /* fb[n_lin-1] = -1: no bias */
    /* saved activations for one micro-batch of B x L */
    act_t *xz;   /* [B,L,3d] in_proj output */
    act_t *u;    /* [B,3d,L] short conv output: x0 | x1 | v per batch */
    act_t *y;    /* [B,d,L] gated long conv output */
    act_t *yt;   /* [B,L,d] */
    act_t *fa[HYENA_MAX_FILTER_LINEARS]; /* [L,order] (last: [L,d]) filter linear outputs */
    act_t *fs[HYENA_MAX_FILTER_LINEARS]; /* [L,order] sine outputs */
    acc_t *k;    /* [d,L] modulated filter */
} HyenaMixer;

/* Scratch shared by all mixers for the backward. */
typedef struct HyenaScratch {
    act_t *dyt, *dy, *du, *dxz, *fdh, *fds0, *fds1, *fdz;
    acc_t *dk;
} HyenaScratch;

/* Register the mixer's parameters under `prefix` (e.g. "backbone.layers.3.mixer."). */
void hyena_mixer_define(HyenaMixer *m, ParamTable *t, const ModelConfig *mc, int64_t l_max,
                        int n_layer, const char *prefix);
/* Fill the host-initialized rows (z, t, deltas) after params_init. */
void hyena_mixer_init_host(const HyenaMixer *m, ParamTable *t, const Ops *ops, const ModelConfig *mc);
void hyena_mixer_bind(HyenaMixer *m, Arena *a, const Ops *ops, int B, int L);
void hyena_scratch_bind(HyenaScratch *s, Arena *a, const Ops *ops, int B, int L, int d, int order, int emb);

/* out[B,L,d] = mixer(x[B,L,d]). */
void hyena_mixer_forward(HyenaMixer *m, const ParamTable *t, const Ops *ops, act_t *out, const act_t *x, int B, int L);
/* dx[B,L,d] (written) from dout; parameter gradients added. x is the forward input. */
void hyena_mixer_backward(HyenaMixer *m, const ParamTable *t, const Ops *ops, HyenaScratch *s, act_t *dx,
                          const act_t *dout, const act_t *x, int B, int L);
/* Model FLOPs of the long conv per token (forward), for MFU and compute budgets. */
double hyena_conv_flops_per_token(int d, int L);
