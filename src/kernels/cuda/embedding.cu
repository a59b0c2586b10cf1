/* Token embedding lookup and its deterministic backward.
 * The backward sorts the rows by token id (CUB radix sort: stable, so rows of one token stay in
 * order) and lets one thread per (token, channel) add that token's rows in row order, starting
 * from dwte's old value: the same additions in the same order as the CPU backend, without
 * atomics. */
#include <limits.h>

#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/backend.h"

#define EMB_THREADS 128
/* Blocks along the sorted rows; each scans its share of the positions for run starts. */
#define EMB_ROW_BLOCKS 4096

/* out[N,C] = wte[tokens[n], :]; one block per row */
static __global__ void embedding_fwd_kernel(bf16 *out, const tok_t *tokens, const bf16 *wte, int C) {
    const int64_t n = blockIdx.x;
    const bf16 *src = wte + (int64_t)tokens[n] * C;
    bf16 *dst = out + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

/* rows[n] = n */
static __global__ void iota_kernel(int *rows, int64_t N) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < N) rows[i] = (int)i;
}

/* First position > i whose key differs from keys[i] (keys sorted ascending). */
static __device__ int64_t run_end(const tok_t *keys, int64_t i, int64_t N) {
    const tok_t key = keys[i];
    int64_t lo = i + 1, hi = N; /* answer in [lo, hi] */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (keys[mid] == key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* dwte[key, c] += dout[rows[j], c] for the run of equal keys starting at each run start, in j
 * order. grid: (channel blocks, EMB_ROW_BLOCKS); keys, rows: [N] sorted by key. */
static __global__ void embedding_bwd_kernel(float *dwte, const bf16 *dout, const tok_t *keys, const int *rows,
                                            int64_t N, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    for (int64_t i = blockIdx.y; i < N; i += gridDim.y) {
        if (i > 0 && keys[i - 1] == keys[i]) continue; /* not a run start (uniform in the block) */
        const int64_t end = run_end(keys, i, N);
        if (c >= C) continue;
        float *d = dwte + (int64_t)keys[i] * C + c;
        float acc = *d;
#pragma unroll 4
        for (int64_t j = i; j < end; j++) acc += bf2f(dout[(int64_t)rows[j] * C + c]);
        *d = acc;
    }
}

/* out [N,C]; tokens [N] (>= 0, checked by the data readers); wte [V,C] */
static void embedding_fwd(act_t *out, const tok_t *tokens, const act_t *wte, int64_t N, int C) {
    if (N <= 0) return;
    LC_ASSERT(N <= INT_MAX, "embedding: %lld rows exceed the grid", (long long)N);
    embedding_fwd_kernel<<<(unsigned)N, EMB_THREADS, 0, cuda_stream()>>>((bf16 *)out, tokens, (const bf16 *)wte, C);
    CUDA_CHECK_LAUNCH();
}

/* Sort (token, row) pairs by token into the scratch buffer; returns the sorted keys and rows. */
static void embedding_sort(const tok_t *tokens, int64_t N, tok_t **keys_out, int **rows_out) {
    size_t temp_bytes = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, temp_bytes, (const tok_t *)NULL, (tok_t *)NULL,
                                               (const int *)NULL, (int *)NULL, (int)N, 0, 32, cuda_stream()));
    const size_t slot = (size_t)CEIL_DIV(N * 4, (int64_t)256) * 256; /* 256-byte aligned arrays */
    char *s = (char *)cuda_scratch(3 * slot + temp_bytes);
    tok_t *keys = (tok_t *)s;
    int *rows_in = (int *)(s + slot), *rows = (int *)(s + 2 * slot);
    iota_kernel<<<(unsigned)CEIL_DIV(N, 256), 256, 0, cuda_stream()>>>(rows_in, N);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(s + 3 * slot, temp_bytes, tokens, keys, rows_in, rows, (int)N, 0, 32,
                                               cuda_stream()));
    *keys_out = keys;
    *rows_out = rows;
}

/* dwte[tokens[n], :] += dout[n, :]; dwte [V,C] fp32; dout [N,C] */
static void embedding_bwd(acc_t *dwte, const act_t *dout, const tok_t *tokens, int64_t N, int C) {
    if (!dwte || N <= 0) return;
    LC_ASSERT(N <= INT_MAX, "embedding: %lld rows exceed the sort's int count", (long long)N);
    tok_t *keys;
    int *rows;
    embedding_sort(tokens, N, &keys, &rows);
    int64_t row_blocks = N < EMB_ROW_BLOCKS ? N : EMB_ROW_BLOCKS;
    dim3 grid((unsigned)CEIL_DIV(C, EMB_THREADS), (unsigned)row_blocks);
    embedding_bwd_kernel<<<grid, EMB_THREADS, 0, cuda_stream()>>>((float *)dwte, (const bf16 *)dout, keys, rows, N, C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_register_embedding(Ops *o) {
    o->embedding_fwd = embedding_fwd;
    o->embedding_bwd = embedding_bwd;
}
