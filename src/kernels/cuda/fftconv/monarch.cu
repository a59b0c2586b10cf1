/* Host side of the "flashfft" long convolution (monarch.h): the filter spectrum (one batched cuFFT
 * R2C of the H filters per call, reused by every batch row), the launches of the fused kernels
 * (monarch_fwd.cu, monarch_bwd.cu), and the fixed-order reductions of the per-block dk spectra and
 * dD sums. Lengths the kernels do not handle go to the cuFFT baseline, explicitly (monarch_which).
 * Register budget of the kernels (__launch_bounds__ blocks per SM), chosen from measurements on an
 * H100 (docs/benchmarks.md): forward 2 (128 registers, a few bytes of spill, twice the occupancy);
 * backward 2 for L <= 2048 (128 registers, ~300-500 bytes of spill, still 1.4x faster than 1) and 1
 * above (its shared memory fits only one block anyway). LONGCONV_FLASHFFT_FWD_MINB and
 * LONGCONV_FLASHFFT_BWD_MINB = 1 or 2 override them (read once). */
#include <cufft.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/fftconv/cufft_conv.h"
#include "kernels/cuda/fftconv/monarch.h"
#include "kernels/cuda/fftconv/monarch_bwd.h"

#define MN_CUFFT_CHECK(call)                                                                      \
    do {                                                                                          \
        cufftResult r_ = (call);                                                                  \
        if (r_ != CUFFT_SUCCESS) lc_die_at(__FILE__, __LINE__, "cuFFT: %s failed (%d)", #call, (int)r_); \
    } while (0)

#define MN_MAX_L 4096

/* Outer radix R1 of the kernels for row length L (complex size M = 256 R1, the power of two
 * >= max(L, 256)), or 0 when L is longer than the fused kernels handle. */
static int mn_r1(int L) {
    if (L < 1 || L > MN_MAX_L) return 0;
    int M = 256;
    while (M < L) M *= 2;
    return M / 256;
}

/* the override in $name (1 or 2), or 0 when unset */
static int mn_minb_env(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    return atoi(s) >= 2 ? 2 : 1;
}

extern "C" int monarch_supported(int L) { return mn_r1(L) != 0; }
extern "C" const char *monarch_which(int L) { return mn_r1(L) ? "flashfft" : "cufft"; }

static int mn_sm_count(void) {
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    return sms;
}

/* ---- cuFFT plans of the filter transforms: batched in-place real FFTs of rows [N+2] ---- */
#define MN_MAX_PLANS 8

typedef struct {
    int N, rows;
    cufftType type;
    cufftHandle h;
} MnPlan;

static MnPlan mn_plans[MN_MAX_PLANS];
static int mn_nplans, mn_evict;

static cufftHandle mn_plan(int N, int rows, cufftType type) {
    for (int i = 0; i < mn_nplans; i++)
        if (mn_plans[i].N == N && mn_plans[i].rows == rows && mn_plans[i].type == type) return mn_plans[i].h;
    MnPlan *p;
    if (mn_nplans < MN_MAX_PLANS) {
        p = &mn_plans[mn_nplans++];
    } else {   /* round-robin replacement; the plan may be in use by queued work */
        p = &mn_plans[mn_evict];
        mn_evict = (mn_evict + 1) % MN_MAX_PLANS;
        CUDA_CHECK(cudaDeviceSynchronize());
        MN_CUFFT_CHECK(cufftDestroy(p->h));
    }
    int n = N, real = N + 2, cplx = N / 2 + 1;
    int inembed = type == CUFFT_R2C ? real : cplx, onembed = type == CUFFT_R2C ? cplx : real;
    MN_CUFFT_CHECK(cufftPlanMany(&p->h, 1, &n, &inembed, 1, inembed, &onembed, 1, onembed, type, rows));
    p->N = N, p->rows = rows, p->type = type;
    return p->h;
}

extern "C" void monarch_release(void) {
    CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < mn_nplans; i++) MN_CUFFT_CHECK(cufftDestroy(mn_plans[i].h));
    mn_nplans = mn_evict = 0;
}

/* Position of tap s of a row of length L in the circular convolution of size N >= 2L: s for the
 * causal taps, s + N - 2L for the bidirectional ones (L <= s < 2L reach x[t - s + 2L]). */
__host__ __device__ static inline int mn_tap_pos(int s, int L, int N) { return s < L ? s : s + N - 2 * L; }

/* Kb [H][N+2] = k [H][Lk] placed at mn_tap_pos, zero elsewhere. grid (ceil(N/256), H) */
__global__ void mn_kpad_kernel(float *Kb, const float *k, int Lk, int L, int N) {
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t h = blockIdx.y;
    if (p >= N) return;
    const int s = p < L ? p : p >= N - L ? p - N + 2 * L : Lk;   /* the tap at p, Lk: none */
    Kb[h * (N + 2) + p] = s < Lk ? k[h * Lk + s] : 0.0f;
}

/* Kb [H][N+2] in place: the N/2+1 = M+1 bins of the rfft of the placed filter (cuFFT's padded
 * in-place layout) */
static void mn_filter_spectrum(float *Kb, const float *k, int Lk, int L, int H, int N) {
    mn_kpad_kernel<<<dim3((unsigned)CEIL_DIV(N, 256), (unsigned)H), 256, 0, cuda_stream()>>>(Kb, k, Lk, L, N);
    CUDA_CHECK_LAUNCH();
    cufftHandle p = mn_plan(N, H, CUFFT_R2C);
    MN_CUFFT_CHECK(cufftSetStream(p, cuda_stream()));
    MN_CUFFT_CHECK(cufftExecR2C(p, (cufftReal *)Kb, (cufftComplex *)Kb));
}

/* dk spectrum Kb[h][f] = sum over b-tiles t (in order) of part[t][h][f], f <= M. grid (ceil((M+1)/256), H) */
__global__ void mn_dk_sum_kernel(float2 *Kb, const float2 *part, int nbt, int H, int M) {
    const int f = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t h = blockIdx.y;
    if (f > M) return;
    float2 s = part[h * (M + 1) + f];
    for (int t = 1; t < nbt; t++) {
        const float2 p = part[((int64_t)t * H + h) * (M + 1) + f];
        s.x += p.x, s.y += p.y;
    }
    Kb[h * (M + 1) + f] = s;
}

/* dk [H][Lk] = R[h][mn_tap_pos(s)] / N (R: rows of N+2 floats after the inverse FFT).
 * grid (ceil(Lk/256), H) */
__global__ void mn_dk_out_kernel(float *dk, const float *R, int Lk, int L, int N) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t h = blockIdx.y;
    if (s < Lk) dk[h * Lk + s] = R[h * (N + 2) + mn_tap_pos(s, L, N)] * (1.0f / (float)N);
}

/* dD[h] += sum over b-tiles (in order, in double) of part[t][h] */
__global__ void mn_dD_kernel(float *dD, const float *part, int nbt, int H) {
    const int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    double s = 0.0;
    for (int t = 0; t < nbt; t++) s += (double)part[(int64_t)t * H + h];
    dD[h] += (float)s;
}

static void mn_dispatch(int R1, const MnArgs &a, int nbt, int bwd) {
    static int init, fwd_env, bwd_env;
    if (!init) {
        fwd_env = mn_minb_env("LONGCONV_FLASHFFT_FWD_MINB");
        bwd_env = mn_minb_env("LONGCONV_FLASHFFT_BWD_MINB");
        init = 1;
    }
    if (bwd) mn_launch_bwd(R1, bwd_env ? bwd_env : R1 <= 8 ? 2 : 1, a, nbt);
    else mn_launch_fwd(R1, fwd_env ? fwd_env : 2, a, nbt);
}

static int mn_aligned4(const void *p) { return ((uintptr_t)p & 3) == 0; }

static void mn_check_args(const char *op, int64_t in_bstride, int Lk, int B, int H, int L) {
    LC_ASSERT(L >= 1 && L <= (1 << 28), "%s: L %d out of range [1, 2^28]", op, L);
    LC_ASSERT(Lk >= 1 && Lk <= 2 * L, "%s: need 1 <= Lk <= 2L (Lk %d, L %d)", op, Lk, L);
    LC_ASSERT(B >= 1 && H >= 1 && H <= 65535, "%s: B %d, H %d out of range", op, B, H);
    LC_ASSERT(in_bstride >= (int64_t)H * L, "%s: in_bstride %lld < H*L", op, (long long)in_bstride);
}

static size_t mn_align(size_t b) { return (b + 255) & ~(size_t)255; }

extern "C" void monarch_fwd(act_t *y, const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                            const acc_t *k, int Lk, const acc_t *D, int B, int H, int L) {
    mn_check_args("fftconv_fwd", in_bstride, Lk, B, H, L);
    const int R1 = mn_r1(L);
    if (!R1) {   /* explicit fallback: not a length of the fused kernels (monarch_which) */
        cufftconv_fwd(y, u, w, v, in_bstride, k, Lk, D, B, H, L);
        return;
    }
    const int M = 256 * R1, N = 2 * M;
    float *Kb = (float *)cuda_scratch((size_t)H * (N + 2) * sizeof(float));
    mn_filter_spectrum(Kb, (const float *)k, Lk, L, H, N);
    MnArgs a = {};
    a.u = (const mn_bf16 *)u, a.w = (const mn_bf16 *)w, a.v = (const mn_bf16 *)v;
    a.in_bstride = in_bstride;
    a.Kf = (const float2 *)Kb, a.kf_stride = M + 1;
    a.D = (const float *)D;
    a.B = B, a.H = H, a.L = L;
    a.vec_in = L % 2 == 0 && in_bstride % 2 == 0 && mn_aligned4(u) && mn_aligned4(w) && mn_aligned4(v);
    a.vec_y = L % 2 == 0 && mn_aligned4(y);
    a.y = (mn_bf16 *)y;
    int nbt;
    mn_tiles(B, H, 16 / R1, mn_sm_count(), &a.BT, &nbt);
    mn_dispatch(R1, a, nbt, 0);
}

extern "C" void monarch_bwd(act_t *du, act_t *dw, act_t *dv, acc_t *dk, acc_t *dD, const act_t *dy,
                            const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                            const acc_t *k, int Lk, const acc_t *D, int B, int H, int L) {
    mn_check_args("fftconv_bwd", in_bstride, Lk, B, H, L);
    const int R1 = mn_r1(L);
    if (!R1) {   /* explicit fallback (monarch_which) */
        cufftconv_bwd(du, dw, dv, dk, dD, dy, u, w, v, in_bstride, k, Lk, D, B, H, L);
        return;
    }
    if (!w) dw = NULL;   /* dw and dv exist only with their gates */
    if (!v) dv = NULL;
    const int need_kf = du || dw || dv, need_fft = need_kf || dk;
    if (!need_fft && !dD) return;
    const int M = 256 * R1, N = 2 * M;
    MnArgs a = {};
    int nbt;
    mn_tiles(B, H, 16 / R1, mn_sm_count(), &a.BT, &nbt);
    const size_t kb = (need_kf || dk) ? mn_align((size_t)H * (N + 2) * sizeof(float)) : 0;
    const size_t pk = dk ? mn_align((size_t)nbt * H * (M + 1) * sizeof(float2)) : 0;
    const size_t pd = dD ? mn_align((size_t)nbt * H * sizeof(float)) : 0;
    char *ws = (char *)cuda_scratch(kb + pk + pd + 256);
    float *Kb = (float *)ws;
    if (need_kf) mn_filter_spectrum(Kb, (const float *)k, Lk, L, H, N);
    a.u = (const mn_bf16 *)u, a.w = (const mn_bf16 *)w, a.v = (const mn_bf16 *)v, a.dy = (const mn_bf16 *)dy;
    a.in_bstride = in_bstride;
    a.Kf = need_kf ? (const float2 *)Kb : NULL, a.kf_stride = M + 1;
    a.D = (const float *)D;
    a.B = B, a.H = H, a.L = L;
    a.vec_in = L % 2 == 0 && in_bstride % 2 == 0 && mn_aligned4(u) && mn_aligned4(w) && mn_aligned4(v) &&
               mn_aligned4(du) && mn_aligned4(dw) && mn_aligned4(dv);
    a.vec_y = L % 2 == 0 && mn_aligned4(dy);
    a.du = (mn_bf16 *)du, a.dw = (mn_bf16 *)dw, a.dv = (mn_bf16 *)dv;
    a.dk_part = dk ? (float2 *)(ws + kb) : NULL;
    a.dD_part = dD ? (float *)(ws + kb + pk) : NULL;
    mn_dispatch(R1, a, nbt, 1);
    cudaStream_t st = cuda_stream();
    if (dk) {   /* the kernel is done reading Kb (stream order): it takes the dk spectrum */
        mn_dk_sum_kernel<<<dim3((unsigned)CEIL_DIV(M + 1, 256), (unsigned)H), 256, 0, st>>>(
            (float2 *)Kb, a.dk_part, nbt, H, M);
        CUDA_CHECK_LAUNCH();
        cufftHandle p = mn_plan(N, H, CUFFT_C2R);
        MN_CUFFT_CHECK(cufftSetStream(p, st));
        MN_CUFFT_CHECK(cufftExecC2R(p, (cufftComplex *)Kb, (cufftReal *)Kb));
        mn_dk_out_kernel<<<dim3((unsigned)CEIL_DIV(Lk, 256), (unsigned)H), 256, 0, st>>>((float *)dk, Kb, Lk, L, N);
        CUDA_CHECK_LAUNCH();
    }
    if (dD) {
        mn_dD_kernel<<<(unsigned)CEIL_DIV(H, 128), 128, 0, st>>>((float *)dD, a.dD_part, nbt, H);
        CUDA_CHECK_LAUNCH();
    }
}
