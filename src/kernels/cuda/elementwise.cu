/* Elementwise ops on bf16: add, accumulate, tanh-GELU, inverted dropout. Arithmetic in fp32, one
 * rounding to bf16 per output. The dropout mask is Philox(seed, stream, index) >= p, the same
 * function as the CPU backend, so both keep exactly the same elements. */
#include "core/rng.h"
#include "kernels/cuda/backend.h"

#define EW_THREADS 256

/* out[n] = a[n] + b[n]; out may alias a */
static __global__ void add_kernel(bf16 *out, const bf16 *a, const bf16 *b, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = f2bf(bf2f(a[i]) + bf2f(b[i]));
}

/* GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
#define GELU_S 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* out[n] = gelu(inp[n]) */
static __global__ void gelu_fwd_kernel(bf16 *out, const bf16 *inp, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = bf2f(inp[i]);
    out[i] = f2bf(0.5f * x * (1.0f + tanhf(GELU_S * (x + GELU_A * x * x * x))));
}

/* dinp[n] = gelu'(inp[n]) * dout[n] (written) */
static __global__ void gelu_bwd_kernel(bf16 *dinp, const bf16 *inp, const bf16 *dout, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = bf2f(inp[i]);
    float t = tanhf(GELU_S * (x + GELU_A * x * x * x));
    float du = GELU_S * (1.0f + 3.0f * GELU_A * x * x);
    float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    dinp[i] = f2bf(g * bf2f(dout[i]));
}

/* out[n] = keep(i) ? inp[n] * scale : 0 with keep(i) = philox_uniform(seed, stream, i) >= p.
 * The product is one fp32 multiply, as on the CPU, then one rounding. */
static __global__ void dropout_kernel(bf16 *out, const bf16 *inp, float p, float scale, uint64_t seed, uint64_t stream,
                               int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int keep = philox_uniform(seed, stream, (uint64_t)i) >= p;
    out[i] = keep ? f2bf(__fmul_rn(bf2f(inp[i]), scale)) : f2bf(0.0f);
}

static unsigned ew_blocks(int64_t n) { return (unsigned)CEIL_DIV(n, EW_THREADS); }

static void add(act_t *out, const act_t *a, const act_t *b, int64_t n) {
    if (n <= 0) return;
    add_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_stream()>>>((bf16 *)out, (const bf16 *)a, (const bf16 *)b, n);
    CUDA_CHECK_LAUNCH();
}

/* dst[n] += src[n] */
static void accumulate(act_t *dst, const act_t *src, int64_t n) { add(dst, dst, src, n); }

static void gelu_fwd(act_t *out, const act_t *inp, int64_t n) {
    if (n <= 0) return;
    gelu_fwd_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_stream()>>>((bf16 *)out, (const bf16 *)inp, n);
    CUDA_CHECK_LAUNCH();
}

static void gelu_bwd(act_t *dinp, const act_t *inp, const act_t *dout, int64_t n) {
    if (n <= 0) return;
    gelu_bwd_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_stream()>>>((bf16 *)dinp, (const bf16 *)inp,
                                                                      (const bf16 *)dout, n);
    CUDA_CHECK_LAUNCH();
}

/* The backward applies the same mask and scale to dout, so one launcher serves both. */
static void dropout_apply(bf16 *out, const bf16 *inp, float p, uint64_t seed, uint64_t stream, int64_t n) {
    LC_ASSERT(p >= 0.0f && p < 1.0f, "dropout probability %g outside [0, 1)", (double)p);
    if (n <= 0) return;
    if (p == 0.0f) {
        if (out != inp) CUDA_CHECK(cudaMemcpyAsync(out, inp, (size_t)n * sizeof(bf16), cudaMemcpyDeviceToDevice,
                                                   cuda_stream()));
        return;
    }
    /* the same fp32 scale as the CPU backend: 1/(1-p) in double, then rounded */
    const float scale = (float)(1.0 / (1.0 - (double)p));
    dropout_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_stream()>>>(out, inp, p, scale, seed, stream, n);
    CUDA_CHECK_LAUNCH();
}

static void dropout_fwd(act_t *out, const act_t *inp, float p, uint64_t seed, uint64_t stream, int64_t n) {
    dropout_apply((bf16 *)out, (const bf16 *)inp, p, seed, stream, n);
}

static void dropout_bwd(act_t *dinp, const act_t *dout, float p, uint64_t seed, uint64_t stream, int64_t n) {
    dropout_apply((bf16 *)dinp, (const bf16 *)dout, p, seed, stream, n);
}

extern "C" void cuda_register_elementwise(Ops *o) {
    o->add = add;
    o->accumulate = accumulate;
    o->gelu_fwd = gelu_fwd;
    o->gelu_bwd = gelu_bwd;
    o->dropout_fwd = dropout_fwd;
    o->dropout_bwd = dropout_bwd;
}
