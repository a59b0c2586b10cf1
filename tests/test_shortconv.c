/* shortconv: the causal depthwise conv fused with [B,L,C] -> [B,C,L], against a direct loop in
 * double (PyTorch Conv1d(C, C, K, groups=C, padding=K-1), first L outputs); dinp, dw, dbias by
 * central finite differences on cpu64; fp32 against fp64; dw/dbias accumulate, dinp is written;
 * 1 and 2 threads give the same bits. Cases: K = 3 (Hyena), K = 1, K = 4, K > L, C not a multiple
 * of the channel tile. (CPU memory is device memory: ops are called on host arrays.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8  /* fp32 unit roundoff 2^-24 */
#define EPS64 1.11e-16 /* fp64 unit roundoff 2^-53 */

typedef struct {
    int B, L, C, K;
} Case;

static const Case cases[] = {{2, 19, 37, 3}, {3, 16, 64, 1}, {2, 33, 5, 4}, {2, 2, 7, 3}, {1, 1, 40, 3}};

typedef struct {
    Case c;
    int64_t nin, nw;
    double *inp, *w, *bias, *r;   /* r: weights of the objective sum(r ⊙ out), [B,C,L] */
} Prob;

static Prob prob_make(Case c, uint64_t *rng) {
    Prob p = {.c = c};
    p.nin = (int64_t)c.B * c.L * c.C;
    p.nw = (int64_t)c.C * c.K;
    p.inp = malloc(p.nin * sizeof(double));
    p.w = malloc(p.nw * sizeof(double));
    p.bias = malloc(c.C * sizeof(double));
    p.r = malloc(p.nin * sizeof(double));
    tu_fill_normal(p.inp, p.nin, 1.0, rng);
    tu_fill_normal(p.w, p.nw, 0.5, rng);
    tu_fill_normal(p.bias, c.C, 0.5, rng);
    tu_fill_normal(p.r, p.nin, 1.0, rng);
    /* fp32-exact values, so the fp32 backend sees exactly the same inputs */
    double *arrs[] = {p.inp, p.w, p.bias, p.r};
    int64_t lens[] = {p.nin, p.nw, c.C, p.nin};
    for (int a = 0; a < 4; a++)
        for (int64_t i = 0; i < lens[a]; i++) arrs[a][i] = (float)arrs[a][i];
    return p;
}

static void prob_free(Prob *p) { free(p->inp), free(p->w), free(p->bias), free(p->r); }

static float *to_f32(const double *x, int64_t n) {
    float *f = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

/* PyTorch's Conv1d is a cross-correlation over the input padded by K-1 zeros on both sides:
 * o[c,t] = b[c] + sum_j w[c,j] * pad[c, t+j], pad[c, i] = inp[i-(K-1), c]; keep t < L. */
static void naive_fwd(const Prob *p, double *out) {
    const Case *c = &p->c;
    for (int b = 0; b < c->B; b++)
        for (int ch = 0; ch < c->C; ch++)
            for (int t = 0; t < c->L; t++) {
                double acc = p->bias[ch];
                for (int j = 0; j < c->K; j++) {
                    int i = t + j - (c->K - 1);
                    if (i >= 0 && i < c->L) acc += p->w[ch * c->K + j] * p->inp[((int64_t)b * c->L + i) * c->C + ch];
                }
                out[((int64_t)b * c->C + ch) * c->L + t] = acc;
            }
}

static double objective(const Prob *p, double *out) {
    ops_cpu64()->shortconv_fwd(out, p->inp, p->w, p->bias, p->c.B, p->c.L, p->c.C, p->c.K);
    double J = 0;
    for (int64_t i = 0; i < p->nin; i++) J += p->r[i] * out[i];
    return J;
}

/* J = sum(r ⊙ out) is affine in each single element of inp, w and bias, so central differences
 * have no truncation error; the rounding of J (EPS64 * sum|r out|, sum|r out| < ~1e3 here) over
 * 2h = 1 leaves ~1e-13 absolute against gradients of O(1): relative L2 bound 1e-11. */
static double fd_rel(Prob *p, double *x, int64_t n, const double *grad, double *out) {
    const double h = 0.5;
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double jp = objective(p, out);
        x[i] = x0 - h;
        double jm = objective(p, out);
        x[i] = x0;
        double fd = (jp - jm) / (2 * h);
        num += (fd - grad[i]) * (fd - grad[i]);
        den += fd * fd;
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

START_TEST(forward_matches_conv1d) {
    uint64_t rng = tu_seed();
    char name[96];
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        Prob p = prob_make(cases[ci], &rng);
        double *ref = malloc(p.nin * sizeof(double)), *out = malloc(p.nin * sizeof(double));
        naive_fwd(&p, ref);
        ops_cpu64()->shortconv_fwd(out, p.inp, p.w, p.bias, p.c.B, p.c.L, p.c.C, p.c.K);
        /* the same K+1 terms summed, possibly in another order: K+1 roundings of EPS64 */
        snprintf(name, sizeof(name), "fwd cpu64 vs direct B%d L%d C%d K%d", p.c.B, p.c.L, p.c.C, p.c.K);
        tu_check_err(name, tu_rel_l2_d(out, ref, p.nin), (p.c.K + 1) * EPS64);
        float *inp = to_f32(p.inp, p.nin), *w = to_f32(p.w, p.nw), *bias = to_f32(p.bias, p.c.C);
        float *outf = malloc(p.nin * sizeof(float));
        ops_cpu()->shortconv_fwd(outf, inp, w, bias, p.c.B, p.c.L, p.c.C, p.c.K);
        /* fp32 from fp32-exact inputs: K products and K additions, each rounded: 2K+1 EPS32 */
        snprintf(name, sizeof(name), "fwd cpu vs direct B%d L%d C%d K%d", p.c.B, p.c.L, p.c.C, p.c.K);
        tu_check_err(name, tu_rel_l2_fd(outf, ref, p.nin), (2 * p.c.K + 1) * EPS32);
        /* bias NULL: no bias term */
        ops_cpu64()->shortconv_fwd(out, p.inp, p.w, NULL, p.c.B, p.c.L, p.c.C, p.c.K);
        for (int b = 0; b < p.c.B; b++)
            for (int ch = 0; ch < p.c.C; ch++)
                for (int t = 0; t < p.c.L; t++) {
                    int64_t i = ((int64_t)b * p.c.C + ch) * p.c.L + t;
                    ref[i] -= p.bias[ch];
                }
        snprintf(name, sizeof(name), "fwd no bias B%d L%d C%d K%d", p.c.B, p.c.L, p.c.C, p.c.K);
        tu_check_err(name, tu_rel_l2_d(out, ref, p.nin), (p.c.K + 2) * EPS64 * 4);
        free(inp), free(w), free(bias), free(outf), free(ref), free(out);
        prob_free(&p);
    }
}
END_TEST

START_TEST(gradients_match_finite_differences) {
    uint64_t rng = tu_seed();
    char name[96];
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        Prob p = prob_make(cases[ci], &rng);
        const Case *c = &p.c;
        double *dinp = malloc(p.nin * sizeof(double)), *out = malloc(p.nin * sizeof(double));
        double *dw = calloc(p.nw, sizeof(double)), *db = calloc(c->C, sizeof(double));
        for (int64_t i = 0; i < p.nin; i++) dinp[i] = 1e30; /* written, not added */
        ops_cpu64()->shortconv_bwd(dinp, dw, db, p.r, p.inp, p.w, c->B, c->L, c->C, c->K);
        snprintf(name, sizeof(name), "dinp B%d L%d C%d K%d", c->B, c->L, c->C, c->K);
        tu_check_err(name, fd_rel(&p, p.inp, p.nin, dinp, out), 1e-11);
        snprintf(name, sizeof(name), "dw B%d L%d C%d K%d", c->B, c->L, c->C, c->K);
        tu_check_err(name, fd_rel(&p, p.w, p.nw, dw, out), 1e-11);
        snprintf(name, sizeof(name), "dbias B%d L%d C%d K%d", c->B, c->L, c->C, c->K);
        tu_check_err(name, fd_rel(&p, p.bias, c->C, db, out), 1e-11);
        free(dinp), free(out), free(dw), free(db);
        prob_free(&p);
    }
}
END_TEST

START_TEST(fp32_matches_fp64) {
    uint64_t rng = tu_seed();
    Case c = {4, 300, 96, 3};
    Prob p = prob_make(c, &rng);
    double *dinp = malloc(p.nin * sizeof(double)), *dw = calloc(p.nw, sizeof(double)), *db = calloc(c.C, sizeof(double));
    ops_cpu64()->shortconv_bwd(dinp, dw, db, p.r, p.inp, p.w, c.B, c.L, c.C, c.K);
    float *inp = to_f32(p.inp, p.nin), *w = to_f32(p.w, p.nw), *r = to_f32(p.r, p.nin);
    float *dinpf = malloc(p.nin * sizeof(float)), *dwf = calloc(p.nw, sizeof(float)), *dbf = calloc(c.C, sizeof(float));
    ops_cpu()->shortconv_bwd(dinpf, dwf, dbf, r, inp, w, c.B, c.L, c.C, c.K);
    /* dinp: K products and additions in fp32 from exact inputs: (2K+1) EPS32 */
    tu_check_err("dinp cpu vs cpu64", tu_rel_l2_fd(dinpf, dinp, p.nin), (2 * c.K + 1) * EPS32);
    /* dw, dbias: products of exact fp32 values summed over B*L in double and rounded once to
     * fp32 at the end (the sums cancel partially, but the rounding is relative to the result):
     * 2 EPS32 */
    double *dwf64 = malloc(p.nw * sizeof(double)), *dbf64 = malloc(c.C * sizeof(double));
    for (int64_t i = 0; i < p.nw; i++) dwf64[i] = dwf[i];
    for (int i = 0; i < c.C; i++) dbf64[i] = dbf[i];
    tu_check_err("dw cpu vs cpu64", tu_rel_l2_d(dwf64, dw, p.nw), 2 * EPS32);
    tu_check_err("dbias cpu vs cpu64", tu_rel_l2_d(dbf64, db, c.C), 2 * EPS32);
    free(dinp), free(dw), free(db), free(inp), free(w), free(r), free(dinpf), free(dwf), free(dbf), free(dwf64), free(dbf64);
    prob_free(&p);
}
END_TEST

/* dw and dbias are added to: a second call on zeroed buffers gives exactly 2x (s + s is exact);
 * dinp is written; NULL outputs are skipped; 1 and 2 threads give the same bits. */
START_TEST(accumulation_and_determinism) {
    uint64_t rng = tu_seed();
    Case c = {3, 100, 70, 3};   /* B*L*C above the parallel threshold */
    Prob p = prob_make(c, &rng);
    double *dinp = malloc(p.nin * sizeof(double)), *dinp2 = malloc(p.nin * sizeof(double));
    double *dw = calloc(p.nw, sizeof(double)), *db = calloc(c.C, sizeof(double));
    double *dw1 = malloc(p.nw * sizeof(double)), *db1 = malloc(c.C * sizeof(double));
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    ops_cpu64()->shortconv_bwd(dinp, dw, db, p.r, p.inp, p.w, c.B, c.L, c.C, c.K);
    memcpy(dw1, dw, p.nw * sizeof(double));
    memcpy(db1, db, c.C * sizeof(double));
    omp_set_num_threads(2);
    ops_cpu64()->shortconv_bwd(dinp2, dw, db, p.r, p.inp, p.w, c.B, c.L, c.C, c.K);
    omp_set_num_threads(nt);
    ck_assert(memcmp(dinp, dinp2, p.nin * sizeof(double)) == 0);
    for (int64_t i = 0; i < p.nw; i++) ck_assert_msg(dw[i] == 2 * dw1[i], "dw[%lld] not accumulated", (long long)i);
    for (int i = 0; i < c.C; i++) ck_assert_msg(db[i] == 2 * db1[i], "dbias[%d] not accumulated", i);
    /* NULL outputs skipped: dinp only, then dw only */
    ops_cpu64()->shortconv_bwd(dinp2, NULL, NULL, p.r, p.inp, p.w, c.B, c.L, c.C, c.K);
    ck_assert(memcmp(dinp, dinp2, p.nin * sizeof(double)) == 0);
    memset(dw, 0, p.nw * sizeof(double));
    ops_cpu64()->shortconv_bwd(NULL, dw, NULL, p.r, p.inp, p.w, c.B, c.L, c.C, c.K);
    ck_assert(memcmp(dw, dw1, p.nw * sizeof(double)) == 0);
    free(dinp), free(dinp2), free(dw), free(db), free(dw1), free(db1);
    prob_free(&p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shortconv");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_matches_conv1d);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, fp32_matches_fp64);
    tcase_add_test(tc, accumulation_and_determinism);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
