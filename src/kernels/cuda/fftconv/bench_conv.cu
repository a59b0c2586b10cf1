/* `longconv bench conv [--json FILE] [--max-n L] [--iters K]`
 *
 * For L = 256 ... max-n (powers of two; causal, FFT size N = 2L, bf16 activations, fp32 filter):
 * B = 64, H = 768 up to L = 16K, then B*L held constant (B = 2^20 / L, at least 1), then H shrinks
 * so that B*H*L stays 64*768*16K (and halves again if memory is short). For every implementation
 * in the table (fftconv.h) it times, with CUDA events around the op only, the median of K runs
 * after two warm-up calls (plans, workspace), with the L2 cache flushed before each run by writing
 * a 256 MB buffer:
 *   fwd    plain forward (w = v = D = NULL)
 *   gated  forward with w, v and D
 *   bwd    gated backward writing du, dw, dv, dk and accumulating dD
 * Memory floor (bytes that must cross HBM once), per element of [B,H,L] and per filter tap:
 *   fwd   read u, write y (bf16): 4 B per element, + read k (fp32): 4 B per tap (H*Lk taps)
 *   gated read u, w, v, write y: 8 B per element, + 4 B per tap (D is negligible)
 *   bwd   read dy, u, w, v, write du, dw, dv: 14 B per element, + read k, write dk: 8 B per tap
 * divided by the copy bandwidth measured in the same run (device-to-device cudaMemcpy of 1 GiB,
 * bytes read + written over time). "x floor" = time / floor; TB/s = floor bytes / time.
 * FLOP model: only the FFTs, 2.5 N log2 N per real FFT of size N = 2L (half a complex FFT's
 * 5 N log2 N); fwd does 2BH + H of them (x, inverse, filter), bwd 4BH + 2H (x, dc, two inverses,
 * filter, dk). The same nominal count is used for every implementation.
 * "x cufft" is the speed-up over the cuFFT baseline measured in the same run (cufft ms / ms).
 * An implementation that hands a length to another one (flashfft calls cufft for L > 4096) is
 * shown as "flashfft>cufft" in the impl column and as "ran" in the JSON. */
#include <cuda_bf16.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/fftconv/bench_conv.h"
#include "kernels/cuda/fftconv/cufft_conv.h"
#include "kernels/cuda/fftconv/fftconv.h"
#include "kernels/cuda/fftconv/monarch.h"

#define BENCH_FLUSH_BYTES ((size_t)256 << 20)
#define BENCH_COPY_BYTES ((size_t)1 << 30)
#define BENCH_ELEMS ((int64_t)64 * 768 * 16384)   /* B*H*L from L = 16K on */
#define BENCH_MAX_ROWS 256

enum { OP_FWD, OP_GATED, OP_BWD, NOPS };
static const char *op_names[NOPS] = {"fwd", "gated", "bwd"};

typedef struct {
    int L, B, H;
    const char *impl, *ran;   /* ran: what actually ran for this L (fftconv_impl_which) */
    double ms[NOPS], bytes[NOPS], flops[NOPS], speedup[NOPS];   /* speedup: cufft ms / ms */
} BenchRow;

/* ---- random inputs on the device (values do not affect the timings; kept O(1)) ---- */
__device__ __forceinline__ float bench_hash_uniform(int64_t i, uint64_t seed) {
    uint64_t z = (uint64_t)i * 0x9E3779B97F4A7C15ull + seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;   /* [-1, 1) */
}

__global__ void bench_fill_bf16_kernel(bf16 *x, int64_t n, uint64_t seed, float scale) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = __float2bfloat16_rn(scale * bench_hash_uniform(i, seed));
}

__global__ void bench_fill_f32_kernel(float *x, int64_t n, uint64_t seed, float scale) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = scale * bench_hash_uniform(i, seed);
}

static void *bench_alloc(size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
}

static bf16 *bench_bf16(int64_t n, uint64_t seed) {
    bf16 *p = (bf16 *)bench_alloc((size_t)n * sizeof(bf16));
    bench_fill_bf16_kernel<<<4096, 256, 0, cuda_stream()>>>(p, n, seed, 1.0f);
    CUDA_CHECK_LAUNCH();
    return p;
}

static float *bench_f32(int64_t n, uint64_t seed, float scale) {
    float *p = (float *)bench_alloc((size_t)n * sizeof(float));
    bench_fill_f32_kernel<<<4096, 256, 0, cuda_stream()>>>(p, n, seed, scale);
    CUDA_CHECK_LAUNCH();
    return p;
}

/* ---- timing ---- */
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median ms of `iters` runs of f() after two warm-up calls; the L2 is flushed before each run. */
template <class F>
static double bench_time(F f, int iters, void *flush) {
    f();
    f();
    CUDA_CHECK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    float *t = (float *)xmalloc(sizeof(float) * (size_t)iters);
    for (int i = 0; i < iters; i++) {
        CUDA_CHECK(cudaMemsetAsync(flush, i & 0xFF, BENCH_FLUSH_BYTES, cuda_stream()));
        CUDA_CHECK(cudaEventRecord(e0, cuda_stream()));
        f();
        CUDA_CHECK(cudaEventRecord(e1, cuda_stream()));
        CUDA_CHECK(cudaEventSynchronize(e1));
        CUDA_CHECK(cudaEventElapsedTime(&t[i], e0, e1));
    }
    qsort(t, (size_t)iters, sizeof(float), cmp_float);
    double med = iters % 2 ? t[iters / 2] : 0.5 * ((double)t[iters / 2 - 1] + t[iters / 2]);
    free(t);
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    return med;
}

/* Copy bandwidth in bytes/s: (read + written) / time of a 1 GiB device-to-device copy. */
static double bench_copy_bandwidth(int iters, void *flush) {
    void *a = bench_alloc(BENCH_COPY_BYTES), *b = bench_alloc(BENCH_COPY_BYTES);
    CUDA_CHECK(cudaMemsetAsync(a, 1, BENCH_COPY_BYTES, cuda_stream()));
    double ms = bench_time([&] { CUDA_CHECK(cudaMemcpyAsync(b, a, BENCH_COPY_BYTES, cudaMemcpyDeviceToDevice, cuda_stream())); },
                           iters, flush);
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    return 2.0 * (double)BENCH_COPY_BYTES / (ms * 1e-3);
}

/* ---- shapes ---- */
static void bench_shape(int L, int *B, int *H) {
    *B = 64, *H = 768;
    if (L > 16384) *B = (int)((int64_t)64 * 16384 / L) > 1 ? (int)((int64_t)64 * 16384 / L) : 1;
    if ((int64_t)*B * *H * L > BENCH_ELEMS) *H = (int)(BENCH_ELEMS / ((int64_t)*B * L));
    if (*H < 1) *H = 1;
}

/* Device bytes one size needs: 8 bf16 tensors, k and dk, the conv workspace (filter spectra and
 * two chunk buffers of at most 1 GiB) and a guess of 1 GiB for cuFFT's work area. */
static size_t bench_need(int L, int B, int H) {
    const size_t elems = (size_t)B * H * L, row = (2 * (size_t)L + 2) * sizeof(float);
    size_t chunk = (size_t)B * H * row < ((size_t)1 << 30) ? (size_t)B * H * row : ((size_t)1 << 30);
    return 8 * elems * sizeof(bf16) + 2 * (size_t)H * L * sizeof(float) + 2 * (size_t)H * row + 2 * chunk +
           ((size_t)1 << 30);
}

/* ---- output ---- */
static void bench_json(const char *path, const char *gpu, double bw, const BenchRow *rows, int n) {
    FILE *f = xfopen(path, "w");
    fprintf(f, "{\n  \"gpu\": \"%s\",\n  \"copy_bandwidth_TBps\": %.4f,\n", gpu, bw / 1e12);
    fprintf(f, "  \"bytes_model\": \"fwd: 4 B/elem (u, y bf16) + 4 B/tap (k); gated: 8 B/elem (u, w, v, y) + "
               "4 B/tap; bwd: 14 B/elem (dy, u, w, v read; du, dw, dv written) + 8 B/tap (k, dk)\",\n");
    fprintf(f, "  \"flop_model\": \"2.5 N log2 N per real FFT of size N = 2L; fwd and gated 2BH+H FFTs, bwd "
               "4BH+2H\",\n  \"rows\": [\n");
    for (int i = 0; i < n; i++) {
        const BenchRow *r = &rows[i];
        fprintf(f, "    {\"L\": %d, \"fft_size\": %lld, \"B\": %d, \"H\": %d, \"impl\": \"%s\", \"ran\": \"%s\"",
                r->L, 2LL * r->L, r->B, r->H, r->impl, r->ran);
        for (int o = 0; o < NOPS; o++) {
            double floor_ms = r->bytes[o] / bw * 1e3;
            fprintf(f, ", \"%s_ms\": %.4f, \"%s_floor_ms\": %.4f, \"%s_x_floor\": %.3f, \"%s_TBps\": %.4f, "
                       "\"%s_TFLOPs\": %.4f, \"%s_speedup_vs_cufft\": %.3f",
                    op_names[o], r->ms[o], op_names[o], floor_ms, op_names[o], r->ms[o] / floor_ms, op_names[o],
                    r->bytes[o] / (r->ms[o] * 1e-3) / 1e12, op_names[o], r->flops[o] / (r->ms[o] * 1e-3) / 1e12,
                    op_names[o], r->speedup[o]);
        }
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
}

static void bench_print_header(void) {
    printf("%8s %3s %4s %-14s", "L", "B", "H", "impl");
    for (int o = 0; o < NOPS; o++) printf(" | %6s ms  floor ms  xfloor   TB/s  TF/s x cufft", op_names[o]);
    printf("\n");
}

static void bench_print_row(const BenchRow *r, double bw) {
    char label[64];
    if (strcmp(r->impl, r->ran) != 0) snprintf(label, sizeof label, "%s>%s", r->impl, r->ran);
    else snprintf(label, sizeof label, "%s", r->impl);
    printf("%8d %3d %4d %-14s", r->L, r->B, r->H, label);
    for (int o = 0; o < NOPS; o++) {
        double floor_ms = r->bytes[o] / bw * 1e3;
        printf(" | %9.3f %9.3f %7.2f %6.2f %5.2f %7.2f", r->ms[o], floor_ms, r->ms[o] / floor_ms,
               r->bytes[o] / (r->ms[o] * 1e-3) / 1e12, r->flops[o] / (r->ms[o] * 1e-3) / 1e12, r->speedup[o]);
    }
    printf("\n");
    fflush(stdout);
}

static int bench_usage(void) {
    fprintf(stderr, "usage: longconv bench conv [--json FILE] [--max-n L] [--iters K]\n"
                    "  L = 256 ... max-n (powers of two, default 4194304), FFT size 2L; K timed runs (default 10)\n");
    return 2;
}

/* ---- one sequence length, every implementation ---- */
static int bench_length(int L, int B, int H, int iters, void *flush, BenchRow *out) {
    const int64_t n = (int64_t)B * H * L, bs = (int64_t)H * L;
    bf16 *u = bench_bf16(n, 1), *w = bench_bf16(n, 2), *v = bench_bf16(n, 3), *dy = bench_bf16(n, 4);
    bf16 *y = (bf16 *)bench_alloc((size_t)n * 2), *du = (bf16 *)bench_alloc((size_t)n * 2);
    bf16 *dw = (bf16 *)bench_alloc((size_t)n * 2), *dv = (bf16 *)bench_alloc((size_t)n * 2);
    float *k = bench_f32((int64_t)H * L, 5, 1.0f / sqrtf((float)L)), *D = bench_f32(H, 6, 1.0f);
    float *dk = (float *)bench_alloc((size_t)H * L * sizeof(float)), *dD = (float *)bench_alloc((size_t)H * sizeof(float));
    CUDA_CHECK(cudaMemsetAsync(dD, 0, (size_t)H * sizeof(float), cuda_stream()));
    const double N = 2.0 * L, fft = 2.5 * N * log2(N), taps = (double)H * L;
    const int nimpl = fftconv_impl_count();
    for (int i = 0; i < nimpl; i++) {
        const FftconvImpl *im = fftconv_impl(i);
        BenchRow *r = &out[i];
        r->L = L, r->B = B, r->H = H, r->impl = im->name, r->ran = fftconv_impl_which(im, L);
        r->ms[OP_FWD] = bench_time([&] { im->fwd(y, u, NULL, NULL, bs, k, L, NULL, B, H, L); }, iters, flush);
        r->ms[OP_GATED] = bench_time([&] { im->fwd(y, u, w, v, bs, k, L, D, B, H, L); }, iters, flush);
        r->ms[OP_BWD] = bench_time([&] { im->bwd(du, dw, dv, dk, dD, dy, u, w, v, bs, k, L, D, B, H, L); }, iters,
                                   flush);
        r->bytes[OP_FWD] = 4.0 * n + 4.0 * taps;
        r->bytes[OP_GATED] = 8.0 * n + 4.0 * taps;
        r->bytes[OP_BWD] = 14.0 * n + 8.0 * taps;
        r->flops[OP_FWD] = r->flops[OP_GATED] = (2.0 * B * H + H) * fft;
        r->flops[OP_BWD] = (4.0 * B * H + 2.0 * H) * fft;
    }
    const FftconvImpl *base = fftconv_impl_find("cufft");
    for (int i = 0; i < nimpl; i++)
        for (int o = 0; o < NOPS; o++) {
            double base_ms = out[i].ms[o];
            for (int j = 0; j < nimpl; j++)
                if (base && fftconv_impl(j) == base) base_ms = out[j].ms[o];
            out[i].speedup[o] = base_ms / out[i].ms[o];
        }
    void *bufs[] = {u, w, v, dy, y, du, dw, dv, k, D, dk, dD};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) CUDA_CHECK(cudaFree(bufs[i]));
    return nimpl;
}

extern "C" int bench_conv_main(int argc, char **argv) {
    const char *json = NULL;
    int64_t max_n = (int64_t)1 << 22;
    int iters = 10, i = 0;
    while (i < argc && strncmp(argv[i], "--", 2) != 0) i++;   /* program / subcommand names */
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--max-n") && i + 1 < argc) max_n = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else return bench_usage();
    }
    if (max_n < 256 || max_n > ((int64_t)1 << 28) || iters < 1) return bench_usage();

    /* the ops run on the backend's stream, as in training: make the backend first */
    LC_ASSERT(cuda_ops_partial() != NULL, "bench conv: no CUDA device");
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    void *flush = bench_alloc(BENCH_FLUSH_BYTES);
    const double bw = bench_copy_bandwidth(iters > 5 ? iters : 5, flush);
    printf("longconv bench conv: %s; copy bandwidth %.3f TB/s (1 GiB device-to-device cudaMemcpy, read + "
           "written); median of %d runs, L2 flushed\n",
           prop.name, bw / 1e12, iters);
    printf("causal, FFT size 2L, bf16. floor = HBM bytes / copy bandwidth: fwd 4 B/elem + 4 B/tap, gated 8 B/elem "
           "+ 4 B/tap, bwd 14 B/elem + 8 B/tap; TF/s counts 2.5 N log2 N per real FFT (fwd 2BH+H, bwd 4BH+2H); x cufft = cufft ms / ms; "
           "a>b: implementation a handed this length to b\n");
    bench_print_header();

    BenchRow *rows = (BenchRow *)xcalloc(BENCH_MAX_ROWS, sizeof(BenchRow));
    int nrows = 0;
    for (int64_t L = 256; L <= max_n && nrows + fftconv_impl_count() <= BENCH_MAX_ROWS; L *= 2) {
        int B, H;
        bench_shape((int)L, &B, &H);
        size_t free_b = 0, total_b = 0;
        CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        const double avail = 0.9 * (double)(free_b + cufftconv_held_bytes());
        while (H > 1 && (double)bench_need((int)L, B, H) > avail) H /= 2;
        if ((double)bench_need((int)L, B, H) > avail) {
            printf("%8lld: does not fit in device memory, stopping\n", (long long)L);
            break;
        }
        int n = bench_length((int)L, B, H, iters, flush, rows + nrows);
        for (int j = 0; j < n; j++) bench_print_row(&rows[nrows + j], bw);
        nrows += n;
        if (json) bench_json(json, prop.name, bw, rows, nrows);
    }
    free(rows);
    CUDA_CHECK(cudaFree(flush));
    cufftconv_release();
    monarch_release();
    return 0;
}
