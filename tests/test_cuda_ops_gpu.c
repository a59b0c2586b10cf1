/* The CUDA op table against the fp32 CPU backend, op by op: every forward output and every
 * gradient, from the SAME bf16-rounded inputs (rounded on the host, fed to both), at Hyena-s sizes
 * and odd sizes; parameter gradients accumulate (+=, called twice); dropout masks are identical;
 * every GPU result is bitwise the same when recomputed; output buffers are poisoned with NaN.
 *
 * Error bounds, argued once here and referred to below:
 *   U_BF16 = 2^-8: bf16 keeps 8 significant bits, so one round-to-nearest of x errs by at most
 *     2^-8 |x|, and a vector of such roundings by at most 2^-8 of its L2 norm (the typical
 *     relative L2 of random data is ~1.5e-3).
 *   U_F32 = 2^-24, the same for fp32.
 *   fp32 sums of n random-sign terms, in any order (GEMM dot products, column sums): the
 *     probabilistic bound ~sqrt(n) u sum|t| (Higham & Mary) with sum|t| ~ sqrt(n) |sum t| gives
 *     n * U_F32 relative; SUM_BOUND(n) below. The CPU reference sums in fp32 (GEMMs) or double.
 * Skips (exit 77) without a CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/ops.h"
#include "testutil.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"

#define U_BF16 (1.0 / 256.0)
#define U_F32 5.9604644775390625e-8
#define SUM_BOUND(n) ((double)(n) * U_F32 > 1e-6 ? (double)(n) * U_F32 : 1e-6)

static const Ops *G; /* the CUDA table (without the completeness check: fftconv is tested elsewhere) */
static const Ops *H; /* the fp32 CPU backend: host pointers are its device pointers */

/* ---- host bf16 (round to nearest even, as __float2bfloat16_rn) ---- */
static uint16_t bf_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float bf_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}
static float bf_round(float x) { return bf_float(bf_bits(x)); }

/* ---- buffers ---- */
static uint64_t rng;

/* n normal values mean + std * N(0,1); rounded to bf16 when act (inputs of act_t type) */
static float *hrand(int64_t n, double mean, double std, int act) {
    float *x = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)(mean + std * tu_normal(&rng));
        if (act) x[i] = bf_round(x[i]);
    }
    return x;
}
static float *hcopy(const float *x, int64_t n) {
    float *y = xmalloc((size_t)n * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}
/* device bf16 copy of x (x must hold bf16 values: the conversion is then exact) */
static void put_act(void *d, const float *x, int64_t n) {
    uint16_t *b = xmalloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) b[i] = bf_bits(x[i]);
    G->to_device(d, b, (size_t)n * 2);
    free(b);
}
static void *up_act(const float *x, int64_t n) {
    void *d = G->alloc((size_t)n * 2);
    put_act(d, x, n);
    return d;
}
static void *up_acc(const float *x, int64_t n) {
    void *d = G->alloc((size_t)n * 4);
    G->acc_from_f32(d, x, n);
    return d;
}
static void put_acc(void *d, const float *x, int64_t n) { G->acc_from_f32(d, x, n); }
/* all-ones bytes: NaN in bf16 and fp32, so an element the op forgets to write fails the checks */
static void poison(void *d, size_t bytes) {
    void *h = xmalloc(bytes);
    memset(h, 0xff, bytes);
    G->to_device(d, h, bytes);
    free(h);
}
static void *alloc_poisoned(size_t bytes) {
    void *d = G->alloc(bytes);
    poison(d, bytes);
    return d;
}
static float *down_act(const void *d, int64_t n) {
    uint16_t *b = xmalloc((size_t)n * 2);
    G->to_host(b, d, (size_t)n * 2);
    float *x = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = bf_float(b[i]);
    free(b);
    return x;
}
static float *down_acc(const void *d, int64_t n) {
    float *x = xmalloc((size_t)n * sizeof(float));
    G->acc_to_f32(x, d, n);
    return x;
}
/* elements where the GPU's bf16 differs from the CPU's fp32 value rounded once to bf16 */
static int64_t count_bf_mismatch(const float *gpu, const float *cpu, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += bf_bits(gpu[i]) != bf_bits(cpu[i]);
    return bad;
}
static void check_same_bits(const char *what, const float *a, const float *b, int64_t n) {
    int same = memcmp(a, b, (size_t)n * sizeof(float)) == 0;
    fprintf(stderr, "  %-40s %s\n", what, same ? "bitwise equal on rerun" : "DIFFERS on rerun");
    ck_assert_msg(same, "%s: GPU result not reproducible", what);
}
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Mean wall time of reps calls of stmt, after the queue is drained (for docs/cuda-backend.md). */
#define TIME_OP(label, reps, stmt)                                                                 \
    do {                                                                                           \
        G->synchronize();                                                                          \
        double t0_ = now_s();                                                                      \
        for (int r_ = 0; r_ < (reps); r_++) { stmt; }                                              \
        G->synchronize();                                                                          \
        fprintf(stderr, "  timing %-48s %.3f ms\n", label, (now_s() - t0_) / (reps) * 1e3);       \
    } while (0)

/* ---- table, memory, conversions ---- */

START_TEST(table_and_memory) {
    ck_assert_str_eq(G->name, "cuda");
    ck_assert(G->act_bytes == 2 && G->acc_bytes == 4 && G->act_is_acc == 0);
    /* ops_cuda adds the completeness check: fine once fftconv registers, else it names the op */
    if (G->fftconv_fwd && G->fftconv_bwd) ck_assert_ptr_eq(ops_cuda(), G);
    else EXPECT_DIE(ops_cuda(), "fftconv_");
    EXPECT_DIE(G->alloc((size_t)1 << 52), "HINT");

    const int64_t n = 1000003;
    unsigned char *zeros = xcalloc((size_t)n, 1), *h = xmalloc((size_t)n), *back = xmalloc((size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = (unsigned char)(tu_uniform(&rng) * 256);
    void *a = G->alloc((size_t)n), *b = G->alloc((size_t)n);
    G->to_host(back, a, (size_t)n);
    ck_assert_msg(memcmp(back, zeros, (size_t)n) == 0, "alloc is not zeroed");
    G->to_device(a, h, (size_t)n);
    G->copy(b, a, (size_t)n);
    G->to_host(back, b, (size_t)n);
    ck_assert_msg(memcmp(back, h, (size_t)n) == 0, "to_device/copy/to_host round trip");
    G->zero(b, (size_t)n);
    G->synchronize();
    G->to_host(back, b, (size_t)n);
    ck_assert_msg(memcmp(back, zeros, (size_t)n) == 0, "zero");
    G->free(a), G->free(b), free(zeros), free(h), free(back);

    /* conversions are exact or one rounding with a known result: compare bits */
    float *x = hrand(n, 0.0, 3.0, 0);
    /* ties of bf16 rounding (x = bf16 value + half an ulp) and special values */
    for (int i = 0; i < 1000; i++) {
        uint32_t u = ((uint32_t)bf_bits(x[i]) << 16) | 0x8000u;
        memcpy(&x[i], &u, 4);
    }
    x[1000] = INFINITY, x[1001] = -INFINITY, x[1002] = -0.0f, x[1003] = 3.4e38f, x[1004] = 1e-40f;
    double *xd = xmalloc((size_t)n * sizeof(double)), *yd = xmalloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) xd[i] = (double)x[i] * (1.0 + 1e-9 * tu_normal(&rng));
    void *acc = G->alloc((size_t)n * 4), *act = G->alloc((size_t)n * 2);
    G->acc_from_f32(acc, x, n);
    float *y = down_acc(acc, n);
    ck_assert_msg(memcmp(x, y, (size_t)n * 4) == 0, "acc_from_f32/acc_to_f32");
    free(y);
    G->act_from_acc(act, acc, n);
    float *r = down_act(act, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += bf_bits(r[i]) != bf_bits(x[i]);
    tu_check_err("act_from_acc: elements != host RNE", (double)bad, 0);
    G->act_to_acc(acc, act, n);
    y = down_acc(acc, n);
    ck_assert_msg(memcmp(r, y, (size_t)n * 4) == 0, "act_to_acc is not exact");
    /* acc_add_act: one fp32 addition per element */
    float *base = hrand(n, 0.0, 1.0, 0);
    base[1000] = base[1001] = 0; /* inf + -inf stays out of the test */
    put_acc(acc, base, n);
    G->acc_add_act(acc, act, n);
    free(y);
    y = down_acc(acc, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = base[i] + r[i];
        bad += memcmp(&e, &y[i], 4) != 0;
    }
    tu_check_err("acc_add_act: elements != host fp32 add", (double)bad, 0);
    G->acc_from_f64(acc, xd, n);
    G->acc_to_f64(yd, acc, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += yd[i] != (double)(float)xd[i] && !(isnan(yd[i]) && isnan(xd[i]));
    tu_check_err("acc_from_f64/acc_to_f64: != (float)x", (double)bad, 0);
    G->free(acc), G->free(act), free(x), free(xd), free(yd), free(r), free(y), free(base);
}
END_TEST

/* ---- elementwise ---- */

START_TEST(elementwise) {
    const int64_t n = 1000003;
    float *a = hrand(n, 0.0, 1.0, 1), *b = hrand(n, 0.0, 1.0, 1), *x = hrand(n, 0.0, 2.0, 1);
    float *ref = xmalloc((size_t)n * 4), *ref2 = xmalloc((size_t)n * 4);
    void *da = up_act(a, n), *db = up_act(b, n), *dx = up_act(x, n), *dout = alloc_poisoned((size_t)n * 2);
    /* add and accumulate: one fp32 addition, then one rounding on both sides: equal bits */
    H->add(ref, a, b, n);
    G->add(dout, da, db, n);
    float *o = down_act(dout, n);
    tu_check_err("add: elements != bf16(cpu)", (double)count_bf_mismatch(o, ref, n), 0);
    G->accumulate(da, db, n); /* in place: out aliases a */
    free(o);
    o = down_act(da, n);
    tu_check_err("accumulate: elements != bf16(cpu)", (double)count_bf_mismatch(o, ref, n), 0);
    free(o);
    /* GELU: CPU in double, GPU in fp32 (tanhf: a few fp32 ulps), then one bf16 rounding */
    H->gelu_fwd(ref, x, n);
    poison(dout, (size_t)n * 2);
    G->gelu_fwd(dout, dx, n);
    o = down_act(dout, n);
    tu_check_err("gelu_fwd (rel l2)", tu_rel_l2_f(o, ref, n), U_BF16 + 1e-5);
    free(o);
    H->gelu_bwd(ref2, x, b, n);
    poison(dout, (size_t)n * 2);
    G->gelu_bwd(dout, dx, db, n);
    o = down_act(dout, n);
    tu_check_err("gelu_bwd dinp (rel l2)", tu_rel_l2_f(o, ref2, n), U_BF16 + 1e-5);
    G->gelu_bwd(dout, dx, db, n);
    float *o2 = down_act(dout, n);
    check_same_bits("gelu_bwd", o, o2, n);
    TIME_OP("gelu_fwd n=1000003", 20, G->gelu_fwd(dout, dx, n));
    TIME_OP("add n=1000003", 20, G->add(dout, dx, db, n));
    free(o), free(o2);
    G->free(da), G->free(db), G->free(dx), G->free(dout), free(a), free(b), free(x), free(ref), free(ref2);
}
END_TEST

START_TEST(dropout) {
    const int64_t n = 1000003;
    float *x = hrand(n, 0.0, 1.0, 1), *ref = xmalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++)
        if (x[i] == 0.0f) x[i] = 1.0f; /* a zero output then means "dropped" */
    void *dx = up_act(x, n), *dout = alloc_poisoned((size_t)n * 2);
    const uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(tu_uniform(&rng) * 1e9);
    const uint64_t stream = (5ull << 40) | 17u; /* bits above 32 must reach the kernel */
    const float ps[3] = {0.1f, 0.5f, 0.0f};
    for (int k = 0; k < 3; k++)
        for (int bwd = 0; bwd < 2; bwd++) {
            (bwd ? H->dropout_bwd : H->dropout_fwd)(ref, x, ps[k], seed, stream, n);
            poison(dout, (size_t)n * 2);
            (bwd ? G->dropout_bwd : G->dropout_fwd)(dout, dx, ps[k], seed, stream, n);
            float *o = down_act(dout, n);
            int64_t mask_bad = 0, kept = 0;
            for (int64_t i = 0; i < n; i++) {
                mask_bad += (o[i] == 0.0f) != (ref[i] == 0.0f);
                kept += o[i] != 0.0f;
            }
            /* the same Philox draws and one fp32 multiply by the same scale: equal bits */
            char name[96];
            snprintf(name, sizeof name, "dropout %s p=%.1f: mask differences", bwd ? "bwd" : "fwd", (double)ps[k]);
            tu_check_err(name, (double)mask_bad, 0);
            snprintf(name, sizeof name, "dropout %s p=%.1f: values != bf16(cpu)", bwd ? "bwd" : "fwd", (double)ps[k]);
            tu_check_err(name, (double)count_bf_mismatch(o, ref, n), 0);
            /* kept fraction: binomial, 6 sigma */
            double frac = (double)kept / (double)n, sd = sqrt(ps[k] * (1.0 - ps[k]) / (double)n);
            ck_assert_msg(fabs(frac - (1.0 - ps[k])) <= 6 * sd + 1e-12, "kept %.5f for p=%.1f", frac, (double)ps[k]);
            free(o);
        }
    G->free(dx), G->free(dout), free(x), free(ref);
}
END_TEST

/* ---- embedding ---- */

static void embedding_case(int64_t N, int C, int V) {
    fprintf(stderr, " embedding N=%lld C=%d V=%d\n", (long long)N, C, V);
    tok_t *tok = xmalloc((size_t)N * sizeof(tok_t));
    for (int64_t i = 0; i < N; i++) /* a third of the rows share ten tokens: long runs in the sort */
        tok[i] = tu_uniform(&rng) < 0.33 ? (tok_t)(tu_uniform(&rng) * (V < 10 ? V : 10))
                                         : (tok_t)(tu_uniform(&rng) * V);
    float *wte = hrand((int64_t)V * C, 0.0, 0.02, 1), *dout = hrand(N * C, 0.0, 1.0, 1);
    float *out = xmalloc((size_t)(N * C) * 4);
    /* dwte starts from random values of the size of the gradient (~sqrt(rows per token)) */
    float *init = hrand((int64_t)V * C, 0.0, 1.0, 0), *ref = hcopy(init, (int64_t)V * C);
    void *dtok = G->alloc((size_t)N * sizeof(tok_t));
    G->to_device(dtok, tok, (size_t)N * sizeof(tok_t));
    void *dwte = up_act(wte, (int64_t)V * C), *ddout = up_act(dout, N * C), *dd = up_acc(init, (int64_t)V * C);
    void *dout_fwd = alloc_poisoned((size_t)(N * C) * 2);
    H->embedding_fwd(out, tok, wte, N, C);
    G->embedding_fwd(dout_fwd, dtok, dwte, N, C);
    float *o = down_act(dout_fwd, N * C);
    tu_check_err("embedding_fwd: elements != cpu (a copy)", (double)count_bf_mismatch(o, out, N * C), 0);
    /* the backward adds each token's rows in row order in fp32 starting from dwte, as the CPU
     * does: the same operations, so equal up to (at most) reassociation: SUM_BOUND(N) */
    for (int call = 1; call <= 2; call++) {
        H->embedding_bwd(ref, dout, tok, N, C);
        G->embedding_bwd(dd, ddout, dtok, N, C);
        float *g = down_acc(dd, (int64_t)V * C);
        tu_check_err(call == 1 ? "embedding_bwd dwte += (rel l2)" : "embedding_bwd dwte, 2nd call (rel l2)",
                     tu_rel_l2_f(g, ref, (int64_t)V * C), SUM_BOUND(N));
        if (call == 1) { /* rerun from the same start */
            put_acc(dd, init, (int64_t)V * C);
            G->embedding_bwd(dd, ddout, dtok, N, C);
            float *g2 = down_acc(dd, (int64_t)V * C);
            check_same_bits("embedding_bwd dwte", g, g2, (int64_t)V * C);
            free(g2);
        }
        free(g);
    }
    if (N >= 8192) {
        TIME_OP("embedding_fwd N=8192 C=864", 20, G->embedding_fwd(dout_fwd, dtok, dwte, N, C));
        TIME_OP("embedding_bwd N=8192 C=864 V=50264", 20, G->embedding_bwd(dd, ddout, dtok, N, C));
    }
    G->free(dtok), G->free(dwte), G->free(ddout), G->free(dd), G->free(dout_fwd);
    free(tok), free(wte), free(dout), free(out), free(init), free(ref), free(o);
}

START_TEST(embedding) {
    embedding_case(8192, 864, 50264); /* Hyena-s: 2 x 4096 tokens, padded GPT-2 vocabulary */
    embedding_case(1001, 37, 12);     /* DNA-like vocabulary: runs of ~80 rows per token */
}
END_TEST

/* ---- layernorm ---- */

static void layernorm_case(int64_t N, int C) {
    fprintf(stderr, " layernorm N=%lld C=%d\n", (long long)N, C);
    const float eps = 1e-5f;
    float *x = hrand(N * C, 0.3, 1.0, 1), *w = hrand(C, 1.0, 0.1, 1), *b = hrand(C, 0.0, 0.1, 1);
    float *out = xmalloc((size_t)(N * C) * 4), *mean = xmalloc((size_t)N * 4), *rstd = xmalloc((size_t)N * 4);
    H->layernorm_fwd(out, mean, rstd, x, w, b, N, C, eps);
    void *dx = up_act(x, N * C), *dw_ = up_act(w, C), *db_ = up_act(b, C);
    void *dout = alloc_poisoned((size_t)(N * C) * 2), *dmean = alloc_poisoned((size_t)N * 4);
    void *drstd = alloc_poisoned((size_t)N * 4);
    G->layernorm_fwd(dout, dmean, drstd, dx, dw_, db_, N, C, eps);
    float *o = down_act(dout, N * C), *m = down_acc(dmean, N), *r = down_acc(drstd, N);
    /* statistics: fp32 sums of C terms of mean 0.3, sd 1: |err| <= C u sum|x| and sum|x| < 3 |sum x|
     * on average (E|x| ~ 0.85), so 10 C u; out: those errors plus one bf16 rounding */
    tu_check_err("layernorm_fwd mean (rel l2)", tu_rel_l2_f(m, mean, N), 10 * C * U_F32);
    tu_check_err("layernorm_fwd rstd (rel l2)", tu_rel_l2_f(r, rstd, N), 10 * C * U_F32);
    tu_check_err("layernorm_fwd out (rel l2)", tu_rel_l2_f(o, out, N * C), U_BF16 + 10 * C * U_F32);
    /* backward from the CPU's mean and rstd (fp32, fed to both) */
    float *dy = hrand(N * C, 0.0, 1.0, 1), *res = hrand(N * C, 0.0, 1.0, 1);
    float *dres = hcopy(res, N * C), *gw0 = hrand(C, 0.0, sqrt((double)N), 0), *gb0 = hrand(C, 0.0, sqrt((double)N), 0);
    float *gw = hcopy(gw0, C), *gb = hcopy(gb0, C);
    void *ddy = up_act(dy, N * C), *ddres = up_act(res, N * C), *dgw = up_acc(gw0, C), *dgb = up_acc(gb0, C);
    put_acc(dmean, mean, N), put_acc(drstd, rstd, N);
    for (int call = 1; call <= 2; call++) {
        H->layernorm_bwd(dres, gw, gb, dy, x, w, mean, rstd, N, C);
        G->layernorm_bwd(ddres, dgw, dgb, ddy, dx, dw_, dmean, drstd, N, C);
        float *gdx = down_act(ddres, N * C), *ggw = down_acc(dgw, C), *ggb = down_acc(dgb, C);
        /* dinp: row sums of C terms in fp32 (C u each), then one bf16 rounding of res + delta per
         * call (the residual stream is bf16: the second call rounds again) */
        tu_check_err(call == 1 ? "layernorm_bwd dinp += (rel l2)" : "layernorm_bwd dinp, 2nd call (rel l2)",
                     tu_rel_l2_f(gdx, dres, N * C), call * U_BF16 + 10 * C * U_F32);
        tu_check_err(call == 1 ? "layernorm_bwd dw += (rel l2)" : "layernorm_bwd dw, 2nd call (rel l2)",
                     tu_rel_l2_f(ggw, gw, C), SUM_BOUND(N));
        tu_check_err(call == 1 ? "layernorm_bwd db += (rel l2)" : "layernorm_bwd db, 2nd call (rel l2)",
                     tu_rel_l2_f(ggb, gb, C), SUM_BOUND(N));
        if (call == 1) {
            void *dres2 = up_act(res, N * C);
            put_acc(dgw, gw0, C), put_acc(dgb, gb0, C);
            G->layernorm_bwd(dres2, dgw, dgb, ddy, dx, dw_, dmean, drstd, N, C);
            float *gdx2 = down_act(dres2, N * C), *ggw2 = down_acc(dgw, C), *ggb2 = down_acc(dgb, C);
            check_same_bits("layernorm_bwd dinp", gdx, gdx2, N * C);
            check_same_bits("layernorm_bwd dw", ggw, ggw2, C);
            check_same_bits("layernorm_bwd db", ggb, ggb2, C);
            G->free(dres2), free(gdx2), free(ggw2), free(ggb2);
            put_acc(dgw, ggw, C), put_acc(dgb, ggb, C);
        }
        free(gdx), free(ggw), free(ggb);
    }
    if (N >= 8192) {
        TIME_OP("layernorm_fwd N=8192 C=864", 20, G->layernorm_fwd(dout, dmean, drstd, dx, dw_, db_, N, C, eps));
        TIME_OP("layernorm_bwd N=8192 C=864", 20,
                G->layernorm_bwd(ddres, dgw, dgb, ddy, dx, dw_, dmean, drstd, N, C));
    }
    G->free(dx), G->free(dw_), G->free(db_), G->free(dout), G->free(dmean), G->free(drstd);
    G->free(ddy), G->free(ddres), G->free(dgw), G->free(dgb);
    free(x), free(w), free(b), free(out), free(mean), free(rstd), free(o), free(m), free(r);
    free(dy), free(res), free(dres), free(gw0), free(gb0), free(gw), free(gb);
}

START_TEST(layernorm) {
    layernorm_case(8192, 864); /* Hyena-s: 2 x 4096 rows of d_model */
    layernorm_case(37, 53);
}
END_TEST

/* ---- linear ---- */

/* misalign: w, b and their gradients sit one element past an aligned address, as parameters at
 * odd offsets of the packed parameter block do */
static void linear_case(int64_t N, int C, int OC, int bias, int timing, int misalign) {
    fprintf(stderr, " linear N=%lld C=%d OC=%d%s%s\n", (long long)N, C, OC, bias ? "" : " (no bias)",
            misalign ? " (w, b, dw, db misaligned)" : "");
    float *x = hrand(N * C, 0.0, 1.0, 1), *w = hrand((int64_t)OC * C, 0.0, 1.0 / sqrt(C), 1);
    float *b = bias ? hrand(OC, 0.0, 0.5, 1) : NULL, *dy = hrand(N * OC, 0.0, 1.0, 1);
    float *out = xmalloc((size_t)(N * OC) * 4), *dx = xmalloc((size_t)(N * C) * 4);
    float *gw0 = hrand((int64_t)OC * C, 0.0, sqrt((double)N), 0), *gb0 = hrand(OC, 0.0, sqrt((double)N), 0);
    float *gw = hcopy(gw0, (int64_t)OC * C), *gb = hcopy(gb0, OC);
    const int off = misalign ? 1 : 0;
    void *bw = G->alloc((size_t)((int64_t)OC * C + 1) * 2), *bb = G->alloc((size_t)(OC + 1) * 2);
    void *bgw = G->alloc((size_t)((int64_t)OC * C + 1) * 4), *bgb = G->alloc((size_t)(OC + 1) * 4);
    void *ddw = (char *)bw + 2 * off, *ddb = bias ? (char *)bb + 2 * off : NULL;
    void *dgw = (char *)bgw + 4 * off, *dgb = (char *)bgb + 4 * off;
    put_act(ddw, w, (int64_t)OC * C), put_acc(dgw, gw0, (int64_t)OC * C), put_acc(dgb, gb0, OC);
    if (bias) put_act(ddb, b, OC);
    void *ddx = up_act(x, N * C), *ddy = up_act(dy, N * OC), *dout = alloc_poisoned((size_t)(N * OC) * 2);
    void *ddinp = alloc_poisoned((size_t)(N * C) * 2);
    H->linear_fwd(out, x, w, b, N, C, OC);
    G->linear_fwd(dout, ddx, ddw, ddb, N, C, OC);
    float *o = down_act(dout, N * OC);
    /* dot products of C terms (C u, see the top) plus one bf16 rounding; dinp: OC terms */
    tu_check_err("linear_fwd out (rel l2)", tu_rel_l2_f(o, out, N * OC), U_BF16 + C * U_F32);
    for (int call = 1; call <= 2; call++) {
        /* the second call leaves dinp out (NULL) and only accumulates */
        H->linear_bwd(call == 1 ? dx : NULL, gw, bias ? gb : NULL, dy, x, w, N, C, OC);
        G->linear_bwd(call == 1 ? ddinp : NULL, dgw, bias ? dgb : NULL, ddy, ddx, ddw, N, C, OC);
        float *gdx = call == 1 ? down_act(ddinp, N * C) : NULL, *ggw = down_acc(dgw, (int64_t)OC * C);
        float *ggb = down_acc(dgb, OC);
        if (gdx) tu_check_err("linear_bwd dinp (rel l2)", tu_rel_l2_f(gdx, dx, N * C), U_BF16 + OC * U_F32);
        /* dW: dot products over N rows in fp32 on both sides, no rounding to bf16 */
        tu_check_err(call == 1 ? "linear_bwd dw += (rel l2)" : "linear_bwd dw, 2nd call (rel l2)",
                     tu_rel_l2_f(ggw, gw, (int64_t)OC * C), SUM_BOUND(N));
        if (bias)
            tu_check_err(call == 1 ? "linear_bwd db += (rel l2)" : "linear_bwd db, 2nd call (rel l2)",
                         tu_rel_l2_f(ggb, gb, OC), SUM_BOUND(N));
        else tu_check_err("linear_bwd db NULL leaves it", tu_rel_l2_f(ggb, gb0, OC), 0);
        if (call == 1) {
            float *o2;
            G->linear_fwd(dout, ddx, ddw, ddb, N, C, OC);
            o2 = down_act(dout, N * OC);
            check_same_bits("linear_fwd out", o, o2, N * OC);
            free(o2);
            put_acc(dgw, gw0, (int64_t)OC * C), put_acc(dgb, gb0, OC);
            G->linear_bwd(ddinp, dgw, bias ? dgb : NULL, ddy, ddx, ddw, N, C, OC);
            float *gdx2 = down_act(ddinp, N * C), *ggw2 = down_acc(dgw, (int64_t)OC * C), *ggb2 = down_acc(dgb, OC);
            check_same_bits("linear_bwd dinp", gdx, gdx2, N * C);
            check_same_bits("linear_bwd dw", ggw, ggw2, (int64_t)OC * C);
            check_same_bits("linear_bwd db", ggb, ggb2, OC);
            free(gdx2), free(ggw2), free(ggb2);
        }
        free(gdx), free(ggw), free(ggb);
    }
    if (timing) {
        const int reps = 10;
        double flop = 2.0 * (double)N * C * OC;
        G->synchronize();
        double t0 = now_s();
        for (int i = 0; i < reps; i++) G->linear_fwd(dout, ddx, ddw, ddb, N, C, OC);
        G->synchronize();
        double t1 = now_s();
        for (int i = 0; i < reps; i++) G->linear_bwd(ddinp, dgw, bias ? dgb : NULL, ddy, ddx, ddw, N, C, OC);
        G->synchronize();
        double t2 = now_s();
        fprintf(stderr, "  timing linear N=%lld C=%d OC=%d: fwd %.3f ms (%.0f TFLOP/s), bwd %.3f ms (%.0f TFLOP/s)\n",
                (long long)N, C, OC, (t1 - t0) / reps * 1e3, flop * reps / (t1 - t0) * 1e-12, (t2 - t1) / reps * 1e3,
                2 * flop * reps / (t2 - t1) * 1e-12);
    }
    G->free(ddx), G->free(bw), G->free(bb), G->free(ddy), G->free(dout), G->free(ddinp), G->free(bgw), G->free(bgb);
    free(x), free(w), free(b), free(dy), free(out), free(dx), free(gw0), free(gb0), free(gw), free(gb), free(o);
}

START_TEST(linear) {
    linear_case(8192, 864, 2592, 1, 1, 0); /* Hyena-s in_proj at 2 x 4096 tokens: bias epilogue */
    linear_case(8192, 864, 2592, 1, 1, 1); /* the same with w, b misaligned: fp32 GEMM + bias kernel */
    linear_case(512, 864, 50264, 0, 1, 0); /* Hyena-s LM head, one chunk of rows */
    linear_case(37, 19, 53, 1, 0, 0);      /* odd widths */
    linear_case(4096, 33, 64, 1, 0, 1);    /* Hyena-s filter MLP's first layer (z has 33 features) */
}
END_TEST

/* ---- layout ---- */

START_TEST(layout) {
    const int shapes[2][3] = {{2, 4096, 864}, {3, 37, 53}};
    for (int s = 0; s < 2; s++) {
        const int B = shapes[s][0], L = shapes[s][1], C = shapes[s][2];
        const int64_t n = (int64_t)B * L * C;
        float *x = hrand(n, 0.0, 1.0, 1), *ref = xmalloc((size_t)n * 4);
        void *dx = up_act(x, n), *dout = alloc_poisoned((size_t)n * 2);
        for (int dir = 0; dir < 2; dir++) {
            (dir ? H->blc_from_bcl : H->bcl_from_blc)(ref, x, B, L, C);
            poison(dout, (size_t)n * 2);
            (dir ? G->blc_from_bcl : G->bcl_from_blc)(dout, dx, B, L, C);
            float *o = down_act(dout, n);
            char name[96];
            snprintf(name, sizeof name, "%s B=%d L=%d C=%d: elements != cpu", dir ? "blc_from_bcl" : "bcl_from_blc",
                     B, L, C);
            tu_check_err(name, (double)count_bf_mismatch(o, ref, n), 0); /* a permutation: exact */
            free(o);
        }
        G->free(dx), G->free(dout), free(x), free(ref);
    }
}
END_TEST

/* ---- shortconv ---- */

static void shortconv_case(int B, int L, int C, int K, int bias) {
    fprintf(stderr, " shortconv B=%d L=%d C=%d K=%d%s\n", B, L, C, K, bias ? "" : " (no bias)");
    const int64_t n = (int64_t)B * L * C, N = (int64_t)B * L;
    float *x = hrand(n, 0.0, 1.0, 1), *w = hrand((int64_t)C * K, 0.0, 0.5, 1), *b = bias ? hrand(C, 0.0, 0.5, 1) : NULL;
    float *dy = hrand(n, 0.0, 1.0, 1), *out = xmalloc((size_t)n * 4), *dx = xmalloc((size_t)n * 4);
    float *gw0 = hrand((int64_t)C * K, 0.0, sqrt((double)N), 0), *gb0 = hrand(C, 0.0, sqrt((double)N), 0);
    float *gw = hcopy(gw0, (int64_t)C * K), *gb = hcopy(gb0, C);
    void *ddx = up_act(x, n), *ddw = up_act(w, (int64_t)C * K), *ddb = bias ? up_act(b, C) : NULL;
    void *ddy = up_act(dy, n), *dout = alloc_poisoned((size_t)n * 2), *ddinp = alloc_poisoned((size_t)n * 2);
    void *dgw = up_acc(gw0, (int64_t)C * K), *dgb = up_acc(gb0, C);
    H->shortconv_fwd(out, x, w, b, B, L, C, K);
    G->shortconv_fwd(dout, ddx, ddw, ddb, B, L, C, K);
    float *o = down_act(dout, n);
    /* K + 1 fp32 terms (a few u), then one bf16 rounding */
    tu_check_err("shortconv_fwd out (rel l2)", tu_rel_l2_f(o, out, n), U_BF16 + 1e-5);
    for (int call = 1; call <= 2; call++) {
        H->shortconv_bwd(dx, gw, gb, dy, x, w, B, L, C, K);
        G->shortconv_bwd(ddinp, dgw, dgb, ddy, ddx, ddw, B, L, C, K);
        float *gdx = down_act(ddinp, n), *ggw = down_acc(dgw, (int64_t)C * K), *ggb = down_acc(dgb, C);
        tu_check_err("shortconv_bwd dinp (rel l2)", tu_rel_l2_f(gdx, dx, n), U_BF16 + 1e-5);
        tu_check_err(call == 1 ? "shortconv_bwd dw += (rel l2)" : "shortconv_bwd dw, 2nd call (rel l2)",
                     tu_rel_l2_f(ggw, gw, (int64_t)C * K), SUM_BOUND(N));
        tu_check_err(call == 1 ? "shortconv_bwd dbias += (rel l2)" : "shortconv_bwd dbias, 2nd call (rel l2)",
                     tu_rel_l2_f(ggb, gb, C), SUM_BOUND(N));
        if (call == 1) {
            put_acc(dgw, gw0, (int64_t)C * K), put_acc(dgb, gb0, C);
            poison(ddinp, (size_t)n * 2);
            G->shortconv_bwd(ddinp, dgw, dgb, ddy, ddx, ddw, B, L, C, K);
            float *gdx2 = down_act(ddinp, n), *ggw2 = down_acc(dgw, (int64_t)C * K), *ggb2 = down_acc(dgb, C);
            check_same_bits("shortconv_bwd dinp", gdx, gdx2, n);
            check_same_bits("shortconv_bwd dw", ggw, ggw2, (int64_t)C * K);
            check_same_bits("shortconv_bwd dbias", ggb, ggb2, C);
            free(gdx2), free(ggw2), free(ggb2);
        }
        free(gdx), free(ggw), free(ggb);
    }
    if (n >= 1000000) {
        TIME_OP("shortconv_fwd B=2 L=4096 C=2592 K=3", 20, G->shortconv_fwd(dout, ddx, ddw, ddb, B, L, C, K));
        TIME_OP("shortconv_bwd B=2 L=4096 C=2592 K=3", 20,
                G->shortconv_bwd(ddinp, dgw, dgb, ddy, ddx, ddw, B, L, C, K));
        TIME_OP("bcl_from_blc B=2 L=4096 C=2592", 20, G->bcl_from_blc(dout, ddx, B, L, C));
    }
    G->free(ddx), G->free(ddw), G->free(ddy), G->free(dout), G->free(ddinp), G->free(dgw), G->free(dgb);
    if (ddb) G->free(ddb);
    free(x), free(w), free(b), free(dy), free(out), free(dx), free(gw0), free(gb0), free(gw), free(gb), free(o);
}

START_TEST(shortconv) {
    shortconv_case(2, 4096, 2592, 3, 1); /* Hyena-s: 3 d_model channels, width 3 */
    shortconv_case(3, 37, 53, 3, 1);
    shortconv_case(2, 2, 5, 4, 0); /* L < K: every output sees the zero padding */
    shortconv_case(1, 7, 3, 1, 1);
}
END_TEST

/* ---- implicit filter ---- */

static void sin_case(int64_t N, int C) {
    fprintf(stderr, " sin N=%lld C=%d\n", (long long)N, C);
    float *x = hrand(N * C, 0.0, 1.0, 1), *freq = hrand(C, 1.0, 0.3, 0), *dy = hrand(N * C, 0.0, 1.0, 1);
    float *out = xmalloc((size_t)(N * C) * 4), *dx = xmalloc((size_t)(N * C) * 4);
    float *gf0 = hrand(C, 0.0, sqrt((double)N), 0), *gf = hcopy(gf0, C);
    void *ddx = up_act(x, N * C), *dfreq = up_acc(freq, C), *ddy = up_act(dy, N * C), *dgf = up_acc(gf0, C);
    void *dout = alloc_poisoned((size_t)(N * C) * 2), *ddinp = alloc_poisoned((size_t)(N * C) * 2);
    H->sin_fwd(out, x, freq, N, C);
    G->sin_fwd(dout, ddx, dfreq, N, C);
    float *o = down_act(dout, N * C);
    /* sinf/cosf: a few fp32 ulps against the CPU's double sin; then one bf16 rounding */
    tu_check_err("sin_fwd out (rel l2)", tu_rel_l2_f(o, out, N * C), U_BF16 + 1e-5);
    for (int call = 1; call <= 2; call++) {
        H->sin_bwd(dx, gf, dy, x, freq, N, C);
        G->sin_bwd(ddinp, dgf, ddy, ddx, dfreq, N, C);
        float *gdx = down_act(ddinp, N * C), *ggf = down_acc(dgf, C);
        tu_check_err("sin_bwd dinp (rel l2)", tu_rel_l2_f(gdx, dx, N * C), U_BF16 + 1e-5);
        tu_check_err(call == 1 ? "sin_bwd dfreq += (rel l2)" : "sin_bwd dfreq, 2nd call (rel l2)",
                     tu_rel_l2_f(ggf, gf, C), SUM_BOUND(N));
        if (call == 1) {
            put_acc(dgf, gf0, C);
            G->sin_bwd(ddinp, dgf, ddy, ddx, dfreq, N, C);
            float *ggf2 = down_acc(dgf, C);
            check_same_bits("sin_bwd dfreq", ggf, ggf2, C);
            free(ggf2);
        }
        free(gdx), free(ggf);
    }
    G->free(ddx), G->free(dfreq), G->free(ddy), G->free(dgf), G->free(dout), G->free(ddinp);
    free(x), free(freq), free(dy), free(out), free(dx), free(gf0), free(gf), free(o);
}

static void expmod_case(int L, int C, int modulate) {
    fprintf(stderr, " expmod L=%d C=%d modulate=%d\n", L, C, modulate);
    const int64_t n = (int64_t)L * C;
    const float shift = 0.05f;
    float *h = hrand(n, 0.0, 1.0, 1), *deltas = hrand(C, 0.0, 2.0, 0), *t_pos = xmalloc((size_t)L * 4);
    for (int t = 0; t < L; t++) t_pos[t] = L > 1 ? (float)t / (float)(L - 1) : 0.0f;
    float *dk = hrand(n, 0.0, 1.0, 0), *k = xmalloc((size_t)n * 4), *dh = xmalloc((size_t)n * 4);
    void *dh_in = up_act(h, n), *ddel = up_acc(deltas, C), *dt = up_acc(t_pos, L), *ddk = up_acc(dk, n);
    void *dkout = alloc_poisoned((size_t)n * 4), *ddh = alloc_poisoned((size_t)n * 2);
    H->expmod_fwd(k, h, deltas, t_pos, shift, modulate, L, C);
    G->expmod_fwd(dkout, dh_in, ddel, dt, shift, modulate, L, C);
    float *gk = down_acc(dkout, n);
    /* the factor is computed in double and rounded to fp32 on both sides (at most 1 ulp apart when
     * exp differs in its last double bit), times h: one fp32 rounding; fp32 output */
    tu_check_err("expmod_fwd k (rel l2)", tu_rel_l2_f(gk, k, n), 4 * U_F32);
    H->expmod_bwd(dh, dk, deltas, t_pos, shift, modulate, L, C);
    G->expmod_bwd(ddh, ddk, ddel, dt, shift, modulate, L, C);
    float *gdh = down_act(ddh, n);
    tu_check_err("expmod_bwd dh (rel l2)", tu_rel_l2_f(gdh, dh, n), U_BF16 + 4 * U_F32);
    G->free(dh_in), G->free(ddel), G->free(dt), G->free(ddk), G->free(dkout), G->free(ddh);
    free(h), free(deltas), free(t_pos), free(dk), free(k), free(dh), free(gk), free(gdh);
}

START_TEST(filter) {
    sin_case(4096, 64); /* Hyena-s filter MLP: L rows of width 64 */
    sin_case(37, 5);
    expmod_case(4096, 864, 1);
    expmod_case(4096, 864, 0);
    expmod_case(37, 19, 1);
}
END_TEST

/* ---- cross-entropy ---- */

static void xent_case(int64_t N, int V, int Vp) {
    fprintf(stderr, " xent N=%lld V=%d Vp=%d\n", (long long)N, V, Vp);
    const int64_t n = N * Vp;
    const float dscale = 1.0f / (float)N;
    float *z = hrand(n, 0.0, 2.0, 1), *zc = hcopy(z, n), *loss = xmalloc((size_t)N * 4);
    tok_t *tg = xmalloc((size_t)N * sizeof(tok_t));
    for (int64_t i = 0; i < N; i++) tg[i] = tu_uniform(&rng) < 0.1 ? -1 : (tok_t)(tu_uniform(&rng) * V);
    tg[0] = V - 1; /* the last real column */
    void *dz = up_act(z, n), *dtg = G->alloc((size_t)N * sizeof(tok_t)), *dloss = alloc_poisoned((size_t)N * 4);
    G->to_device(dtg, tg, (size_t)N * sizeof(tok_t));
    /* dscale == 0: losses only, the logits stay */
    G->xent_fwd_bwd(dloss, dz, dtg, N, V, Vp, 0.0f);
    float *l0 = down_acc(dloss, N), *z0 = down_act(dz, n);
    tu_check_err("xent dscale=0: logits changed", (double)count_bf_mismatch(z0, z, n), 0);
    H->xent_fwd_bwd(loss, zc, tg, N, V, Vp, dscale);
    poison(dloss, (size_t)N * 4);
    G->xent_fwd_bwd(dloss, dz, dtg, N, V, Vp, dscale);
    float *l = down_acc(dloss, N), *g = down_act(dz, n);
    /* the exp sum: per-thread runs of V/512 terms and 9-level trees, all terms positive, so
     * |err| <= (V/512 + 10) u of the sum; the loss errs by that in absolute (~1e-5 of a loss >= 1) */
    tu_check_err("xent losses (rel l2)", tu_rel_l2_f(l, loss, N), 1e-5);
    check_same_bits("xent losses (dscale 0 vs 1/N)", l, l0, N);
    /* dlogits: softmax to ~1e-5 relative, then one bf16 rounding; padding and ignored rows: 0 */
    tu_check_err("xent dlogits (rel l2)", tu_rel_l2_f(g, zc, n), U_BF16 + 1e-5);
    int64_t nonzero = 0;
    for (int64_t r = 0; r < N; r++)
        for (int i = 0; i < Vp; i++)
            if (i >= V || tg[r] < 0) nonzero += g[r * Vp + i] != 0.0f || signbit(g[r * Vp + i]);
    tu_check_err("xent padding and ignored rows: nonzero", (double)nonzero, 0);
    void *dz2 = up_act(z, n);
    G->xent_fwd_bwd(dloss, dz2, dtg, N, V, Vp, dscale);
    float *g2 = down_act(dz2, n), *l2 = down_acc(dloss, N);
    check_same_bits("xent dlogits", g, g2, n);
    check_same_bits("xent losses", l, l2, N);
    if (N >= 512) {
        const int reps = 10;
        G->synchronize();
        double t0 = now_s();
        for (int i = 0; i < reps; i++) G->xent_fwd_bwd(dloss, dz2, dtg, N, V, Vp, dscale);
        G->synchronize();
        fprintf(stderr, "  timing xent N=%lld Vp=%d: %.3f ms\n", (long long)N, Vp, (now_s() - t0) / reps * 1e3);
    }
    G->free(dz), G->free(dz2), G->free(dtg), G->free(dloss);
    free(z), free(zc), free(loss), free(tg), free(l0), free(z0), free(l), free(g), free(g2), free(l2);
}

START_TEST(xent) {
    xent_case(512, 50257, 50264); /* Hyena-s: GPT-2 vocabulary padded to 50264 */
    xent_case(7, 13, 16);
}
END_TEST

/* ---- optimizer and reductions ---- */

START_TEST(optim) {
    const int64_t n = 1000003;
    const int steps[2] = {1, 1000};
    for (int s = 0; s < 2; s++) {
        float *p = hrand(n, 0.0, 1.0, 0), *g = hrand(n, 0.0, 0.01, 0), *m = hrand(n, 0.0, 0.01, 0);
        float *v = hrand(n, 0.0, 0.01, 0);
        for (int64_t i = 0; i < n; i++) v[i] *= v[i];
        void *dp = up_acc(p, n), *dg = up_acc(g, n), *dm = up_acc(m, n), *dv = up_acc(v, n);
        H->adamw(p, g, m, v, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, steps[s]);
        G->adamw(dp, dg, dm, dv, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, steps[s]);
        float *gp = down_acc(dp, n), *gm = down_acc(dm, n), *gv = down_acc(dv, n);
        /* the same correctly rounded fp32 operations in the same order: equal up to ~1 ulp */
        char name[64];
        snprintf(name, sizeof name, "adamw t=%d p (rel l2)", steps[s]);
        tu_check_err(name, tu_rel_l2_f(gp, p, n), 1e-6);
        snprintf(name, sizeof name, "adamw t=%d m (rel l2)", steps[s]);
        tu_check_err(name, tu_rel_l2_f(gm, m, n), 1e-6);
        snprintf(name, sizeof name, "adamw t=%d v (rel l2)", steps[s]);
        tu_check_err(name, tu_rel_l2_f(gv, v, n), 1e-6);
        int64_t bits = 0;
        for (int64_t i = 0; i < n; i++) bits += memcmp(&gp[i], &p[i], 4) != 0;
        fprintf(stderr, "  adamw t=%d: %lld of %lld p differ in bits from the CPU\n", steps[s], (long long)bits,
                (long long)n);
        if (s == 1) TIME_OP("adamw n=1000003", 20, G->adamw(dp, dg, dm, dv, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 7));
        G->free(dp), G->free(dg), G->free(dm), G->free(dv);
        free(p), free(g), free(m), free(v), free(gp), free(gm), free(gv);
    }
    /* reductions against double sums on the host, in index order */
    const int64_t sizes[4] = {10000019, 257, 1, 0};
    for (int s = 0; s < 4; s++) {
        const int64_t k = sizes[s];
        float *x = hrand(k > 0 ? k : 1, 0.1, 1.0, 0);
        void *dx = up_acc(x, k > 0 ? k : 1);
        double ref = 0, ref2 = 0, sabs = 0;
        for (int64_t i = 0; i < k; i++) {
            ref += x[i], ref2 += (double)x[i] * x[i], sabs += fabs(x[i]);
        }
        double gs = G->sum(dx, k), gs2 = G->sum_squares(dx, k);
        /* both in double, different orders: |diff| <= 2 k u64 sum|x| */
        double bound = 2.0 * (double)k * 1.1102230246251565e-16;
        char name[64];
        snprintf(name, sizeof name, "sum n=%lld (|err| / sum|x|)", (long long)k);
        tu_check_err(name, k ? fabs(gs - ref) / sabs : fabs(gs), bound);
        snprintf(name, sizeof name, "sum_squares n=%lld (rel)", (long long)k);
        tu_check_err(name, k ? fabs(gs2 - ref2) / ref2 : fabs(gs2), bound);
        ck_assert_msg(G->sum(dx, k) == gs && G->sum_squares(dx, k) == gs2, "sum not reproducible");
        if (k > 1000) {
            G->synchronize();
            double t0 = now_s();
            for (int i = 0; i < 10; i++) (void)G->sum_squares(dx, k);
            fprintf(stderr, "  timing sum_squares n=%lld: %.3f ms\n", (long long)k, (now_s() - t0) / 10 * 1e3);
            float bad = NAN;
            G->acc_from_f32((char *)dx + 4 * (k / 2), &bad, 1);
            ck_assert_msg(isnan(G->sum_squares(dx, k)) && isnan(G->sum(dx, k)), "NaN does not propagate");
            bad = INFINITY;
            G->acc_from_f32((char *)dx + 4 * (k / 3), &bad, 1);
            G->acc_from_f32((char *)dx + 4 * (k / 2), &x[k / 2], 1);
            ck_assert_msg(isinf(G->sum_squares(dx, k)), "Inf does not propagate");
            /* scale: one fp32 multiply per element, as on the CPU */
            G->acc_from_f32((char *)dx + 4 * (k / 3), &x[k / 3], 1);
            H->scale(x, 0.37f, k);
            G->scale(dx, 0.37f, k);
            float *y = down_acc(dx, k);
            ck_assert_msg(memcmp(x, y, (size_t)k * 4) == 0, "scale differs from the CPU");
            free(y);
        }
        G->free(dx), free(x);
    }
}
END_TEST

int main(void) {
    if (cuda_device_count() == 0) {
        printf("SKIP: no CUDA device on this machine\n");
        return 77;
    }
    /* CUDA is initialized in this process; Check's fork per test would lose the context */
    setenv("CK_FORK", "no", 1);
    rng = tu_seed();
    G = cuda_ops_partial();
    H = ops_cpu();
    char desc[256];
    cuda_device_describe(0, desc, sizeof desc);
    fprintf(stderr, "device 0: %s\n", desc);
    Suite *s = suite_create("cuda_ops");
    TCase *tc = tcase_create("vs_cpu");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, table_and_memory);
    tcase_add_test(tc, elementwise);
    tcase_add_test(tc, dropout);
    tcase_add_test(tc, embedding);
    tcase_add_test(tc, layernorm);
    tcase_add_test(tc, linear);
    tcase_add_test(tc, layout);
    tcase_add_test(tc, shortconv);
    tcase_add_test(tc, filter);
    tcase_add_test(tc, xent);
    tcase_add_test(tc, optim);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
#else
int main(void) {
    printf("SKIP: built without CUDA\n");
    return 77;
}
#endif
