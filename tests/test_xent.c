/* Softmax cross-entropy with fused gradient: losses and gradients against a naive fp64
 * log-softmax, finite differences of sum(w * loss) over every logit (ignored targets and padding
 * columns included), fp32 vs fp64, stability for large logits, dscale, and the target error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8 /* fp32 unit roundoff 2^-24 */

typedef struct {
    int64_t N;
    int V, Vp;
    tok_t *tgt;
    float *zf;  /* logits [N,Vp]; padding columns hold large garbage that must be ignored */
    double *zd;
} Case;

/* Targets: every third row ignored (-1 or -100, as PyTorch's ignore_index), others uniform in
 * [0,V) with rows 1 and 2 pinned to the first and last real column. */
static Case case_make(int64_t N, int V, int Vp, double offset, uint64_t *rng) {
    Case k = {.N = N, .V = V, .Vp = Vp, .tgt = malloc(N * sizeof(tok_t))};
    k.zf = malloc(N * Vp * sizeof(float)), k.zd = malloc(N * Vp * sizeof(double));
    for (int64_t n = 0; n < N; n++) {
        k.tgt[n] = n % 3 == 0 ? (n % 2 ? -100 : -1) : (tok_t)(tu_uniform(rng) * V);
        for (int i = 0; i < Vp; i++)
            k.zd[n * Vp + i] = k.zf[n * Vp + i] = (float)(i < V ? offset + 2.0 * tu_normal(rng) : 50.0 + 10 * i);
    }
    if (N > 2) k.tgt[1] = 0, k.tgt[2] = V - 1;
    return k;
}

static void case_free(Case *k) { free(k->tgt), free(k->zf), free(k->zd); }

/* Naive fp64 reference: loss[n] and g[n,:] = softmax - onehot (0 for ignored rows and padding). */
static void xent_naive(double *loss, double *g, const double *z, const tok_t *tgt, int64_t N, int V, int Vp) {
    for (int64_t n = 0; n < N; n++) {
        const double *r = z + n * Vp;
        double m = r[0], s = 0;
        for (int i = 1; i < V; i++) m = fmax(m, r[i]);
        for (int i = 0; i < V; i++) s += exp(r[i] - m);
        double lse = m + log(s);
        loss[n] = tgt[n] < 0 ? 0 : lse - r[tgt[n]];
        for (int i = 0; i < Vp; i++)
            g[n * Vp + i] = (tgt[n] < 0 || i >= V) ? 0 : exp(r[i] - lse) - (i == tgt[n]);
    }
}

/* Forward and gradient of both backends against the naive reference. */
static void check_against_naive(int64_t N, int V, int Vp, double offset, uint64_t *rng) {
    Case k = case_make(N, V, Vp, offset, rng);
    double *rl = malloc(N * sizeof(double)), *rg = malloc(N * Vp * sizeof(double)), *ld = malloc(N * sizeof(double));
    float *lf = malloc(N * sizeof(float));
    xent_naive(rl, rg, k.zd, k.tgt, N, V, Vp);
    ops_cpu64()->xent_fwd_bwd(ld, k.zd, k.tgt, N, V, Vp, 1.0f);
    ops_cpu()->xent_fwd_bwd(lf, k.zf, k.tgt, N, V, Vp, 1.0f);
    int64_t bad = 0; /* ignored rows: loss exactly 0 and gradient rows exactly 0 */
    for (int64_t n = 0; n < N; n++) {
        if (k.tgt[n] >= 0) continue;
        bad += ld[n] != 0 || lf[n] != 0;
        for (int i = 0; i < Vp; i++) bad += k.zd[n * Vp + i] != 0 || k.zf[n * Vp + i] != 0;
    }
    for (int64_t n = 0; n < N; n++) /* padding columns: gradient exactly 0 */
        for (int i = V; i < Vp; i++) bad += k.zd[n * Vp + i] != 0 || k.zf[n * Vp + i] != 0;
    ck_assert_msg(bad == 0, "%lld nonzero losses or gradients where they must be 0", (long long)bad);
    char name[96];
    /* fp64: the reference forms exp(z - lse) with lse = max + log(sum), whose rounding is an ulp of
     * |offset|: errors of 1e-16 * |offset| relative */
    snprintf(name, sizeof name, "loss cpu64 vs naive, offset %g (rel l2)", offset);
    tu_check_err(name, tu_rel_l2_d(ld, rl, N), 1e-13 * (1 + fabs(offset)));
    snprintf(name, sizeof name, "dlogits cpu64 vs naive, offset %g (rel l2)", offset);
    tu_check_err(name, tu_rel_l2_d(k.zd, rg, N * Vp), 1e-13 * (1 + fabs(offset)));
    snprintf(name, sizeof name, "loss cpu vs naive fp64, offset %g (rel l2)", offset);
    /* fp32 loss: inputs are exact, the loss max + log(sum) - z[t] is formed in double, and sum has
     * the relative error of expf (~1 ulp): a few ulps of the loss; bound 16 ulps. The offset does
     * not enter: z - max is exact in fp32 when both are within a factor 2 (Sterbenz) and otherwise
     * errs by 1 ulp of |z - max|. */
    tu_check_err(name, tu_rel_l2_fd(lf, rl, N), 16 * EPS32);
    /* fp32 gradient: expf (<= 2 ulps) of z - max, whose rounding is 1 ulp of |z - max| <= ~20,
     * i.e. a relative error up to ~20 ulps in a probability; bound 64 ulps */
    snprintf(name, sizeof name, "dlogits cpu vs naive fp64, offset %g (rel l2)", offset);
    tu_check_err(name, tu_rel_l2_fd(k.zf, rg, N * Vp), 64 * EPS32);
    free(rl), free(rg), free(ld), free(lf);
    case_free(&k);
}

START_TEST(forward_and_gradient_vs_naive) {
    uint64_t rng = tu_seed();
    check_against_naive(200, 1000, 1024, 0.0, &rng);
    check_against_naive(50, 37, 37, 0.0, &rng); /* no padding */
    /* large logits: without the max subtraction exp overflows (fp32 above 88, fp64 above 709) */
    check_against_naive(50, 300, 320, 100.0, &rng);
    check_against_naive(50, 300, 320, 1e4, &rng);
}
END_TEST

START_TEST(gradcheck_weighted_loss) {
    uint64_t rng = tu_seed();
    const int64_t N = 9;
    const int V = 13, Vp = 16;
    Case k = case_make(N, V, Vp, 0.0, &rng);
    const Ops *o = ops_cpu64();
    double w[9], loss[9], *g = malloc(N * Vp * sizeof(double)), *g2 = malloc(N * Vp * sizeof(double));
    double *num = malloc(N * Vp * sizeof(double));
    for (int n = 0; n < N; n++) w[n] = tu_normal(&rng);
    /* F = sum_n w[n] loss[n]; central differences over every logit, padding included (dscale 0:
     * the logits are left untouched) */
    const double h = 1e-5;
    for (int64_t i = 0; i < N * Vp; i++) {
        double zi = k.zd[i], f[2];
        for (int s = 0; s < 2; s++) {
            k.zd[i] = zi + (s ? -h : h);
            o->xent_fwd_bwd(loss, k.zd, k.tgt, N, V, Vp, 0.0f);
            f[s] = 0;
            for (int n = 0; n < N; n++) f[s] += w[n] * loss[n];
        }
        k.zd[i] = zi;
        num[i] = (f[0] - f[1]) / (2 * h);
    }
    memcpy(g, k.zd, N * Vp * sizeof(double));
    memcpy(g2, k.zd, N * Vp * sizeof(double));
    o->xent_fwd_bwd(NULL, g, k.tgt, N, V, Vp, 1.0f);  /* losses may be NULL */
    o->xent_fwd_bwd(loss, g2, k.tgt, N, V, Vp, 0.37f);
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < Vp; i++) g[n * Vp + i] *= w[n];
    /* truncation h^2/6 |d^3 loss| (softmax derivatives are <= 1) ~ 2e-11; rounding of F (~10,
     * 1.1e-16) over 2h ~ 1e-10; gradients of order 0.1-1: bound 1e-7 */
    tu_check_err("w * dloss/dlogits vs finite differences (rel l2)", tu_rel_l2_d(g, num, N * Vp), 1e-7);
    /* dscale scales the whole gradient: 0.37 (an fp32 constant) times the dscale 1 result */
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < Vp; i++) g[n * Vp + i] *= (double)0.37f / w[n];
    tu_check_err("dscale 0.37 vs 0.37 * dscale 1 (rel l2)", tu_rel_l2_d(g2, g, N * Vp), 1e-15);
    free(g), free(g2), free(num);
    case_free(&k);
}
END_TEST

START_TEST(dscale_zero_keeps_logits_and_all_ignored) {
    uint64_t rng = tu_seed();
    Case k = case_make(6, 20, 24, 0.0, &rng);
    float *copy = malloc(6 * 24 * sizeof(float)), loss[6];
    memcpy(copy, k.zf, 6 * 24 * sizeof(float));
    ops_cpu()->xent_fwd_bwd(loss, k.zf, k.tgt, 6, 20, 24, 0.0f);
    ck_assert(memcmp(copy, k.zf, 6 * 24 * sizeof(float)) == 0);
    for (int n = 0; n < 6; n++) k.tgt[n] = -1;
    ops_cpu()->xent_fwd_bwd(loss, k.zf, k.tgt, 6, 20, 24, 1.0f);
    for (int n = 0; n < 6; n++) ck_assert(loss[n] == 0.0f);
    for (int i = 0; i < 6 * 24; i++) ck_assert(k.zf[i] == 0.0f);
    free(copy);
    case_free(&k);
}
END_TEST

START_TEST(target_out_of_range_dies) {
    float z[4 * 8] = {0}, loss[4];
    tok_t tgt[4] = {1, 2, 6, 0}; /* V = 6: target 6 is a padding column */
    EXPECT_DIE(ops_cpu()->xent_fwd_bwd(loss, z, tgt, 4, 6, 8, 1.0f), "target 6 at row 2");
    tgt[2] = 1000;
    EXPECT_DIE(ops_cpu64()->xent_fwd_bwd(loss, z, tgt, 4, 6, 8, 1.0f), "target 1000 at row 2");
}
END_TEST

int main(void) {
    Suite *s = suite_create("xent");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, forward_and_gradient_vs_naive);
    tcase_add_test(tc, gradcheck_weighted_loss);
    tcase_add_test(tc, dscale_zero_keeps_logits_and_all_ignored);
    tcase_add_test(tc, target_out_of_range_dies);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
