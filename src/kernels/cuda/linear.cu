/* Fully connected layer on cuBLAS: out = inp @ w^T + b (PyTorch's nn.Linear weight layout).
 * bf16 operands, fp32 accumulation (tensor cores); out and dinp are bf16, dW is accumulated in fp32
 * by the GEMM itself (beta = 1), db by a fixed-order column sum.
 *
 * cuBLAS is column-major: a row-major [R,S] matrix is the column-major [S,R] matrix with leading
 * dimension S, i.e. its transpose. So each row-major product below is computed as its transpose:
 *   out^T [OC,N] = w^T^T [OC,C] * inp^T [C,N]          -> gemm(T, N, OC, N, C)
 *   dinp^T [C,N] = w^T [C,OC] * dout^T [OC,N]          -> gemm(N, N, C, N, OC)
 *   dW^T [C,OC] += inp^T [C,N] * dout^T^T [N,OC]        -> gemm(N, T, C, OC, N) */
#include <limits.h>

#include "kernels/cuda/backend.h"

/* out[n, o] = b[o]: the GEMM then adds the product with beta = 1, so the bias is added in fp32
 * before the single rounding of out (bf16 bias values are exact in the fp32 epilogue). */
static __global__ void linear_bias_fill_kernel(bf16 *out, const bf16 *b, int64_t N, int OC) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < N * OC) out[i] = b[i % OC];
}

/* Column o of dout [N,OC] as the bias gradient's summand. */
struct LinearBiasGrad {
    const bf16 *dout;
    int OC;
    __device__ void operator()(int64_t n, int c, float *v) const { v[0] = bf2f(dout[n * OC + c]); }
};

/* cuBLAS takes int dimensions. */
static void linear_check_dims(int64_t N, int C, int OC) {
    LC_ASSERT(N >= 0 && N <= INT_MAX && C > 0 && OC > 0, "linear: bad shape N=%lld C=%d OC=%d", (long long)N, C, OC);
}

/* C[m,n] (column-major, ldc) = alpha op(A) op(B) + beta C; A, B bf16; C bf16 or fp32. */
static void gemm_bf16(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
                      const void *B, int ldb, float beta, void *Cm, cudaDataType ctype, int ldc) {
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasGemmEx(cuda_cublas(), ta, tb, m, n, k, &alpha, A, CUDA_R_16BF, lda, B, CUDA_R_16BF, ldb, &beta,
                              Cm, ctype, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]  (b may be NULL) */
static void linear_fwd(act_t *out, const act_t *inp, const act_t *w, const act_t *b, int64_t N, int C, int OC) {
    linear_check_dims(N, C, OC);
    if (N == 0) return;
    float beta = 0.0f;
    if (b) {
        int64_t total = N * OC;
        linear_bias_fill_kernel<<<(unsigned)CEIL_DIV(total, 256), 256, 0, cuda_stream()>>>((bf16 *)out,
                                                                                          (const bf16 *)b, N, OC);
        CUDA_CHECK_LAUNCH();
        beta = 1.0f;
    }
    gemm_bf16(CUBLAS_OP_T, CUBLAS_OP_N, OC, (int)N, C, w, C, inp, C, beta, out, CUDA_R_16BF, OC);
}

/* dinp[N,C] = dout[N,OC] @ w[OC,C]            (written, bf16)
 * dw[OC,C] += dout[N,OC]^T @ inp[N,C]          (fp32)
 * db[OC]   += sum_n dout[n,:]                  (fp32, fixed order)
 * dinp, dw, db may be NULL. */
static void linear_bwd(act_t *dinp, acc_t *dw, acc_t *db, const act_t *dout, const act_t *inp, const act_t *w,
                       int64_t N, int C, int OC) {
    linear_check_dims(N, C, OC);
    if (N == 0) return;
    if (dinp) gemm_bf16(CUBLAS_OP_N, CUBLAS_OP_N, C, (int)N, OC, w, C, dout, OC, 0.0f, dinp, CUDA_R_16BF, C);
    if (dw) gemm_bf16(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, (int)N, inp, C, dout, OC, 1.0f, dw, CUDA_R_32F, C);
    if (db) {
        LinearBiasGrad f = {(const bf16 *)dout, OC};
        ColsumDst dst = {};
        dst.p[0] = (float *)db;
        dst.stride[0] = 1;
        colsum_run<1>(f, 1, N, OC, dst);
    }
}

extern "C" void cuda_register_linear(Ops *o) {
    o->linear_fwd = linear_fwd;
    o->linear_bwd = linear_bwd;
}
