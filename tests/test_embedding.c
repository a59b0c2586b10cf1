/* Embedding lookup and its scatter-add backward: exactness, finite differences, fp32 vs fp64,
 * accumulation, determinism across thread counts, and the negative-id error. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8 /* fp32 unit roundoff 2^-24 */

typedef struct {
    int V, C;
    int64_t N;
    tok_t *tok;
    float *wf, *gf;   /* table [V,C], upstream gradient [N,C] (fp32) */
    double *wd, *gd;  /* the same values in fp64 */
} Case;

/* A small vocabulary and many rows, so most ids repeat and the backward really accumulates. */
static Case case_make(int64_t N, int V, int C, uint64_t *rng) {
    Case k = {V, C, N, malloc(N * sizeof(tok_t)), malloc((size_t)V * C * sizeof(float)),
              malloc(N * C * sizeof(float)), malloc((size_t)V * C * sizeof(double)), malloc(N * C * sizeof(double))};
    for (int64_t n = 0; n < N; n++) k.tok[n] = (tok_t)(tu_uniform(rng) * V);
    for (int64_t i = 0; i < (int64_t)V * C; i++) k.wd[i] = k.wf[i] = (float)tu_normal(rng);
    for (int64_t i = 0; i < N * C; i++) k.gd[i] = k.gf[i] = (float)tu_normal(rng);
    return k;
}

static void case_free(Case *k) { free(k->tok), free(k->wf), free(k->gf), free(k->wd), free(k->gd); }

START_TEST(forward_is_exact_lookup) {
    uint64_t rng = tu_seed();
    Case k = case_make(300, 50, 96, &rng);
    float *of = malloc(k.N * k.C * sizeof(float));
    double *od = malloc(k.N * k.C * sizeof(double));
    ops_cpu()->embedding_fwd(of, k.tok, k.wf, k.N, k.C);
    ops_cpu64()->embedding_fwd(od, k.tok, k.wd, k.N, k.C);
    /* a copy: bitwise equal to the table row in both backends */
    int64_t bad = 0;
    for (int64_t n = 0; n < k.N; n++)
        for (int c = 0; c < k.C; c++) {
            bad += of[n * k.C + c] != k.wf[(int64_t)k.tok[n] * k.C + c];
            bad += od[n * k.C + c] != k.wd[(int64_t)k.tok[n] * k.C + c];
        }
    ck_assert_msg(bad == 0, "%lld looked-up values differ from the table", (long long)bad);
    free(of), free(od);
    case_free(&k);
}
END_TEST

START_TEST(backward_naive_fp32_and_accumulation) {
    uint64_t rng = tu_seed();
    Case k = case_make(2000, 40, 150, &rng); /* C = 150: three channel blocks, one partial */
    size_t nw = (size_t)k.V * k.C;
    double *ref = calloc(nw, sizeof(double)), *dd = calloc(nw, sizeof(double));
    float *df = calloc(nw, sizeof(float));
    for (int64_t n = 0; n < k.N; n++)
        for (int c = 0; c < k.C; c++) ref[(size_t)k.tok[n] * k.C + c] += k.gd[n * k.C + c];
    ops_cpu64()->embedding_bwd(dd, k.gd, k.tok, k.N, k.C);
    ops_cpu()->embedding_bwd(df, k.gf, k.tok, k.N, k.C);
    /* fp64: the same additions in the same (row) order as the naive loop: bitwise equal */
    tu_check_err("dwte cpu64 vs naive (rel l2)", tu_rel_l2_d(dd, ref, nw), 0.0);
    /* fp32: each entry sums ~N/V = 50 terms of order 1 with |partial sums| ~ sqrt(50); recursive
     * summation error <= 50 * 2^-24 relative to sum |terms|, i.e. ~ 50 * 6e-8 * sqrt(50) / sqrt(50)
     * in the worst case; bound 64 ulps of the result norm */
    tu_check_err("dwte cpu vs naive fp64 (rel l2)", tu_rel_l2_fd(df, ref, nw), 64 * EPS32);
    /* += contract: a second call doubles the result (fp64: 50 more roundings of 1.1e-16) */
    ops_cpu64()->embedding_bwd(dd, k.gd, k.tok, k.N, k.C);
    for (size_t i = 0; i < nw; i++) ref[i] *= 2;
    tu_check_err("dwte accumulated twice vs 2x (rel l2)", tu_rel_l2_d(dd, ref, nw), 1e-14);
    free(ref), free(dd), free(df);
    case_free(&k);
}
END_TEST

START_TEST(backward_gradcheck) {
    uint64_t rng = tu_seed();
    Case k = case_make(24, 7, 10, &rng);
    const Ops *o = ops_cpu64();
    size_t nw = (size_t)k.V * k.C;
    double *dw = calloc(nw, sizeof(double)), *num = malloc(nw * sizeof(double));
    double *out = malloc(k.N * k.C * sizeof(double));
    o->embedding_bwd(dw, k.gd, k.tok, k.N, k.C);
    /* f = sum r * out with r = gd; central differences wrt every table entry */
    const double h = 1e-4;
    for (size_t i = 0; i < nw; i++) {
        double wi = k.wd[i], f[2];
        for (int s = 0; s < 2; s++) {
            k.wd[i] = wi + (s ? -h : h);
            o->embedding_fwd(out, k.tok, k.wd, k.N, k.C);
            f[s] = 0;
            for (int64_t j = 0; j < k.N * k.C; j++) f[s] += k.gd[j] * out[j];
        }
        k.wd[i] = wi;
        num[i] = (f[0] - f[1]) / (2 * h);
    }
    /* f is linear in w: no truncation error; rounding of f (sum of 240 terms ~1, ~1e-14) over 2h */
    tu_check_err("dwte vs finite differences (rel l2)", tu_rel_l2_d(dw, num, nw), 1e-8);
    free(dw), free(num), free(out);
    case_free(&k);
}
END_TEST

START_TEST(backward_deterministic_across_threads) {
    uint64_t rng = tu_seed();
    Case k = case_make(4096, 64, 256, &rng);
    size_t nw = (size_t)k.V * k.C;
    float *a = calloc(nw, sizeof(float)), *b = calloc(nw, sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    ops_cpu()->embedding_bwd(a, k.gf, k.tok, k.N, k.C);
    omp_set_num_threads(3);
    ops_cpu()->embedding_bwd(b, k.gf, k.tok, k.N, k.C);
    omp_set_num_threads(saved);
    ck_assert_msg(memcmp(a, b, nw * sizeof(float)) == 0, "dwte differs between 1 and 3 threads");
    free(a), free(b);
    case_free(&k);
}
END_TEST

START_TEST(negative_token_dies) {
    tok_t tok[3] = {1, -4, 0};
    float w[8] = {0}, out[6], g[6] = {0};
    EXPECT_DIE(ops_cpu()->embedding_fwd(out, tok, w, 3, 2), "token id -4 at row 1");
    EXPECT_DIE(ops_cpu()->embedding_bwd(w, g, tok, 3, 2), "token id -4 at row 1");
}
END_TEST

int main(void) {
    Suite *s = suite_create("embedding");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, forward_is_exact_lookup);
    tcase_add_test(tc, backward_naive_fp32_and_accumulation);
    tcase_add_test(tc, backward_gradcheck);
    tcase_add_test(tc, backward_deterministic_across_threads);
    tcase_add_test(tc, negative_token_dies);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
