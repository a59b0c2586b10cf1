/* Elementwise ops: add/accumulate exact, tanh-GELU against its formula and by finite differences,
 * inverted dropout statistics, scaling, mask reuse in the backward, and p = 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8 /* fp32 unit roundoff 2^-24 */

static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / acos(-1.0)) * (x + 0.044715 * x * x * x)));
}

/* Random fp32 data and its exact fp64 copy, so both backends see the same inputs. */
static void fill_pair(float *f, double *d, int64_t n, double std, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) {
        f[i] = (float)(std * tu_normal(rng));
        d[i] = f[i];
    }
}

START_TEST(add_and_accumulate_exact) {
    uint64_t rng = tu_seed();
    const int64_t n = 40000; /* above the parallel threshold */
    const Ops *o = ops_cpu();
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    float *a0 = malloc(n * sizeof(float));
    tu_fill_normal_f(a, n, 1.0f, &rng);
    tu_fill_normal_f(b, n, 1.0f, &rng);
    memcpy(a0, a, n * sizeof(float));
    /* one fp32 addition per element: results must equal the same addition done here, bitwise */
    int64_t bad = 0; /* counted, then asserted once: ck_assert in a hot loop is slow */
    o->add(out, a, b, n);
    for (int64_t i = 0; i < n; i++) bad += out[i] != a[i] + b[i];
    o->add(a, a, b, n); /* out aliasing a */
    for (int64_t i = 0; i < n; i++) bad += a[i] != a0[i] + b[i];
    memcpy(a, a0, n * sizeof(float));
    o->accumulate(a, b, n);
    for (int64_t i = 0; i < n; i++) bad += a[i] != a0[i] + b[i];
    ck_assert_msg(bad == 0, "%lld elements differ from the fp32 sum", (long long)bad);
    free(a), free(b), free(out), free(a0);
}
END_TEST

START_TEST(gelu_forward_matches_formula) {
    uint64_t rng = tu_seed();
    const int64_t n = 50000;
    float *xf = malloc(n * sizeof(float)), *yf = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double)), *yd = malloc(n * sizeof(double)), *ref = malloc(n * sizeof(double));
    fill_pair(xf, xd, n, 3.0, &rng);
    for (int64_t i = 0; i < n; i++) ref[i] = gelu_ref(xd[i]);
    ops_cpu64()->gelu_fwd(yd, xd, n);
    ops_cpu()->gelu_fwd(yf, xf, n);
    /* fp64: the same formula evaluated in a possibly different order: a few ulps of 1.1e-16 */
    tu_check_err("gelu fwd cpu64 vs formula (rel l2)", tu_rel_l2_d(yd, ref, n), 1e-14);
    /* fp32 from the same (fp32-exact) inputs: one final rounding, 2^-24 relative per element;
     * bound 4 ulps */
    tu_check_err("gelu fwd cpu vs formula (rel l2)", tu_rel_l2_fd(yf, ref, n), 4 * EPS32);
    /* large |x|: gelu(x) -> x for x >> 0 and -> 0 for x << 0, without NaN */
    double big[4] = {30.0, -30.0, 1e4, -1e4}, ybig[4];
    ops_cpu64()->gelu_fwd(ybig, big, 4);
    ck_assert(ybig[0] == 30.0 && ybig[2] == 1e4 && fabs(ybig[1]) < 1e-300 && fabs(ybig[3]) < 1e-300);
    free(xf), free(yf), free(xd), free(yd), free(ref);
}
END_TEST

START_TEST(gelu_gradcheck) {
    uint64_t rng = tu_seed();
    const int64_t n = 500;
    const Ops *o = ops_cpu64();
    double *x = malloc(n * sizeof(double)), *r = malloc(n * sizeof(double)), *dx = malloc(n * sizeof(double));
    double *num = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
    tu_fill_normal(x, n, 2.0, &rng);
    tu_fill_normal(r, n, 1.0, &rng);
    for (int64_t i = 0; i < n; i++) dx[i] = 1e30; /* dinp is written, not added */
    o->gelu_bwd(dx, x, r, n);
    /* objective f = sum r * gelu(x); central differences per input element */
    const double h = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        double xi = x[i], fp = 0, fm = 0;
        x[i] = xi + h;
        o->gelu_fwd(y, x, n);
        for (int64_t j = 0; j < n; j++) fp += r[j] * y[j];
        x[i] = xi - h;
        o->gelu_fwd(y, x, n);
        for (int64_t j = 0; j < n; j++) fm += r[j] * y[j];
        x[i] = xi;
        num[i] = (fp - fm) / (2 * h);
    }
    /* truncation h^2/6 |r gelu'''| ~ 2e-11; rounding of f (~sum |r y| ~ 1e3 times 1.1e-16) over 2h
     * ~ 1e-8 per element against gradients of order 1: rel l2 well below 1e-6 */
    tu_check_err("gelu dinp vs finite differences (rel l2)", tu_rel_l2_d(dx, num, n), 1e-6);
    free(x), free(r), free(dx), free(num), free(y);
}
END_TEST

START_TEST(gelu_backward_fp32_vs_fp64) {
    uint64_t rng = tu_seed();
    const int64_t n = 50000;
    float *xf = malloc(n * sizeof(float)), *rf = malloc(n * sizeof(float)), *df = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double)), *rd = malloc(n * sizeof(double)), *dd = malloc(n * sizeof(double));
    fill_pair(xf, xd, n, 3.0, &rng);
    fill_pair(rf, rd, n, 1.0, &rng);
    ops_cpu64()->gelu_bwd(dd, xd, rd, n);
    ops_cpu()->gelu_bwd(df, xf, rf, n);
    /* same inputs; the derivative is evaluated in double in both, so only the output rounding
     * (2^-24) differs: bound 4 ulps */
    tu_check_err("gelu dinp cpu vs cpu64 (rel l2)", tu_rel_l2_fd(df, dd, n), 4 * EPS32);
    free(xf), free(rf), free(df), free(xd), free(rd), free(dd);
}
END_TEST

/* Dropout with p: the kept fraction is Binomial(n, 1-p)/n; 5 standard deviations make a false
 * failure less likely than 1e-6. Kept values are exactly inp * fp32(1/(1-p)); dropped are 0. */
static void check_dropout(float p, uint64_t seed, uint64_t stream) {
    const int64_t n = 1 << 20;
    const Ops *o = ops_cpu();
    uint64_t rng = seed ^ 0x5555;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(1.0 + tu_uniform(&rng)); /* nonzero, so zeros mean dropped */
    o->dropout_fwd(y, x, p, seed, stream, n);
    const float scale = (float)(1.0 / (1.0 - (double)p));
    int64_t kept = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int keep = philox_uniform(seed, stream, (uint64_t)i) >= p; /* the documented mask */
        bad += y[i] != (keep ? x[i] * scale : 0.0f);
        kept += keep;
    }
    ck_assert_msg(bad == 0, "p=%g: %lld elements are not inp * %.9g or 0 by the Philox mask", (double)p,
                  (long long)bad, (double)scale);
    double frac = (double)kept / n, sd = sqrt((double)p * (1.0 - p) / n);
    fprintf(stderr, "  dropout p=%.2f: kept %.5f, expected %.5f +- %.1e\n", (double)p, frac, 1.0 - p, 5 * sd);
    ck_assert_msg(fabs(frac - (1.0 - p)) <= 5 * sd, "kept fraction %f for p=%f", frac, (double)p);
    /* the backward recomputes the same mask: dinp = dout * scale where kept, 0 elsewhere */
    o->dropout_bwd(dx, x, p, seed, stream, n);
    ck_assert(memcmp(dx, y, n * sizeof(float)) == 0);
    free(x), free(y), free(dx);
}

START_TEST(dropout_statistics_scaling_and_mask) {
    uint64_t seed = tu_seed();
    check_dropout(0.1f, seed, 7);
    check_dropout(0.5f, seed + 1, 8);
    check_dropout(0.9f, seed + 2, 9);
}
END_TEST

START_TEST(dropout_streams_backends_and_p0) {
    uint64_t seed = tu_seed(), rng = seed;
    const int64_t n = 4096;
    float *x = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double)), *yd = malloc(n * sizeof(double));
    fill_pair(x, xd, n, 1.0, &rng);
    /* p = 0 is a plain copy, also in place */
    ops_cpu()->dropout_fwd(y1, x, 0.0f, seed, 1, n);
    ck_assert(memcmp(y1, x, n * sizeof(float)) == 0);
    ops_cpu()->dropout_bwd(y1, y1, 0.0f, seed, 1, n);
    ck_assert(memcmp(y1, x, n * sizeof(float)) == 0);
    /* another stream gives another mask */
    ops_cpu()->dropout_fwd(y1, x, 0.5f, seed, 1, n);
    ops_cpu()->dropout_fwd(y2, x, 0.5f, seed, 2, n);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) differ += (y1[i] == 0.0f) != (y2[i] == 0.0f);
    ck_assert_msg(differ > n / 4, "streams 1 and 2 share %lld of %lld mask bits", (long long)(n - differ), (long long)n);
    /* fp64 backend: same mask, values equal up to the fp32 rounding of x * 2 (exact: power of 2) */
    ops_cpu64()->dropout_fwd(yd, xd, 0.5f, seed, 1, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += (double)y1[i] != yd[i];
    ck_assert_msg(bad == 0, "%lld elements differ between cpu and cpu64", (long long)bad);
    /* adjoint identity <r, drop(x)> = <drop^T(r), x>: dropout is linear, so this is its exact
     * gradient check; fp64 sums of 4096 terms of order 1: rounding ~ 1e-13 */
    double *r = malloc(n * sizeof(double)), *dx = malloc(n * sizeof(double)), lhs = 0, rhs = 0;
    tu_fill_normal(r, n, 1.0, &rng);
    ops_cpu64()->dropout_fwd(yd, xd, 0.3f, seed, 3, n);
    ops_cpu64()->dropout_bwd(dx, r, 0.3f, seed, 3, n);
    for (int64_t i = 0; i < n; i++) lhs += r[i] * yd[i], rhs += dx[i] * xd[i];
    tu_check_err("dropout adjoint |<r,Dx> - <D'r,x>| / |<r,Dx>|", fabs(lhs - rhs) / fabs(lhs), 1e-11);
    free(x), free(y1), free(y2), free(xd), free(yd), free(r), free(dx);
}
END_TEST

START_TEST(dropout_bad_p_dies) {
    float x[4] = {1, 2, 3, 4}, y[4];
    EXPECT_DIE(ops_cpu()->dropout_fwd(y, x, 1.0f, 1, 1, 4), "dropout probability");
    EXPECT_DIE(ops_cpu()->dropout_fwd(y, x, -0.1f, 1, 1, 4), "dropout probability");
}
END_TEST

int main(void) {
    Suite *s = suite_create("elementwise");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, add_and_accumulate_exact);
    tcase_add_test(tc, gelu_forward_matches_formula);
    tcase_add_test(tc, gelu_gradcheck);
    tcase_add_test(tc, gelu_backward_fp32_vs_fp64);
    tcase_add_test(tc, dropout_statistics_scaling_and_mask);
    tcase_add_test(tc, dropout_streams_backends_and_p0);
    tcase_add_test(tc, dropout_bad_p_dies);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
