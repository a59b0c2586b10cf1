/* Backward body of the fused Monarch long convolution (see monarch_kernel.h for the algorithm),
 * with recomputation: no forward spectra are stored between the passes.
 *   x = u ⊙ w, dc = dy ⊙ v, c = conv(x) + D x:  dv = dy ⊙ c;  dx = corr(dc) + D dc;  du = dx ⊙ w;
 *   dw = dx ⊙ u;  dk_part[bx][h][f] = sum over the block's rows of DC[f] conj(X[f]) (N-point spectra,
 *   f <= M; one thread owns each bin: fixed order);  dD_part[bx][h] = sum of dc ⊙ x over the block's
 *   rows (per-thread sums in row order, then a fixed tree).
 * Per iteration: X and DC through the forward stages (two fp32 slab sets), one pairwise pass that
 * accumulates dk and applies the conv map to X (for dv) and the correlation map to DC (for dx),
 * then both inverses. */
#pragma once
#include "kernels/cuda/fftconv/monarch_kernel.h"

template <int R1>
MN_HD void mn_bwd_body(const MnArgs &a, int bx, int by, char *smem) {
    constexpr int M = MnGeo<R1>::M, RB = MnGeo<R1>::RB, HALF = MnGeo<R1>::HALF, NI = MnGeo<R1>::NI;
    constexpr int NPR = MnGeo<R1>::NPR;
    const int tid = mn_tid(), lane = tid & 31, warp = tid >> 5, h = by;
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
    else if (need_dk)
        for (int i = tid; i < M / 2; i += MN_THREADS) {   /* the dk pass needs only the angles */
            float s, c;
            mn_sincospi((float)i / (float)M, &s, &c);
            SC[i] = make_float2(s, c);
        }
    MnFrags f;
    mn_frags_init(f, lane);
    float2 acc[NPR][2], acch = make_float2(0.0f, 0.0f);
#pragma unroll
    for (int q = 0; q < NPR; q++) acc[q][0] = acc[q][1] = make_float2(0.0f, 0.0f);
    float dsum = 0.0f;
    mn_sync();
    for (int b0 = b_begin; b0 < b_end; b0 += RB) {
        float2 xs[NI][HALF], ds[NI][HALF];
        mn_forward_in<R1>(xs, a.u, a.w, a.in_bstride, hoff, a.L, a.vec_in, b0, b_end, need_fft, S16, red, scl);
        if (need_fft) {
            for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_fwd(f, S16, Sx, s, lane);
            mn_sync();
        }
        /* dc = dy ⊙ v (dy rows are [B,H,L]: stride H*L) */
        mn_forward_in<R1>(ds, a.dy, NULL, (int64_t)a.H * a.L, hoff, a.L, a.vec_y, b0, b_end, 0, S16, red, scl);
#pragma unroll
        for (int i = 0; i < NI; i++) {
            int r, c;
            mn_item<R1>(i, tid, r, c);
#pragma unroll
            for (int n1 = 0; n1 < HALF; n1++) {
                const int t = 2 * (n1 * 256 + c);
                if (a.v && b0 + r < b_end) {
                    const float2 vv = mn_ld2(a.v, (int64_t)(b0 + r) * a.in_bstride + hoff + t, t, a.L, a.vec_in);
                    ds[i][n1].x *= vv.x, ds[i][n1].y *= vv.y;
                }
                dsum += ds[i][n1].x * xs[i][n1].x + ds[i][n1].y * xs[i][n1].y;
            }
        }
        if (!need_fft) continue;
        {   /* outer DFT of dc; the fp16 slabs are free again (barrier after the inner forward of x) */
            float2 Y[NI][R1];
            float mx[RB];
#pragma unroll
            for (int r = 0; r < RB; r++) mx[r] = 0.0f;
#pragma unroll
            for (int i = 0; i < NI; i++) {
                int r, c;
                mn_item<R1>(i, tid, r, c);
                mn_outer_fwd<R1>(Y[i], ds[i], c);
                float m = 0.0f;
#pragma unroll
                for (int k1 = 0; k1 < R1; k1++) m = fmaxf(m, c_absmax(Y[i][k1]));
                mn_vmax<R1, RB>(mx, i, tid, m);
            }
            mn_rowmax<RB>(mx, red, scl + 16);
#pragma unroll
            for (int i = 0; i < NI; i++) {
                int r, c;
                mn_item<R1>(i, tid, r, c);
                const float s = scl[16 + r];
#pragma unroll
                for (int k1 = 0; k1 < R1; k1++) {
                    S16[mn_s16(r * R1 + k1, 0, c >> 4, c & 15)] = __float2half_rn(Y[i][k1].x * s);
                    S16[mn_s16(r * R1 + k1, 1, c >> 4, c & 15)] = __float2half_rn(Y[i][k1].y * s);
                }
                if (R1 == 1) {
                    S16[mn_s16(r, 0, (c >> 4) + 8, c & 15)] = __float2half_rn(0.0f);
                    S16[mn_s16(r, 1, (c >> 4) + 8, c & 15)] = __float2half_rn(0.0f);
                }
            }
            mn_sync();
            for (int s = warp; s < MN_SLABS; s += MN_WARPS) mn_inner_fwd(f, S16, Sd, s, lane);
            mn_sync();
        }
        /* pairwise step: dk accumulation, conv map of X (for dv), correlation map of DC (for dx) */
        float myc[RB], myd[RB];
#pragma unroll
        for (int r = 0; r < RB; r++) myc[r] = myd[r] = 0.0f;
#pragma unroll
        for (int j = 0; j < MnGeo<R1>::NJ; j++) {
            int r, i;
            mn_pair_item<R1>(j, tid, r, i);
            const int q = R1 > 1 ? j % NPR : 0, rq = R1 > 1 ? j / NPR : j;
            const int kp = i ? M - i : M / 2, pk = mn_pos<R1>(r, i), pp = mn_pos<R1>(r, kp);
            const float2 xk = Sx[pk], xp = Sx[pp], gk = Sd[pk], gp = Sd[pp];
            const float2 xqk = i ? xp : xk, xqp = i ? xk : xp, gqk = i ? gp : gk, gqp = i ? gk : gp;
            const float2 sc = SC[i];
            if (need_dk) {
                /* N-point spectra X[k] = al Z[k] + be conj Z[M-k], X[M-k] = conj(al) Z[M-k] + conj(be) conj Z[k]
                 * (al = (1 - i W^k)/2, be = (1 + i W^k)/2, W^k = exp(-i pi k/M)); for i = 0 the partner is
                 * itself and the second bin is M; bin M/2 is conj(Z[M/2]) */
                const float isx = 1.0f / scl[r], isd = 1.0f / scl[16 + r];
                const float2 al = make_float2(0.5f * (1.0f - sc.x), -0.5f * sc.y);
                const float2 be = make_float2(0.5f * (1.0f + sc.x), 0.5f * sc.y);
                const float2 uxk = c_scale(xk, isx), uxq = c_scale(xqk, isx);
                const float2 ugk = c_scale(gk, isd), ugq = c_scale(gqk, isd);
                const float2 Xk = c_add(c_mul(al, uxk), c_mul(be, c_conj(uxq)));
                const float2 Xq = c_add(c_mul(c_conj(al), uxq), c_mul(c_conj(be), c_conj(uxk)));
                const float2 Gk = c_add(c_mul(al, ugk), c_mul(be, c_conj(ugq)));
                const float2 Gq = c_add(c_mul(c_conj(al), ugq), c_mul(c_conj(be), c_conj(ugk)));
                acc[q][0] = c_add(acc[q][0], c_mulc(Gk, Xk));
                acc[q][1] = c_add(acc[q][1], c_mulc(Gq, Xq));
                if (i == 0) acch = c_add(acch, c_mul(c_conj(c_scale(gp, isd)), c_scale(xp, isx)));
            }
            if (need_c || need_dx) {
                float2 Ak, Bk, Ap, Bp;
                mn_coefs(Kp[i], sc, Ak, Bk, Ap, Bp);
                if (i == 0) Ap = c_conj(*Kh), Bp = make_float2(0.0f, 0.0f);
                if (need_c) {
                    const float2 nk = c_add(c_mul(Ak, xk), c_mul(Bk, c_conj(xqk)));
                    const float2 np = c_add(c_mul(Ap, xp), c_mul(Bp, c_conj(xqp)));
                    Sx[pk] = nk, Sx[pp] = np;
                    mn_vmax<R1, RB>(myc, rq, tid, fmaxf(c_absmax(nk), c_absmax(np)));
                }
                if (need_dx) {   /* correlation: conj(A), -conj(B) */
                    const float2 nk = c_sub(c_mul(c_conj(Ak), gk), c_mul(c_conj(Bk), c_conj(gqk)));
                    const float2 np = c_sub(c_mul(c_conj(Ap), gp), c_mul(c_conj(Bp), c_conj(gqp)));
                    Sd[pk] = nk, Sd[pp] = np;
                    mn_vmax<R1, RB>(myd, rq, tid, fmaxf(c_absmax(nk), c_absmax(np)));
                }
            }
        }
        {
            float my[2 * RB];
#pragma unroll
            for (int r = 0; r < RB; r++) my[r] = myc[r], my[RB + r] = myd[r];
            mn_rowmax<2 * RB>(my, red, scl + 32);
        }
        for (int s = warp; s < MN_SLABS; s += MN_WARPS) {
            if (need_c) mn_inner_inv(f, Sx, s, scl[32 + s / R1], lane);
            if (need_dx) mn_inner_inv(f, Sd, s, scl[32 + RB + s / R1], lane);
        }
        mn_sync();
        /* outputs, in two groups (dv; du and dw), each: shared reads and global loads, then stores */
        if (need_c) {
            float2 z[NI][HALF], gy[NI][HALF];
            mn_inverse_out<R1>(z, Sx);
#pragma unroll
            for (int i = 0; i < NI; i++) {
                int r, c;
                mn_item<R1>(i, tid, r, c);
#pragma unroll
                for (int n1 = 0; n1 < HALF; n1++) {
                    const int t = 2 * (n1 * 256 + c);
                    gy[i][n1] = make_float2(0.0f, 0.0f);
                    if (b0 + r < b_end) gy[i][n1] = mn_ld2(a.dy, ((int64_t)(b0 + r) * a.H + h) * a.L + t, t, a.L, a.vec_y);
                }
            }
#pragma unroll
            for (int i = 0; i < NI; i++) {
                int r, c;
                mn_item<R1>(i, tid, r, c);
                if (b0 + r >= b_end) continue;
                const float is = 1.0f / scl[r], isc = 1.0f / scl[32 + r];
#pragma unroll
                for (int n1 = 0; n1 < HALF; n1++) {
                    const int t = 2 * (n1 * 256 + c);
                    const float2 x = xs[i][n1];
                    const float2 cv = make_float2(z[i][n1].x * is * isc + Dh * x.x, z[i][n1].y * is * isc + Dh * x.y);
                    mn_st2(a.dv, (int64_t)(b0 + r) * a.in_bstride + hoff + t,
                           make_float2(gy[i][n1].x * cv.x, gy[i][n1].y * cv.y), t, a.L, a.vec_in);
                }
            }
        }
        if (need_dx) {
            float2 z[NI][HALF], ww[NI][HALF], uu[NI][HALF];
            mn_inverse_out<R1>(z, Sd);
#pragma unroll
            for (int i = 0; i < NI; i++) {
                int r, c;
                mn_item<R1>(i, tid, r, c);
#pragma unroll
                for (int n1 = 0; n1 < HALF; n1++) {
                    const int t = 2 * (n1 * 256 + c);
                    const int64_t off = (int64_t)(b0 + r) * a.in_bstride + hoff + t;
                    const int ok = b0 + r < b_end;
                    ww[i][n1] = make_float2(1.0f, 1.0f), uu[i][n1] = make_float2(0.0f, 0.0f);
                    if (ok && a.w && a.du) ww[i][n1] = mn_ld2(a.w, off, t, a.L, a.vec_in);
                    if (ok && a.dw) uu[i][n1] = mn_ld2(a.u, off, t, a.L, a.vec_in);
                }
            }
#pragma unroll
            for (int i = 0; i < NI; i++) {
                int r, c;
                mn_item<R1>(i, tid, r, c);
                if (b0 + r >= b_end) continue;
                const float is = 1.0f / scl[16 + r], isd = 1.0f / scl[32 + RB + r];
#pragma unroll
                for (int n1 = 0; n1 < HALF; n1++) {
                    const int t = 2 * (n1 * 256 + c);
                    const int64_t off = (int64_t)(b0 + r) * a.in_bstride + hoff + t;
                    const float2 dc = ds[i][n1];
                    const float2 dx = make_float2(z[i][n1].x * is * isd + Dh * dc.x, z[i][n1].y * is * isd + Dh * dc.y);
                    if (a.du) mn_st2(a.du, off, make_float2(dx.x * ww[i][n1].x, dx.y * ww[i][n1].y), t, a.L, a.vec_in);
                    if (a.dw) mn_st2(a.dw, off, make_float2(dx.x * uu[i][n1].x, dx.y * uu[i][n1].y), t, a.L, a.vec_in);
                }
            }
        }
    }
    if (need_dk) {
        if (R1 == 1) {   /* threads t and t + 128 own the same bins (even and odd rows): add in order */
            float2 *xch = (float2 *)S16;   /* free: the last reads of the slabs were before a barrier */
            if (tid >= 128) xch[3 * (tid - 128)] = acc[0][0], xch[3 * (tid - 128) + 1] = acc[0][1], xch[3 * (tid - 128) + 2] = acch;
            mn_sync();
            if (tid < 128) {
                acc[0][0] = c_add(acc[0][0], xch[3 * tid]);
                acc[0][1] = c_add(acc[0][1], xch[3 * tid + 1]);
                acch = c_add(acch, xch[3 * tid + 2]);
            }
        }
        float2 *part = a.dk_part + ((int64_t)bx * a.H + h) * (M + 1);
        if (R1 > 1 || tid < 128) {
#pragma unroll
            for (int q = 0; q < NPR; q++) {
                const int i = R1 > 1 ? tid + MN_THREADS * q : tid;
                part[i] = acc[q][0];
                part[i ? M - i : M] = acc[q][1];
                if (i == 0) part[M / 2] = acch;
            }
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
