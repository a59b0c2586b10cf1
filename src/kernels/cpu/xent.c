/* Softmax cross-entropy over the first V of Vp columns, fused with its gradient (as llm.c's
 * fused classifier): the logits buffer is overwritten by dscale * dloss/dlogits. */
#include <math.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

#define XENT_LANES 8

#ifdef LC_CPU_F64
#define xent_exp exp
#else
#define xent_exp expf
#endif

/* A target >= V would read a padding column or past the row; checked serially so that the error
 * is raised outside any parallel region. Negative targets mean "ignore". */
static void xent_check_targets(const tok_t *targets, int64_t N, int V) {
    for (int64_t n = 0; n < N; n++)
        LC_ASSERT(targets[n] < V, "xent: target %d at row %lld is out of range (vocab size %d)",
                  (int)targets[n], (long long)n, V);
}

/* losses[N] = -log softmax(logits[n, :V])[targets[n]]  (0 where targets[n] < 0; losses may be NULL)
 * logits: [N,Vp]; if dscale != 0: logits[n, :V] = dscale * (softmax - onehot), logits[n, V:] = 0,
 * and rows with an ignored target get a zero gradient; with dscale == 0 they are left untouched. */
static void xent_fwd_bwd(acc_t *losses_, act_t *logits_, const tok_t *targets, int64_t N, int V, int Vp,
                         float dscale) {
    real *losses = losses_, *logits = logits_;
    LC_ASSERT(V > 0 && Vp >= V, "xent: bad vocab sizes V=%d Vp=%d", V, Vp);
    xent_check_targets(targets, N, V);
#pragma omp parallel for schedule(static) if (N * Vp > 16384)
    for (int64_t n = 0; n < N; n++) {
        real *z = logits + n * Vp;
        int t = targets[n];
        real zmax = z[0];
        for (int i = 1; i < V; i++) zmax = z[i] > zmax ? z[i] : zmax;
        const real zt = t >= 0 ? z[t] : (real)0;
        /* max subtraction keeps every exp <= 1. The sum is in double, in XENT_LANES interleaved
         * partial sums combined in a fixed order: deterministic, and the loop vectorizes (with
         * libmvec's exp). For training the exponentials are stored in place for the gradient. */
        const int keep = dscale != 0.0f;
        double part[XENT_LANES] = {0};
        int i = 0;
        for (; i + XENT_LANES <= V; i += XENT_LANES) {
#pragma omp simd
            for (int j = 0; j < XENT_LANES; j++) {
                real e = xent_exp(z[i + j] - zmax);
                if (keep) z[i + j] = e;
                part[j] += (double)e;
            }
        }
        for (; i < V; i++) {
            real e = xent_exp(z[i] - zmax);
            if (keep) z[i] = e;
            part[0] += (double)e;
        }
        double sum = 0.0;
        for (int j = 0; j < XENT_LANES; j++) sum += part[j];
        if (losses) losses[n] = t < 0 ? (real)0 : (real)((double)zmax + log(sum) - (double)zt);
        if (!keep) continue;
        const real scale = t < 0 ? (real)0 : (real)((double)dscale / sum);
#pragma omp simd
        for (int k = 0; k < V; k++) z[k] *= scale;
        if (t >= 0) z[t] -= (real)dscale;
        for (int k = V; k < Vp; k++) z[k] = 0;
    }
}

void CPU_NAME(register_xent)(Ops *o) { o->xent_fwd_bwd = xent_fwd_bwd; }
