/* Pieces of the Hyena implicit filter: the Sin activation with a trainable frequency per channel,
 * and the exponential-decay modulation fused with the [L,C] -> [C,L] transpose.
 *   sin:    out[n,c] = sin(freq[c] * inp[n,c])
 *   expmod: k[c,t] = h[t,c] * (exp(-t_pos[t] * |deltas[c]|) + shift)   (modulate), else h[t,c]
 * Backward: dinp, dh (=); dfreq (+=), summed over n in a fixed order. deltas and t_pos are fixed
 * buffers in every reference model, so they get no gradient. */
#include <math.h>

#include "kernels/cpu/real.h"

/* Channels per task: rows are read FILTER_TILE contiguous values at a time, and each channel's
 * reduction over n stays inside one task (fixed order, independent of the thread count). */
#define FILTER_TILE 32
/* Below this many elements a parallel region costs more than it saves. */
#define FILTER_PAR_MIN 16384

static int filter_min(int a, int b) { return a < b ? a : b; }

/* out [N,C]; inp [N,C]; freq [C] */
static void sin_fwd(act_t *out_, const act_t *inp_, const acc_t *freq_, int64_t N, int C) {
    real *out = out_;
    const real *inp = inp_, *freq = freq_;
#pragma omp parallel for schedule(static) if (N * C >= FILTER_PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            int64_t i = n * C + c;
            out[i] = (real)sin((double)(freq[c] * inp[i]));
        }
}

/* dinp [N,C] (=); dfreq [C] (+=); dout, inp [N,C]; freq [C] */
static void sin_bwd(act_t *dinp_, acc_t *dfreq_, const act_t *dout_, const act_t *inp_, const acc_t *freq_,
                    int64_t N, int C) {
    real *dinp = dinp_, *dfreq = dfreq_;
    const real *dout = dout_, *inp = inp_, *freq = freq_;
    int ntiles = (C + FILTER_TILE - 1) / FILTER_TILE;
#pragma omp parallel for schedule(static) if (N * C >= FILTER_PAR_MIN)
    for (int tile = 0; tile < ntiles; tile++) {
        int c0 = tile * FILTER_TILE, c1 = filter_min(c0 + FILTER_TILE, C);
        double sum[FILTER_TILE] = {0};
        for (int64_t n = 0; n < N; n++)
            for (int c = c0; c < c1; c++) {
                int64_t i = n * C + c;
                real g = dout[i] * (real)cos((double)(freq[c] * inp[i]));
                if (dinp) dinp[i] = g * freq[c];
                sum[c - c0] += (double)g * (double)inp[i];
            }
        if (dfreq)
            for (int c = c0; c < c1; c++) dfreq[c] += (real)sum[c - c0];
    }
}

/* The modulation factor of channel c at position t. */
static real expmod_factor(const real *deltas, const real *t_pos, float shift, int t, int c) {
    return (real)(exp(-(double)t_pos[t] * fabs((double)deltas[c])) + (double)shift);
}

/* The modulation is diagonal, so forward and backward are the same scaling, fused with opposite
 * transposes: to_cl = 1: out[c,t] = in[t,c] * m(t,c) (forward, k from h); to_cl = 0:
 * out[t,c] = in[c,t] * m(t,c) (backward, dh from dk). */
static void expmod_scale(real *out, const real *in, const real *deltas, const real *t_pos, float shift, int modulate,
                         int L, int C, int to_cl) {
    int ntiles = (C + FILTER_TILE - 1) / FILTER_TILE;
#pragma omp parallel for schedule(static) if ((int64_t)L * C >= FILTER_PAR_MIN)
    for (int tile = 0; tile < ntiles; tile++) {
        int c0 = tile * FILTER_TILE, c1 = filter_min(c0 + FILTER_TILE, C);
        for (int t = 0; t < L; t++)
            for (int c = c0; c < c1; c++) {
                real m = modulate ? expmod_factor(deltas, t_pos, shift, t, c) : (real)1;
                int64_t tc = (int64_t)t * C + c, ct = (int64_t)c * L + t;
                if (to_cl) out[ct] = in[tc] * m;
                else out[tc] = in[ct] * m;
            }
    }
}

/* k [C,L]; h [L,C]; deltas [C]; t_pos [L] */
static void expmod_fwd(acc_t *k, const act_t *h, const acc_t *deltas, const acc_t *t_pos, float shift, int modulate,
                       int L, int C) {
    expmod_scale(k, h, deltas, t_pos, shift, modulate, L, C, 1);
}

/* dh [L,C] (=); dk [C,L]; deltas [C]; t_pos [L] */
static void expmod_bwd(act_t *dh, const acc_t *dk, const acc_t *deltas, const acc_t *t_pos, float shift, int modulate,
                       int L, int C) {
    expmod_scale(dh, dk, deltas, t_pos, shift, modulate, L, C, 0);
}

void CPU_NAME(register_filter)(Ops *o) {
    o->sin_fwd = sin_fwd;
    o->sin_bwd = sin_bwd;
    o->expmod_fwd = expmod_fwd;
    o->expmod_bwd = expmod_bwd;
}
