/* Depthwise causal short convolution (width K) fused with the [B,L,C] -> [B,C,L] transpose.
 *   out[b,c,t] = bias[c] + sum_{j<K} w[c,j] * inp[b, t-K+1+j, c]     (inp at negative t is 0)
 * This is PyTorch's Conv1d(C, C, K, groups=C, padding=K-1) keeping the first L outputs.
 * Backward: dinp (=), dw and dbias (+=), reduced over (b, t) in a fixed order. */
#include <stdlib.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

/* Channels handled together: the inner loop then reads SHORTCONV_TILE contiguous values of
 * each [L,C] row instead of striding by C, and writes SHORTCONV_TILE output rows in step. */
#define SHORTCONV_TILE 32
/* Below this many outputs a parallel region costs more than it saves. */
#define SHORTCONV_PAR_MIN 16384

static int shortconv_min(int a, int b) { return a < b ? a : b; }

/* out [B,C,L]; inp [B,L,C]; w [C,K]; bias [C] (NULL: no bias) */
static void shortconv_fwd(act_t *out_, const act_t *inp_, const act_t *w_, const act_t *bias_, int B, int L,
                          int C, int K) {
    real *out = out_;
    const real *inp = inp_, *w = w_, *bias = bias_;
    int ntiles = (C + SHORTCONV_TILE - 1) / SHORTCONV_TILE;
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)B * L * C >= SHORTCONV_PAR_MIN)
    for (int b = 0; b < B; b++) {
        for (int tile = 0; tile < ntiles; tile++) {
            int c0 = tile * SHORTCONV_TILE, c1 = shortconv_min(c0 + SHORTCONV_TILE, C);
            const real *ib = inp + (int64_t)b * L * C;
            real *ob = out + (int64_t)b * C * L;
            for (int t = 0; t < L; t++) {
                for (int c = c0; c < c1; c++) {
                    real acc = bias ? bias[c] : (real)0;
                    /* taps that would read before t = 0 are skipped (zero padding) */
                    for (int j = (K - 1 - t > 0 ? K - 1 - t : 0); j < K; j++)
                        acc += w[(int64_t)c * K + j] * ib[(int64_t)(t - K + 1 + j) * C + c];
                    ob[(int64_t)c * L + t] = acc;
                }
            }
        }
    }
}

/* dinp [B,L,C] (=); dw [C,K] (+=); dbias [C] (+=); dout [B,C,L]; inp [B,L,C]; w [C,K].
 * Parallel over channel tiles only, so each dw/dbias entry is summed by one thread over
 * b = 0..B-1, t = 0..L-1 in that order (in double): the result does not depend on threads. */
static void shortconv_bwd(act_t *dinp_, acc_t *dw_, acc_t *dbias_, const act_t *dout_, const act_t *inp_,
                          const act_t *w_, int B, int L, int C, int K) {
    real *dinp = dinp_, *dw = dw_, *dbias = dbias_;
    const real *dout = dout_, *inp = inp_, *w = w_;
    int ntiles = (C + SHORTCONV_TILE - 1) / SHORTCONV_TILE;
#pragma omp parallel for schedule(static) if ((int64_t)B * L * C >= SHORTCONV_PAR_MIN)
    for (int tile = 0; tile < ntiles; tile++) {
        int c0 = tile * SHORTCONV_TILE, c1 = shortconv_min(c0 + SHORTCONV_TILE, C), nc = c1 - c0;
        /* per-tile sums: dw as [nc,K], then dbias as [nc] */
        double *sum = xcalloc((size_t)nc * (size_t)(K + 1), sizeof(double));
        double *sum_db = sum + (size_t)nc * K;
        for (int b = 0; b < B; b++) {
            const real *ib = inp + (int64_t)b * L * C;
            const real *gb = dout + (int64_t)b * C * L;
            real *dib = dinp ? dinp + (int64_t)b * L * C : NULL;
            for (int t = 0; t < L; t++) {
                for (int c = c0; c < c1; c++) {
                    const real *g = gb + (int64_t)c * L;
                    /* dinp[t] collects the outputs t' = t+K-1-j that read inp[t] through tap j */
                    if (dib) {
                        real acc = 0;
                        for (int j = (t + K - 1 - (L - 1) > 0 ? t + K - 1 - (L - 1) : 0); j < K; j++)
                            acc += w[(int64_t)c * K + j] * g[t + K - 1 - j];
                        dib[(int64_t)t * C + c] = acc;
                    }
                    double gt = (double)g[t];
                    sum_db[c - c0] += gt;
                    for (int j = (K - 1 - t > 0 ? K - 1 - t : 0); j < K; j++)
                        sum[(size_t)(c - c0) * K + j] += gt * (double)ib[(int64_t)(t - K + 1 + j) * C + c];
                }
            }
        }
        for (int c = c0; c < c1; c++) {
            if (dw)
                for (int j = 0; j < K; j++) dw[(int64_t)c * K + j] += (real)sum[(size_t)(c - c0) * K + j];
            if (dbias) dbias[c] += (real)sum_db[c - c0];
        }
        free(sum);
    }
}

void CPU_NAME(register_shortconv)(Ops *o) {
    o->shortconv_fwd = shortconv_fwd;
    o->shortconv_bwd = shortconv_bwd;
}
