/* Softmax cross-entropy over the first V of Vp columns, fused with its gradient (as llm.c's fused
 * classifier): one block per row finds the max, sums exp in fp32 (each thread over a fixed set of
 * columns, then a fixed tree), writes the loss, and overwrites the bf16 logits with
 * dscale * (softmax - onehot), padding columns 0. */
#include <limits.h>

#include "kernels/cuda/backend.h"

#define XENT_THREADS 512

/* Block-wide reduction through shared memory in a fixed tree; every thread gets the result. */
template <bool MAX>
static __device__ float block_reduce(float v, float *sh) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = MAX ? warp_max(v) : warp_sum(v);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < nwarps ? sh[lane] : (MAX ? -INFINITY : 0.0f);
        w = MAX ? warp_max(w) : warp_sum(w);
        if (lane == 0) sh[32] = w;
    }
    __syncthreads();
    float r = sh[32];
    __syncthreads(); /* sh is reused by the next reduction */
    return r;
}

/* losses [N] (may be NULL); logits [N,Vp] (bf16, overwritten if dscale != 0); targets [N] */
static __global__ void xent_kernel(float *losses, bf16 *logits, const tok_t *targets, int V, int Vp, float dscale) {
    __shared__ float sh[33];
    const int64_t n = blockIdx.x;
    bf16 *z = logits + n * Vp;
    const int t = targets[n];
    /* a target past the vocabulary cannot be checked on the host without a copy: the loss becomes
     * NaN, which the trainer's non-finite check reports */
    const int bad = t >= V;
    const float zt = t >= 0 && !bad ? bf2f(z[t]) : 0.0f; /* read before any thread overwrites it */
    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) m = fmaxf(m, bf2f(z[i]));
    const float zmax = block_reduce<true>(m, sh);
    float s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(bf2f(z[i]) - zmax);
    const float sum = block_reduce<false>(s, sh);
    if (losses && threadIdx.x == 0) losses[n] = bad ? NAN : t < 0 ? 0.0f : zmax + logf(sum) - zt;
    if (dscale == 0.0f) return;
    /* each thread rewrites only the columns it read above, so no barrier is needed */
    const float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < Vp; i += blockDim.x) {
        float d = 0.0f;
        if (t >= 0 && i < V) d = dscale * (expf(bf2f(z[i]) - zmax) * inv - (i == t ? 1.0f : 0.0f));
        z[i] = f2bf(d);
    }
}

static void xent_fwd_bwd(acc_t *losses, act_t *logits, const tok_t *targets, int64_t N, int V, int Vp, float dscale) {
    LC_ASSERT(V > 0 && Vp >= V, "xent: bad vocab sizes V=%d Vp=%d", V, Vp);
    LC_ASSERT(N >= 0 && N <= INT_MAX, "xent: %lld rows exceed the grid", (long long)N);
    if (N == 0) return;
    xent_kernel<<<(unsigned)N, XENT_THREADS, 0, cuda_stream()>>>((float *)losses, (bf16 *)logits, targets, V, Vp,
                                                                 dscale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_register_xent(Ops *o) { o->xent_fwd_bwd = xent_fwd_bwd; }
