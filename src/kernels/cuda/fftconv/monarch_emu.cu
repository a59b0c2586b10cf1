/* CPU execution of the Monarch kernels (monarch.h, monarch_emu_*): every thread of a block is a
 * user-level context (ucontext) on one host thread; a thread runs until it reaches a barrier
 * (__syncthreads or a warp collective), then the next one runs; a barrier opens when all of its
 * threads have arrived. The warp collectives are computed from the fragment layouts documented in
 * the PTX ISA (monarch_prims.h), so the kernel's index math, synchronization and numerics are
 * checked without a GPU; what remains unchecked is only that the hardware matches those layouts.
 * Shared memory starts filled with NaN bit patterns, so reads of unwritten slots show up. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "core/error.h"
#include "kernels/cuda/fftconv/monarch.h"
#include "kernels/cuda/fftconv/monarch_bwd.h"

#define EMU_STACK (128 * 1024)
#define EMU_SMS 4   /* pretend SM count for the batch tiling: several b-tiles even for small B */

typedef struct {
    ucontext_t ctx;
    char *stack;
    int wait;   /* 0 runnable, 1 at __syncthreads, 2 at a warp barrier */
    int done;
} EmuThread;

typedef struct {
    uint32_t a[32][4], b[32][2];
    const void *p[32];
    float f[32];
} EmuWarp;

typedef void (*EmuBody)(const MnArgs *a, int bx, int by, char *smem);

static struct {
    EmuThread th[MN_THREADS];
    EmuWarp warp[MN_WARPS];
    ucontext_t sched;
    int cur, reverse;
    EmuBody body;
    const MnArgs *args;
    int bx, by;
    char *smem;
} emu;

int mn_emu_tid(void) { return emu.cur; }

static void emu_wait(int kind) {
    const int me = emu.cur;
    emu.th[me].wait = kind;
    if (swapcontext(&emu.th[me].ctx, &emu.sched) != 0) lc_die("monarch emulator: swapcontext failed");
}

void mn_emu_syncthreads(void) { emu_wait(1); }
void mn_emu_syncwarp(void) { emu_wait(2); }

static float emu_half(uint32_t u, int hi) {
    const uint16_t bits = (uint16_t)(hi ? u >> 16 : u & 0xFFFF);
    __half h;
    memcpy(&h, &bits, 2);
    return __half2float(h);
}

void mn_emu_mma16816(float *d, const uint32_t *a, const uint32_t *b) {
    const int lane = emu.cur & 31;
    EmuWarp *W = &emu.warp[emu.cur >> 5];
    memcpy(W->a[lane], a, sizeof W->a[lane]);
    memcpy(W->b[lane], b, sizeof W->b[lane]);
    mn_emu_syncwarp();
    float A[16][16], Bm[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, t = l & 3;
        for (int q = 0; q < 4; q++) {
            const int row = g + 8 * (q & 1), col = 2 * t + 8 * (q >> 1);
            A[row][col] = emu_half(W->a[l][q], 0), A[row][col + 1] = emu_half(W->a[l][q], 1);
        }
        for (int q = 0; q < 2; q++) {
            Bm[2 * t + 8 * q][g] = emu_half(W->b[l][q], 0);
            Bm[2 * t + 8 * q + 1][g] = emu_half(W->b[l][q], 1);
        }
    }
    const int g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        double s = 0.0;   /* products of halves are exact; the sum is rounded once */
        for (int k = 0; k < 16; k++) s += (double)A[row][k] * (double)Bm[k][col];
        d[e] = (float)((double)d[e] + s);
    }
    mn_emu_syncwarp();
}

void mn_emu_ldsm_x4_trans(uint32_t *r, const void *p) {
    const int lane = emu.cur & 31;
    EmuWarp *W = &emu.warp[emu.cur >> 5];
    LC_ASSERT(((uintptr_t)p & 15) == 0, "monarch emulator: ldmatrix row address not 16-byte aligned");
    LC_ASSERT((char *)p >= emu.smem, "monarch emulator: ldmatrix address outside shared memory");
    W->p[lane] = p;
    mn_emu_syncwarp();
    const int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++) {
        const uint16_t *r0 = (const uint16_t *)W->p[8 * i + 2 * t], *r1 = (const uint16_t *)W->p[8 * i + 2 * t + 1];
        r[i] = (uint32_t)r0[g] | ((uint32_t)r1[g] << 16);
    }
    mn_emu_syncwarp();
}

float mn_emu_warp_reduce(float v, int op) {
    const int lane = emu.cur & 31;
    EmuWarp *W = &emu.warp[emu.cur >> 5];
    W->f[lane] = v;
    mn_emu_syncwarp();
    float x[32], y[32];
    memcpy(x, W->f, sizeof x);
    for (int o = 16; o > 0; o >>= 1) {   /* the butterfly of the device code, lane by lane */
        for (int l = 0; l < 32; l++) y[l] = op == 0 ? fmaxf(x[l], x[l ^ o]) : x[l] + x[l ^ o];
        memcpy(x, y, sizeof x);
    }
    mn_emu_syncwarp();
    return x[lane];
}

static void emu_entry(int tid) {
    emu.body(emu.args, emu.bx, emu.by, emu.smem);
    emu.th[tid].done = 1;   /* returns to the scheduler through uc_link */
}

/* Run one block (bx, by) of `body` to completion. */
static void emu_run_block(EmuBody body, const MnArgs *a, int bx, int by, char *smem) {
    emu.body = body, emu.args = a, emu.bx = bx, emu.by = by, emu.smem = smem;
    for (int i = 0; i < MN_THREADS; i++) {
        EmuThread *t = &emu.th[i];
        if (!t->stack) t->stack = (char *)xmalloc(EMU_STACK);
        if (getcontext(&t->ctx) != 0) lc_die("monarch emulator: getcontext failed");
        t->ctx.uc_stack.ss_sp = t->stack;
        t->ctx.uc_stack.ss_size = EMU_STACK;
        t->ctx.uc_link = &emu.sched;
        makecontext(&t->ctx, (void (*)(void))emu_entry, 1, i);
        t->wait = 0, t->done = 0;
    }
    int ndone = 0;
    for (;;) {
        int ran = 0;
        for (int k = 0; k < MN_THREADS; k++) {
            const int i = emu.reverse ? MN_THREADS - 1 - k : k;
            if (emu.th[i].done || emu.th[i].wait) continue;
            emu.cur = i;
            if (swapcontext(&emu.sched, &emu.th[i].ctx) != 0) lc_die("monarch emulator: swapcontext failed");
            ran = 1;
            ndone += emu.th[i].done;
        }
        if (ndone == MN_THREADS) break;
        int at_block = 0, released = 0;
        for (int i = 0; i < MN_THREADS; i++) at_block += !emu.th[i].done && emu.th[i].wait == 1;
        if (at_block == MN_THREADS - ndone) {
            LC_ASSERT(ndone == 0, "monarch emulator: __syncthreads after %d threads exited", ndone);
            for (int i = 0; i < MN_THREADS; i++) emu.th[i].wait = 0;
            released = 1;
        } else {
            for (int w = 0; w < MN_WARPS; w++) {
                int n = 0;
                for (int l = 0; l < 32; l++) n += !emu.th[32 * w + l].done && emu.th[32 * w + l].wait == 2;
                if (n == 32) {
                    for (int l = 0; l < 32; l++) emu.th[32 * w + l].wait = 0;
                    released = 1;
                }
            }
        }
        LC_ASSERT(ran || released, "monarch emulator: deadlock (threads wait at different barriers)");
    }
}

template <int R1>
static void emu_fwd_body(const MnArgs *a, int bx, int by, char *smem) {
    mn_fwd_body<R1>(*a, bx, by, smem);
}
template <int R1>
static void emu_bwd_body(const MnArgs *a, int bx, int by, char *smem) {
    mn_bwd_body<R1>(*a, bx, by, smem);
}

/* complex size M of the kernels for row length L (as monarch.cu) */
static int emu_m(int L) {
    LC_ASSERT(monarch_supported(L), "monarch emulator: L = %d is not supported", L);
    int M = 256;
    while (M < L) M *= 2;
    return M;
}

static EmuBody emu_pick(int M, int bwd) {
    switch (M) {
    case 256: return bwd ? emu_bwd_body<1> : emu_fwd_body<1>;
    case 512: return bwd ? emu_bwd_body<2> : emu_fwd_body<2>;
    case 1024: return bwd ? emu_bwd_body<4> : emu_fwd_body<4>;
    case 2048: return bwd ? emu_bwd_body<8> : emu_fwd_body<8>;
    default: return bwd ? emu_bwd_body<16> : emu_fwd_body<16>;
    }
}

/* position of tap s in the circular convolution of size N (as monarch.cu) */
static int emu_tap_pos(int s, int L, int N) { return s < L ? s : s + N - 2 * L; }

/* Kf [H][M+1] = rfft_N(placed filter), in double, rounded to float (what cuFFT computes in fp32) */
static float2 *emu_filter_spectrum(const float *k, int Lk, int L, int H, int N) {
    const int M = N / 2;
    float2 *Kf = (float2 *)xmalloc(sizeof(float2) * (size_t)H * (M + 1));
    for (int h = 0; h < H; h++)
        for (int f = 0; f <= M; f++) {
            double re = 0.0, im = 0.0;
            for (int s = 0; s < Lk; s++) {
                const int64_t p = emu_tap_pos(s, L, N);
                const double ang = -2.0 * 3.14159265358979323846 * (double)(((int64_t)f * p) % N) / N;
                re += k[(int64_t)h * Lk + s] * cos(ang), im += k[(int64_t)h * Lk + s] * sin(ang);
            }
            Kf[(int64_t)h * (M + 1) + f] = make_float2((float)re, (float)im);
        }
    return Kf;
}

static void emu_run_grid(EmuBody body, const MnArgs *a, int nbt, size_t smem_bytes, int reverse) {
    char *smem = (char *)xmalloc(smem_bytes + 16);
    char *base = (char *)(((uintptr_t)smem + 15) & ~(uintptr_t)15);
    emu.reverse = reverse;
    for (int by = 0; by < a->H; by++)
        for (int bx = 0; bx < nbt; bx++) {
            memset(base, 0xFF, smem_bytes);
            emu_run_block(body, a, bx, by, base);
        }
    free(smem);
}

extern "C" void monarch_emu_fwd(void *y, const void *u, const void *w, const void *v, int64_t in_bstride,
                                const float *k, int Lk, const float *D, int B, int H, int L, int reverse) {
    const int M = emu_m(L);
    float2 *Kf = emu_filter_spectrum(k, Lk, L, H, 2 * M);
    MnArgs a = {};
    a.u = (const mn_bf16 *)u, a.w = (const mn_bf16 *)w, a.v = (const mn_bf16 *)v;
    a.in_bstride = in_bstride, a.Kf = Kf, a.kf_stride = M + 1, a.D = D;
    a.B = B, a.H = H, a.L = L;
    a.vec_in = L % 2 == 0 && in_bstride % 2 == 0, a.vec_y = L % 2 == 0;
    a.y = (mn_bf16 *)y;
    int nbt;
    mn_tiles(B, H, 4096 / M, EMU_SMS, &a.BT, &nbt);
    emu_run_grid(emu_pick(M, 0), &a, nbt, mn_smem_bytes(M, 1), reverse);
    free(Kf);
}

extern "C" void monarch_emu_bwd(void *du, void *dw, void *dv, float *dk, float *dD, const void *dy, const void *u,
                                const void *w, const void *v, int64_t in_bstride, const float *k, int Lk,
                                const float *D, int B, int H, int L, int reverse) {
    const int M = emu_m(L), N = 2 * M;
    if (!w) dw = NULL;
    if (!v) dv = NULL;
    float2 *Kf = emu_filter_spectrum(k, Lk, L, H, N);
    MnArgs a = {};
    a.u = (const mn_bf16 *)u, a.w = (const mn_bf16 *)w, a.v = (const mn_bf16 *)v, a.dy = (const mn_bf16 *)dy;
    a.in_bstride = in_bstride, a.Kf = Kf, a.kf_stride = M + 1, a.D = D;
    a.B = B, a.H = H, a.L = L;
    a.vec_in = L % 2 == 0 && in_bstride % 2 == 0, a.vec_y = L % 2 == 0;
    a.du = (mn_bf16 *)du, a.dw = (mn_bf16 *)dw, a.dv = (mn_bf16 *)dv;
    int nbt;
    mn_tiles(B, H, 4096 / M, EMU_SMS, &a.BT, &nbt);
    float2 *part = dk ? (float2 *)xmalloc(sizeof(float2) * (size_t)nbt * H * (M + 1)) : NULL;
    float *pd = dD ? (float *)xmalloc(sizeof(float) * (size_t)nbt * H) : NULL;
    a.dk_part = part, a.dD_part = pd;
    emu_run_grid(emu_pick(M, 1), &a, nbt, mn_smem_bytes(M, 2), reverse);
    for (int h = 0; h < H && dk; h++) {   /* fixed-order sum over b-tiles, then the inverse real DFT / N */
        double *re = (double *)xmalloc(sizeof(double) * (M + 1)), *im = (double *)xmalloc(sizeof(double) * (M + 1));
        for (int f = 0; f <= M; f++) {
            float sr = 0.0f, si = 0.0f;
            for (int t = 0; t < nbt; t++) {
                const float2 p = part[((int64_t)t * H + h) * (M + 1) + f];
                sr += p.x, si += p.y;
            }
            re[f] = sr, im[f] = si;
        }
        for (int s = 0; s < Lk; s++) {
            const int64_t p = emu_tap_pos(s, L, N);
            double acc = re[0] + ((p & 1) ? -re[M] : re[M]);
            for (int f = 1; f < M; f++) {
                const double ang = 2.0 * 3.14159265358979323846 * (double)(((int64_t)f * p) % N) / N;
                acc += 2.0 * (re[f] * cos(ang) - im[f] * sin(ang));
            }
            dk[(int64_t)h * Lk + s] = (float)(acc / N);
        }
        free(re), free(im);
    }
    for (int h = 0; h < H && dD; h++) {
        double s = 0.0;
        for (int t = 0; t < nbt; t++) s += pd[(int64_t)t * H + h];
        dD[h] += (float)s;
    }
    free(part), free(pd), free(Kf);
}
