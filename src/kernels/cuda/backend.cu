/* CUDA backend: the op table, its stream and cuBLAS handle, memory ops and dtype conversions.
 * act_t is bf16, acc_t is fp32 (see ops.h). Every op is queued on one stream; transfers to and
 * from the host return after the data has arrived. */
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"

static Ops table;
static int table_ready;
static cudaStream_t stream;
static cublasHandle_t cublas;
static void *scratch;
static size_t scratch_bytes;

cudaStream_t cuda_stream(void) { return stream; }
cublasHandle_t cuda_cublas(void) { return cublas; }

/* cudaMalloc or die with the size, what the device has left, and what to change. */
static void *device_alloc_or_die(size_t bytes, const char *what) {
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky error so that the message below can be built */
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        lc_die("CUDA: cannot allocate %zu bytes (%.2f GiB) for %s: %s; the device has %.2f of %.2f GiB free. "
               "HINT: lower train.batch_size (raise train.grad_accum to keep the tokens per step) or data.seq_len",
               bytes, (double)bytes / 1073741824.0, what, cudaGetErrorString(err), (double)free_b / 1073741824.0,
               (double)total_b / 1073741824.0);
    }
    return p;
}

void *cuda_scratch(size_t bytes) {
    if (bytes > scratch_bytes) {
        /* queued kernels may still read the old buffer */
        CUDA_CHECK(cudaStreamSynchronize(stream));
        if (scratch) CUDA_CHECK(cudaFree(scratch));
        size_t grow = scratch_bytes + scratch_bytes / 2;
        scratch_bytes = bytes > grow ? bytes : grow;
        scratch = device_alloc_or_die(scratch_bytes, "scratch");
    }
    return scratch;
}

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes) {
    void *p = device_alloc_or_die(bytes, "a buffer");
    /* the contract says zeroed: arenas rely on it for never-written padding */
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
    return p;
}

static void cuda_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

static void cuda_zero(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
}

static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

/* Both directions wait for the copy (and everything queued before it): host buffers are pageable
 * and the caller may reuse them at once. */
static void cuda_to_host(void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

static void cuda_to_device(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

static void cuda_synchronize(void) { CUDA_CHECK(cudaStreamSynchronize(stream)); }

/* ---- conversions ---- */

static void acc_from_f32(acc_t *dst, const float *host_src, int64_t n) {
    cuda_to_device(dst, host_src, (size_t)n * sizeof(float));
}

static void acc_to_f32(float *host_dst, const acc_t *src, int64_t n) {
    cuda_to_host(host_dst, src, (size_t)n * sizeof(float));
}

/* fp64 goes through an fp32 host buffer: the device keeps fp32 (round to nearest on the host). */
static void acc_from_f64(acc_t *dst, const double *host_src, int64_t n) {
    if (n <= 0) return;
    float *tmp = (float *)xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) tmp[i] = (float)host_src[i];
    cuda_to_device(dst, tmp, (size_t)n * sizeof(float));
    free(tmp);
}

static void acc_to_f64(double *host_dst, const acc_t *src, int64_t n) {
    if (n <= 0) return;
    float *tmp = (float *)xmalloc((size_t)n * sizeof(float));
    cuda_to_host(tmp, src, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) host_dst[i] = (double)tmp[i];
    free(tmp);
}

#define CONV_THREADS 256

/* dst[n] = bf16(src[n]), round to nearest even */
static __global__ void act_from_acc_kernel(bf16 *dst, const float *src, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f2bf(src[i]);
}

/* dst[n] = float(src[n]) (exact) */
static __global__ void act_to_acc_kernel(float *dst, const bf16 *src, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = bf2f(src[i]);
}

/* dst[n] += float(src[n]) */
static __global__ void acc_add_act_kernel(float *dst, const bf16 *src, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] += bf2f(src[i]);
}

static void act_from_acc(act_t *dst, const acc_t *src, int64_t n) {
    if (n <= 0) return;
    act_from_acc_kernel<<<(unsigned)CEIL_DIV(n, CONV_THREADS), CONV_THREADS, 0, stream>>>((bf16 *)dst,
                                                                                         (const float *)src, n);
    CUDA_CHECK_LAUNCH();
}

static void act_to_acc(acc_t *dst, const act_t *src, int64_t n) {
    if (n <= 0) return;
    act_to_acc_kernel<<<(unsigned)CEIL_DIV(n, CONV_THREADS), CONV_THREADS, 0, stream>>>((float *)dst,
                                                                                       (const bf16 *)src, n);
    CUDA_CHECK_LAUNCH();
}

static void acc_add_act(acc_t *dst, const act_t *src, int64_t n) {
    if (n <= 0 || !dst) return;
    acc_add_act_kernel<<<(unsigned)CEIL_DIV(n, CONV_THREADS), CONV_THREADS, 0, stream>>>((float *)dst,
                                                                                        (const bf16 *)src, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_register_memory(Ops *o) {
    o->alloc = cuda_alloc;
    o->free = cuda_free;
    o->zero = cuda_zero;
    o->copy = cuda_copy;
    o->to_host = cuda_to_host;
    o->to_device = cuda_to_device;
    o->synchronize = cuda_synchronize;
    o->acc_from_f32 = acc_from_f32;
    o->acc_to_f32 = acc_to_f32;
    o->acc_from_f64 = acc_from_f64;
    o->acc_to_f64 = acc_to_f64;
    o->act_from_acc = act_from_acc;
    o->act_to_acc = act_to_acc;
    o->acc_add_act = acc_add_act;
}

/* ---- the table ---- */

/* Every function pointer of Ops, in declaration order (keep in step with ops.h). */
#define OPS_FUNCTIONS(X)                                                                           \
    X(alloc) X(free) X(zero) X(copy) X(to_host) X(to_device) X(synchronize)                        \
    X(acc_from_f32) X(acc_to_f32) X(acc_from_f64) X(acc_to_f64) X(act_from_acc) X(act_to_acc)      \
    X(acc_add_act) X(add) X(accumulate) X(gelu_fwd) X(gelu_bwd) X(dropout_fwd) X(dropout_bwd)      \
    X(embedding_fwd) X(embedding_bwd) X(layernorm_fwd) X(layernorm_bwd) X(linear_fwd) X(linear_bwd) \
    X(bcl_from_blc) X(blc_from_bcl) X(shortconv_fwd) X(shortconv_bwd) X(fftconv_fwd) X(fftconv_bwd) \
    X(sin_fwd) X(sin_bwd) X(expmod_fwd) X(expmod_bwd) X(xent_fwd_bwd) X(adamw) X(sum)              \
    X(sum_squares) X(scale)

static void ops_check_complete(const Ops *o) {
#define OPS_CHECK_ONE(f)                                                                           \
    if (!o->f) lc_die("CUDA backend: op '%s' is not implemented (its cuda_register_* function left it NULL)", #f);
    OPS_FUNCTIONS(OPS_CHECK_ONE)
#undef OPS_CHECK_ONE
}

static void backend_init(void) {
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    /* bf16 inputs with fp32 compute run on tensor cores under the default math mode; atomics stay
     * disallowed (the default), so cuBLAS results are reproducible on one stream */
    CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasSetAtomicsMode(cublas, CUBLAS_ATOMICS_NOT_ALLOWED));
}

extern "C" const Ops *cuda_ops_partial(void) {
    if (table_ready) return &table;
    if (cuda_device_count() == 0) return NULL;
    backend_init();
    table.name = "cuda";
    table.act_bytes = 2;
    table.acc_bytes = 4;
    table.act_is_acc = 0;
    cuda_register_memory(&table);
    cuda_register_elementwise(&table);
    cuda_register_embedding(&table);
    cuda_register_layernorm(&table);
    cuda_register_linear(&table);
    cuda_register_layout(&table);
    cuda_register_shortconv(&table);
    cuda_register_fftconv(&table);
    cuda_register_filter(&table);
    cuda_register_xent(&table);
    cuda_register_optim(&table);
    table_ready = 1;
    return &table;
}

extern "C" const Ops *ops_cuda(void) {
    const Ops *o = cuda_ops_partial();
    if (o) ops_check_complete(o);
    return o;
}
