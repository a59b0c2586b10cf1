/* LayerNorm over channels (PyTorch semantics: biased variance, eps inside the square root).
 * One warp per row; statistics in fp32 (two passes: mean, then the centred variance, so that a
 * large mean costs no precision); mean and rstd saved in fp32. Backward: dinp is added into the
 * bf16 residual stream; dw, db are fp32 column sums in a fixed order (backend.h: colsum). */
#include "kernels/cuda/backend.h"

#define LN_WARPS 8 /* rows per block */

/* out[N,C] = (inp - mean) * rstd * w + b;  mean, rstd: [N] (NULL: not saved);  w, b: [C] */
static __global__ void layernorm_fwd_kernel(bf16 *out, float *mean, float *rstd, const bf16 *inp, const bf16 *w,
                                            const bf16 *b, int64_t N, int C, float eps) {
    const int lane = threadIdx.x % 32;
    const int64_t n = (int64_t)blockIdx.x * LN_WARPS + threadIdx.x / 32;
    if (n >= N) return;
    const bf16 *x = inp + n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += bf2f(x[c]);
    const float m = warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = bf2f(x[c]) - m;
        v += d * d;
    }
    /* 1/sqrtf rather than rsqrtf: rsqrtf is not correctly rounded */
    const float r = 1.0f / sqrtf(warp_sum(v) / (float)C + eps);
    bf16 *o = out + n * C;
    for (int c = lane; c < C; c += 32) o[c] = f2bf((bf2f(x[c]) - m) * r * bf2f(w[c]) + bf2f(b[c]));
    if (lane == 0) {
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

/* With xhat = (x - mean) * rstd and g = dout * w:
 *   dinp[N,C] += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))     (bf16, one rounding) */
static __global__ void layernorm_bwd_dinp_kernel(bf16 *dinp, const bf16 *dout, const bf16 *inp, const bf16 *w,
                                                 const float *mean, const float *rstd, int64_t N, int C) {
    const int lane = threadIdx.x % 32;
    const int64_t n = (int64_t)blockIdx.x * LN_WARPS + threadIdx.x / 32;
    if (n >= N) return;
    const bf16 *x = inp + n * C, *dy = dout + n * C;
    const float m = mean[n], r = rstd[n];
    float gs = 0.0f, gxs = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = bf2f(dy[c]) * bf2f(w[c]);
        gs += g;
        gxs += g * ((bf2f(x[c]) - m) * r);
    }
    const float gmean = warp_sum(gs) / (float)C, gxmean = warp_sum(gxs) / (float)C;
    bf16 *dx = dinp + n * C;
    for (int c = lane; c < C; c += 32) {
        float g = bf2f(dy[c]) * bf2f(w[c]), xhat = (bf2f(x[c]) - m) * r;
        dx[c] = f2bf(bf2f(dx[c]) + r * (g - gmean - xhat * gxmean));
    }
}

/* Row n, column c of the parameter gradients: v[0] = dout * xhat (dw), v[1] = dout (db). */
struct LayernormGrads {
    const bf16 *dout, *inp;
    const float *mean, *rstd;
    int C;
    __device__ void operator()(int64_t n, int c, float *v) const {
        int64_t i = n * C + c;
        float dy = bf2f(dout[i]);
        v[0] = dy * ((bf2f(inp[i]) - mean[n]) * rstd[n]);
        v[1] = dy;
    }
};

static void layernorm_fwd(act_t *out, acc_t *mean, acc_t *rstd, const act_t *inp, const act_t *w, const act_t *b,
                          int64_t N, int C, float eps) {
    if (N <= 0) return;
    layernorm_fwd_kernel<<<(unsigned)CEIL_DIV(N, LN_WARPS), LN_WARPS * 32, 0, cuda_stream()>>>(
        (bf16 *)out, (float *)mean, (float *)rstd, (const bf16 *)inp, (const bf16 *)w, (const bf16 *)b, N, C, eps);
    CUDA_CHECK_LAUNCH();
}

/* dinp [N,C] (+=, bf16); dw, db [C] (+=, fp32); dout, inp [N,C]; w [C]; mean, rstd [N].
 * Any output may be NULL. */
static void layernorm_bwd(act_t *dinp, acc_t *dw, acc_t *db, const act_t *dout, const act_t *inp, const act_t *w,
                          const acc_t *mean, const acc_t *rstd, int64_t N, int C) {
    if (N <= 0) return;
    if (dinp) {
        layernorm_bwd_dinp_kernel<<<(unsigned)CEIL_DIV(N, LN_WARPS), LN_WARPS * 32, 0, cuda_stream()>>>(
            (bf16 *)dinp, (const bf16 *)dout, (const bf16 *)inp, (const bf16 *)w, (const float *)mean,
            (const float *)rstd, N, C);
        CUDA_CHECK_LAUNCH();
    }
    if (dw || db) {
        LayernormGrads f = {(const bf16 *)dout, (const bf16 *)inp, (const float *)mean, (const float *)rstd, C};
        ColsumDst dst = {};
        dst.p[0] = (float *)dw;
        dst.p[1] = (float *)db;
        dst.stride[0] = dst.stride[1] = 1;
        colsum_run<2>(f, 2, N, C, dst);
    }
}

extern "C" void cuda_register_layernorm(Ops *o) {
    o->layernorm_fwd = layernorm_fwd;
    o->layernorm_bwd = layernorm_bwd;
}
