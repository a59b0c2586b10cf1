/* Fully connected layer on (Open)BLAS: out = inp @ w^T + b, PyTorch's nn.Linear weight layout. */
#include <limits.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

/* Columns per block of the bias-gradient reduction: each thread owns whole columns, so every
 * element is summed over the rows in their order whatever the thread count. */
#define LIN_CBLOCK 64

/* BLAS takes int dimensions. */
static void linear_check_dims(int64_t N, int C, int OC) {
    LC_ASSERT(N >= 0 && N <= INT_MAX && C > 0 && OC > 0, "linear: bad shape N=%lld C=%d OC=%d",
              (long long)N, C, OC);
}

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]  (b may be NULL) */
static void linear_fwd(act_t *out_, const act_t *inp_, const act_t *w_, const act_t *b_, int64_t N, int C, int OC) {
    real *out = out_;
    const real *inp = inp_, *w = w_, *b = b_;
    linear_check_dims(N, C, OC);
    if (N == 0) return;
    cblas_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, C, (real)1, inp, C, w, C, (real)0, out, OC);
    if (b) {
#pragma omp parallel for schedule(static) if (N * OC > 16384)
        for (int64_t n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[n * OC + o] += b[o];
    }
}

/* dinp[N,C] = dout[N,OC] @ w[OC,C]            (written)
 * dw[OC,C] += dout[N,OC]^T @ inp[N,C]
 * db[OC]   += sum_n dout[n,:]                 (rows in order, double accumulator)
 * dinp, dw, db may be NULL. */
static void linear_bwd(act_t *dinp_, acc_t *dw_, acc_t *db_, const act_t *dout_, const act_t *inp_,
                       const act_t *w_, int64_t N, int C, int OC) {
    real *dinp = dinp_, *dw = dw_, *db = db_;
    const real *dout = dout_, *inp = inp_, *w = w_;
    linear_check_dims(N, C, OC);
    if (N == 0) return;
    if (dinp)
        cblas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, C, OC, (real)1, dout, OC, w, C, (real)0, dinp, C);
    if (dw)
        cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, (int)N, (real)1, dout, OC, inp, C, (real)1, dw, C);
    if (db) {
        int nblocks = (OC + LIN_CBLOCK - 1) / LIN_CBLOCK;
#pragma omp parallel for schedule(static) if (N * OC > 16384)
        for (int blk = 0; blk < nblocks; blk++) {
            int o0 = blk * LIN_CBLOCK, no = OC - o0 < LIN_CBLOCK ? OC - o0 : LIN_CBLOCK;
            double s[LIN_CBLOCK] = {0};
            for (int64_t n = 0; n < N; n++) {
                const real *g = dout + n * OC + o0;
                for (int o = 0; o < no; o++) s[o] += g[o];
            }
            for (int o = 0; o < no; o++) db[o0 + o] += (real)s[o];
        }
    }
}

void CPU_NAME(register_linear)(Ops *o) {
    o->linear_fwd = linear_fwd;
    o->linear_bwd = linear_bwd;
}
