/* Depthwise causal short convolution (width K <= SC_KMAX) fused with the [B,L,C] -> [B,C,L]
 * transpose:
 *   out[b,c,t] = bias[c] + sum_{j<K} w[c,j] * inp[b, t-K+1+j, c]     (inp at negative t is 0)
 * Forward: a 32x32 (t, c) tile plus K-1 halo rows of inp goes through shared memory, read along c
 * and written along t. Backward: dout is first transposed to [B,L,C] (scratch), then dinp is a
 * plain stencil along rows and dw, dbias are fixed-order column sums over the B*L rows. */
#include "kernels/cuda/backend.h"

#define SC_TILE 32
#define SC_ROWS 8
#define SC_KMAX 8 /* the column sums keep K+1 accumulators per thread */
#define SC_PAD (SC_TILE + 1)

/* grid (L tiles, C tiles, B); block (32, 8); shared: (32 + K - 1) x 33 floats.
 * out [B,C,L]; inp [B,L,C]; w [C,K]; bias [C] (NULL: none) */
static __global__ void shortconv_fwd_kernel(bf16 *out, const bf16 *inp, const bf16 *w, const bf16 *bias, int L,
                                            int C, int K) {
    extern __shared__ float sm[]; /* [32 + K - 1][33]: row r holds t = t0 - (K-1) + r */
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int t0 = blockIdx.x * SC_TILE, c0 = blockIdx.y * SC_TILE;
    const int64_t b = blockIdx.z;
    const bf16 *ib = inp + b * L * C;
    for (int r = ty; r < SC_TILE + K - 1; r += SC_ROWS) {
        int t = t0 - (K - 1) + r, c = c0 + tx;
        sm[r * SC_PAD + tx] = (t >= 0 && t < L && c < C) ? bf2f(ib[(int64_t)t * C + c]) : 0.0f;
    }
    __syncthreads();
    const int t = t0 + tx;
    if (t >= L) return;
    for (int cc = ty; cc < SC_TILE; cc += SC_ROWS) {
        int c = c0 + cc;
        if (c >= C) break;
        float acc = bias ? bf2f(bias[c]) : 0.0f;
        for (int j = 0; j < K; j++) acc += bf2f(w[(int64_t)c * K + j]) * sm[(tx + j) * SC_PAD + cc];
        out[(b * C + c) * L + t] = f2bf(acc);
    }
}

/* dinp[b,t,c] = sum_j w[c,j] * g[b, t+K-1-j, c] over taps whose output t+K-1-j < L (written).
 * g: dout transposed to [B,L,C]. */
static __global__ void shortconv_bwd_dinp_kernel(bf16 *dinp, const bf16 *g, const bf16 *w, int L, int C, int K,
                                                 int64_t total) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int c = (int)(i % C);
    const int t = (int)(i / C % L);
    float acc = 0.0f;
    for (int j = t + K - 1 - (L - 1) > 0 ? t + K - 1 - (L - 1) : 0; j < K; j++)
        acc += bf2f(w[(int64_t)c * K + j]) * bf2f(g[i + (int64_t)(K - 1 - j) * C]);
    dinp[i] = f2bf(acc);
}

/* Row n = b*L + t, channel c: v[j] = g * inp[b, t-K+1+j, c] (0 before t = 0) for j < K, v[K] = g. */
struct ShortconvGrads {
    const bf16 *g, *inp; /* both [B,L,C] */
    int L, C, K;
    __device__ void operator()(int64_t n, int c, float *v) const {
        const int64_t i = n * C + c;
        const int t = (int)(n % L);
        const float gv = bf2f(g[i]);
#pragma unroll
        for (int j = 0; j <= SC_KMAX; j++) { /* constant indices keep v in registers */
            if (j < K) v[j] = t - K + 1 + j >= 0 ? gv * bf2f(inp[i - (int64_t)(K - 1 - j) * C]) : 0.0f;
            else if (j == K) v[j] = gv;
        }
    }
};

static void shortconv_check(int B, int L, int C, int K) {
    LC_ASSERT(B >= 0 && L >= 0 && C >= 0 && K >= 1 && K <= SC_KMAX, "shortconv: bad shape B=%d L=%d C=%d K=%d "
              "(the CUDA kernels take 1 <= K <= %d)", B, L, C, K, SC_KMAX);
    LC_ASSERT(CEIL_DIV(C, SC_TILE) <= 65535 && B <= 65535, "shortconv: B=%d C=%d exceed the grid", B, C);
}

/* out [B,C,L]; inp [B,L,C]; w [C,K]; bias [C] (NULL: no bias) */
static void shortconv_fwd(act_t *out, const act_t *inp, const act_t *w, const act_t *bias, int B, int L, int C, int K) {
    shortconv_check(B, L, C, K);
    if ((int64_t)B * L * C == 0) return;
    dim3 grid((unsigned)CEIL_DIV(L, SC_TILE), (unsigned)CEIL_DIV(C, SC_TILE), (unsigned)B), block(SC_TILE, SC_ROWS);
    size_t smem = (size_t)(SC_TILE + K - 1) * SC_PAD * sizeof(float);
    shortconv_fwd_kernel<<<grid, block, smem, cuda_stream()>>>((bf16 *)out, (const bf16 *)inp, (const bf16 *)w,
                                                               (const bf16 *)bias, L, C, K);
    CUDA_CHECK_LAUNCH();
}

/* dinp [B,L,C] (=); dw [C,K] (+=); dbias [C] (+=); dout [B,C,L]; inp [B,L,C]; w [C,K] */
static void shortconv_bwd(act_t *dinp, acc_t *dw, acc_t *dbias, const act_t *dout, const act_t *inp, const act_t *w,
                          int B, int L, int C, int K) {
    shortconv_check(B, L, C, K);
    const int64_t N = (int64_t)B * L, total = N * C;
    if (total == 0 || (!dinp && !dw && !dbias)) return;
    /* scratch: g [B,L,C] bf16, then the column-sum partials */
    const size_t g_bytes = (size_t)CEIL_DIV(total * 2, (int64_t)256) * 256;
    char *s = (char *)cuda_scratch(g_bytes + colsum_part_bytes(N, K + 1, C));
    bf16 *g = (bf16 *)s;
    cuda_transpose_bf16(g, (const bf16 *)dout, B, C, L);
    if (dinp) {
        shortconv_bwd_dinp_kernel<<<(unsigned)CEIL_DIV(total, 256), 256, 0, cuda_stream()>>>(
            (bf16 *)dinp, g, (const bf16 *)w, L, C, K, total);
        CUDA_CHECK_LAUNCH();
    }
    if (dw || dbias) {
        ShortconvGrads f = {g, (const bf16 *)inp, L, C, K};
        ColsumDst dst = {};
        for (int j = 0; j < K; j++) {
            dst.p[j] = dw ? (float *)dw + j : NULL;
            dst.stride[j] = K;
        }
        dst.p[K] = (float *)dbias;
        dst.stride[K] = 1;
        colsum_run<SC_KMAX + 1>(f, K + 1, N, C, dst, (float *)(s + g_bytes));
    }
}

extern "C" void cuda_register_shortconv(Ops *o) {
    o->shortconv_fwd = shortconv_fwd;
    o->shortconv_bwd = shortconv_bwd;
}
