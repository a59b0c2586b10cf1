/* AdamW (PyTorch semantics) and deterministic reductions over parameter-sized buffers. */
#include <math.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

#ifdef LC_CPU_F64
#define optim_sqrt sqrt
#else
#define optim_sqrt sqrtf
#endif

/* Reductions: fixed-size blocks, each summed in double in index order, then the block sums added
 * in block order. The result depends on n only, never on the thread count. */
#define RED_BLOCK 4096
#define RED_GROUP 256 /* blocks per parallel pass (partials live on the stack) */

/* As torch.optim.AdamW (single-tensor path): decay first, then the Adam step with bias correction.
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * p, g, m, v: [n]; t >= 1 is the 1-based step. */
static void adamw(acc_t *p_, const acc_t *g_, acc_t *m_, acc_t *v_, int64_t n, float lr, float beta1,
                  float beta2, float eps, float wd, int t) {
    real *p = p_, *m = m_, *v = v_;
    const real *g = g_;
    LC_ASSERT(t >= 1, "adamw: step %d must be >= 1", t);
    /* scalars in double, as PyTorch computes them in Python */
    const real decay = (real)(1.0 - (double)lr * (double)wd);
    const real b1 = beta1, b2 = beta2, one_m_b1 = (real)(1.0 - (double)beta1), one_m_b2 = (real)(1.0 - (double)beta2);
    const real step_size = (real)((double)lr / (1.0 - pow((double)beta1, t)));
    const real bc2_sqrt = (real)sqrt(1.0 - pow((double)beta2, t));
    const real e = eps;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        real gi = g[i];
        real mi = b1 * m[i] + one_m_b1 * gi;
        real vi = b2 * v[i] + one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step_size * (mi / (optim_sqrt(vi) / bc2_sqrt + e));
    }
}

/* Sum of x[i] (squared when sq) over [lo, hi), in double, in index order. */
static double reduce_block(const real *x, int64_t lo, int64_t hi, int sq) {
    double s = 0.0;
    if (sq)
        for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
    else
        for (int64_t i = lo; i < hi; i++) s += x[i];
    return s;
}

/* Blocks of one group are summed in parallel into partials, then added in order. */
static double reduce_fixed(const real *x, int64_t n, int sq) {
    int64_t nblocks = (n + RED_BLOCK - 1) / RED_BLOCK;
    double total = 0.0;
    for (int64_t g0 = 0; g0 < nblocks; g0 += RED_GROUP) {
        int ng = nblocks - g0 < RED_GROUP ? (int)(nblocks - g0) : RED_GROUP;
        double part[RED_GROUP];
#pragma omp parallel for schedule(static) if (ng > 1)
        for (int j = 0; j < ng; j++) {
            int64_t lo = (g0 + j) * RED_BLOCK, hi = lo + RED_BLOCK < n ? lo + RED_BLOCK : n;
            part[j] = reduce_block(x, lo, hi, sq);
        }
        for (int j = 0; j < ng; j++) total += part[j];
    }
    return total;
}

/* sum_i x[i]; x: [n] */
static double sum(const acc_t *x, int64_t n) { return reduce_fixed(x, n, 0); }

/* sum_i x[i]^2; x: [n]; NaN/Inf propagate through the double sums */
static double sum_squares(const acc_t *x, int64_t n) { return reduce_fixed(x, n, 1); }

/* x[n] *= s */
static void scale(acc_t *x_, float s, int64_t n) {
    real *x = x_;
    const real rs = s;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) x[i] *= rs;
}

void CPU_NAME(register_optim)(Ops *o) {
    o->adamw = adamw;
    o->sum = sum;
    o->sum_squares = sum_squares;
    o->scale = scale;
}
