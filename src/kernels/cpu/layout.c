/* Layout changes between [B,L,C] (rows of channels) and [B,C,L] (rows of sequence). */
#include "kernels/cpu/real.h"

/* Tile edge of the transpose: a tile of each side stays in L1. */
#define LAYOUT_TILE 32

/* For each of B batches: out[s, r] = inp[r, s] with inp [R,S] and out [S,R]. */
static void layout_transpose(real *out, const real *inp, int B, int R, int S) {
    int tr = (R + LAYOUT_TILE - 1) / LAYOUT_TILE, ts = (S + LAYOUT_TILE - 1) / LAYOUT_TILE;
    int64_t ntiles = (int64_t)B * tr * ts;
#pragma omp parallel for schedule(static) if ((int64_t)B * R * S > 16384)
    for (int64_t t = 0; t < ntiles; t++) {
        int b = (int)(t / ((int64_t)tr * ts));
        int r0 = (int)(t / ts % tr) * LAYOUT_TILE, s0 = (int)(t % ts) * LAYOUT_TILE;
        int r1 = r0 + LAYOUT_TILE < R ? r0 + LAYOUT_TILE : R;
        int s1 = s0 + LAYOUT_TILE < S ? s0 + LAYOUT_TILE : S;
        const real *ib = inp + (int64_t)b * R * S;
        real *ob = out + (int64_t)b * R * S;
        for (int r = r0; r < r1; r++)
            for (int s = s0; s < s1; s++) ob[(int64_t)s * R + r] = ib[(int64_t)r * S + s];
    }
}

/* out[B,C,L] from inp[B,L,C] */
static void bcl_from_blc(act_t *out, const act_t *inp, int B, int L, int C) { layout_transpose(out, inp, B, L, C); }

/* out[B,L,C] from inp[B,C,L] */
static void blc_from_bcl(act_t *out, const act_t *inp, int B, int L, int C) { layout_transpose(out, inp, B, C, L); }

void CPU_NAME(register_layout)(Ops *o) {
    o->bcl_from_blc = bcl_from_blc;
    o->blc_from_bcl = blc_from_bcl;
}
