/* Layout changes between [B,L,C] (rows of channels) and [B,C,L] (rows of sequence): a tiled
 * transpose through shared memory, so that both the reads and the writes are coalesced. */
#include "kernels/cuda/backend.h"

#define TILE 32
#define TILE_ROWS 8 /* threads per tile column: each thread moves TILE / TILE_ROWS elements */

/* For each batch b = blockIdx.z: out[s, r] = inp[r, s], inp [R,S], out [S,R]. */
static __global__ void transpose_kernel(bf16 *out, const bf16 *inp, int R, int S) {
    __shared__ bf16 tile[TILE][TILE + 1]; /* +1: column reads hit distinct banks */
    const int64_t boff = (int64_t)blockIdx.z * R * S;
    const int s0 = blockIdx.x * TILE, r0 = blockIdx.y * TILE;
    for (int y = threadIdx.y; y < TILE; y += TILE_ROWS) {
        int r = r0 + y, s = s0 + threadIdx.x;
        if (r < R && s < S) tile[y][threadIdx.x] = inp[boff + (int64_t)r * S + s];
    }
    __syncthreads();
    for (int y = threadIdx.y; y < TILE; y += TILE_ROWS) {
        int s = s0 + y, r = r0 + threadIdx.x;
        if (r < R && s < S) out[boff + (int64_t)s * R + r] = tile[threadIdx.x][y];
    }
}

void cuda_transpose_bf16(bf16 *out, const bf16 *inp, int B, int R, int S) {
    if (B <= 0 || R <= 0 || S <= 0) return;
    LC_ASSERT(CEIL_DIV(R, TILE) <= 65535 && B <= 65535, "transpose: B=%d R=%d exceed the grid", B, R);
    dim3 grid((unsigned)CEIL_DIV(S, TILE), (unsigned)CEIL_DIV(R, TILE), (unsigned)B), block(TILE, TILE_ROWS);
    transpose_kernel<<<grid, block, 0, cuda_stream()>>>(out, inp, R, S);
    CUDA_CHECK_LAUNCH();
}

/* out[B,C,L] from inp[B,L,C] */
static void bcl_from_blc(act_t *out, const act_t *inp, int B, int L, int C) {
    cuda_transpose_bf16((bf16 *)out, (const bf16 *)inp, B, L, C);
}

/* out[B,L,C] from inp[B,C,L] */
static void blc_from_bcl(act_t *out, const act_t *inp, int B, int L, int C) {
    cuda_transpose_bf16((bf16 *)out, (const bf16 *)inp, B, C, L);
}

extern "C" void cuda_register_layout(Ops *o) {
    o->bcl_from_blc = bcl_from_blc;
    o->blc_from_bcl = blc_from_bcl;
}
