/* Building blocks of the Monarch ("flashfft") long-convolution kernels, written once for two
 * targets: the GPU (nvcc device pass: inline PTX mma.sync / ldmatrix, __syncthreads, shuffles)
 * and the host (the same source executed by the thread-level emulator of monarch_emu.cu, which
 * provides the warp collectives), so the kernel logic can be tested on machines without a GPU.
 *
 * Tensor-core shapes (PTX ISA, mma.m16n8k16 .f16 inputs, .f32 accumulators), lane = 4 g + t:
 *   A 16x16 row-major, 4 regs of 2 halves: a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
 *   B 16x8 (k x n), 2 regs: b0 (k = 2t..2t+1, n = g), b1 (k = 2t+8..2t+9, n = g)
 *   C 16x8 fp32, 4 regs: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
 * The accumulators of two adjacent n-tiles, rounded to half pairs, are exactly the A operand of the
 * next matmul (c0c1 -> a0, c2c3 -> a1 of tile 0; a2, a3 of tile 1): stages chain in registers.
 * ldmatrix.x4.trans: lane l gives the address of row l%8 of 8x8 matrix l/8; each lane receives,
 * per matrix, the elements (row 2t, col g) and (row 2t+1, col g): the B operand of a row-major
 * [k][n] tile in shared memory. */
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"

#define MN_HD __host__ __device__ __forceinline__

#define MN_THREADS 256
#define MN_WARPS 8
#define MN_SLABS 16          /* 256-point slabs per iteration (16 * 256 = 4096 complex values) */
#define MN_S16_SLAB 512      /* halves per slab of the fp16 buffer: re plane, im plane, 16x16 each */
#define MN_S32_SLAB 258      /* float2 per slab of the fp32 buffer: 256 + 16 bytes (slabs rotate banks) */
#define MN_S16_BYTES (MN_SLABS * MN_S16_SLAB * 2)
#define MN_S32_BYTES (MN_SLABS * MN_S32_SLAB * 8)
#define MN_RED_FLOATS (MN_WARPS * 32)

typedef __nv_bfloat16 mn_bf16;

#ifndef __CUDA_ARCH__
/* Host emulation of the block and warp collectives (monarch_emu.cu). */
int mn_emu_tid(void);
void mn_emu_syncthreads(void);
void mn_emu_syncwarp(void);
void mn_emu_mma16816(float *d, const uint32_t *a, const uint32_t *b);
void mn_emu_ldsm_x4_trans(uint32_t *r, const void *p);
float mn_emu_warp_reduce(float v, int op);   /* op 0: max, 1: sum (butterfly order) */
#endif

/* ---- thread indexing and synchronization ---- */
MN_HD int mn_tid() {
#ifdef __CUDA_ARCH__
    return (int)threadIdx.x;
#else
    return mn_emu_tid();
#endif
}

MN_HD void mn_sync() {
#ifdef __CUDA_ARCH__
    __syncthreads();
#else
    mn_emu_syncthreads();
#endif
}

MN_HD void mn_syncwarp() {
#ifdef __CUDA_ARCH__
    __syncwarp();
#else
    mn_emu_syncwarp();
#endif
}

/* Max (NaN ignored, as fmaxf) of v over the warp; every lane gets it. */
MN_HD float mn_warp_max(float v) {
#ifdef __CUDA_ARCH__
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
#else
    return mn_emu_warp_reduce(v, 0);
#endif
}

/* Sum over the warp in butterfly order (the same on every run). */
MN_HD float mn_warp_sum(float v) {
#ifdef __CUDA_ARCH__
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
#else
    return mn_emu_warp_reduce(v, 1);
#endif
}

/* ---- tensor cores ---- */
/* d[16x8] += a[16x16] b[16x8], fp16 inputs, fp32 accumulation */
MN_HD void mn_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#ifdef __CUDA_ARCH__
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    mn_emu_mma16816(d, a, b);
#endif
}

/* Four 8x8 b16 matrices from shared memory, transposed (see the header comment). */
MN_HD void mn_ldsm_x4_trans(uint32_t (&r)[4], const __half *p) {
#ifdef __CUDA_ARCH__
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
#else
    mn_emu_ldsm_x4_trans(r, p);
#endif
}

/* Two floats rounded to fp16 and packed: lo in the low 16 bits (the lower matrix index). */
MN_HD uint32_t mn_pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

/* ---- complex arithmetic (float2 = re, im) ---- */
MN_HD float2 c_mul(float2 a, float2 b) { return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }
MN_HD float2 c_mulc(float2 a, float2 b) { return make_float2(a.x * b.x + a.y * b.y, a.y * b.x - a.x * b.y); } /* a conj(b) */
MN_HD float2 c_conj(float2 a) { return make_float2(a.x, -a.y); }
MN_HD float2 c_add(float2 a, float2 b) { return make_float2(a.x + b.x, a.y + b.y); }
MN_HD float2 c_sub(float2 a, float2 b) { return make_float2(a.x - b.x, a.y - b.y); }
MN_HD float2 c_scale(float2 a, float s) { return make_float2(a.x * s, a.y * s); }
MN_HD float c_absmax(float2 a) { return fmaxf(fabsf(a.x), fabsf(a.y)); }

/* sin(pi x), cos(pi x) */
MN_HD void mn_sincospi(float x, float *s, float *c) {
#ifdef __CUDA_ARCH__
    sincospif(x, s, c);
#else
    *s = (float)sin(3.14159265358979323846 * (double)x);
    *c = (float)cos(3.14159265358979323846 * (double)x);
#endif
}

/* cos(2 pi j / 16) and sin(2 pi j / 16): exact table values, folded when j is a constant */
MN_HD float mn_cos16(int j) {
    j &= 15;
    const int a = j <= 8 ? j : 16 - j;   /* cos is even */
    const float t0 = 1.0f, t1 = 0.923879532511286756f, t2 = 0.707106781186547524f, t3 = 0.382683432365089772f;
    const int b = a <= 4 ? a : 8 - a;    /* cos(pi - x) = -cos(x) */
    const float v = b == 0 ? t0 : b == 1 ? t1 : b == 2 ? t2 : b == 3 ? t3 : 0.0f;
    return a <= 4 ? v : -v;
}
MN_HD float mn_sin16(int j) { return mn_cos16(j - 4); }

/* v * exp(S 2 pi i j / 16) with the trivial factors done without multiplies */
template <int S>
MN_HD float2 mn_w16(float2 v, int j) {
    j &= 15;
    if (j == 0) return v;
    if (j == 8) return make_float2(-v.x, -v.y);
    if (j == 4) return S > 0 ? make_float2(-v.y, v.x) : make_float2(v.y, -v.x);
    if (j == 12) return S > 0 ? make_float2(v.y, -v.x) : make_float2(-v.y, v.x);
    return c_mul(v, make_float2(mn_cos16(j), S > 0 ? mn_sin16(j) : -mn_sin16(j)));
}

/* In-register DFT of N <= 16 points in natural order, X[k] = sum_n x[n] exp(S 2 pi i n k / N)
 * (S = -1 forward, +1 inverse, unnormalized): recursive radix-2 decimation in time. */
template <int N, int S>
struct MnDft {
    static MN_HD void run(float2 *x) {
        float2 e[N / 2], o[N / 2];
#pragma unroll
        for (int i = 0; i < N / 2; i++) e[i] = x[2 * i], o[i] = x[2 * i + 1];
        MnDft<N / 2, S>::run(e);
        MnDft<N / 2, S>::run(o);
#pragma unroll
        for (int k = 0; k < N / 2; k++) {
            const float2 t = mn_w16<S>(o[k], k * (16 / N));
            x[k] = c_add(e[k], t);
            x[k + N / 2] = c_sub(e[k], t);
        }
    }
};
template <int S>
struct MnDft<1, S> {
    static MN_HD void run(float2 *) {}
};

/* Power-of-two factor s with max * s in [0.5, 1) (1 for 0, Inf, NaN): scaling by it is exact and
 * puts a row into the fp16 range with full relative precision for its largest values. */
MN_HD float mn_pow2_scale(float m) {
    if (!(m > 0.0f) || isinf(m)) return 1.0f;
    int e;
    frexpf(m, &e);
    e = e < -100 ? -100 : e > 100 ? 100 : e;
    return ldexpf(1.0f, -e);
}

/* ---- shared-memory layouts ----
 * fp16 buffer: per slab a re and an im plane of 16 rows x 16 halves; the two 16-byte halves of a
 * row swap for rows 4-7 and 12-15 so that the 8 row addresses of an ldmatrix hit 8 distinct
 * 16-byte bank groups. Index in halves. */
MN_HD int mn_s16(int s, int plane, int row, int col) {
    return s * MN_S16_SLAB + plane * 256 + row * 16 + ((((col >> 3) ^ (row >> 2)) & 1) << 3) + (col & 7);
}

/* fp32 buffer: interleaved complex (float2), per slab 16 rows x 16 columns (128 bytes a row), the
 * 16-byte chunk of a row XOR-ed with f(row) = ((row&1)<<2) ^ (row&6): conflict-free for the
 * accumulator stores (rows g, g+1, 4 chunks), for the transposed inverse stores (rows 2t, one
 * float2 per lane) and for row-wise reads. Index in float2. */
MN_HD int mn_s32(int s, int row, int col) {
    const int f = ((row & 1) << 2) ^ (row & 6);
    return s * MN_S32_SLAB + row * 16 + ((((col >> 1) ^ f) & 7) << 1) + (col & 1);
}

/* ---- constant fragments of the 16-point DFT matrix F[k][n] = exp(-2 pi i k n / 16) ---- */
typedef struct {
    uint32_t ar[4], ai[4], ain[4];           /* F as the A operand: re, im, -im */
    uint32_t br[2][2], bi[2][2], bin[2][2];  /* F as the B operand of n-tile j (F is symmetric) */
    float2 tw[2][4];                          /* exp(-2 pi i row col / 256) at accumulator (tile, reg) */
} MnFrags;

MN_HD void mn_frags_init(MnFrags &f, int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const int row = g + 8 * (q & 1), col = 2 * t + 8 * (q >> 1);
        const int j0 = row * col, j1 = row * (col + 1);
        f.ar[q] = mn_pack(mn_cos16(j0), mn_cos16(j1));
        f.ai[q] = mn_pack(-mn_sin16(j0), -mn_sin16(j1));
        f.ain[q] = mn_pack(mn_sin16(j0), mn_sin16(j1));
    }
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int q = 0; q < 2; q++) {
            const int k0 = 2 * t + 8 * q, n = 8 * j + g;
            const int j0 = k0 * n, j1 = (k0 + 1) * n;
            f.br[j][q] = mn_pack(mn_cos16(j0), mn_cos16(j1));
            f.bi[j][q] = mn_pack(-mn_sin16(j0), -mn_sin16(j1));
            f.bin[j][q] = mn_pack(mn_sin16(j0), mn_sin16(j1));
        }
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int row = g + 8 * (e >> 1), col = 8 * j + 2 * t + (e & 1);
            float s, c;
            mn_sincospi((float)((row * col) & 255) / 128.0f, &s, &c);
            f.tw[j][e] = make_float2(c, -s);
        }
}

/* ---- the 256-point inner transforms of one slab, one warp (see monarch_kernel.h) ----
 * Forward: x[n2][n3] (fp16 buffer, slab s) -> X[k2 + 16 k3] stored fp32 at (row k2, col k3):
 *   D1 = F x (contract n2), D1 *= w256^(k2 n3), X = D1 F (contract n3). */
MN_HD void mn_inner_fwd(const MnFrags &f, const __half *S16, float2 *S32, int s, int lane) {
    const int g = lane >> 2, t = lane & 3, mi = lane >> 3;
    uint32_t xr[4], xi[4];
    const int rr = (lane & 7) + 8 * (mi & 1), cc = 8 * (mi >> 1);
    mn_ldsm_x4_trans(xr, S16 + mn_s16(s, 0, rr, cc));
    mn_ldsm_x4_trans(xi, S16 + mn_s16(s, 1, rr, cc));
    float d1r[2][4], d1i[2][4];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t br[2] = {xr[2 * j], xr[2 * j + 1]}, bi[2] = {xi[2 * j], xi[2 * j + 1]};
#pragma unroll
        for (int e = 0; e < 4; e++) d1r[j][e] = 0.0f, d1i[j][e] = 0.0f;
        mn_mma(d1r[j], f.ar, br);
        mn_mma(d1r[j], f.ain, bi);
        mn_mma(d1i[j], f.ar, bi);
        mn_mma(d1i[j], f.ai, br);
    }
    uint32_t ar[4], ai[4];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        float2 v[4];
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = c_mul(make_float2(d1r[j][e], d1i[j][e]), f.tw[j][e]);
        ar[2 * j] = mn_pack(v[0].x, v[1].x), ar[2 * j + 1] = mn_pack(v[2].x, v[3].x);
        ai[2 * j] = mn_pack(v[0].y, v[1].y), ai[2 * j + 1] = mn_pack(v[2].y, v[3].y);
    }
#pragma unroll
    for (int j = 0; j < 2; j++) {
        float dr[4] = {0.0f, 0.0f, 0.0f, 0.0f}, di[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        mn_mma(dr, ar, f.br[j]);
        mn_mma(dr, ai, f.bin[j]);
        mn_mma(di, ar, f.bi[j]);
        mn_mma(di, ai, f.br[j]);
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
            *(float4 *)(S32 + mn_s32(s, g + 8 * hh, 8 * j + 2 * t)) =
                make_float4(dr[2 * hh], di[2 * hh], dr[2 * hh + 1], di[2 * hh + 1]);
    }
}

/* Inverse (unnormalized, conjugate DFT matrices), in place on slab s of the fp32 buffer:
 * Y[k2][k3] * sc -> y[n2][n3] stored at (row n2, col n3):
 *   E^T = conj(F) Y^T (contract k3), E^T *= conj(w256^(k2 n3)), y^T = E^T conj(F) (contract k2). */
MN_HD void mn_inner_inv(const MnFrags &f, float2 *S32, int s, float sc, int lane) {
    const int g = lane >> 2, t = lane & 3;
    uint32_t yr[2][2], yi[2][2];
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int q = 0; q < 2; q++) {
            const float4 v = *(const float4 *)(S32 + mn_s32(s, 8 * j + g, 2 * t + 8 * q));
            yr[j][q] = mn_pack(v.x * sc, v.z * sc);
            yi[j][q] = mn_pack(v.y * sc, v.w * sc);
        }
    uint32_t ar[4], ai[4];
#pragma unroll
    for (int j = 0; j < 2; j++) {
        float er[4] = {0.0f, 0.0f, 0.0f, 0.0f}, ei[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        mn_mma(er, f.ar, yr[j]);
        mn_mma(er, f.ai, yi[j]);
        mn_mma(ei, f.ar, yi[j]);
        mn_mma(ei, f.ain, yr[j]);
        float2 v[4];
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = c_mulc(make_float2(er[e], ei[e]), f.tw[j][e]);
        ar[2 * j] = mn_pack(v[0].x, v[1].x), ar[2 * j + 1] = mn_pack(v[2].x, v[3].x);
        ai[2 * j] = mn_pack(v[0].y, v[1].y), ai[2 * j + 1] = mn_pack(v[2].y, v[3].y);
    }
    float gr[2][4], gi[2][4];
#pragma unroll
    for (int j = 0; j < 2; j++) {
#pragma unroll
        for (int e = 0; e < 4; e++) gr[j][e] = 0.0f, gi[j][e] = 0.0f;
        mn_mma(gr[j], ar, f.br[j]);
        mn_mma(gr[j], ai, f.bi[j]);
        mn_mma(gi[j], ai, f.br[j]);
        mn_mma(gi[j], ar, f.bin[j]);
    }
    mn_syncwarp();   /* every lane has read the slab (the mma above already implies it) */
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int n3 = g + 8 * (e >> 1), n2 = 8 * j + 2 * t + (e & 1);
            S32[mn_s32(s, n2, n3)] = make_float2(gr[j][e], gi[j][e]);
        }
}
