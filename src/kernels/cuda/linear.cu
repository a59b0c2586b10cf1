/* Fully connected layer on cuBLAS: out = inp @ w^T + b (PyTorch's nn.Linear weight layout).
 * bf16 operands, fp32 accumulation (tensor cores); out and dinp are bf16, dW is accumulated in fp32
 * by the GEMM itself (beta = 1), db by a fixed-order column sum.
 *
 * cuBLAS is column-major: a row-major [R,S] matrix is the column-major [S,R] matrix with leading
 * dimension S, i.e. its transpose. So each row-major product below is computed as its transpose:
 *   out^T [OC,N] = w^T^T [OC,C] * inp^T [C,N]          -> gemm(T, N, OC, N, C)
 *   dinp^T [C,N] = w^T [C,OC] * dout^T [OC,N]          -> gemm(N, N, C, N, OC)
 *   dW^T [C,OC] += inp^T [C,N] * dout^T^T [N,OC]        -> gemm(N, T, C, OC, N)
 *
 * The bias must join the fp32 sum before out is rounded to bf16 (one rounding). Adding it as
 * beta * C (C pre-filled with the bias) was measured to round twice on H100, so the forward with a
 * bias uses cuBLASLt's bias epilogue when every pointer is 16-byte aligned, as llm.c does; other
 * cases (parameters at odd offsets of the packed parameter block, odd widths) take the GEMM into
 * fp32 scratch and add the bias in the rounding kernel. cuBLASLt may not split K with bf16 partial
 * sums (reduction schemes restricted to none / fp32 workspace). */
#include <cublasLt.h>
#include <limits.h>
#include <stdint.h>

#include "kernels/cuda/backend.h"

#define LT_WORKSPACE_BYTES ((size_t)32 << 20)

static cublasLtHandle_t lt_handle;
static void *lt_workspace;

/* out[i] = bf16(acc[i] + b[i % OC]): the fallback's single rounding */
static __global__ void linear_bias_round_kernel(bf16 *out, const float *acc, const bf16 *b, int64_t total, int OC) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) out[i] = f2bf(acc[i] + bf2f(b[i % OC]));
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

/* Largest power of two (<= 256) dividing the address: cuBLASLt's alignment preference. */
static uint32_t ptr_alignment(const void *p) {
    uint32_t a = 256;
    while (a > 1 && ((uintptr_t)p % a) != 0) a >>= 1;
    return a;
}

#define LT_SET(fn, obj, attr, val) CUBLAS_CHECK(fn(obj, attr, &(val), sizeof(val)))

/* out^T [OC,N] = w [C,OC]^T inp [C,N] + b[OC] (column-major) with the bias epilogue.
 * Returns 0 (nothing queued) when cuBLASLt offers no algorithm for this case. */
static int linear_fwd_lt(bf16 *out, const bf16 *inp, const bf16 *w, const bf16 *b, int N, int C, int OC) {
    if (!lt_handle) {
        CUBLAS_CHECK(cublasLtCreate(&lt_handle));
        CUDA_CHECK(cudaMalloc(&lt_workspace, LT_WORKSPACE_BYTES));
    }
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const int32_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const int32_t bias_type = CUDA_R_16BF;
    LT_SET(cublasLtMatmulDescSetAttribute, op, CUBLASLT_MATMUL_DESC_TRANSA, ta);
    LT_SET(cublasLtMatmulDescSetAttribute, op, CUBLASLT_MATMUL_DESC_TRANSB, tb);
    LT_SET(cublasLtMatmulDescSetAttribute, op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
    LT_SET(cublasLtMatmulDescSetAttribute, op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, b);
    LT_SET(cublasLtMatmulDescSetAttribute, op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, C, OC, C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, C, N, C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, OC, N, OC));
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const size_t ws = LT_WORKSPACE_BYTES;
    const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    const uint32_t al_a = ptr_alignment(w), al_b = ptr_alignment(inp), al_d = ptr_alignment(out);
    LT_SET(cublasLtMatmulPreferenceSetAttribute, pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws);
    LT_SET(cublasLtMatmulPreferenceSetAttribute, pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, schemes);
    LT_SET(cublasLtMatmulPreferenceSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a);
    LT_SET(cublasLtMatmulPreferenceSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b);
    LT_SET(cublasLtMatmulPreferenceSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_d);
    LT_SET(cublasLtMatmulPreferenceSetAttribute, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_d);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_handle, op, la, lb, ld, ld, pref, 1, &res, &found);
    const int ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (ok) {
        const float alpha = 1.0f, beta = 0.0f;
        CUBLAS_CHECK(cublasLtMatmul(lt_handle, op, &alpha, w, la, inp, lb, &beta, out, ld, out, ld, &res.algo,
                                    lt_workspace, LT_WORKSPACE_BYTES, cuda_stream()));
    }
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(ld));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(op));
    return ok;
}

static int aligned16(const void *p) { return ((uintptr_t)p % 16) == 0; }

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]  (b may be NULL) */
static void linear_fwd(act_t *out, const act_t *inp, const act_t *w, const act_t *b, int64_t N, int C, int OC) {
    linear_check_dims(N, C, OC);
    if (N == 0) return;
    if (!b) {
        gemm_bf16(CUBLAS_OP_T, CUBLAS_OP_N, OC, (int)N, C, w, C, inp, C, 0.0f, out, CUDA_R_16BF, OC);
        return;
    }
    /* llm.c's conditions for the epilogue: 16-byte aligned pointers and rows */
    if (aligned16(out) && aligned16(inp) && aligned16(w) && aligned16(b) && C % 8 == 0 && OC % 8 == 0 &&
        linear_fwd_lt((bf16 *)out, (const bf16 *)inp, (const bf16 *)w, (const bf16 *)b, (int)N, C, OC))
        return;
    const int64_t total = N * OC;
    float *acc = (float *)cuda_scratch((size_t)total * sizeof(float));
    gemm_bf16(CUBLAS_OP_T, CUBLAS_OP_N, OC, (int)N, C, w, C, inp, C, 0.0f, acc, CUDA_R_32F, OC);
    linear_bias_round_kernel<<<(unsigned)CEIL_DIV(total, 256), 256, 0, cuda_stream()>>>((bf16 *)out, acc,
                                                                                       (const bf16 *)b, total, OC);
    CUDA_CHECK_LAUNCH();
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
