/* Token embedding lookup and its backward (scatter-add into the table, deterministic). */
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

/* Channels per block of the backward: each thread owns whole columns of dwte, so every element
 * is summed over the rows in their order whatever the thread count. */
#define EMB_CBLOCK 64

/* The data readers check token < vocab; here we only refuse ids that would index before the
 * table. Checked serially so that the error is raised outside any parallel region. */
static void embedding_check_tokens(const tok_t *tokens, int64_t N) {
    for (int64_t n = 0; n < N; n++)
        LC_ASSERT(tokens[n] >= 0, "embedding: token id %d at row %lld is negative", (int)tokens[n], (long long)n);
}

/* out[N,C] = wte[tokens[n], :];  wte: [V,C] */
static void embedding_fwd(act_t *out_, const tok_t *tokens, const act_t *wte_, int64_t N, int C) {
    real *out = out_;
    const real *wte = wte_;
    embedding_check_tokens(tokens, N);
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++)
        memcpy(out + n * C, wte + (int64_t)tokens[n] * C, (size_t)C * sizeof(real));
}

/* dwte[tokens[n], :] += dout[n, :];  dwte: [V,C], dout: [N,C] */
static void embedding_bwd(acc_t *dwte_, const act_t *dout_, const tok_t *tokens, int64_t N, int C) {
    real *dwte = dwte_;
    const real *dout = dout_;
    if (!dwte) return;
    embedding_check_tokens(tokens, N);
    int nblocks = (C + EMB_CBLOCK - 1) / EMB_CBLOCK;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * EMB_CBLOCK;
        int c1 = c0 + EMB_CBLOCK < C ? c0 + EMB_CBLOCK : C;
        for (int64_t n = 0; n < N; n++) {
            real *d = dwte + (int64_t)tokens[n] * C;
            const real *g = dout + n * C;
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

void CPU_NAME(register_embedding)(Ops *o) {
    o->embedding_fwd = embedding_fwd;
    o->embedding_bwd = embedding_bwd;
}
