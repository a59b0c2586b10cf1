/* AdamW (PyTorch semantics) on the fp32 master parameters, and deterministic reductions.
 * The AdamW update uses the same scalars and the same sequence of correctly rounded fp32
 * operations as the CPU backend (the _rn intrinsics forbid fused multiply-adds), so both give the
 * same bits. Sums: each thread adds a fixed strided subset in double, then fixed trees; the
 * grid depends on n only, so the result is the same on every run. */
#include <math.h>

#include "kernels/cuda/backend.h"

#define OPT_THREADS 256
#define RED_THREADS 256
#define RED_BLOCKS 512 /* also the thread count of the final pass */

/* p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)   with step_size = lr / (1 - b1^t) */
static __global__ void adamw_kernel(float *p, const float *g, float *m, float *v, int64_t n, float decay, float b1,
                                    float b2, float one_m_b1, float one_m_b2, float step_size, float bc2_sqrt,
                                    float eps) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float gi = g[i];
    const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_m_b1, gi));
    const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_m_b2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
    p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denom)));
}

/* Sum of a block's values (one per thread) in a fixed tree; thread 0 gets the result. */
static __device__ double block_sum_double(double v) {
    __shared__ double sh[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = 0.0;
    if (warp == 0) {
        v = lane < (int)(blockDim.x / 32) ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

/* part[block] = sum over i = block*threads + tid (strided by the grid) of x[i] or x[i]^2 */
static __global__ void reduce_partial_kernel(double *part, const float *x, int64_t n, int sq) {
    double s = 0.0;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        double xi = (double)x[i];
        s += sq ? xi * xi : xi;
    }
    s = block_sum_double(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* out[0] = sum of part[0..nparts); one block of RED_BLOCKS threads */
static __global__ void reduce_final_kernel(double *out, const double *part, int nparts) {
    double s = block_sum_double(threadIdx.x < nparts ? part[threadIdx.x] : 0.0);
    if (threadIdx.x == 0) out[0] = s;
}

static __global__ void scale_kernel(float *x, float s, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = __fmul_rn(x[i], s);
}

/* p, g, m, v: [n] fp32; t >= 1 is the 1-based step */
static void adamw(acc_t *p, const acc_t *g, acc_t *m, acc_t *v, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int t) {
    LC_ASSERT(t >= 1, "adamw: step %d must be >= 1", t);
    if (n <= 0) return;
    /* scalars in double, then rounded, exactly as the CPU backend */
    const float decay = (float)(1.0 - (double)lr * (double)wd);
    const float one_m_b1 = (float)(1.0 - (double)beta1), one_m_b2 = (float)(1.0 - (double)beta2);
    const float step_size = (float)((double)lr / (1.0 - pow((double)beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)beta2, t));
    adamw_kernel<<<(unsigned)CEIL_DIV(n, OPT_THREADS), OPT_THREADS, 0, cuda_stream()>>>(
        (float *)p, (const float *)g, (float *)m, (float *)v, n, decay, beta1, beta2, one_m_b1, one_m_b2, step_size,
        bc2_sqrt, eps);
    CUDA_CHECK_LAUNCH();
}

static double reduce(const float *x, int64_t n, int sq) {
    if (n <= 0) return 0.0;
    const int nblocks = (int)(CEIL_DIV(n, (int64_t)RED_THREADS) < RED_BLOCKS ? CEIL_DIV(n, (int64_t)RED_THREADS)
                                                                              : RED_BLOCKS);
    double *part = (double *)cuda_scratch((RED_BLOCKS + 1) * sizeof(double));
    reduce_partial_kernel<<<nblocks, RED_THREADS, 0, cuda_stream()>>>(part + 1, x, n, sq);
    CUDA_CHECK_LAUNCH();
    reduce_final_kernel<<<1, RED_BLOCKS, 0, cuda_stream()>>>(part, part + 1, nblocks);
    CUDA_CHECK_LAUNCH();
    double r = 0.0;
    CUDA_CHECK(cudaMemcpyAsync(&r, part, sizeof(double), cudaMemcpyDeviceToHost, cuda_stream()));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream()));
    return r;
}

/* sum_i x[i]; x: [n] */
static double sum(const acc_t *x, int64_t n) { return reduce((const float *)x, n, 0); }

/* sum_i x[i]^2; NaN/Inf propagate through the double sums */
static double sum_squares(const acc_t *x, int64_t n) { return reduce((const float *)x, n, 1); }

/* x[n] *= s */
static void scale(acc_t *x, float s, int64_t n) {
    if (n <= 0) return;
    scale_kernel<<<(unsigned)CEIL_DIV(n, OPT_THREADS), OPT_THREADS, 0, cuda_stream()>>>((float *)x, s, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_register_optim(Ops *o) {
    o->adamw = adamw;
    o->sum = sum;
    o->sum_squares = sum_squares;
    o->scale = scale;
}
