/* Internals of the CUDA backend shared by its op families (and by its tests).
 *
 * C part: the table without the completeness check, and the registration function of each family.
 * CUDA part (nvcc only): the backend's one stream, cuBLAS handle and scratch buffer, bf16 helpers,
 * warp sums, and the fixed-order column reduction that every parameter gradient goes through. */
#pragma once
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA table as registered, possibly with NULL entries (a family still missing): for tests.
 * NULL when there is no device. ops_cuda() is this plus a check that every entry is set. */
const Ops *cuda_ops_partial(void);

/* One per op family file (src/kernels/cuda/<family>.cu). */
void cuda_register_memory(Ops *o);
void cuda_register_elementwise(Ops *o);
void cuda_register_embedding(Ops *o);
void cuda_register_layernorm(Ops *o);
void cuda_register_linear(Ops *o);
void cuda_register_layout(Ops *o);
void cuda_register_shortconv(Ops *o);
void cuda_register_fftconv(Ops *o);
void cuda_register_filter(Ops *o);
void cuda_register_xent(Ops *o);
void cuda_register_optim(Ops *o);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cuda_bf16.h>

#include "kernels/cuda/cuda_common.h"

typedef __nv_bfloat16 bf16;

/* Every op runs on this stream, so ops are ordered without events. It is a blocking stream: work
 * on the legacy default stream (stream 0) also waits for it and vice versa. */
cudaStream_t cuda_stream(void);
cublasHandle_t cuda_cublas(void);
/* One device buffer of at least `bytes`, reused by every op: call it once per op for all of the
 * op's temporaries (a later call may move it). Growing synchronizes the device first. */
void *cuda_scratch(size_t bytes);
/* out[b] = inp[b]^T for B matrices inp [R,S] -> out [S,R] (bf16, tiled; from layout.cu). */
void cuda_transpose_bf16(bf16 *out, const bf16 *inp, int B, int R, int S);

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16_rn(x); } /* nearest even */

/* Butterfly sum: every lane ends with the same value, summed in the same order on every run. */
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- fixed-order column sums: dst_k[c * stride_k] += sum_n f(n, c)[k] for k < nv ----
 * Pass 1: blocks of 32 columns x 8 row lanes own a fixed chunk of rows; each lane sums its rows in
 * order, the 8 lanes are added in order, and the block writes one partial per (chunk, k, column).
 * Pass 2: one thread per (k, column) adds the partials in chunk order. The chunking depends on N
 * only, so the result is bitwise the same on every run; no atomics anywhere. */
#define COLSUM_LANES 8
#define COLSUM_MAX_CHUNKS 128
#define COLSUM_MIN_ROWS 64

struct ColsumDst {
    float *p[9];         /* NULL: that sum is not wanted */
    int64_t stride[9];   /* element stride between columns */
};

template <int NVMAX, class F>
__global__ void colsum_partial_kernel(float *part /* [nchunks, nv, C] */, int64_t N, int C, int nv,
                                      int64_t chunk_rows, F f) {
    __shared__ float sh[NVMAX][COLSUM_LANES][33];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int c = blockIdx.x * 32 + tx;
    const int64_t r0 = (int64_t)blockIdx.y * chunk_rows;
    const int64_t r1 = r0 + chunk_rows < N ? r0 + chunk_rows : N;
    float acc[NVMAX];
#pragma unroll
    for (int k = 0; k < NVMAX; k++) acc[k] = 0.0f;
    if (c < C) {
        for (int64_t n = r0 + ty; n < r1; n += COLSUM_LANES) {
            float v[NVMAX];
            f(n, c, v);
#pragma unroll
            for (int k = 0; k < NVMAX; k++)
                if (k < nv) acc[k] += v[k];
        }
    }
#pragma unroll
    for (int k = 0; k < NVMAX; k++) sh[k][ty][tx] = acc[k];
    __syncthreads();
    if (ty == 0 && c < C) {
        for (int k = 0; k < nv; k++) {
            float s = sh[k][0][tx];
            for (int y = 1; y < COLSUM_LANES; y++) s += sh[k][y][tx];
            part[((int64_t)blockIdx.y * nv + k) * C + c] = s;
        }
    }
}

static __global__ void colsum_finish_kernel(ColsumDst dst, const float *part, int nchunks, int nv, int C) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)nv * C) return;
    const int k = (int)(i / C), c = (int)(i % C);
    if (!dst.p[k]) return;
    float s = part[(int64_t)k * C + c];
    for (int ch = 1; ch < nchunks; ch++) s += part[((int64_t)ch * nv + k) * C + c];
    dst.p[k][(int64_t)c * dst.stride[k]] += s;
}

/* Rows per chunk as a function of N alone (at most COLSUM_MAX_CHUNKS chunks). */
static inline int64_t colsum_chunk_rows(int64_t N) {
    int64_t r = CEIL_DIV(N, (int64_t)COLSUM_MAX_CHUNKS);
    return r < COLSUM_MIN_ROWS ? COLSUM_MIN_ROWS : r;
}

/* Bytes of the partial sums (for callers that need the scratch buffer for more than colsum). */
static inline size_t colsum_part_bytes(int64_t N, int nv, int C) {
    return (size_t)CEIL_DIV(N, colsum_chunk_rows(N)) * (size_t)nv * (size_t)C * sizeof(float);
}

/* f: a functor with __device__ void operator()(int64_t n, int c, float *v) filling v[0..nv).
 * part: colsum_part_bytes of device memory, or NULL to use the scratch buffer. */
template <int NVMAX, class F>
static void colsum_run(F f, int nv, int64_t N, int C, ColsumDst dst, float *part = NULL) {
    LC_ASSERT(nv >= 1 && nv <= NVMAX && NVMAX <= 9, "colsum: %d sums (at most %d)", nv, NVMAX);
    if (N <= 0 || C <= 0) return;
    const int64_t chunk_rows = colsum_chunk_rows(N);
    const int nchunks = (int)CEIL_DIV(N, chunk_rows);
    if (!part) part = (float *)cuda_scratch(colsum_part_bytes(N, nv, C));
    dim3 grid((unsigned)CEIL_DIV(C, 32), (unsigned)nchunks), block(32, COLSUM_LANES);
    colsum_partial_kernel<NVMAX, F><<<grid, block, 0, cuda_stream()>>>(part, N, C, nv, chunk_rows, f);
    CUDA_CHECK_LAUNCH();
    const int64_t total = (int64_t)nv * C;
    colsum_finish_kernel<<<(unsigned)CEIL_DIV(total, 256), 256, 0, cuda_stream()>>>(dst, part, nchunks, nv, C);
    CUDA_CHECK_LAUNCH();
}
#endif /* __CUDACC__ */
