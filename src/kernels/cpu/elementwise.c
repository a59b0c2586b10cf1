/* Elementwise ops: add, accumulate, tanh-GELU, inverted dropout (Philox mask, recomputed in bwd). */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/real.h"

/* Loops shorter than this run on one thread: spawning costs more than the work. */
#define EW_PAR_MIN 16384

/* out[n] = a[n] + b[n]; out may alias a. */
static void add(act_t *out_, const act_t *a_, const act_t *b_, int64_t n) {
    real *out = out_;
    const real *a = a_, *b = b_;
#pragma omp parallel for schedule(static) if (n > EW_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* dst[n] += src[n] */
static void accumulate(act_t *dst_, const act_t *src_, int64_t n) {
    real *dst = dst_;
    const real *src = src_;
#pragma omp parallel for schedule(static) if (n > EW_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 * Evaluated in double: the CPU path is the reference, and the cost is small next to the GEMMs. */
#define GELU_S 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_A 0.044715

/* out[n] = gelu(inp[n]) */
static void gelu_fwd(act_t *out_, const act_t *inp_, int64_t n) {
    real *out = out_;
    const real *inp = inp_;
#pragma omp parallel for schedule(static) if (n > EW_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (real)(0.5 * x * (1.0 + tanh(GELU_S * (x + GELU_A * x * x * x))));
    }
}

/* dinp[n] = gelu'(inp[n]) * dout[n]  (written) */
static void gelu_bwd(act_t *dinp_, const act_t *inp_, const act_t *dout_, int64_t n) {
    real *dinp = dinp_;
    const real *inp = inp_, *dout = dout_;
#pragma omp parallel for schedule(static) if (n > EW_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double x = inp[i];
        double t = tanh(GELU_S * (x + GELU_A * x * x * x));
        double du = GELU_S * (1.0 + 3.0 * GELU_A * x * x);
        double g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
        dinp[i] = (real)(g * (double)dout[i]);
    }
}

/* Element i is kept iff its Philox uniform is >= p; kept elements are scaled by 1/(1-p) so the
 * expectation is unchanged. The backward applies the same function to dout, so one helper serves
 * both directions. out, inp: [n]. */
static void dropout_apply(real *out, const real *inp, float p, uint64_t seed, uint64_t stream, int64_t n) {
    LC_ASSERT(p >= 0.0f && p < 1.0f, "dropout probability %g outside [0, 1)", (double)p);
    if (p == 0.0f) {
        if (out != inp) memmove(out, inp, (size_t)n * sizeof(real));
        return;
    }
    const real scale = (real)(1.0 / (1.0 - (double)p));
#pragma omp parallel for schedule(static) if (n > EW_PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
        int keep = philox_uniform(seed, stream, (uint64_t)i) >= p;
        out[i] = keep ? inp[i] * scale : (real)0;
    }
}

static void dropout_fwd(act_t *out, const act_t *inp, float p, uint64_t seed, uint64_t stream, int64_t n) {
    dropout_apply(out, inp, p, seed, stream, n);
}

static void dropout_bwd(act_t *dinp, const act_t *dout, float p, uint64_t seed, uint64_t stream, int64_t n) {
    dropout_apply(dinp, dout, p, seed, stream, n);
}

void CPU_NAME(register_elementwise)(Ops *o) {
    o->add = add;
    o->accumulate = accumulate;
    o->gelu_fwd = gelu_fwd;
    o->gelu_bwd = gelu_bwd;
    o->dropout_fwd = dropout_fwd;
    o->dropout_bwd = dropout_bwd;
}
