/* LayerNorm over channels (PyTorch semantics: biased variance, eps inside the square root).
 * Row statistics are accumulated in double; the CPU path is the reference. */
#include <math.h>

#include "kernels/cpu/real.h"

/* Channels per block of the dw/db reduction: each thread owns whole columns, so every element is
 * summed over the rows in their order whatever the thread count. */
#define LN_CBLOCK 64

/* out[N,C] = (inp - mean) * rstd * w + b;  mean, rstd: [N] (NULL: not saved);  w, b: [C] */
static void layernorm_fwd(act_t *out_, acc_t *mean_, acc_t *rstd_, const act_t *inp_, const act_t *w_,
                          const act_t *b_, int64_t N, int C, float eps) {
    real *out = out_, *mean = mean_, *rstd = rstd_;
    const real *inp = inp_, *w = w_, *b = b_;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const real *x = inp + n * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += ((double)x[c] - m) * ((double)x[c] - m);
        v /= C;
        double s = 1.0 / sqrt(v + (double)eps);
        real *o = out + n * C;
        for (int c = 0; c < C; c++) o[c] = (real)(((double)x[c] - m) * s) * w[c] + b[c];
        if (mean) mean[n] = (real)m;
        if (rstd) rstd[n] = (real)s;
    }
}

/* With xhat = (x - mean) * rstd and g = dout * w:
 *   dinp[N,C] += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
 *   dw[C] += sum_n dout * xhat;  db[C] += sum_n dout
 * Any output may be NULL. */
static void layernorm_bwd(act_t *dinp_, acc_t *dw_, acc_t *db_, const act_t *dout_, const act_t *inp_,
                          const act_t *w_, const acc_t *mean_, const acc_t *rstd_, int64_t N, int C) {
    real *dinp = dinp_, *dw = dw_, *db = db_;
    const real *dout = dout_, *inp = inp_, *w = w_, *mean = mean_, *rstd = rstd_;
    if (dinp) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            const real *x = inp + n * C, *dy = dout + n * C;
            double m = mean[n], s = rstd[n];
            double gmean = 0.0, gxmean = 0.0;
            for (int c = 0; c < C; c++) {
                double g = (double)dy[c] * w[c];
                gmean += g;
                gxmean += g * ((x[c] - m) * s);
            }
            gmean /= C;
            gxmean /= C;
            real *dx = dinp + n * C;
            for (int c = 0; c < C; c++) {
                double g = (double)dy[c] * w[c], xhat = (x[c] - m) * s;
                dx[c] += (real)(s * (g - gmean - xhat * gxmean));
            }
        }
    }
    if (dw || db) {
        int nblocks = (C + LN_CBLOCK - 1) / LN_CBLOCK;
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int blk = 0; blk < nblocks; blk++) {
            int c0 = blk * LN_CBLOCK, nc = C - c0 < LN_CBLOCK ? C - c0 : LN_CBLOCK;
            double sw[LN_CBLOCK] = {0}, sb[LN_CBLOCK] = {0};
            for (int64_t n = 0; n < N; n++) {
                const real *x = inp + n * C + c0, *dy = dout + n * C + c0;
                double m = mean[n], s = rstd[n];
                for (int c = 0; c < nc; c++) {
                    sw[c] += (double)dy[c] * ((x[c] - m) * s);
                    sb[c] += dy[c];
                }
            }
            for (int c = 0; c < nc; c++) {
                if (dw) dw[c0 + c] += (real)sw[c];
                if (db) db[c0 + c] += (real)sb[c];
            }
        }
    }
}

void CPU_NAME(register_layernorm)(Ops *o) {
    o->layernorm_fwd = layernorm_fwd;
    o->layernorm_bwd = layernorm_bwd;
}
