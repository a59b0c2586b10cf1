/* AdamW against a hand-written fp64 reference (PyTorch semantics: decay first, bias correction
 * from t = 1), and the deterministic reductions sum / sum_squares / scale. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8 /* fp32 unit roundoff 2^-24 */

typedef struct {
    float lr, beta1, beta2, eps, wd;
} Hyper;

/* One AdamW step in fp64, written from the torch.optim.AdamW documentation; the hyperparameters
 * are the fp32 values the op receives. */
static void adamw_ref(double *p, const double *g, double *m, double *v, int64_t n, Hyper hp, int t) {
    double lr = hp.lr, b1 = hp.beta1, b2 = hp.beta2, eps = hp.eps, wd = hp.wd;
    for (int64_t i = 0; i < n; i++) {
        p[i] *= 1.0 - lr * wd;
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        double mhat = m[i] / (1.0 - pow(b1, t)), vhat = v[i] / (1.0 - pow(b2, t));
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

START_TEST(adamw_matches_reference) {
    uint64_t rng = tu_seed();
    const int64_t n = 50000; /* above the parallel threshold */
    const int steps = 6;
    Hyper hp = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
    double *p = malloc(n * sizeof(double)), *m = calloc(n, sizeof(double)), *v = calloc(n, sizeof(double));
    double *pd = malloc(n * sizeof(double)), *md = calloc(n, sizeof(double)), *vd = calloc(n, sizeof(double));
    double *g = malloc(n * sizeof(double));
    float *pf = malloc(n * sizeof(float)), *mf = calloc(n, sizeof(float)), *vf = calloc(n, sizeof(float));
    float *gf = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) pd[i] = p[i] = pf[i] = (float)tu_normal(&rng);
    for (int t = 1; t <= steps; t++) {
        for (int64_t i = 0; i < n; i++) g[i] = gf[i] = (float)(tu_normal(&rng) * (1 + i % 7)); /* varied scales */
        adamw_ref(p, g, m, v, n, hp, t);
        ops_cpu64()->adamw(pd, g, md, vd, n, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.wd, t);
        ops_cpu()->adamw(pf, gf, mf, vf, n, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.wd, t);
    }
    /* fp64: the op divides sqrt(v) by sqrt(1 - b2^t) instead of taking sqrt(v / (1 - b2^t)) and
     * multiplies by lr / (1 - b1^t) first: a few roundings of 1.1e-16 per step */
    tu_check_err("p cpu64 vs reference (rel l2)", tu_rel_l2_d(pd, p, n), 1e-14);
    tu_check_err("m cpu64 vs reference (rel l2)", tu_rel_l2_d(md, m, n), 1e-14);
    tu_check_err("v cpu64 vs reference (rel l2)", tu_rel_l2_d(vd, v, n), 1e-14);
    /* fp32: each step rounds m and v (~3 ulps each, errors decaying with beta) and p (decay and
     * update: ~3 ulps, the update itself being 1e-2 of p); over 6 steps errors add: bound 32 ulps */
    tu_check_err("p cpu vs reference (rel l2)", tu_rel_l2_fd(pf, p, n), 32 * EPS32);
    tu_check_err("m cpu vs reference (rel l2)", tu_rel_l2_fd(mf, m, n), 32 * EPS32);
    tu_check_err("v cpu vs reference (rel l2)", tu_rel_l2_fd(vf, v, n), 32 * EPS32);
    free(p), free(m), free(v), free(pd), free(md), free(vd), free(g), free(pf), free(mf), free(vf), free(gf);
}
END_TEST

/* At t = 1 the bias correction makes mhat = g and vhat = g^2, so with eps = 0 every parameter
 * moves by exactly lr against the sign of its gradient, after the decay p * (1 - lr*wd). */
START_TEST(adamw_first_step_is_sign_descent) {
    uint64_t rng = tu_seed();
    const int64_t n = 1000;
    double p[1000], p0[1000], g[1000], m[1000] = {0}, v[1000] = {0};
    for (int64_t i = 0; i < n; i++) p0[i] = p[i] = tu_normal(&rng), g[i] = tu_normal(&rng) * 1e-3;
    ops_cpu64()->adamw(p, g, m, v, n, 0.25f, 0.9f, 0.999f, 0.0f, 0.5f, 1);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double want = p0[i] * (1.0 - 0.25 * 0.5) - 0.25 * (g[i] > 0 ? 1.0 : -1.0);
        worst = fmax(worst, fabs(p[i] - want));
    }
    /* |p| ~ 1 and a handful of fp64 roundings: 1e-15 absolute, bound 1e-14 */
    tu_check_err("t=1 step vs p(1-lr wd) - lr sign(g) (max abs)", worst, 1e-14);
    EXPECT_DIE(ops_cpu64()->adamw(p, g, m, v, n, 0.25f, 0.9f, 0.999f, 0.0f, 0.5f, 0), "step 0");
}
END_TEST

/* Reference sums in long double (64-bit mantissa on x86) over the same fp32 values. */
START_TEST(reductions_correct_and_deterministic) {
    uint64_t rng = tu_seed();
    const int64_t n = 1300001; /* > 256 blocks of 4096 (two groups), and a partial block */
    float *x = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double));
    long double rs = 0, rq = 0, abs_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        xd[i] = x[i] = (float)(0.3 + tu_normal(&rng));
        rs += xd[i], rq += xd[i] * xd[i], abs_sum += fabs(xd[i]);
    }
    const Ops *cpu = ops_cpu(), *cpu64 = ops_cpu64();
    double s = cpu->sum(x, n), q = cpu->sum_squares(x, n);
    /* squares of fp32 values are exact in double; blocked recursive summation in double errs by at
     * most (4096 + number of blocks) * 1.1e-16 * sum |terms| */
    double nb = 4096.0 + (double)(n + 4095) / 4096;
    tu_check_err("sum cpu: |err| / (sum |x|)", fabs(s - (double)rs) / (double)abs_sum, nb * 1.12e-16);
    tu_check_err("sum_squares cpu (rel)", fabs(q - (double)rq) / (double)rq, nb * 1.12e-16);
    ck_assert(cpu64->sum(xd, n) == s && cpu64->sum_squares(xd, n) == q); /* same values, same order */
    /* fixed blocks summed in order: the same bits for any thread count */
    int saved = omp_get_max_threads();
    for (int th = 1; th <= 3; th++) {
        omp_set_num_threads(th);
        ck_assert_msg(cpu->sum(x, n) == s && cpu->sum_squares(x, n) == q, "reduction differs with %d threads", th);
    }
    omp_set_num_threads(saved);
    /* small and empty inputs */
    ck_assert(cpu->sum(x, 0) == 0.0 && cpu->sum_squares(x, 0) == 0.0);
    ck_assert(cpu->sum(x, 3) == (double)x[0] + (double)x[1] + (double)x[2]);
    /* NaN and Inf propagate (the caller stops training on them) */
    x[777777] = NAN;
    ck_assert(isnan(cpu->sum(x, n)) && isnan(cpu->sum_squares(x, n)));
    x[777777] = INFINITY;
    ck_assert(isinf(cpu->sum(x, n)) && isinf(cpu->sum_squares(x, n)));
    free(x), free(xd);
}
END_TEST

START_TEST(scale_exact) {
    uint64_t rng = tu_seed();
    const int64_t n = 40000;
    float *x = malloc(n * sizeof(float)), *x0 = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double));
    tu_fill_normal_f(x, n, 1.0f, &rng);
    memcpy(x0, x, n * sizeof(float));
    for (int64_t i = 0; i < n; i++) xd[i] = x[i];
    const float s = 0.3f;
    ops_cpu()->scale(x, s, n);
    ops_cpu64()->scale(xd, s, n);
    int64_t bad = 0; /* one multiplication per element in the backend's precision: bitwise */
    for (int64_t i = 0; i < n; i++) bad += x[i] != x0[i] * s || xd[i] != (double)x0[i] * (double)s;
    ck_assert_msg(bad == 0, "%lld scaled elements differ", (long long)bad);
    free(x), free(x0), free(xd);
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, adamw_matches_reference);
    tcase_add_test(tc, adamw_first_step_is_sign_descent);
    tcase_add_test(tc, reductions_correct_and_deterministic);
    tcase_add_test(tc, scale_exact);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
