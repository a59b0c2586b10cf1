/* Pieces of the Hyena implicit filter (see ops.h):
 *   sin:    out[n,c] = sin(freq[c] * inp[n,c]);  dfreq += sum_n dout * cos(.) * inp  (fixed order)
 *   expmod: k[c,t] = h[t,c] * (exp(-t_pos[t] * |deltas[c]|) + shift)   (modulate), else h[t,c]
 * expmod is fused with the [L,C] <-> [C,L] transpose (tiles through shared memory); k and dk are
 * fp32. The modulation factor is evaluated in double, as on the CPU: it is L*C values, once per
 * step, and it keeps k equal to the CPU's up to the last fp32 bit. */
#include "kernels/cuda/backend.h"

#define FT_TILE 32
#define FT_ROWS 8

/* out [N,C]; inp [N,C]; freq [C] */
static __global__ void sin_fwd_kernel(bf16 *out, const bf16 *inp, const float *freq, int64_t total, int C) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    out[i] = f2bf(sinf(__fmul_rn(freq[i % C], bf2f(inp[i]))));
}

/* g = dout * cos(freq * inp), rounded as the CPU does (one fp32 multiply each) */
static __device__ __forceinline__ float sin_grad(const bf16 *dout, const bf16 *inp, const float *freq, int64_t i,
                                                 int c) {
    return __fmul_rn(bf2f(dout[i]), cosf(__fmul_rn(freq[c], bf2f(inp[i]))));
}

/* dinp [N,C] = g * freq (written) */
static __global__ void sin_bwd_kernel(bf16 *dinp, const bf16 *dout, const bf16 *inp, const float *freq, int64_t total,
                                      int C) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int c = (int)(i % C);
    dinp[i] = f2bf(sin_grad(dout, inp, freq, i, c) * freq[c]);
}

/* Row n, channel c of dfreq's sum: g * inp */
struct SinFreqGrad {
    const bf16 *dout, *inp;
    const float *freq;
    int C;
    __device__ void operator()(int64_t n, int c, float *v) const {
        const int64_t i = n * C + c;
        v[0] = sin_grad(dout, inp, freq, i, c) * bf2f(inp[i]);
    }
};

static __device__ __forceinline__ float expmod_factor(const float *deltas, const float *t_pos, float shift,
                                                      int modulate, int t, int c) {
    if (!modulate) return 1.0f;
    return (float)(exp(-(double)t_pos[t] * fabs((double)deltas[c])) + (double)shift);
}

/* grid (C tiles, L tiles); block (32, 8). k [C,L] fp32 from h [L,C] bf16. */
static __global__ void expmod_fwd_kernel(float *k, const bf16 *h, const float *deltas, const float *t_pos, float shift,
                                         int modulate, int L, int C) {
    __shared__ float tile[FT_TILE][FT_TILE + 1];
    const int c0 = blockIdx.x * FT_TILE, t0 = blockIdx.y * FT_TILE;
    for (int y = threadIdx.y; y < FT_TILE; y += FT_ROWS) { /* read along c */
        int t = t0 + y, c = c0 + threadIdx.x;
        if (t < L && c < C)
            tile[y][threadIdx.x] = bf2f(h[(int64_t)t * C + c]) * expmod_factor(deltas, t_pos, shift, modulate, t, c);
    }
    __syncthreads();
    for (int y = threadIdx.y; y < FT_TILE; y += FT_ROWS) { /* write along t */
        int c = c0 + y, t = t0 + threadIdx.x;
        if (t < L && c < C) k[(int64_t)c * L + t] = tile[threadIdx.x][y];
    }
}

/* grid (C tiles, L tiles); block (32, 8). dh [L,C] bf16 (written) from dk [C,L] fp32. */
static __global__ void expmod_bwd_kernel(bf16 *dh, const float *dk, const float *deltas, const float *t_pos,
                                         float shift, int modulate, int L, int C) {
    __shared__ float tile[FT_TILE][FT_TILE + 1];
    const int c0 = blockIdx.x * FT_TILE, t0 = blockIdx.y * FT_TILE;
    for (int y = threadIdx.y; y < FT_TILE; y += FT_ROWS) { /* read along t */
        int c = c0 + y, t = t0 + threadIdx.x;
        if (t < L && c < C) tile[y][threadIdx.x] = dk[(int64_t)c * L + t];
    }
    __syncthreads();
    for (int y = threadIdx.y; y < FT_TILE; y += FT_ROWS) { /* write along c */
        int t = t0 + y, c = c0 + threadIdx.x;
        if (t < L && c < C)
            dh[(int64_t)t * C + c] = f2bf(tile[threadIdx.x][y] * expmod_factor(deltas, t_pos, shift, modulate, t, c));
    }
}

static void sin_fwd(act_t *out, const act_t *inp, const acc_t *freq, int64_t N, int C) {
    const int64_t total = N * C;
    if (total <= 0) return;
    sin_fwd_kernel<<<(unsigned)CEIL_DIV(total, 256), 256, 0, cuda_stream()>>>((bf16 *)out, (const bf16 *)inp,
                                                                              (const float *)freq, total, C);
    CUDA_CHECK_LAUNCH();
}

/* dinp [N,C] (=); dfreq [C] (+=); dout, inp [N,C]; freq [C] */
static void sin_bwd(act_t *dinp, acc_t *dfreq, const act_t *dout, const act_t *inp, const acc_t *freq, int64_t N,
                    int C) {
    const int64_t total = N * C;
    if (total <= 0) return;
    if (dinp) {
        sin_bwd_kernel<<<(unsigned)CEIL_DIV(total, 256), 256, 0, cuda_stream()>>>(
            (bf16 *)dinp, (const bf16 *)dout, (const bf16 *)inp, (const float *)freq, total, C);
        CUDA_CHECK_LAUNCH();
    }
    if (dfreq) {
        SinFreqGrad f = {(const bf16 *)dout, (const bf16 *)inp, (const float *)freq, C};
        ColsumDst dst = {};
        dst.p[0] = (float *)dfreq;
        dst.stride[0] = 1;
        colsum_run<1>(f, 1, N, C, dst);
    }
}

static dim3 expmod_grid(int L, int C) {
    LC_ASSERT(CEIL_DIV(L, FT_TILE) <= 65535, "expmod: L=%d exceeds the grid", L);
    return dim3((unsigned)CEIL_DIV(C, FT_TILE), (unsigned)CEIL_DIV(L, FT_TILE));
}

/* k [C,L] fp32; h [L,C]; deltas [C]; t_pos [L] */
static void expmod_fwd(acc_t *k, const act_t *h, const acc_t *deltas, const acc_t *t_pos, float shift, int modulate,
                       int L, int C) {
    if ((int64_t)L * C <= 0) return;
    expmod_fwd_kernel<<<expmod_grid(L, C), dim3(FT_TILE, FT_ROWS), 0, cuda_stream()>>>(
        (float *)k, (const bf16 *)h, (const float *)deltas, (const float *)t_pos, shift, modulate, L, C);
    CUDA_CHECK_LAUNCH();
}

/* dh [L,C] (=); dk [C,L]; deltas [C]; t_pos [L] */
static void expmod_bwd(act_t *dh, const acc_t *dk, const acc_t *deltas, const acc_t *t_pos, float shift, int modulate,
                       int L, int C) {
    if ((int64_t)L * C <= 0) return;
    expmod_bwd_kernel<<<expmod_grid(L, C), dim3(FT_TILE, FT_ROWS), 0, cuda_stream()>>>(
        (bf16 *)dh, (const float *)dk, (const float *)deltas, (const float *)t_pos, shift, modulate, L, C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_register_filter(Ops *o) {
    o->sin_fwd = sin_fwd;
    o->sin_bwd = sin_bwd;
    o->expmod_fwd = expmod_fwd;
    o->expmod_bwd = expmod_bwd;
}
