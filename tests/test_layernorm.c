/* LayerNorm: forward against naive fp64 (PyTorch semantics: biased variance, eps inside the
 * square root), finite-difference gradients of inp, w and b, fp32 vs fp64, the += contract of
 * dinp, dw and db, and determinism of dw/db across thread counts. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8 /* fp32 unit roundoff 2^-24 */
#define LN_EPS 1e-5f

typedef struct {
    int64_t N;
    int C;
    float *xf, *wf, *bf, *rf; /* inp [N,C], w [C], b [C], upstream gradient r [N,C] */
    double *xd, *wd, *bd, *rd;
} Case;

static void fill_pair(float *f, double *d, int64_t n, double mu, double std, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) d[i] = f[i] = (float)(mu + std * tu_normal(rng));
}

/* Rows with a random offset and scale (LN must remove both); row 0 is constant, so its variance
 * is 0 and its output is b exactly: eps inside the square root keeps it finite. */
static Case case_make(int64_t N, int C, uint64_t *rng) {
    Case k = {.N = N, .C = C};
    k.xf = malloc(N * C * sizeof(float)), k.xd = malloc(N * C * sizeof(double));
    k.rf = malloc(N * C * sizeof(float)), k.rd = malloc(N * C * sizeof(double));
    k.wf = malloc(C * sizeof(float)), k.wd = malloc(C * sizeof(double));
    k.bf = malloc(C * sizeof(float)), k.bd = malloc(C * sizeof(double));
    for (int64_t n = 0; n < N; n++) fill_pair(k.xf + n * C, k.xd + n * C, C, tu_normal(rng), 0.2 + tu_uniform(rng), rng);
    for (int c = 0; c < C; c++) k.xd[c] = k.xf[c] = 0.75f;
    fill_pair(k.rf, k.rd, N * C, 0.0, 1.0, rng);
    fill_pair(k.wf, k.wd, C, 1.0, 0.5, rng);
    fill_pair(k.bf, k.bd, C, 0.0, 0.5, rng);
    return k;
}

static void case_free(Case *k) {
    free(k->xf), free(k->xd), free(k->rf), free(k->rd), free(k->wf), free(k->wd), free(k->bf), free(k->bd);
}

/* Naive fp64 forward: two passes per row. */
static void ln_naive(double *out, double *mean, double *rstd, const double *x, const double *w, const double *b,
                     int64_t N, int C, double eps) {
    for (int64_t n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
        v /= C;
        mean[n] = m;
        rstd[n] = 1.0 / sqrt(v + eps);
        for (int c = 0; c < C; c++) out[n * C + c] = (x[n * C + c] - m) * rstd[n] * w[c] + b[c];
    }
}

START_TEST(forward_vs_naive) {
    uint64_t rng = tu_seed();
    Case k = case_make(64, 96, &rng);
    int64_t N = k.N, C = k.C;
    double *ref = malloc(N * C * sizeof(double)), *rm = malloc(N * sizeof(double)), *rs = malloc(N * sizeof(double));
    double *od = malloc(N * C * sizeof(double)), *md = malloc(N * sizeof(double)), *sd = malloc(N * sizeof(double));
    float *of = malloc(N * C * sizeof(float)), *mf = malloc(N * sizeof(float)), *sf = malloc(N * sizeof(float));
    ln_naive(ref, rm, rs, k.xd, k.wd, k.bd, N, C, (double)LN_EPS);
    ops_cpu64()->layernorm_fwd(od, md, sd, k.xd, k.wd, k.bd, N, C, LN_EPS);
    ops_cpu()->layernorm_fwd(of, mf, sf, k.xf, k.wf, k.bf, N, C, LN_EPS);
    /* fp64: same formulas, O(C) roundings of 1.1e-16 in the row sums */
    tu_check_err("out cpu64 vs naive (rel l2)", tu_rel_l2_d(od, ref, N * C), 1e-13);
    tu_check_err("mean cpu64 vs naive (rel l2)", tu_rel_l2_d(md, rm, N), 1e-13);
    tu_check_err("rstd cpu64 vs naive (rel l2)", tu_rel_l2_d(sd, rs, N), 1e-13);
    /* fp32: row statistics in double, then xhat, xhat*w and +b each rounded once (3 ulps);
     * mean and rstd are single roundings; bound 8 ulps */
    tu_check_err("out cpu vs naive fp64 (rel l2)", tu_rel_l2_fd(of, ref, N * C), 8 * EPS32);
    tu_check_err("mean cpu vs naive fp64 (rel l2)", tu_rel_l2_fd(mf, rm, N), 2 * EPS32);
    tu_check_err("rstd cpu vs naive fp64 (rel l2)", tu_rel_l2_fd(sf, rs, N), 2 * EPS32);
    /* the constant row: variance 0, rstd = 1/sqrt(eps), out = b */
    ck_assert(fabs(sd[0] - 1.0 / sqrt((double)LN_EPS)) < 1e-9 * sd[0]);
    ck_assert(memcmp(od, k.bd, C * sizeof(double)) == 0);
    free(ref), free(rm), free(rs), free(od), free(md), free(sd), free(of), free(mf), free(sf);
    case_free(&k);
}
END_TEST

/* f = sum r * LN(x; w, b) in fp64 */
static double ln_objective(const Case *k, double *out, double *mean, double *rstd) {
    ops_cpu64()->layernorm_fwd(out, mean, rstd, k->xd, k->wd, k->bd, k->N, k->C, LN_EPS);
    double f = 0;
    for (int64_t i = 0; i < k->N * k->C; i++) f += k->rd[i] * out[i];
    return f;
}

/* Central differences of f wrt every element of p[n]. */
static void fd_grad(double *num, double *p, int64_t n, const Case *k, double *out, double *mean, double *rstd) {
    const double h = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        double pi = p[i];
        p[i] = pi + h;
        double fp = ln_objective(k, out, mean, rstd);
        p[i] = pi - h;
        double fm = ln_objective(k, out, mean, rstd);
        p[i] = pi;
        num[i] = (fp - fm) / (2 * h);
    }
}

START_TEST(backward_gradcheck_and_accumulation) {
    uint64_t rng = tu_seed();
    Case k = case_make(5, 80, &rng); /* C = 80: a full and a partial channel block */
    int64_t N = k.N, C = k.C, NC = N * C;
    const Ops *o = ops_cpu64();
    double *out = malloc(NC * sizeof(double)), *mean = malloc(N * sizeof(double)), *rstd = malloc(N * sizeof(double));
    double *pre = malloc(NC * sizeof(double)), *dx = malloc(NC * sizeof(double));
    double *dw = calloc(C, sizeof(double)), *db = calloc(C, sizeof(double));
    double *nx = malloc(NC * sizeof(double)), *nw = malloc(C * sizeof(double)), *nb = malloc(C * sizeof(double));
    fd_grad(nx, k.xd, NC, &k, out, mean, rstd);
    fd_grad(nw, k.wd, C, &k, out, mean, rstd);
    fd_grad(nb, k.bd, C, &k, out, mean, rstd);
    ln_objective(&k, out, mean, rstd);
    /* dinp adds into the residual stream: start from random contents and subtract them */
    tu_fill_normal(pre, NC, 1.0, &rng);
    memcpy(dx, pre, NC * sizeof(double));
    o->layernorm_bwd(dx, dw, db, k.rd, k.xd, k.wd, mean, rstd, N, C);
    double *g = malloc(NC * sizeof(double));
    for (int64_t i = 0; i < NC; i++) g[i] = dx[i] - pre[i];
    /* h = 1e-5: for ordinary rows truncation h^2 |f'''| / 6 ~ 1e-10 and rounding of f (~1e-14)
     * over 2h ~ 1e-9, against gradients of order 1. The constant row dominates: perturbing one
     * element gives it variance ~h^2/C, which shrinks rstd by var/(2 eps), an h^3 term in f and a
     * relative error h^2/(2 C eps) = 6e-8 in its gradient. Bound 1e-6. */
    tu_check_err("dinp vs finite differences (rel l2)", tu_rel_l2_d(g, nx, NC), 1e-6);
    tu_check_err("dw vs finite differences (rel l2)", tu_rel_l2_d(dw, nw, C), 1e-6);
    tu_check_err("db vs finite differences (rel l2)", tu_rel_l2_d(db, nb, C), 1e-6);
    /* += contract: a second call adds the same again (fp64 roundings only) */
    o->layernorm_bwd(dx, dw, db, k.rd, k.xd, k.wd, mean, rstd, N, C);
    for (int64_t i = 0; i < NC; i++) dx[i] = (dx[i] - pre[i]) / 2;
    for (int c = 0; c < C; c++) dw[c] /= 2, db[c] /= 2;
    tu_check_err("dinp after two calls / 2 vs fd (rel l2)", tu_rel_l2_d(dx, nx, NC), 1e-6);
    tu_check_err("dw after two calls / 2 vs fd (rel l2)", tu_rel_l2_d(dw, nw, C), 1e-6);
    tu_check_err("db after two calls / 2 vs fd (rel l2)", tu_rel_l2_d(db, nb, C), 1e-6);
    /* NULL outputs are skipped */
    o->layernorm_bwd(NULL, NULL, db, k.rd, k.xd, k.wd, mean, rstd, N, C);
    free(out), free(mean), free(rstd), free(pre), free(dx), free(dw), free(db), free(nx), free(nw), free(nb), free(g);
    case_free(&k);
}
END_TEST

START_TEST(backward_fp32_vs_fp64) {
    uint64_t rng = tu_seed();
    Case k = case_make(256, 200, &rng);
    int64_t N = k.N, C = k.C, NC = N * C;
    double *od = malloc(NC * sizeof(double)), *md = malloc(N * sizeof(double)), *sd = malloc(N * sizeof(double));
    float *of = malloc(NC * sizeof(float)), *mf = malloc(N * sizeof(float)), *sf = malloc(N * sizeof(float));
    double *dxd = calloc(NC, sizeof(double)), *dwd = calloc(C, sizeof(double)), *dbd = calloc(C, sizeof(double));
    float *dxf = calloc(NC, sizeof(float)), *dwf = calloc(C, sizeof(float)), *dbf = calloc(C, sizeof(float));
    /* the constant row (rstd ~ 316) amplifies the rounding of x - mean; drop it here */
    for (int c = 0; c < C; c++) k.xd[c] = k.xf[c] = (float)tu_normal(&rng);
    ops_cpu64()->layernorm_fwd(od, md, sd, k.xd, k.wd, k.bd, N, C, LN_EPS);
    ops_cpu()->layernorm_fwd(of, mf, sf, k.xf, k.wf, k.bf, N, C, LN_EPS);
    ops_cpu64()->layernorm_bwd(dxd, dwd, dbd, k.rd, k.xd, k.wd, md, sd, N, C);
    ops_cpu()->layernorm_bwd(dxf, dwf, dbf, k.rf, k.xf, k.wf, mf, sf, N, C);
    /* the fp32 backward computes in double from fp32 mean and rstd (one rounding each): xhat
     * errs by ~|mean|/std ulps (rows have |mean|/std up to ~5), the two row means of dinp
     * then cancel against g; bound 64 ulps. db sums the same fp32 dout in double: 1 ulp. */
    tu_check_err("dinp cpu vs cpu64 (rel l2)", tu_rel_l2_fd(dxf, dxd, NC), 64 * EPS32);
    tu_check_err("dw cpu vs cpu64 (rel l2)", tu_rel_l2_fd(dwf, dwd, C), 64 * EPS32);
    tu_check_err("db cpu vs cpu64 (rel l2)", tu_rel_l2_fd(dbf, dbd, C), 2 * EPS32);
    /* dw/db: each thread owns whole channel blocks and walks rows in order, so any thread count
     * gives the same bits */
    float *dw1 = calloc(C, sizeof(float)), *db1 = calloc(C, sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    ops_cpu()->layernorm_bwd(NULL, dw1, db1, k.rf, k.xf, k.wf, mf, sf, N, C);
    omp_set_num_threads(saved);
    ck_assert(memcmp(dw1, dwf, C * sizeof(float)) == 0 && memcmp(db1, dbf, C * sizeof(float)) == 0);
    free(od), free(md), free(sd), free(of), free(mf), free(sf), free(dxd), free(dwd), free(dbd);
    free(dxf), free(dwf), free(dbf), free(dw1), free(db1);
    case_free(&k);
}
END_TEST

int main(void) {
    Suite *s = suite_create("layernorm");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, forward_vs_naive);
    tcase_add_test(tc, backward_gradcheck_and_accumulation);
    tcase_add_test(tc, backward_fp32_vs_fp64);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
