/* Linear layer on BLAS: forward against naive fp64, finite-difference gradients of inp, w and b,
 * fp32 vs fp64, dinp written / dw, db accumulated, NULL bias paths, deterministic db. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8 /* fp32 unit roundoff 2^-24 */

typedef struct {
    int64_t N;
    int C, OC;
    float *xf, *wf, *bf, *rf; /* inp [N,C], w [OC,C], b [OC], upstream gradient r [N,OC] */
    double *xd, *wd, *bd, *rd;
} Case;

static void fill_pair(float **f, double **d, int64_t n, uint64_t *rng) {
    *f = malloc(n * sizeof(float)), *d = malloc(n * sizeof(double));
    for (int64_t i = 0; i < n; i++) (*d)[i] = (*f)[i] = (float)tu_normal(rng);
}

static Case case_make(int64_t N, int C, int OC, uint64_t *rng) {
    Case k = {.N = N, .C = C, .OC = OC};
    fill_pair(&k.xf, &k.xd, N * C, rng);
    fill_pair(&k.wf, &k.wd, (int64_t)OC * C, rng);
    fill_pair(&k.bf, &k.bd, OC, rng);
    fill_pair(&k.rf, &k.rd, N * OC, rng);
    return k;
}

static void case_free(Case *k) {
    free(k->xf), free(k->xd), free(k->wf), free(k->wd), free(k->bf), free(k->bd), free(k->rf), free(k->rd);
}

START_TEST(forward_vs_naive) {
    uint64_t rng = tu_seed();
    Case k = case_make(37, 50, 70, &rng);
    int64_t N = k.N, C = k.C, OC = k.OC;
    double *ref = malloc(N * OC * sizeof(double)), *od = malloc(N * OC * sizeof(double));
    double *ref0 = malloc(N * OC * sizeof(double)), *od0 = malloc(N * OC * sizeof(double));
    float *of = malloc(N * OC * sizeof(float));
    for (int64_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += k.xd[n * C + c] * k.wd[o * C + c];
            ref0[n * OC + o] = s;
            ref[n * OC + o] = s + k.bd[o];
        }
    ops_cpu64()->linear_fwd(od, k.xd, k.wd, k.bd, N, C, OC);
    ops_cpu64()->linear_fwd(od0, k.xd, k.wd, NULL, N, C, OC);
    ops_cpu()->linear_fwd(of, k.xf, k.wf, k.bf, N, C, OC);
    /* fp64 dot products of C = 50 terms of order 1 (|dot| ~ sqrt(C)): the summation order differs
     * from the naive loop, error ~ C * 1.1e-16 relative at worst */
    tu_check_err("out cpu64 vs naive (rel l2)", tu_rel_l2_d(od, ref, N * OC), 1e-13);
    tu_check_err("out cpu64 without bias vs naive (rel l2)", tu_rel_l2_d(od0, ref0, N * OC), 1e-13);
    /* fp32 dot products from the same inputs: recursive summation errs by at most C ulps of
     * sum |x w|, which is ~sqrt(C) times |dot|; random signs leave ~sqrt(C) ulps: bound C ulps */
    tu_check_err("out cpu vs naive fp64 (rel l2)", tu_rel_l2_fd(of, ref, N * OC), C * EPS32);
    free(ref), free(od), free(ref0), free(od0), free(of);
    case_free(&k);
}
END_TEST

/* f = sum r * linear(x; w, b) in fp64 */
static double lin_objective(const Case *k, double *out) {
    ops_cpu64()->linear_fwd(out, k->xd, k->wd, k->bd, k->N, k->C, k->OC);
    double f = 0;
    for (int64_t i = 0; i < k->N * k->OC; i++) f += k->rd[i] * out[i];
    return f;
}

static void fd_grad(double *num, double *p, int64_t n, const Case *k, double *out) {
    const double h = 1e-3; /* f is linear in each parameter: no truncation error */
    for (int64_t i = 0; i < n; i++) {
        double pi = p[i];
        p[i] = pi + h;
        double fp = lin_objective(k, out);
        p[i] = pi - h;
        double fm = lin_objective(k, out);
        p[i] = pi;
        num[i] = (fp - fm) / (2 * h);
    }
}

START_TEST(backward_gradcheck_and_accumulation) {
    uint64_t rng = tu_seed();
    Case k = case_make(6, 9, 70, &rng); /* OC = 70: a full and a partial block of the db sum */
    int64_t N = k.N, C = k.C, OC = k.OC;
    const Ops *o = ops_cpu64();
    double *out = malloc(N * OC * sizeof(double));
    double *nx = malloc(N * C * sizeof(double)), *nw = malloc(OC * C * sizeof(double)), *nb = malloc(OC * sizeof(double));
    fd_grad(nx, k.xd, N * C, &k, out);
    fd_grad(nw, k.wd, OC * C, &k, out);
    fd_grad(nb, k.bd, OC, &k, out);
    double *dx = malloc(N * C * sizeof(double)), *dw = calloc(OC * C, sizeof(double)), *db = calloc(OC, sizeof(double));
    for (int64_t i = 0; i < N * C; i++) dx[i] = NAN; /* dinp is written, never read */
    o->linear_bwd(dx, dw, db, k.rd, k.xd, k.wd, N, C, OC);
    /* linear objective, h = 1e-3: only the rounding of f (420 terms of order 1, ~1e-14) over 2h,
     * ~1e-11 per element against gradients of order 1-10 */
    tu_check_err("dinp vs finite differences (rel l2)", tu_rel_l2_d(dx, nx, N * C), 1e-9);
    tu_check_err("dw vs finite differences (rel l2)", tu_rel_l2_d(dw, nw, OC * C), 1e-9);
    tu_check_err("db vs finite differences (rel l2)", tu_rel_l2_d(db, nb, OC), 1e-9);
    /* += for dw and db: a second call doubles them; dinp is overwritten with the same values */
    o->linear_bwd(dx, dw, db, k.rd, k.xd, k.wd, N, C, OC);
    for (int64_t i = 0; i < OC * C; i++) dw[i] /= 2;
    for (int o2 = 0; o2 < OC; o2++) db[o2] /= 2;
    tu_check_err("dinp after second call vs fd (rel l2)", tu_rel_l2_d(dx, nx, N * C), 1e-9);
    tu_check_err("dw after two calls / 2 vs fd (rel l2)", tu_rel_l2_d(dw, nw, OC * C), 1e-9);
    tu_check_err("db after two calls / 2 vs fd (rel l2)", tu_rel_l2_d(db, nb, OC), 1e-9);
    /* NULL outputs: only dw is touched */
    double *dw2 = calloc(OC * C, sizeof(double));
    o->linear_bwd(NULL, dw2, NULL, k.rd, k.xd, k.wd, N, C, OC);
    tu_check_err("dw alone vs fd (rel l2)", tu_rel_l2_d(dw2, nw, OC * C), 1e-9);
    free(out), free(nx), free(nw), free(nb), free(dx), free(dw), free(db), free(dw2);
    case_free(&k);
}
END_TEST

START_TEST(backward_fp32_vs_fp64_and_deterministic_db) {
    uint64_t rng = tu_seed();
    Case k = case_make(300, 64, 100, &rng);
    int64_t N = k.N, C = k.C, OC = k.OC;
    double *dxd = malloc(N * C * sizeof(double)), *dwd = calloc(OC * C, sizeof(double)), *dbd = calloc(OC, sizeof(double));
    float *dxf = malloc(N * C * sizeof(float)), *dwf = calloc(OC * C, sizeof(float)), *dbf = calloc(OC, sizeof(float));
    ops_cpu64()->linear_bwd(dxd, dwd, dbd, k.rd, k.xd, k.wd, N, C, OC);
    ops_cpu()->linear_bwd(dxf, dwf, dbf, k.rf, k.xf, k.wf, N, C, OC);
    /* same inputs; dinp sums OC terms and dw sums N terms in fp32 (bound: that many ulps, see the
     * forward); db sums in double and rounds once: 1 ulp */
    tu_check_err("dinp cpu vs cpu64 (rel l2)", tu_rel_l2_fd(dxf, dxd, N * C), OC * EPS32);
    tu_check_err("dw cpu vs cpu64 (rel l2)", tu_rel_l2_fd(dwf, dwd, OC * C), N * EPS32);
    tu_check_err("db cpu vs cpu64 (rel l2)", tu_rel_l2_fd(dbf, dbd, OC), 2 * EPS32);
    /* db: whole column blocks per thread, rows in order: same bits for any thread count */
    float *db1 = calloc(OC, sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    ops_cpu()->linear_bwd(NULL, NULL, db1, k.rf, k.xf, k.wf, N, C, OC);
    omp_set_num_threads(saved);
    ck_assert(memcmp(db1, dbf, OC * sizeof(float)) == 0);
    free(dxd), free(dwd), free(dbd), free(dxf), free(dwf), free(dbf), free(db1);
    case_free(&k);
}
END_TEST

int main(void) {
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, forward_vs_naive);
    tcase_add_test(tc, backward_gradcheck_and_accumulation);
    tcase_add_test(tc, backward_fp32_vs_fp64_and_deterministic_db);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
