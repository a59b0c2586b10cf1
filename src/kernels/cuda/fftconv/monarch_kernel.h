/* The fused Monarch long-convolution kernels (forward and backward), FFT size N = 2L for
 * L = 256 ... 4096. One thread block (256 threads) owns one channel h and a tile of batch rows;
 * rows are processed RB = 4096 / L at a time so that one iteration always holds 4096 complex
 * values (16 slabs of 256) whatever L is.
 *
 * Real-input trick: the row x (L real values, zero-padded to N) is packed as z[j] = x[2j] + i x[2j+1],
 * j < M/2 (M = L = N/2 complex points; z[j] = 0 for j >= M/2: implicit causal padding, never
 * loaded). Z = DFT_M(z) then the N-point spectrum and the filter product are folded into one
 * pairwise map per (k, M-k):  Z'[k] = A_k Z[k] + B_k conj(Z[(M-k) mod M]), with
 *   A_k = ((1 - sin t) K[k] + (1 + sin t) conj(K[M-k])) / 2,  B_k = (i cos t / 2)(K[k] - conj(K[M-k])),
 *   t = pi k / M, K = rfft_N(k) (M+1 bins); then y = IDFT_M(Z') / M unpacks to y[2j], y[2j+1].
 * The correlation of the backward uses conj(K): A -> conj(A), B -> -conj(B).
 *
 * DFT_M, M = R1 * 256 (R1 = 1, 2, 4, 8, 16), four-step with n = n1 * 256 + c:
 *   outer: R1-point DFT over n1 (only n1 < R1/2 is nonzero), twiddle exp(-2 pi i k1 c / M), in fp32
 *          registers right after the global loads (and its inverse right before the stores);
 *   inner: 256-point DFT over c = 16 n2 + n3 on tensor cores (monarch_prims.h): slab k1 of row r.
 * Spectral index k = k1 + R1 (k2 + 16 k3) lives at fp32 slab r R1 + k1, (row k2, col k3).
 *
 * Precision: tensor-core inputs are fp16 (unit roundoff 2^-11); each row is scaled by a power of
 * two before each fp16 conversion (after the outer stage, and after the pairwise map) so that its
 * largest value is in [0.5, 1): no overflow, full relative precision for the large values; the
 * scales are undone exactly at the end. Everything outside the matmul inputs is fp32. */
#pragma once
#include "kernels/cuda/fftconv/monarch_prims.h"

typedef struct {
    const mn_bf16 *u, *w, *v, *dy;   /* u, w, v: rows at b*in_bstride + h*L; dy: [B,H,L] */
    int64_t in_bstride;
    const float2 *Kf;                /* [H][kf_stride] rfft of the zero-padded filter, M+1 bins */
    int64_t kf_stride;
    const float *D;                  /* [H] or NULL */
    int B, H, L, BT;                 /* BT: batch rows per block, a multiple of RB */
    int vec_in, vec_y;               /* bf16 pairs 4-byte aligned in the u layout / the y layout */
    mn_bf16 *y;                      /* forward output [B,H,L] */
    mn_bf16 *du, *dw, *dv;           /* backward outputs (u layout) or NULL */
    float2 *dk_part;                 /* [gridDim.x][H][M+1] per-block sums of dc_f conj(x_f) or NULL */
    float *dD_part;                  /* [gridDim.x][H] per-block sums of dc x or NULL */
} MnArgs;

template <int R1>
struct MnGeo {
    static constexpr int M = 256 * R1;                 /* complex points, = L */
    static constexpr int RB = 16 / R1;                 /* rows per iteration */
    static constexpr int HALF = R1 > 1 ? R1 / 2 : 1;   /* nonzero outer inputs per position */
    static constexpr int NP = M / 2 >= MN_THREADS ? M / 2 / MN_THREADS : 1;   /* pairs per thread */
    static constexpr int FILT = 12 * M + 16;           /* filter bytes: Kp, SC, Kh */
};

/* Bytes of dynamic shared memory: filter, fp16 slabs, nbuf fp32 slab sets, reductions, scales. */
static inline size_t mn_smem_bytes(int M, int nbuf) {
    return (size_t)12 * M + 16 + MN_S16_BYTES + (size_t)nbuf * MN_S32_BYTES + 4 * MN_RED_FLOATS + 4 * 64;
}

/* Batch tiling: BT rows per block (a multiple of RB), nbt blocks per channel; enough blocks for
 * about 8 per SM in total, each looping over as many rows as possible (the filter data of a block
 * is loaded once). */
static inline void mn_tiles(int B, int H, int RB, int sms, int *BT, int *nbt) {
    const int iters = (B + RB - 1) / RB;
    int want = (8 * sms + H - 1) / H;
    want = want < 1 ? 1 : want > iters ? iters : want;
    *BT = (iters + want - 1) / want * RB;
    *nbt = (B + *BT - 1) / *BT;
}

MN_HD float2 mn_ld2(const mn_bf16 *p, int64_t off, int vec) {
    if (vec) return __bfloat1622float2(*(const __nv_bfloat162 *)(p + off));
    return make_float2(__bfloat162float(p[off]), __bfloat162float(p[off + 1]));
}

MN_HD void mn_st2(mn_bf16 *p, int64_t off, float2 v, int vec) {
    if (vec) {
        *(__nv_bfloat162 *)(p + off) = __floats2bfloat162_rn(v.x, v.y);
    } else {
        p[off] = __float2bfloat16_rn(v.x);
        p[off + 1] = __float2bfloat16_rn(v.y);
    }
}

/* Y[k1] = sum_{n1 < R1/2} z[n1] exp(-2 pi i n1 k1 / R1) * exp(-2 pi i k1 c / M): even outputs are the
 * R1/2-point DFT of z, odd ones that of z[n] exp(-2 pi i n / R1) (the zero half costs nothing). */
template <int R1>
MN_HD void mn_outer_fwd(float2 (&Y)[R1], const float2 *z, int c) {
    if constexpr (R1 == 1) {
        Y[0] = z[0];
    } else {
        constexpr int M = 256 * R1, H2 = R1 / 2;
        float2 e[H2], o[H2];
#pragma unroll
        for (int n = 0; n < H2; n++) e[n] = z[n], o[n] = mn_w16<-1>(z[n], n * (16 / R1));
        MnDft<H2, -1>::run(e);
        MnDft<H2, -1>::run(o);
#pragma unroll
        for (int m = 0; m < H2; m++) Y[2 * m] = e[m], Y[2 * m + 1] = o[m];
        float s, cs;
        mn_sincospi(2.0f * (float)c / (float)M, &s, &cs);
        const float2 w = make_float2(cs, -s);
        float2 p = w;
#pragma unroll
        for (int k1 = 1; k1 < R1; k1++) Y[k1] = c_mul(Y[k1], p), p = c_mul(p, w);
    }
}

/* z[n1] = sum_k1 Y[k1] exp(+2 pi i k1 c / M) exp(+2 pi i n1 k1 / R1) for n1 < R1/2 only (the outputs
 * past L are not needed): two R1/2-point inverse DFTs of the even and odd Y. Y is overwritten. */
template <int R1>
MN_HD void mn_outer_inv(float2 *z, float2 (&Y)[R1], int c) {
    if constexpr (R1 == 1) {
        z[0] = Y[0];
    } else {
        constexpr int M = 256 * R1, H2 = R1 / 2;
        float s, cs;
        mn_sincospi(2.0f * (float)c / (float)M, &s, &cs);
        const float2 w = make_float2(cs, s);
        float2 p = w;
#pragma unroll
        for (int k1 = 1; k1 < R1; k1++) Y[k1] = c_mul(Y[k1], p), p = c_mul(p, w);
        float2 e[H2], o[H2];
#pragma unroll
        for (int m = 0; m < H2; m++) e[m] = Y[2 * m], o[m] = Y[2 * m + 1];
        MnDft<H2, 1>::run(e);
        MnDft<H2, 1>::run(o);
#pragma unroll
        for (int n = 0; n < H2; n++) z[n] = c_add(e[n], mn_w16<1>(o[n], n * (16 / R1)));
    }
}

/* Filter data of channel h in shared memory, in pair order: Kp[i] = (K[i], K[M-i]) / M (i = 0:
 * (K[0], K[M])), SC[i] = (sin, cos)(pi i / M), Kh = K[M/2] / M. */
template <int M>
MN_HD void mn_load_filter(float4 *Kp, float2 *SC, float2 *Kh, const float2 *Kf, int tid) {
    const float inv = 1.0f / (float)M;
    for (int i = tid; i < M / 2; i += MN_THREADS) {
        const float2 a = Kf[i], b = Kf[i ? M - i : M];
        Kp[i] = make_float4(a.x * inv, a.y * inv, b.x * inv, b.y * inv);
        float s, c;
        mn_sincospi((float)i / (float)M, &s, &c);
        SC[i] = make_float2(s, c);
    }
    if (tid == 0) *Kh = c_scale(Kf[M / 2], inv);
}

/* A, B of the pairwise map for k and for M-k (see the top of the file) */
MN_HD void mn_coefs(float4 kk, float2 sc, float2 &Ak, float2 &Bk, float2 &Ap, float2 &Bp) {
    const float lo = 0.5f * (1.0f - sc.x), hi = 0.5f * (1.0f + sc.x), hc = 0.5f * sc.y;
    Ak = make_float2(lo * kk.x + hi * kk.z, lo * kk.y - hi * kk.w);
    Ap = make_float2(lo * kk.z + hi * kk.x, lo * kk.w - hi * kk.y);
    const float2 d0 = make_float2(kk.x - kk.z, kk.y + kk.w);   /* K[k] - conj K[M-k] */
    const float2 d1 = make_float2(kk.z - kk.x, kk.w + kk.y);   /* K[M-k] - conj K[k] */
    Bk = make_float2(-hc * d0.y, hc * d0.x);                    /* i hc d0 */
    Bp = make_float2(hc * d1.y, -hc * d1.x);                    /* -i hc d1 */
}

/* fp32 slot of spectral index k of row r */
template <int R1>
MN_HD int mn_pos(int r, int k) {
    const int kq = k / R1;
    return mn_s32(r * R1 + (k & (R1 - 1)), kq & 15, kq >> 4);
}

/* Per-row maxima of the block -> power-of-two scales out[q] (mn_pow2_scale) for q < NV. */
template <int NV>
MN_HD void mn_rowmax(const float (&v)[NV], float *red, float *out) {
    const int tid = mn_tid(), lane = tid & 31, warp = tid >> 5;
#pragma unroll
    for (int q = 0; q < NV; q++) {
        const float m = mn_warp_max(v[q]);
        if (lane == 0) red[warp * 32 + q] = m;
    }
    mn_sync();
    if (tid < NV) {
        float m = 0.0f;
        for (int w = 0; w < MN_WARPS; w++) m = fmaxf(m, red[w * 32 + tid]);
        out[tid] = mn_pow2_scale(m);
    }
    mn_sync();
}

/* Load x (= src ⊙ gate) for the RB rows of an iteration at this thread's positions, apply the
 * outer DFT and write the scaled fp16 slabs. xs keeps the fp32 x; rows past b_end are zero.
 * src/gate rows at b*bstride + hoff (gate may be NULL). Ends with a barrier. */
template <int R1>
MN_HD void mn_forward_in(float2 (&xs)[16 / R1][MnGeo<R1>::HALF], const mn_bf16 *src, const mn_bf16 *gate,
                         int64_t bstride, int64_t hoff, int vec, int b0, int b_end, int do_fft, __half *S16,
                         float *red, float *scl) {
    constexpr int RB = 16 / R1, HALF = MnGeo<R1>::HALF;
    const int c = mn_tid();
    float2 Y[RB][R1];
    float mx[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
        const int b = b0 + r;
        const bool ok = b < b_end && (R1 > 1 || c < 128);
#pragma unroll
        for (int n1 = 0; n1 < HALF; n1++) {
            float2 x = make_float2(0.0f, 0.0f);
            if (ok) {
                const int64_t off = (int64_t)b * bstride + hoff + 2 * (n1 * 256 + c);
                x = mn_ld2(src, off, vec);
                if (gate) {
                    const float2 g = mn_ld2(gate, off, vec);
                    x.x *= g.x, x.y *= g.y;
                }
            }
            xs[r][n1] = x;
        }
        mn_outer_fwd<R1>(Y[r], xs[r], c);
        mx[r] = 0.0f;
#pragma unroll
        for (int k1 = 0; k1 < R1; k1++) mx[r] = fmaxf(mx[r], c_absmax(Y[r][k1]));
    }
    if (!do_fft) return;
    mn_rowmax<RB>(mx, red, scl);
#pragma unroll
    for (int r = 0; r < RB; r++) {
        const float s = scl[r];
#pragma unroll
        for (int k1 = 0; k1 < R1; k1++) {
            S16[mn_s16(r * R1 + k1, 0, c >> 4, c & 15)] = __float2half_rn(Y[r][k1].x * s);
            S16[mn_s16(r * R1 + k1, 1, c >> 4, c & 15)] = __float2half_rn(Y[r][k1].y * s);
        }
    }
    mn_sync();
}

/* Outer inverse of row r at this thread's position c: z[n1] for n1 < HALF from slab set S32. */
template <int R1>
MN_HD void mn_inverse_out(float2 *z, const float2 *S32, int r, int c) {
    float2 Y[R1];
#pragma unroll
    for (int k1 = 0; k1 < R1; k1++) Y[k1] = S32[mn_s32(r * R1 + k1, c >> 4, c & 15)];
    mn_outer_inv<R1>(z, Y, c);
}

/* ---- forward: y = v ⊙ (irfft(rfft(u ⊙ w) ⊙ K)[:L] + D u ⊙ w). grid (nbt, H) ---- */
template <int R1>
MN_HD void mn_fwd_body(const MnArgs &a, int bx, int by, char *smem) {
    constexpr int M = MnGeo<R1>::M, RB = MnGeo<R1>::RB, HALF = MnGeo<R1>::HALF;
    const int tid = mn_tid(), lane = tid & 31, warp = tid >> 5, h = by, c = tid;
    const int b_begin = bx * a.BT, b_end = a.B < b_begin + a.BT ? a.B : b_begin + a.BT;
    float4 *Kp = (float4 *)smem;
    float2 *SC = (float2 *)(smem + 8 * M), *Kh = (float2 *)(smem + 12 * M);
    __half *S16 = (__half *)(smem + MnGeo<R1>::FILT);
    float2 *S32 = (float2 *)(smem + MnGeo<R1>::FILT + MN_S16_BYTES);
    float *red = (float *)((char *)S32 + MN_S32_BYTES), *scl = red + MN_RED_FLOATS;   /* sx [0,16), sy [16,32) */
    const int64_t hoff = (int64_t)h * a.L;
    const float Dh = a.D ? a.D[h] : 0.0f;

    mn_load_filter<M>(Kp, SC, Kh, a.Kf + (int64_t)h * a.kf_stride, tid);
    MnFrags f;
    mn_frags_init(f, lane);
    mn_sync();
    for (int b0 = b_begin; b0 < b_end; b0 += RB) {
        float2 xs[RB][HALF];
        mn_forward_in<R1>(xs, a.u, a.w, a.in_bstride, hoff, a.vec_in, b0, b_end, 1, S16, red, scl);
        for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_fwd(f, S16, S32, s, lane);
        mn_sync();
        /* pairwise map: spectrum of x times the filter, then the unpacking of the inverse */
        float my[RB];
#pragma unroll
        for (int r = 0; r < RB; r++) {
            my[r] = 0.0f;
#pragma unroll
            for (int j = 0; j < MnGeo<R1>::NP; j++) {
                const int i = tid + j * MN_THREADS;
                if (i >= M / 2) continue;
                const int kp = i ? M - i : M / 2;
                float2 *pk = S32 + mn_pos<R1>(r, i), *pp = S32 + mn_pos<R1>(r, kp);
                const float2 zk = *pk, zp = *pp;
                float2 Ak, Bk, Ap, Bp;
                mn_coefs(Kp[i], SC[i], Ak, Bk, Ap, Bp);
                if (i == 0) Ap = c_conj(*Kh), Bp = make_float2(0.0f, 0.0f);
                const float2 qk = i ? zp : zk, qp = i ? zk : zp;   /* partners (k = 0, M/2: self) */
                const float2 nk = c_add(c_mul(Ak, zk), c_mul(Bk, c_conj(qk)));
                const float2 np = c_add(c_mul(Ap, zp), c_mul(Bp, c_conj(qp)));
                *pk = nk, *pp = np;
                my[r] = fmaxf(my[r], fmaxf(c_absmax(nk), c_absmax(np)));
            }
        }
        mn_rowmax<RB>(my, red, scl + 16);
        for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_inv(f, S32, s, scl[16 + s / R1], lane);
        mn_sync();
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const int b = b0 + r;
            if (b >= b_end || (R1 == 1 && c >= 128)) continue;
            float2 z[HALF];
            mn_inverse_out<R1>(z, S32, r, c);
            const float isx = 1.0f / scl[r], isy = 1.0f / scl[16 + r];
#pragma unroll
            for (int n1 = 0; n1 < HALF; n1++) {
                const int t = 2 * (n1 * 256 + c);
                float2 yv = make_float2(z[n1].x * isx * isy + Dh * xs[r][n1].x, z[n1].y * isx * isy + Dh * xs[r][n1].y);
                if (a.v) {
                    const float2 vv = mn_ld2(a.v, (int64_t)b * a.in_bstride + hoff + t, a.vec_in);
                    yv.x *= vv.x, yv.y *= vv.y;
                }
                mn_st2(a.y, ((int64_t)b * a.H + h) * a.L + t, yv, a.vec_y);
            }
        }
    }
}

/* ---- backward with recomputation. x = u ⊙ w, dc = dy ⊙ v, c = conv(x) + D x:
 *   dv = dy ⊙ c;  dx = corr(dc) + D dc;  du = dx ⊙ w;  dw = dx ⊙ u;
 *   dk_part[bx][h][f] = sum over the block's rows of DC[f] conj(X[f]) (N-point spectra, f <= M);
 *   dD_part[bx][h] = sum over the block's rows of dc ⊙ x. grid (nbt, H) ---- */
template <int R1>
MN_HD void mn_bwd_body(const MnArgs &a, int bx, int by, char *smem) {
    constexpr int M = MnGeo<R1>::M, RB = MnGeo<R1>::RB, HALF = MnGeo<R1>::HALF, NP = MnGeo<R1>::NP;
    const int tid = mn_tid(), lane = tid & 31, warp = tid >> 5, h = by, c = tid;
    const int b_begin = bx * a.BT, b_end = a.B < b_begin + a.BT ? a.B : b_begin + a.BT;
    float4 *Kp = (float4 *)smem;
    float2 *SC = (float2 *)(smem + 8 * M), *Kh = (float2 *)(smem + 12 * M);
    __half *S16 = (__half *)(smem + MnGeo<R1>::FILT);
    float2 *Sx = (float2 *)(smem + MnGeo<R1>::FILT + MN_S16_BYTES);
    float2 *Sd = (float2 *)((char *)Sx + MN_S32_BYTES);
    /* scales: sx [0,16), sd [16,32), syc [32, 32+RB), syd [32+RB, 32+2RB) */
    float *red = (float *)((char *)Sd + MN_S32_BYTES), *scl = red + MN_RED_FLOATS;
    const int need_c = a.dv != NULL, need_dx = a.du != NULL || a.dw != NULL, need_dk = a.dk_part != NULL;
    const int need_fft = need_c || need_dx || need_dk;
    const int64_t hoff = (int64_t)h * a.L;
    const float Dh = a.D ? a.D[h] : 0.0f;

    if (need_c || need_dx) mn_load_filter<M>(Kp, SC, Kh, a.Kf + (int64_t)h * a.kf_stride, tid);
    MnFrags f;
    mn_frags_init(f, lane);
    float2 acc[NP][2], acch = make_float2(0.0f, 0.0f);
#pragma unroll
    for (int j = 0; j < NP; j++) acc[j][0] = acc[j][1] = make_float2(0.0f, 0.0f);
    float dsum = 0.0f;
    mn_sync();
    for (int b0 = b_begin; b0 < b_end; b0 += RB) {
        float2 xs[RB][HALF], ds[RB][HALF];
        mn_forward_in<R1>(xs, a.u, a.w, a.in_bstride, hoff, a.vec_in, b0, b_end, need_fft, S16, red, scl);
        if (need_fft) {
            for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_fwd(f, S16, Sx, s, lane);
            mn_sync();
        }
        /* dy rows are [B,H,L]: stride H*L, then gated by v (u layout): dc = dy ⊙ v */
        {
            float2 dyv[RB][HALF];
            mn_forward_in<R1>(dyv, a.dy, NULL, (int64_t)a.H * a.L, hoff, a.vec_y, b0, b_end, 0, S16, red, scl);
#pragma unroll
            for (int r = 0; r < RB; r++)
#pragma unroll
                for (int n1 = 0; n1 < HALF; n1++) {
                    float2 d = dyv[r][n1];
                    if (a.v && b0 + r < b_end && (R1 > 1 || c < 128)) {
                        const float2 vv =
                            mn_ld2(a.v, (int64_t)(b0 + r) * a.in_bstride + hoff + 2 * (n1 * 256 + c), a.vec_in);
                        d.x *= vv.x, d.y *= vv.y;
                    }
                    ds[r][n1] = d;
                    dsum += d.x * xs[r][n1].x + d.y * xs[r][n1].y;
                }
        }
        if (!need_fft) continue;
        /* outer DFT of dc (its loads are done: the fp16 slabs are free again after the barrier above) */
        {
            float2 Y[RB][R1];
            float mx[RB];
#pragma unroll
            for (int r = 0; r < RB; r++) {
                mn_outer_fwd<R1>(Y[r], ds[r], c);
                mx[r] = 0.0f;
#pragma unroll
                for (int k1 = 0; k1 < R1; k1++) mx[r] = fmaxf(mx[r], c_absmax(Y[r][k1]));
            }
            mn_rowmax<RB>(mx, red, scl + 16);
#pragma unroll
            for (int r = 0; r < RB; r++)
#pragma unroll
                for (int k1 = 0; k1 < R1; k1++) {
                    S16[mn_s16(r * R1 + k1, 0, c >> 4, c & 15)] = __float2half_rn(Y[r][k1].x * scl[16 + r]);
                    S16[mn_s16(r * R1 + k1, 1, c >> 4, c & 15)] = __float2half_rn(Y[r][k1].y * scl[16 + r]);
                }
            mn_sync();
            for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_fwd(f, S16, Sd, s, lane);
            mn_sync();
        }
        /* pairwise step: dk accumulation, conv spectrum (for dv), correlation spectrum (for dx) */
        float my[2 * RB];
#pragma unroll
        for (int r = 0; r < RB; r++) {
            my[r] = my[RB + r] = 0.0f;
            const float isx = 1.0f / scl[r], isd = 1.0f / scl[16 + r];
#pragma unroll
            for (int j = 0; j < NP; j++) {
                const int i = tid + j * MN_THREADS;
                if (i >= M / 2) continue;
                const int kp = i ? M - i : M / 2, pk = mn_pos<R1>(r, i), pp = mn_pos<R1>(r, kp);
                const float2 xk = Sx[pk], xp = Sx[pp], dk = Sd[pk], dp = Sd[pp];
                const float2 xqk = i ? xp : xk, xqp = i ? xk : xp, dqk = i ? dp : dk, dqp = i ? dk : dp;
                const float2 sc = SC[i];
                if (need_dk) {
                    /* N-point spectra X[k] = al Z[k] + be conj Z[M-k], X[M-k] = conj(al) Z[M-k] + conj(be) conj Z[k];
                     * for i = 0 the partner is itself and the second bin is M (bin M/2 separately) */
                    const float2 al = make_float2(0.5f * (1.0f - sc.x), -0.5f * sc.y);
                    const float2 be = make_float2(0.5f * (1.0f + sc.x), 0.5f * sc.y);
                    const float2 uxk = c_scale(xk, isx), uxq = c_scale(xqk, isx);
                    const float2 udk = c_scale(dk, isd), udq = c_scale(dqk, isd);
                    const float2 Xk = c_add(c_mul(al, uxk), c_mul(be, c_conj(uxq)));
                    const float2 Xq = c_add(c_mul(c_conj(al), uxq), c_mul(c_conj(be), c_conj(uxk)));
                    const float2 Gk = c_add(c_mul(al, udk), c_mul(be, c_conj(udq)));
                    const float2 Gq = c_add(c_mul(c_conj(al), udq), c_mul(c_conj(be), c_conj(udk)));
                    acc[j][0] = c_add(acc[j][0], c_mulc(Gk, Xk));
                    acc[j][1] = c_add(acc[j][1], c_mulc(Gq, Xq));
                    if (i == 0) acch = c_add(acch, c_mul(c_conj(c_scale(dp, isd)), c_scale(xp, isx)));
                }
                if (need_c || need_dx) {
                    float2 Ak, Bk, Ap, Bp;
                    mn_coefs(Kp[i], sc, Ak, Bk, Ap, Bp);
                    if (i == 0) Ap = c_conj(*Kh), Bp = make_float2(0.0f, 0.0f);
                    if (need_c) {
                        const float2 nk = c_add(c_mul(Ak, xk), c_mul(Bk, c_conj(xqk)));
                        const float2 np = c_add(c_mul(Ap, xp), c_mul(Bp, c_conj(xqp)));
                        Sx[pk] = nk, Sx[pp] = np;
                        my[r] = fmaxf(my[r], fmaxf(c_absmax(nk), c_absmax(np)));
                    }
                    if (need_dx) {   /* correlation: conj(A), -conj(B) */
                        const float2 nk = c_sub(c_mul(c_conj(Ak), dk), c_mul(c_conj(Bk), c_conj(dqk)));
                        const float2 np = c_sub(c_mul(c_conj(Ap), dp), c_mul(c_conj(Bp), c_conj(dqp)));
                        Sd[pk] = nk, Sd[pp] = np;
                        my[RB + r] = fmaxf(my[RB + r], fmaxf(c_absmax(nk), c_absmax(np)));
                    }
                }
            }
        }
        mn_rowmax<2 * RB>(my, red, scl + 32);
        for (int s = warp; s < MN_SLABS; s += MN_WARPS) {
            if (need_c) mn_inner_inv(f, Sx, s, scl[32 + s / R1], lane);
            if (need_dx) mn_inner_inv(f, Sd, s, scl[32 + RB + s / R1], lane);
        }
        mn_sync();
        if (!need_c && !need_dx) continue;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const int b = b0 + r;
            if (b >= b_end || (R1 == 1 && c >= 128)) continue;
            float2 zc[HALF], zd[HALF];
            if (need_c) mn_inverse_out<R1>(zc, Sx, r, c);
            if (need_dx) mn_inverse_out<R1>(zd, Sd, r, c);
            const float isx = 1.0f / scl[r], isd = 1.0f / scl[16 + r];
            const float isc = 1.0f / scl[32 + r], isdx = 1.0f / scl[32 + RB + r];
#pragma unroll
            for (int n1 = 0; n1 < HALF; n1++) {
                const int t = 2 * (n1 * 256 + c);
                const int64_t off = (int64_t)b * a.in_bstride + hoff + t;
                const float2 x = xs[r][n1], dc = ds[r][n1];
                if (need_c) {
                    const float2 gy = mn_ld2(a.dy, ((int64_t)b * a.H + h) * a.L + t, a.vec_y);
                    const float2 cv = make_float2(zc[n1].x * isx * isc + Dh * x.x, zc[n1].y * isx * isc + Dh * x.y);
                    mn_st2(a.dv, off, make_float2(gy.x * cv.x, gy.y * cv.y), a.vec_in);
                }
                if (need_dx) {
                    const float2 dx = make_float2(zd[n1].x * isd * isdx + Dh * dc.x, zd[n1].y * isd * isdx + Dh * dc.y);
                    if (a.du) {
                        float2 o = dx;
                        if (a.w) {
                            const float2 ww = mn_ld2(a.w, off, a.vec_in);
                            o.x *= ww.x, o.y *= ww.y;
                        }
                        mn_st2(a.du, off, o, a.vec_in);
                    }
                    if (a.dw) {
                        const float2 uu = mn_ld2(a.u, off, a.vec_in);
                        mn_st2(a.dw, off, make_float2(dx.x * uu.x, dx.y * uu.y), a.vec_in);
                    }
                }
            }
        }
    }
    if (need_dk) {
        float2 *part = a.dk_part + ((int64_t)bx * a.H + h) * (M + 1);
#pragma unroll
        for (int j = 0; j < NP; j++) {
            const int i = tid + j * MN_THREADS;
            if (i >= M / 2) continue;
            part[i] = acc[j][0];
            part[i ? M - i : M] = acc[j][1];
            if (i == 0) part[M / 2] = acch;
        }
    }
    if (a.dD_part) {   /* fixed order: butterfly within warps, then warps in order */
        const float s = mn_warp_sum(dsum);
        if (lane == 0) red[warp] = s;
        mn_sync();
        if (tid == 0) {
            float t = 0.0f;
            for (int w = 0; w < MN_WARPS; w++) t += red[w];
            a.dD_part[(int64_t)bx * a.H + h] = t;
        }
    }
}
