/* cuFFT baseline of the long convolution, FFT size N = 2L (what PyTorch does, with the elementwise
 * work fused into small kernels):
 *   Kf = rfft(k[h] zero-padded to N), once per call, reused across the batch;
 *   per row (b,h): x = u ⊙ w;  c = irfft(rfft(x padded) ⊙ Kf)[:L] / N + D x;  y = v ⊙ c.
 * Backward recomputes the forward FFTs instead of storing them:
 *   dc = dy ⊙ v;  dv = dy ⊙ c;  dx = irfft(rfft(dc) ⊙ conj(Kf))[:L] / N + D dc;  du = dx ⊙ w;  dw = dx ⊙ u;
 *   dk = irfft(sum_b rfft(dc_b) ⊙ conj(rfft(x_b)))[:Lk] / N;  dD += sum_{b,t} dc ⊙ x.
 * Spectra live in place: a row of N+2 floats holds the padded real signal and then its L+1 complex
 * bins (cuFFT's padded in-place layout). Rows are processed in chunks of at most ~1 GiB per buffer
 * (X for x, G for dc), so the workspace does not grow with the batch; the filter spectra Kf (and
 * dKf in the backward) are [H, N+2] for the whole call. Everything is fp32 between the bf16 loads
 * and stores; the products u ⊙ w and dy ⊙ v of two bf16 values are exact in fp32.
 * Determinism: the dk spectrum is summed over the batch by one thread per (h, bin) in b order
 * (chunk after chunk, b ascending), dD from per-block partial sums added in a fixed order in
 * double; no atomics. cuFFT itself is deterministic for a given plan.
 * One host thread; all work on conv_stream(). */
#include <cuda_bf16.h>
#include <cufft.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/fftconv/cufft_conv.h"

static const char *cufft_result_name(cufftResult r) {
    switch (r) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    default: return "unknown cufftResult";
    }
}

#define CUFFT_CHECK(call)                                                                         \
    do {                                                                                          \
        cufftResult r_ = (call);                                                                  \
        if (r_ != CUFFT_SUCCESS)                                                                  \
            lc_die_at(__FILE__, __LINE__, "cuFFT: %s failed: %s (%d)", #call, cufft_result_name(r_), \
                      (int)r_);                                                                   \
    } while (0)

/* The backend's one stream (0, the legacy stream, until the backend table is first made). */
static cudaStream_t conv_stream(void) { return cuda_stream(); }

/* ---- sizes ---- */
#define CONV_THREADS 256
#define CONV_PER_THREAD 8
#define CONV_SEG (CONV_THREADS * CONV_PER_THREAD)   /* elements of a row per block in row kernels */
#define CONV_CHUNK_BYTES ((size_t)1 << 30)         /* target size of one chunk buffer (X or G) */
#define CONV_MAX_GRID_Y 65535                       /* rows of a chunk and H go on gridDim.y */

/* padded in-place row: N reals, then N/2+1 complex bins */
__host__ __device__ static inline int64_t row_floats(int N) { return (int64_t)N + 2; }

static size_t conv_chunk_bytes = CONV_CHUNK_BYTES;

extern "C" void cufftconv_set_chunk_bytes(size_t bytes) { conv_chunk_bytes = bytes ? bytes : CONV_CHUNK_BYTES; }

/* Rows per chunk, a function of N alone so plans are shared across calls. */
static int64_t chunk_rows(int N) {
    int64_t r = (int64_t)(conv_chunk_bytes / ((size_t)row_floats(N) * sizeof(float)));
    if (r < 1) r = 1;
    return r > CONV_MAX_GRID_Y ? CONV_MAX_GRID_Y : r;
}

/* ---- plan cache: batched in-place real FFTs keyed by (N, rows, direction) ----
 * Plans do not own work memory (auto-allocation off): all share one work area, grown to the
 * largest plan's need and set before every execution. */
#define CONV_MAX_PLANS 32

typedef struct {
    int N;
    int64_t rows;
    cufftType type;
    cufftHandle handle;
} ConvPlan;

static ConvPlan conv_plans[CONV_MAX_PLANS];
static int conv_nplans, conv_evict;
static void *conv_work;        /* cuFFT work area */
static size_t conv_work_cap;
static char *conv_ws;          /* our workspace: Kf, dKf, X, G, dD partials */
static size_t conv_ws_cap;

static void work_reserve(size_t bytes) {
    if (bytes <= conv_work_cap) return;
    CUDA_CHECK(cudaDeviceSynchronize());   /* plans in flight may still use the old area */
    if (conv_work) CUDA_CHECK(cudaFree(conv_work));
    conv_work = NULL;
    CUDA_CHECK(cudaMalloc(&conv_work, bytes));
    conv_work_cap = bytes;
}

static cufftHandle plan_get(int N, int64_t rows, cufftType type) {
    for (int i = 0; i < conv_nplans; i++)
        if (conv_plans[i].N == N && conv_plans[i].rows == rows && conv_plans[i].type == type)
            return conv_plans[i].handle;
    ConvPlan *p;
    if (conv_nplans < CONV_MAX_PLANS) {
        p = &conv_plans[conv_nplans++];
    } else {   /* full: replace round-robin (a run sees few shapes, so this is rare) */
        p = &conv_plans[conv_evict];
        conv_evict = (conv_evict + 1) % CONV_MAX_PLANS;
        CUDA_CHECK(cudaDeviceSynchronize());
        CUFFT_CHECK(cufftDestroy(p->handle));
    }
    long long n = N, nf = N / 2 + 1, padded = row_floats(N);
    long long inembed = type == CUFFT_R2C ? padded : nf, onembed = type == CUFFT_R2C ? nf : padded;
    size_t work = 0;
    CUFFT_CHECK(cufftCreate(&p->handle));
    CUFFT_CHECK(cufftSetAutoAllocation(p->handle, 0));
    CUFFT_CHECK(cufftMakePlanMany64(p->handle, 1, &n, &inembed, 1, inembed, &onembed, 1, onembed, type,
                                    (long long)rows, &work));
    p->N = N;
    p->rows = rows;
    p->type = type;
    work_reserve(work > 0 ? work : 1);
    return p->handle;
}

/* In-place batched real FFT of `rows` padded rows of buf [rows, N+2], in pieces of chunk_rows(N). */
static void fft_rows(cufftType type, float *buf, int64_t rows, int N) {
    const int64_t step = chunk_rows(N);
    for (int64_t r = 0; r < rows; r += step) {
        int64_t n = rows - r < step ? rows - r : step;
        cufftHandle h = plan_get(N, n, type);
        CUFFT_CHECK(cufftSetWorkArea(h, conv_work));
        CUFFT_CHECK(cufftSetStream(h, conv_stream()));
        float *p = buf + r * row_floats(N);
        if (type == CUFFT_R2C)
            CUFFT_CHECK(cufftExecR2C(h, (cufftReal *)p, (cufftComplex *)p));
        else
            CUFFT_CHECK(cufftExecC2R(h, (cufftComplex *)p, (cufftReal *)p));
    }
}

/* ---- workspace: consecutive regions of one device buffer, each 256-byte aligned ---- */
typedef struct {
    size_t off[5];
    size_t total;
} WsLayout;

static size_t ws_align(size_t b) { return (b + 255) & ~(size_t)255; }

static WsLayout ws_layout(const size_t *bytes, int n) {
    WsLayout l = {};
    for (int i = 0; i < n; i++) {
        l.off[i] = l.total;
        l.total += ws_align(bytes[i]);
    }
    return l;
}

static char *ws_reserve(size_t bytes) {
    if (bytes > conv_ws_cap) {
        CUDA_CHECK(cudaDeviceSynchronize());
        if (conv_ws) CUDA_CHECK(cudaFree(conv_ws));
        conv_ws = NULL;
        CUDA_CHECK(cudaMalloc(&conv_ws, bytes));
        conv_ws_cap = bytes;
    }
    return conv_ws;
}

extern "C" void cufftconv_release(void) {
    CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < conv_nplans; i++) CUFFT_CHECK(cufftDestroy(conv_plans[i].handle));
    conv_nplans = conv_evict = 0;
    if (conv_work) CUDA_CHECK(cudaFree(conv_work));
    if (conv_ws) CUDA_CHECK(cudaFree(conv_ws));
    conv_work = NULL, conv_ws = NULL;
    conv_work_cap = conv_ws_cap = 0;
}

extern "C" size_t cufftconv_held_bytes(void) { return conv_ws_cap + conv_work_cap; }

/* ---- kernels ---- */

/* Kr [H, N+2] real rows = k [H, Lk] zero-padded to N. grid (ceil(N/256), H) */
__global__ void conv_kpad_kernel(float *Kr, const float *k, int Lk, int N) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t h = blockIdx.y;
    if (s < N) Kr[h * row_floats(N) + s] = s < Lk ? k[h * Lk + s] : 0.0f;
}

/* Row g = b*H + h of the batch: offset of its u/w/v row. */
__device__ __forceinline__ int64_t conv_in_off(int64_t g, int H, int L, int64_t in_bstride) {
    return (g / H) * in_bstride + (g % H) * (int64_t)L;
}

/* X [rows, N+2]: x = u ⊙ w zero-padded to N, rows g = row0 + blockIdx.y. grid (ceil(N/SEG), rows) */
__global__ void conv_fwd_pad_kernel(float *X, const bf16 *u, const bf16 *w, int64_t in_bstride, int H,
                                    int L, int N, int64_t row0) {
    const int64_t r = blockIdx.y, off = conv_in_off(row0 + r, H, L, in_bstride);
    float *xr = X + r * row_floats(N);
    for (int i = 0; i < CONV_PER_THREAD; i++) {
        const int t = blockIdx.x * CONV_SEG + i * CONV_THREADS + threadIdx.x;
        if (t >= N) break;
        float x = 0.0f;
        if (t < L) {
            x = __bfloat162float(u[off + t]);
            if (w) x *= __bfloat162float(w[off + t]);
        }
        xr[t] = x;
    }
}

/* First row index b*H + h >= row0 for channel h (b >= 0). */
__device__ __forceinline__ int64_t conv_first_b(int64_t row0, int h, int H) {
    return row0 > h ? (row0 - h + H - 1) / H : 0;
}

/* Forward spectra: X[r, f] *= Kf[h, f] * scale for the rows [row0, row1) of channel h.
 * X, Kf: [*, nf] complex. grid (ceil(nf/256), H): one thread per (h, f) loads Kf once. */
__global__ void conv_fwd_spec_kernel(float2 *X, const float2 *Kf, int H, int nf, int64_t row0, int64_t row1,
                                     float scale) {
    const int f = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (f >= nf) return;
    float2 kf = Kf[(int64_t)h * nf + f];
    kf.x *= scale, kf.y *= scale;
    for (int64_t b = conv_first_b(row0, h, H); b * H + h < row1; b++) {
        float2 *p = X + (b * H + h - row0) * nf + f;
        const float2 x = *p;
        *p = make_float2(x.x * kf.x - x.y * kf.y, x.x * kf.y + x.y * kf.x);
    }
}

/* y [B,H,L] = v ⊙ (X[r, :L] + D x), x = u ⊙ w recomputed from bf16. grid (ceil(L/SEG), rows) */
__global__ void conv_fwd_post_kernel(bf16 *y, const float *X, const bf16 *u, const bf16 *w, const bf16 *v,
                                     const float *D, int64_t in_bstride, int H, int L, int N, int64_t row0) {
    const int64_t r = blockIdx.y, g = row0 + r, off = conv_in_off(g, H, L, in_bstride);
    const float d = D ? D[g % H] : 0.0f;
    const float *xr = X + r * row_floats(N);
    for (int i = 0; i < CONV_PER_THREAD; i++) {
        const int t = blockIdx.x * CONV_SEG + i * CONV_THREADS + threadIdx.x;
        if (t >= L) break;
        float x = __bfloat162float(u[off + t]);
        if (w) x *= __bfloat162float(w[off + t]);
        float c = xr[t] + d * x;
        if (v) c *= __bfloat162float(v[off + t]);
        y[g * L + t] = __float2bfloat16_rn(c);
    }
}

/* Backward inputs: X = x = u ⊙ w and G = dc = dy ⊙ v, zero-padded to N; part[g, blockIdx.x] = the
 * block's sum of dc ⊙ x (fixed tree order) when part is not NULL. grid (nseg = ceil(N/SEG), rows) */
__global__ void conv_bwd_pad_kernel(float *X, float *G, float *part, const bf16 *u, const bf16 *w,
                                    const bf16 *dy, const bf16 *v, int64_t in_bstride, int H, int L, int N,
                                    int64_t row0) {
    __shared__ float sh[CONV_THREADS];
    const int64_t r = blockIdx.y, g = row0 + r, off = conv_in_off(g, H, L, in_bstride);
    float *xr = X + r * row_floats(N), *gr = G + r * row_floats(N);
    float s = 0.0f;
    for (int i = 0; i < CONV_PER_THREAD; i++) {
        const int t = blockIdx.x * CONV_SEG + i * CONV_THREADS + threadIdx.x;
        if (t >= N) break;
        float x = 0.0f, dc = 0.0f;
        if (t < L) {
            x = __bfloat162float(u[off + t]);
            if (w) x *= __bfloat162float(w[off + t]);
            dc = __bfloat162float(dy[g * L + t]);
            if (v) dc *= __bfloat162float(v[off + t]);
        }
        xr[t] = x;
        gr[t] = dc;
        s += dc * x;
    }
    if (!part) return;   /* uniform across the block */
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = CONV_THREADS / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[g * gridDim.x + blockIdx.x] = sh[0];
}

/* Backward spectra for the rows [row0, row1) of channel h, one thread per (h, f), b ascending:
 *   dKf += G ⊙ conj(X) (if dKf);  X *= Kf * scale (if do_c);  G *= conj(Kf) * scale (if do_dx).
 * grid (ceil(nf/256), H) */
__global__ void conv_bwd_spec_kernel(float2 *X, float2 *G, float2 *dKf, const float2 *Kf, int H, int nf,
                                     int64_t row0, int64_t row1, float scale, int do_c, int do_dx) {
    const int f = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (f >= nf) return;
    float2 kf = make_float2(0.0f, 0.0f), acc = make_float2(0.0f, 0.0f);
    if (do_c || do_dx) {
        kf = Kf[(int64_t)h * nf + f];
        kf.x *= scale, kf.y *= scale;
    }
    if (dKf) acc = dKf[(int64_t)h * nf + f];
    for (int64_t b = conv_first_b(row0, h, H); b * H + h < row1; b++) {
        const int64_t i = (b * H + h - row0) * nf + f;
        const float2 x = X[i], gg = G[i];
        if (dKf) {
            acc.x += gg.x * x.x + gg.y * x.y;
            acc.y += gg.y * x.x - gg.x * x.y;
        }
        if (do_c) X[i] = make_float2(x.x * kf.x - x.y * kf.y, x.x * kf.y + x.y * kf.x);
        if (do_dx) G[i] = make_float2(gg.x * kf.x + gg.y * kf.y, gg.y * kf.x - gg.x * kf.y);
    }
    if (dKf) dKf[(int64_t)h * nf + f] = acc;
}

/* From X = conv(x) and G = corr(dc) (first L of each row):
 *   dv = dy ⊙ (X + D x);  dx = G + D dc;  du = dx ⊙ w (w NULL: dx);  dw = dx ⊙ u.
 * NULL outputs are skipped (and their rows of X / G are not read). grid (ceil(L/SEG), rows) */
__global__ void conv_bwd_post_kernel(bf16 *du, bf16 *dw, bf16 *dv, const float *X, const float *G,
                                     const bf16 *dy, const bf16 *u, const bf16 *w, const bf16 *v,
                                     const float *D, int64_t in_bstride, int H, int L, int N, int64_t row0) {
    const int64_t r = blockIdx.y, g = row0 + r, off = conv_in_off(g, H, L, in_bstride);
    const float d = D ? D[g % H] : 0.0f;
    const float *xr = X + r * row_floats(N), *gr = G + r * row_floats(N);
    for (int i = 0; i < CONV_PER_THREAD; i++) {
        const int t = blockIdx.x * CONV_SEG + i * CONV_THREADS + threadIdx.x;
        if (t >= L) break;
        const float uu = __bfloat162float(u[off + t]), ww = w ? __bfloat162float(w[off + t]) : 1.0f;
        const float gy = __bfloat162float(dy[g * L + t]);
        if (dv) dv[off + t] = __float2bfloat16_rn(gy * (xr[t] + d * (uu * ww)));
        if (du || dw) {
            const float dc = v ? gy * __bfloat162float(v[off + t]) : gy;
            const float dx = gr[t] + d * dc;
            if (du) du[off + t] = __float2bfloat16_rn(w ? dx * ww : dx);
            if (dw) dw[off + t] = __float2bfloat16_rn(dx * uu);
        }
    }
}

/* dk [H, Lk] = R[h, :Lk] * scale (R: dKf after the inverse FFT). grid (ceil(Lk/256), H) */
__global__ void conv_dk_kernel(float *dk, const float *R, int Lk, int N, float scale) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t h = blockIdx.y;
    if (s < Lk) dk[h * Lk + s] = R[h * row_floats(N) + s] * scale;
}

/* dD[h] += sum over b, then block, of part[(b*H + h), blk], in that order, in double. */
__global__ void conv_dD_kernel(float *dD, const float *part, int B, int H, int nseg) {
    const int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    double s = 0.0;
    for (int64_t b = 0; b < B; b++)
        for (int j = 0; j < nseg; j++) s += (double)part[(b * H + h) * nseg + j];
    dD[h] += (float)s;
}

/* ---- host side ---- */

static void conv_check_args(const char *op, int64_t in_bstride, int Lk, int B, int H, int L) {
    LC_ASSERT(L >= 1 && L <= (1 << 28), "%s: L %d out of range [1, 2^28]", op, L);
    LC_ASSERT(Lk >= 1 && Lk <= 2 * L, "%s: need 1 <= Lk <= 2L (Lk %d, L %d)", op, Lk, L);
    LC_ASSERT(B >= 1 && H >= 1 && H <= CONV_MAX_GRID_Y, "%s: B %d, H %d out of range", op, B, H);
    LC_ASSERT(in_bstride >= (int64_t)H * L, "%s: in_bstride %lld < H*L", op, (long long)in_bstride);
}

/* Kf [H, N+2] = rfft(k zero-padded to N), in place. */
static void conv_filter_spectrum(float *Kf, const float *k, int Lk, int H, int N) {
    dim3 grid((unsigned)CEIL_DIV(N, CONV_THREADS), (unsigned)H);
    conv_kpad_kernel<<<grid, CONV_THREADS, 0, conv_stream()>>>(Kf, k, Lk, N);
    CUDA_CHECK_LAUNCH();
    fft_rows(CUFFT_R2C, Kf, H, N);
}

extern "C" void cufftconv_fwd(act_t *y_, const act_t *u_, const act_t *w_, const act_t *v_, int64_t in_bstride,
                              const acc_t *k_, int Lk, const acc_t *D_, int B, int H, int L) {
    bf16 *y = (bf16 *)y_;
    const bf16 *u = (const bf16 *)u_, *w = (const bf16 *)w_, *v = (const bf16 *)v_;
    const float *k = (const float *)k_, *D = (const float *)D_;
    conv_check_args("fftconv_fwd", in_bstride, Lk, B, H, L);
    const int N = 2 * L, nf = L + 1;
    const int64_t rows = (int64_t)B * H, chunk = rows < chunk_rows(N) ? rows : chunk_rows(N);
    const size_t rowb = (size_t)row_floats(N) * sizeof(float);
    const size_t sizes[2] = {(size_t)H * rowb, (size_t)chunk * rowb};
    const WsLayout lay = ws_layout(sizes, 2);
    char *ws = ws_reserve(lay.total);
    float *Kf = (float *)(ws + lay.off[0]), *X = (float *)(ws + lay.off[1]);
    cudaStream_t st = conv_stream();

    conv_filter_spectrum(Kf, k, Lk, H, N);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        conv_fwd_pad_kernel<<<dim3((unsigned)CEIL_DIV(N, CONV_SEG), (unsigned)nr), CONV_THREADS, 0, st>>>(
            X, u, w, in_bstride, H, L, N, r0);
        CUDA_CHECK_LAUNCH();
        fft_rows(CUFFT_R2C, X, nr, N);
        conv_fwd_spec_kernel<<<dim3((unsigned)CEIL_DIV(nf, CONV_THREADS), (unsigned)H), CONV_THREADS, 0, st>>>(
            (float2 *)X, (const float2 *)Kf, H, nf, r0, r0 + nr, 1.0f / (float)N);
        CUDA_CHECK_LAUNCH();
        fft_rows(CUFFT_C2R, X, nr, N);
        conv_fwd_post_kernel<<<dim3((unsigned)CEIL_DIV(L, CONV_SEG), (unsigned)nr), CONV_THREADS, 0, st>>>(
            y, X, u, w, v, D, in_bstride, H, L, N, r0);
        CUDA_CHECK_LAUNCH();
    }
}

extern "C" void cufftconv_bwd(act_t *du_, act_t *dw_, act_t *dv_, acc_t *dk_, acc_t *dD_, const act_t *dy_,
                              const act_t *u_, const act_t *w_, const act_t *v_, int64_t in_bstride,
                              const acc_t *k_, int Lk, const acc_t *D_, int B, int H, int L) {
    const bf16 *dy = (const bf16 *)dy_, *u = (const bf16 *)u_, *w = (const bf16 *)w_, *v = (const bf16 *)v_;
    bf16 *du = (bf16 *)du_, *dw = w ? (bf16 *)dw_ : NULL, *dv = v ? (bf16 *)dv_ : NULL;
    float *dk = (float *)dk_, *dD = (float *)dD_;
    const float *k = (const float *)k_, *D = (const float *)D_;
    conv_check_args("fftconv_bwd", in_bstride, Lk, B, H, L);
    const int need_dx = du || dw, need_c = dv != NULL, need_kf = need_dx || need_c;
    const int need_fft = need_kf || dk;   /* dD alone needs no FFT */
    if (!need_fft && !dD) return;
    const int N = 2 * L, nf = L + 1, nseg = (int)CEIL_DIV(N, CONV_SEG);
    const int64_t rows = (int64_t)B * H, chunk = rows < chunk_rows(N) ? rows : chunk_rows(N);
    const size_t rowb = (size_t)row_floats(N) * sizeof(float);
    const size_t sizes[5] = {need_kf ? (size_t)H * rowb : 0, dk ? (size_t)H * rowb : 0, (size_t)chunk * rowb,
                             (size_t)chunk * rowb, dD ? (size_t)rows * nseg * sizeof(float) : 0};
    const WsLayout lay = ws_layout(sizes, 5);
    char *ws = ws_reserve(lay.total);
    float *Kf = (float *)(ws + lay.off[0]), *dKf = dk ? (float *)(ws + lay.off[1]) : NULL;
    float *X = (float *)(ws + lay.off[2]), *G = (float *)(ws + lay.off[3]);
    float *part = dD ? (float *)(ws + lay.off[4]) : NULL;
    cudaStream_t st = conv_stream();

    if (need_kf) conv_filter_spectrum(Kf, k, Lk, H, N);
    if (dKf) CUDA_CHECK(cudaMemsetAsync(dKf, 0, (size_t)H * rowb, st));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        conv_bwd_pad_kernel<<<dim3((unsigned)nseg, (unsigned)nr), CONV_THREADS, 0, st>>>(
            X, G, part, u, w, dy, v, in_bstride, H, L, N, r0);
        CUDA_CHECK_LAUNCH();
        if (!need_fft) continue;
        fft_rows(CUFFT_R2C, X, nr, N);
        fft_rows(CUFFT_R2C, G, nr, N);
        conv_bwd_spec_kernel<<<dim3((unsigned)CEIL_DIV(nf, CONV_THREADS), (unsigned)H), CONV_THREADS, 0, st>>>(
            (float2 *)X, (float2 *)G, (float2 *)dKf, (const float2 *)Kf, H, nf, r0, r0 + nr, 1.0f / (float)N,
            need_c, need_dx);
        CUDA_CHECK_LAUNCH();
        if (need_c) fft_rows(CUFFT_C2R, X, nr, N);
        if (need_dx) fft_rows(CUFFT_C2R, G, nr, N);
        if (need_kf) {
            conv_bwd_post_kernel<<<dim3((unsigned)CEIL_DIV(L, CONV_SEG), (unsigned)nr), CONV_THREADS, 0, st>>>(
                du, dw, dv, X, G, dy, u, w, v, D, in_bstride, H, L, N, r0);
            CUDA_CHECK_LAUNCH();
        }
    }
    if (dk) {
        fft_rows(CUFFT_C2R, dKf, H, N);
        conv_dk_kernel<<<dim3((unsigned)CEIL_DIV(Lk, CONV_THREADS), (unsigned)H), CONV_THREADS, 0, st>>>(
            dk, dKf, Lk, N, 1.0f / (float)N);
        CUDA_CHECK_LAUNCH();
    }
    if (dD) {
        conv_dD_kernel<<<(unsigned)CEIL_DIV(H, 128), 128, 0, st>>>(dD, part, B, H, nseg);
        CUDA_CHECK_LAUNCH();
    }
}
