/* The fused Monarch long-convolution kernels: the pieces shared by the forward and the backward,
 * and the forward body (the backward body is in monarch_bwd.h).
 *
 * Sizes: a row of L <= 4096 values is convolved as a circular convolution of size N = 2M, M the
 * power of two >= max(L, 256) (M = L for the powers of two from 256 on; shorter or odd rows are
 * zero-padded, and the bidirectional taps L <= s < 2L are placed at s + N - 2L so that they still
 * reach x[t - s + 2L]). One thread block (256 threads) owns one channel h and a tile of batch rows,
 * RB = 4096 / M rows at a time, so one iteration always holds 4096 complex values (16 slabs of 256).
 *
 * Real-input trick: z[j] = x[2j] + i x[2j+1], j < M/2 (z[j] = 0 for j >= M/2: implicit causal
 * padding, never loaded). Z = DFT_M(z); the N-point spectrum, the filter product and the packing
 * of the inverse fold into one pairwise map per (k, M-k):
 *   Z'[k] = A_k Z[k] + B_k conj(Z[(M-k) mod M]),
 *   A_k = ((1 - sin t) K[k] + (1 + sin t) conj(K[M-k])) / 2,  B_k = (i cos t / 2)(K[k] - conj(K[M-k])),
 *   t = pi k / M, K = rfft_N(filter) (M+1 bins); then y = IDFT_M(Z') / M unpacks to y[2j], y[2j+1].
 * The correlation of the backward uses conj(K): A -> conj(A), B -> -conj(B).
 *
 * DFT_M, M = R1 * 256 (R1 = 1, 2, 4, 8, 16), four-step with n = n1 * 256 + c:
 *   outer: R1-point DFT over n1 (only n1 < R1/2 is nonzero), twiddle exp(-2 pi i k1 c / M), in fp32
 *          registers right after the global loads (and its inverse right before the stores);
 *   inner: 256-point DFT over c = 16 n2 + n3 on tensor cores (monarch_prims.h): slab k1 of row r.
 * Spectral index k = k1 + R1 (k2 + 16 k3) lives at fp32 slab r R1 + k1, (row k2, col k3).
 * Work items of a thread: R1 > 1: position c = tid of every row (RB items); R1 = 1: position
 * c = tid % 128 of the rows of parity tid / 128 (8 items; positions >= 128 are the zero half).
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
    const float2 *Kf;                /* [H][kf_stride] rfft of the remapped filter, M+1 bins */
    int64_t kf_stride;
    const float *D;                  /* [H] or NULL */
    int B, H, L, BT;                 /* L: row length (<= M); BT: batch rows per block, a multiple of RB */
    int vec_in, vec_y;               /* bf16 pairs 4-byte aligned in the u layout / the y layout */
    mn_bf16 *y;                      /* forward output [B,H,L] */
    mn_bf16 *du, *dw, *dv;           /* backward outputs (u layout) or NULL */
    float2 *dk_part;                 /* [gridDim.x][H][M+1] per-block sums of DC conj(X) or NULL */
    float *dD_part;                  /* [gridDim.x][H] per-block sums of dc x or NULL */
} MnArgs;

template <int R1>
struct MnGeo {
    static constexpr int M = 256 * R1;                 /* complex points */
    static constexpr int RB = 16 / R1;                 /* rows per iteration */
    static constexpr int HALF = R1 > 1 ? R1 / 2 : 1;   /* nonzero outer inputs per position */
    static constexpr int NI = R1 > 1 ? RB : 8;         /* outer-stage items per thread */
    static constexpr int NPR = R1 > 1 ? R1 / 2 : 1;    /* distinct pairs (k, M-k) per thread */
    static constexpr int NJ = 8;                       /* pair items per thread and iteration */
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

/* Item i of this thread in the outer stages: row r of the iteration and position c. */
template <int R1>
MN_HD void mn_item(int i, int tid, int &r, int &c) {
    if (R1 > 1) r = i, c = tid;
    else r = 2 * i + (tid >> 7), c = tid & 127;
}

/* Pair item j of this thread: row r and pair index i (pairs (i, M-i); i = 0: bins 0 and M/2). */
template <int R1>
MN_HD void mn_pair_item(int j, int tid, int &r, int &i) {
    constexpr int NPR = MnGeo<R1>::NPR;
    if (R1 > 1) r = j / NPR, i = tid + MN_THREADS * (j % NPR);
    else r = 2 * j + (tid >> 7), i = tid & 127;
}

/* v[row of item q] = max(v[...], m), with compile-time register indices (row = q, or 2q + parity) */
template <int R1, int RB>
MN_HD void mn_vmax(float (&v)[RB], int q, int tid, float m) {
    if (R1 > 1) {
        v[q] = fmaxf(v[q], m);
    } else if (tid >> 7) {
        v[2 * q + 1] = fmaxf(v[2 * q + 1], m);
    } else {
        v[2 * q] = fmaxf(v[2 * q], m);
    }
}

/* bf16 pair at element t of a row of length L (p + off is element t): masked past the row end */
MN_HD float2 mn_ld2(const mn_bf16 *p, int64_t off, int t, int L, int vec) {
    if (t + 1 < L) {
        if (vec) {
#ifndef __CUDA_ARCH__
            LC_ASSERT(((uintptr_t)(p + off) & 3) == 0, "monarch: unaligned bf16 pair load");
#endif
            return __bfloat1622float2(*(const __nv_bfloat162 *)(p + off));
        }
        return make_float2(__bfloat162float(p[off]), __bfloat162float(p[off + 1]));
    }
    return make_float2(t < L ? __bfloat162float(p[off]) : 0.0f, 0.0f);
}

MN_HD void mn_st2(mn_bf16 *p, int64_t off, float2 v, int t, int L, int vec) {
    if (t + 1 < L) {
        if (vec) {
#ifndef __CUDA_ARCH__
            LC_ASSERT(((uintptr_t)(p + off) & 3) == 0, "monarch: unaligned bf16 pair store");
#endif
            *(__nv_bfloat162 *)(p + off) = __floats2bfloat162_rn(v.x, v.y);
        } else {
            p[off] = __float2bfloat16_rn(v.x);
            p[off + 1] = __float2bfloat16_rn(v.y);
        }
    } else if (t < L) {
        p[off] = __float2bfloat16_rn(v.x);
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
 * past the row are not needed): two R1/2-point inverse DFTs of the even and odd Y. Y is overwritten. */
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

/* Load x = src ⊙ gate (gate may be NULL) at this thread's items of the RB rows from b0 (rows past
 * b_end and elements past L are zero) into xs; with do_fft, also apply the outer DFT, scale each row
 * (scales to scl[0, RB)) and write the fp16 slabs, ending with a barrier. Rows at b*bstride + hoff. */
template <int R1>
MN_HD void mn_forward_in(float2 (&xs)[MnGeo<R1>::NI][MnGeo<R1>::HALF], const mn_bf16 *src,
                         const mn_bf16 *gate, int64_t bstride, int64_t hoff, int L, int vec, int b0, int b_end,
                         int do_fft, __half *S16, float *red, float *scl) {
    constexpr int RB = MnGeo<R1>::RB, HALF = MnGeo<R1>::HALF, NI = MnGeo<R1>::NI;
    const int tid = mn_tid();
#pragma unroll
    for (int i = 0; i < NI; i++) {
        int r, c;
        mn_item<R1>(i, tid, r, c);
        const int b = b0 + r;
#pragma unroll
        for (int n1 = 0; n1 < HALF; n1++) {
            float2 x = make_float2(0.0f, 0.0f);
            const int t = 2 * (n1 * 256 + c);
            if (b < b_end) {
                const int64_t off = (int64_t)b * bstride + hoff + t;
                x = mn_ld2(src, off, t, L, vec);
                if (gate) {
                    const float2 g = mn_ld2(gate, off, t, L, vec);
                    x.x *= g.x, x.y *= g.y;
                }
            }
            xs[i][n1] = x;
        }
    }
    if (!do_fft) return;
    float2 Y[NI][R1];
    float mx[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) mx[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < NI; i++) {
        int r, c;
        mn_item<R1>(i, tid, r, c);
        mn_outer_fwd<R1>(Y[i], xs[i], c);
        float m = 0.0f;
#pragma unroll
        for (int k1 = 0; k1 < R1; k1++) m = fmaxf(m, c_absmax(Y[i][k1]));
        mn_vmax<R1, RB>(mx, i, tid, m);
    }
    mn_rowmax<RB>(mx, red, scl);
#pragma unroll
    for (int i = 0; i < NI; i++) {
        int r, c;
        mn_item<R1>(i, tid, r, c);
        const float s = scl[r];
#pragma unroll
        for (int k1 = 0; k1 < R1; k1++) {
            S16[mn_s16(r * R1 + k1, 0, c >> 4, c & 15)] = __float2half_rn(Y[i][k1].x * s);
            S16[mn_s16(r * R1 + k1, 1, c >> 4, c & 15)] = __float2half_rn(Y[i][k1].y * s);
        }
        if (R1 == 1) {   /* the zero half of the slab */
            S16[mn_s16(r, 0, (c >> 4) + 8, c & 15)] = __float2half_rn(0.0f);
            S16[mn_s16(r, 1, (c >> 4) + 8, c & 15)] = __float2half_rn(0.0f);
        }
    }
    mn_sync();
}

/* Outer inverse of every item of this thread from slab set S32: z[i][n1] (unscaled). */
template <int R1>
MN_HD void mn_inverse_out(float2 (&z)[MnGeo<R1>::NI][MnGeo<R1>::HALF], const float2 *S32) {
    const int tid = mn_tid();
#pragma unroll
    for (int i = 0; i < MnGeo<R1>::NI; i++) {
        int r, c;
        mn_item<R1>(i, tid, r, c);
        float2 Y[R1];
#pragma unroll
        for (int k1 = 0; k1 < R1; k1++) Y[k1] = S32[mn_s32(r * R1 + k1, c >> 4, c & 15)];
        mn_outer_inv<R1>(z[i], Y, c);
    }
}

/* ---- forward: y = v ⊙ (irfft(rfft(u ⊙ w) ⊙ K)[:L] + D u ⊙ w). grid (nbt, H) ---- */
template <int R1>
MN_HD void mn_fwd_body(const MnArgs &a, int bx, int by, char *smem) {
    constexpr int M = MnGeo<R1>::M, RB = MnGeo<R1>::RB, HALF = MnGeo<R1>::HALF, NI = MnGeo<R1>::NI;
    constexpr int NPR = MnGeo<R1>::NPR;
    const int tid = mn_tid(), lane = tid & 31, warp = tid >> 5, h = by;
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
        float2 xs[NI][HALF];
        mn_forward_in<R1>(xs, a.u, a.w, a.in_bstride, hoff, a.L, a.vec_in, b0, b_end, 1, S16, red, scl);
        for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_fwd(f, S16, S32, s, lane);
        mn_sync();
        /* pairwise map: spectrum of x times the filter, then the packing of the inverse */
        float my[RB];
#pragma unroll
        for (int r = 0; r < RB; r++) my[r] = 0.0f;
#pragma unroll
        for (int j = 0; j < MnGeo<R1>::NJ; j++) {
            int r, i;
            mn_pair_item<R1>(j, tid, r, i);
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
            mn_vmax<R1, RB>(my, R1 > 1 ? j / NPR : j, tid, fmaxf(c_absmax(nk), c_absmax(np)));
        }
        mn_rowmax<RB>(my, red, scl + 16);
        for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_inv(f, S32, s, scl[16 + s / R1], lane);
        mn_sync();
        /* shared-memory reads and gate loads first, then the stores (the compiler cannot move loads
         * across stores that may alias them) */
        float2 z[NI][HALF], vv[NI][HALF];
        mn_inverse_out<R1>(z, S32);
#pragma unroll
        for (int i = 0; i < NI; i++) {
            int r, c;
            mn_item<R1>(i, tid, r, c);
#pragma unroll
            for (int n1 = 0; n1 < HALF; n1++) {
                const int t = 2 * (n1 * 256 + c);
                vv[i][n1] = make_float2(1.0f, 1.0f);
                if (a.v && b0 + r < b_end) vv[i][n1] = mn_ld2(a.v, (int64_t)(b0 + r) * a.in_bstride + hoff + t, t, a.L, a.vec_in);
            }
        }
#pragma unroll
        for (int i = 0; i < NI; i++) {
            int r, c;
            mn_item<R1>(i, tid, r, c);
            const int b = b0 + r;
            if (b >= b_end) continue;
            const float isx = 1.0f / scl[r], isy = 1.0f / scl[16 + r];
#pragma unroll
            for (int n1 = 0; n1 < HALF; n1++) {
                const int t = 2 * (n1 * 256 + c);
                const float2 x = xs[i][n1];
                const float2 yv = make_float2((z[i][n1].x * isx * isy + Dh * x.x) * vv[i][n1].x,
                                              (z[i][n1].y * isx * isy + Dh * x.y) * vv[i][n1].y);
                mn_st2(a.y, ((int64_t)b * a.H + h) * a.L + t, yv, t, a.L, a.vec_y);
            }
        }
    }
}

/* Host-side launchers (monarch_fwd.cu, monarch_bwd.cu): grid (nbt, H), minb = blocks per SM the
 * registers are budgeted for (__launch_bounds__). */
void mn_launch_fwd(int R1, int minb, const MnArgs &a, int nbt);
void mn_launch_bwd(int R1, int minb, const MnArgs &a, int nbt);
