/* fftconv: forward against a direct O(L^2) convolution written here in double; every gradient
 * (du, dw, dv, dk, dD) by central finite differences on cpu64; fp32 against fp64, forward and
 * backward; dk written, dD accumulated; row gaps never written; same bits for 1 and 2 threads.
 * Cases cover causal filters (Lk < L, Lk == L), the bidirectional filter (Lk = 2L), gates on and
 * off, D on and off, strided rows (in_bstride > H*L), odd L and L not a power of two, white-noise
 * and Hyena-like decaying filters. (CPU memory is device memory: ops are called on host arrays.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8  /* fp32 unit roundoff 2^-24 */
#define EPS64 1.11e-16 /* fp64 unit roundoff 2^-53 */
#define SENTINEL 12345.0

typedef struct {
    int B, H, L, Lk;
    int gap;     /* in_bstride - H*L */
    int w, v, D; /* which optional inputs are present */
    int decay;   /* k = randn * exp(-0.1 d), d the distance of tap s from t (Hyena-like), else white */
} Case;

/* One problem in double; the fp32 copies hold the same (rounded) values. */
typedef struct {
    Case c;
    int64_t bs, nin, ny, nk;  /* in_bstride; sizes of u (= w, v), y, k */
    double *u, *w, *v, *k, *D, *r;   /* r: weights of the objective sum(r ⊙ y), [B,H,L] */
} Prob;

static Prob prob_make(Case c, uint64_t *rng) {
    Prob p = {.c = c};
    p.bs = (int64_t)c.H * c.L + c.gap;
    p.nin = (int64_t)c.B * p.bs;
    p.ny = (int64_t)c.B * c.H * c.L;
    p.nk = (int64_t)c.H * c.Lk;
    p.u = malloc(p.nin * sizeof(double));
    p.w = c.w ? malloc(p.nin * sizeof(double)) : NULL;
    p.v = c.v ? malloc(p.nin * sizeof(double)) : NULL;
    p.k = malloc(p.nk * sizeof(double));
    p.D = c.D ? malloc(c.H * sizeof(double)) : NULL;
    p.r = malloc(p.ny * sizeof(double));
    /* gaps get noise too: they must not leak into y */
    tu_fill_normal(p.u, p.nin, 1.0, rng);
    if (p.w) tu_fill_normal(p.w, p.nin, 1.0, rng);
    if (p.v) tu_fill_normal(p.v, p.nin, 1.0, rng);
    for (int h = 0; h < c.H; h++)
        for (int s = 0; s < c.Lk; s++)
            p.k[(int64_t)h * c.Lk + s] = tu_normal(rng) * (c.decay ? exp(-0.1 * (s < c.L ? s : 2 * c.L - s)) : 1.0);
    if (p.D) tu_fill_normal(p.D, c.H, 1.0, rng);
    tu_fill_normal(p.r, p.ny, 1.0, rng);
    return p;
}

static void prob_free(Prob *p) { free(p->u), free(p->w), free(p->v), free(p->k), free(p->D), free(p->r); }

static float *to_f32(const double *x, int64_t n) {
    if (!x) return NULL;
    float *f = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

/* Direct convolution from the definition in ops.h: c[t] = sum_{s<=t, s<Lk} k[s] x[t-s]
 * + sum_{L<=s<Lk, t-s+2L<L} k[s] x[t-s+2L] + D x[t]; y = v ⊙ c. */
static void naive_fwd(const Prob *p, double *y) {
    const Case *c = &p->c;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++) {
            int64_t off = (int64_t)b * p->bs + (int64_t)h * c->L;
            const double *k = p->k + (int64_t)h * c->Lk;
            for (int t = 0; t < c->L; t++) {
                double acc = 0;
                for (int s = 0; s < c->Lk; s++) {
                    int m = s <= t ? t - s : (s >= c->L && t - s + 2 * c->L < c->L ? t - s + 2 * c->L : -1);
                    if (m < 0) continue;
                    acc += k[s] * p->u[off + m] * (p->w ? p->w[off + m] : 1.0);
                }
                double x = p->u[off + t] * (p->w ? p->w[off + t] : 1.0);
                acc += (p->D ? p->D[h] : 0.0) * x;
                y[((int64_t)b * c->H + h) * c->L + t] = acc * (p->v ? p->v[off + t] : 1.0);
            }
        }
}

static double objective(const Prob *p, double *y) {
    ops_cpu64()->fftconv_fwd(y, p->u, p->w, p->v, p->bs, p->k, p->c.Lk, p->D, p->c.B, p->c.H, p->c.L);
    double J = 0;
    for (int64_t i = 0; i < p->ny; i++) J += p->r[i] * y[i];
    return J;
}

/* Gradients of one backward call, in double. du/dw/dv start as SENTINEL, dk as garbage. */
typedef struct {
    double *du, *dw, *dv, *dk, *dD;
} Grads;

static Grads grads_alloc(const Prob *p) {
    Grads g = {0};
    g.du = malloc(p->nin * sizeof(double));
    g.dw = p->w ? malloc(p->nin * sizeof(double)) : NULL;
    g.dv = p->v ? malloc(p->nin * sizeof(double)) : NULL;
    g.dk = malloc(p->nk * sizeof(double));
    g.dD = p->D ? calloc(p->c.H, sizeof(double)) : NULL;
    for (int64_t i = 0; i < p->nin; i++) {
        g.du[i] = SENTINEL;
        if (g.dw) g.dw[i] = SENTINEL;
        if (g.dv) g.dv[i] = SENTINEL;
    }
    for (int64_t i = 0; i < p->nk; i++) g.dk[i] = 1e30;
    return g;
}

static void grads_free(Grads *g) { free(g->du), free(g->dw), free(g->dv), free(g->dk), free(g->dD); }

static void bwd64(const Prob *p, Grads *g, const double *dy) {
    ops_cpu64()->fftconv_bwd(g->du, g->dw, g->dv, g->dk, g->dD, dy, p->u, p->w, p->v, p->bs, p->k, p->c.Lk, p->D,
                             p->c.B, p->c.H, p->c.L);
}

/* fp32 backward on the rounded inputs; results widened into g (allocated by grads_alloc). */
static void bwd32(const Prob *p, Grads *g, const double *dy) {
    int64_t nin = p->nin, nk = p->nk, H = p->c.H;
    float *u = to_f32(p->u, nin), *w = to_f32(p->w, nin), *v = to_f32(p->v, nin), *k = to_f32(p->k, nk);
    float *D = to_f32(p->D, H), *dyf = to_f32(dy, p->ny);
    float *du = to_f32(g->du, nin), *dw = to_f32(g->dw, nin), *dv = to_f32(g->dv, nin);
    float *dk = to_f32(g->dk, nk), *dD = to_f32(g->dD, H);
    ops_cpu()->fftconv_bwd(du, dw, dv, dk, dD, dyf, u, w, v, p->bs, k, p->c.Lk, D, p->c.B, p->c.H, p->c.L);
    for (int64_t i = 0; i < nin; i++) {
        g->du[i] = du[i];
        if (dw) g->dw[i] = dw[i];
        if (dv) g->dv[i] = dv[i];
    }
    for (int64_t i = 0; i < nk; i++) g->dk[i] = dk[i];
    for (int64_t i = 0; dD && i < H; i++) g->dD[i] = dD[i];
    free(u), free(w), free(v), free(k), free(D), free(dyf), free(du), free(dw), free(dv), free(dk), free(dD);
}

/* Is element i of a u-shaped array inside a row (not in a gap)? */
static int in_row(const Prob *p, int64_t i) { return i % p->bs < (int64_t)p->c.H * p->c.L; }

/* Rel. L2 of a over row elements of a u-shaped array, against ref. */
static double rel_rows(const Prob *p, const double *a, const double *ref) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < p->nin; i++)
        if (in_row(p, i)) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
    return sqrt(num) / (sqrt(den) + 1e-300);
}

static void check_gaps_untouched(const Prob *p, const double *d, const char *name) {
    for (int64_t i = 0; d && i < p->nin; i++)
        if (!in_row(p, i)) ck_assert_msg(d[i] == SENTINEL, "%s written in a row gap at %lld", name, (long long)i);
}

static void case_name(char *buf, size_t n, const char *what, const Case *c) {
    snprintf(buf, n, "%s B%d H%d L%d Lk%d gap%d%s%s%s%s", what, c->B, c->H, c->L, c->Lk, c->gap, c->w ? " w" : "",
             c->v ? " v" : "", c->D ? " D" : "", c->decay ? " decay" : " white");
}

static const Case fwd_cases[] = {
    {2, 3, 37, 20, 5, 1, 1, 1, 1},  {2, 3, 37, 37, 0, 0, 0, 0, 0},  {2, 3, 37, 74, 7, 1, 1, 1, 0},
    {3, 4, 100, 100, 0, 1, 0, 1, 1}, {3, 4, 100, 200, 11, 0, 1, 0, 1}, {1, 2, 100, 31, 3, 1, 1, 0, 0},
    {2, 5, 256, 256, 0, 1, 1, 1, 1},
    /* tiny L: many channels, so that one channel where k[0] + D nearly cancels cannot dominate */
    {2, 16, 1, 2, 1, 1, 1, 1, 0}, {1, 16, 2, 1, 0, 1, 1, 1, 0},
};

START_TEST(forward_matches_direct_convolution) {
    uint64_t rng = tu_seed();
    char name[160];
    for (size_t ci = 0; ci < sizeof(fwd_cases) / sizeof(fwd_cases[0]); ci++) {
        Prob p = prob_make(fwd_cases[ci], &rng);
        double *ref = malloc(p.ny * sizeof(double)), *y = malloc(p.ny * sizeof(double));
        naive_fwd(&p, ref);
        ops_cpu64()->fftconv_fwd(y, p.u, p.w, p.v, p.bs, p.k, p.c.Lk, p.D, p.c.B, p.c.H, p.c.L);
        double lg = log2(2.0 * p.c.L) + 1;
        /* FFT-based convolution: each output is a sum over N = 2L terms through three transforms of
         * log2(N) butterfly levels; the rounding error relative to the output norm grows like
         * eps * log2(N) (worst case, rms much less). The direct sum adds eps * sqrt(Lk) ~ the same.
         * Bound 8 * eps * (log2(2L)+1). */
        case_name(name, sizeof(name), "fwd cpu64 vs direct", &p.c);
        tu_check_err(name, tu_rel_l2_d(y, ref, p.ny), 8 * EPS64 * lg);
        /* fp32: the inputs are rounded to fp32 (relative EPS32 each, at most 4 factors per term:
         * u, w, k, v) and three fp32 transforms of log2(N) levels run, each level adding about
         * EPS32 relative: bound (4 + 4 (log2(2L)+1)) EPS32. */
        float *u = to_f32(p.u, p.nin), *w = to_f32(p.w, p.nin), *v = to_f32(p.v, p.nin);
        float *k = to_f32(p.k, p.nk), *D = to_f32(p.D, p.c.H), *yf = malloc(p.ny * sizeof(float));
        ops_cpu()->fftconv_fwd(yf, u, w, v, p.bs, k, p.c.Lk, D, p.c.B, p.c.H, p.c.L);
        case_name(name, sizeof(name), "fwd cpu vs direct", &p.c);
        tu_check_err(name, tu_rel_l2_fd(yf, ref, p.ny), (4 + 4 * lg) * EPS32);
        free(u), free(w), free(v), free(k), free(D), free(yf), free(ref), free(y);
        prob_free(&p);
    }
}
END_TEST

/* Central differences of J = sum(r ⊙ y) for every element of one input. y is multilinear: each
 * element enters every term at most once, so J is affine in it and the central difference has no
 * truncation error; only the rounding of J (about EPS64 * log2(2L) * sum|r y|) divided by 2h
 * remains. With h = 0.5 and sum|r y| <= ~1e4 that is ~1e-11 absolute per element, against
 * gradients whose rms is O(1)..O(10): a relative L2 error bound of 1e-11. */
static double fd_rel(Prob *p, double *x, int64_t n, int rows_only, const double *grad, double *y) {
    const double h = 0.5;
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rows_only && !in_row(p, i)) continue;
        double x0 = x[i];
        x[i] = x0 + h;
        double jp = objective(p, y);
        x[i] = x0 - h;
        double jm = objective(p, y);
        x[i] = x0;
        double fd = (jp - jm) / (2 * h);
        num += (fd - grad[i]) * (fd - grad[i]);
        den += fd * fd;
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

static const Case grad_cases[] = {
    {2, 3, 37, 20, 5, 1, 1, 1, 1},  {2, 3, 37, 37, 0, 0, 0, 0, 0},  {2, 3, 37, 74, 7, 1, 1, 1, 0},
    {2, 2, 100, 200, 3, 1, 1, 1, 1}, {2, 2, 100, 64, 0, 1, 0, 1, 0}, {1, 2, 100, 100, 0, 0, 1, 0, 1},
};

START_TEST(gradients_match_finite_differences) {
    uint64_t rng = tu_seed();
    char name[160];
    for (size_t ci = 0; ci < sizeof(grad_cases) / sizeof(grad_cases[0]); ci++) {
        Prob p = prob_make(grad_cases[ci], &rng);
        Grads g = grads_alloc(&p);
        double *y = malloc(p.ny * sizeof(double));
        bwd64(&p, &g, p.r);   /* dy = r is the gradient of J with respect to y */
        check_gaps_untouched(&p, g.du, "du");
        check_gaps_untouched(&p, g.dw, "dw");
        check_gaps_untouched(&p, g.dv, "dv");
        const double bound = 1e-11;   /* see fd_rel */
        case_name(name, sizeof(name), "du", &p.c);
        tu_check_err(name, fd_rel(&p, p.u, p.nin, 1, g.du, y), bound);
        if (p.w) {
            case_name(name, sizeof(name), "dw", &p.c);
            tu_check_err(name, fd_rel(&p, p.w, p.nin, 1, g.dw, y), bound);
        }
        if (p.v) {
            case_name(name, sizeof(name), "dv", &p.c);
            tu_check_err(name, fd_rel(&p, p.v, p.nin, 1, g.dv, y), bound);
        }
        case_name(name, sizeof(name), "dk", &p.c);
        tu_check_err(name, fd_rel(&p, p.k, p.nk, 0, g.dk, y), bound);
        if (p.D) {
            case_name(name, sizeof(name), "dD", &p.c);
            tu_check_err(name, fd_rel(&p, p.D, p.c.H, 0, g.dD, y), bound);
        }
        free(y);
        grads_free(&g);
        prob_free(&p);
    }
}
END_TEST

/* Gradients of the fp32 backend against fp64, on the same (fp32-exact) inputs. */
static const Case f32_cases[] = {
    {3, 8, 1000, 1000, 16, 1, 1, 1, 1}, {2, 8, 1024, 2048, 0, 1, 1, 1, 0}, {2, 6, 300, 77, 5, 1, 1, 1, 0},
};

START_TEST(fp32_matches_fp64) {
    uint64_t rng = tu_seed();
    char name[160];
    for (size_t ci = 0; ci < sizeof(f32_cases) / sizeof(f32_cases[0]); ci++) {
        Prob p = prob_make(f32_cases[ci], &rng);
        /* make the inputs exactly representable in fp32, so only the fp32 arithmetic differs */
        double *arrs[] = {p.u, p.w, p.v, p.k, p.D, p.r};
        int64_t lens[] = {p.nin, p.nin, p.nin, p.nk, p.c.H, p.ny};
        for (int a = 0; a < 6; a++)
            for (int64_t i = 0; arrs[a] && i < lens[a]; i++) arrs[a][i] = (float)arrs[a][i];
        double lg = log2(2.0 * p.c.L) + 1;
        /* Forward: three fp32 transforms of log2(N) levels, each level adding about EPS32 relative
         * to the norm of the circular result, plus the roundings of the gates and the skip term:
         * bound (4 + 4 (log2(2L)+1)) EPS32. */
        double *y64 = malloc(p.ny * sizeof(double));
        ops_cpu64()->fftconv_fwd(y64, p.u, p.w, p.v, p.bs, p.k, p.c.Lk, p.D, p.c.B, p.c.H, p.c.L);
        float *u = to_f32(p.u, p.nin), *w = to_f32(p.w, p.nin), *v = to_f32(p.v, p.nin);
        float *k = to_f32(p.k, p.nk), *D = to_f32(p.D, p.c.H), *y32 = malloc(p.ny * sizeof(float));
        ops_cpu()->fftconv_fwd(y32, u, w, v, p.bs, k, p.c.Lk, D, p.c.B, p.c.H, p.c.L);
        case_name(name, sizeof(name), "fwd cpu vs cpu64", &p.c);
        tu_check_err(name, tu_rel_l2_fd(y32, y64, p.ny), (4 + 4 * lg) * EPS32);
        free(u), free(w), free(v), free(k), free(D), free(y32), free(y64);

        /* Backward: dx goes through the same three transforms as the forward; dk through two
         * per batch row summed over B spectra (B <= 3 adds rounding of the same order) and one
         * inverse; dv recomputes c. dD is a sum over B*L products of rounded factors with
         * partial cancellation: its relative error is that of the factors. Same bound for all. */
        Grads g64 = grads_alloc(&p), g32 = grads_alloc(&p);
        bwd64(&p, &g64, p.r);
        bwd32(&p, &g32, p.r);
        double bound = (4 + 4 * lg) * EPS32;
        case_name(name, sizeof(name), "du cpu vs cpu64", &p.c);
        tu_check_err(name, rel_rows(&p, g32.du, g64.du), bound);
        case_name(name, sizeof(name), "dw cpu vs cpu64", &p.c);
        tu_check_err(name, rel_rows(&p, g32.dw, g64.dw), bound);
        case_name(name, sizeof(name), "dv cpu vs cpu64", &p.c);
        tu_check_err(name, rel_rows(&p, g32.dv, g64.dv), bound);
        case_name(name, sizeof(name), "dk cpu vs cpu64", &p.c);
        tu_check_err(name, tu_rel_l2_d(g32.dk, g64.dk, p.nk), bound);
        case_name(name, sizeof(name), "dD cpu vs cpu64", &p.c);
        tu_check_err(name, tu_rel_l2_d(g32.dD, g64.dD, p.c.H), bound);
        check_gaps_untouched(&p, g32.du, "du (fp32)");
        grads_free(&g64);
        grads_free(&g32);
        prob_free(&p);
    }
}
END_TEST

/* dD is added to (twice = 2x, exactly: s + s is exact); dk, du, dw, dv are written (a second call
 * gives the same bits); 1 and 2 threads give the same bits (every batch reduction has a fixed order). */
START_TEST(accumulation_and_determinism) {
    uint64_t rng = tu_seed();
    Case c = {3, 5, 300, 600, 4, 1, 1, 1, 1};   /* B*H*L above the parallel threshold */
    Prob p = prob_make(c, &rng);
    Grads g1 = grads_alloc(&p), g2 = grads_alloc(&p);
    double *dD0 = malloc(c.H * sizeof(double));
    tu_fill_normal(dD0, c.H, 1.0, &rng);
    memcpy(g1.dD, dD0, c.H * sizeof(double));
    bwd64(&p, &g1, p.r);
    double *dD1 = malloc(c.H * sizeof(double)), *dk1 = malloc(p.nk * sizeof(double));
    memcpy(dD1, g1.dD, c.H * sizeof(double));
    memcpy(dk1, g1.dk, p.nk * sizeof(double));
    bwd64(&p, &g1, p.r);
    for (int h = 0; h < c.H; h++) {
        double s = dD1[h] - dD0[h];
        ck_assert_msg(fabs(g1.dD[h] - (dD0[h] + 2 * s)) <= 4 * EPS64 * (fabs(dD0[h]) + 2 * fabs(s)),
                      "dD not accumulated: %g vs %g", g1.dD[h], dD0[h] + 2 * s);
    }
    ck_assert_msg(memcmp(dk1, g1.dk, p.nk * sizeof(double)) == 0, "dk is not written (=) or not deterministic");

    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    memset(g2.dD, 0, c.H * sizeof(double));
    bwd64(&p, &g2, p.r);
    Grads g3 = grads_alloc(&p);
    omp_set_num_threads(2);
    bwd64(&p, &g3, p.r);
    omp_set_num_threads(nt);
    ck_assert(memcmp(g2.du, g3.du, p.nin * sizeof(double)) == 0);
    ck_assert(memcmp(g2.dw, g3.dw, p.nin * sizeof(double)) == 0);
    ck_assert(memcmp(g2.dv, g3.dv, p.nin * sizeof(double)) == 0);
    ck_assert(memcmp(g2.dk, g3.dk, p.nk * sizeof(double)) == 0);
    ck_assert(memcmp(g2.dD, g3.dD, c.H * sizeof(double)) == 0);
    ck_assert(memcmp(g2.dk, dk1, p.nk * sizeof(double)) == 0);
    free(dD0), free(dD1), free(dk1);
    grads_free(&g1), grads_free(&g2), grads_free(&g3);
    prob_free(&p);
}
END_TEST

/* NULL outputs are skipped; with w and v absent, dw and dv are ignored even if given. */
START_TEST(null_outputs_skipped) {
    uint64_t rng = tu_seed();
    Case c = {2, 3, 50, 50, 0, 1, 1, 1, 1};
    Prob p = prob_make(c, &rng);
    Grads full = grads_alloc(&p);
    bwd64(&p, &full, p.r);
    double *dk = malloc(p.nk * sizeof(double));
    /* only dk: must equal the dk of the full call */
    ops_cpu64()->fftconv_bwd(NULL, NULL, NULL, dk, NULL, p.r, p.u, p.w, p.v, p.bs, p.k, c.Lk, p.D, c.B, c.H, c.L);
    ck_assert(memcmp(dk, full.dk, p.nk * sizeof(double)) == 0);
    /* only du */
    double *du = malloc(p.nin * sizeof(double));
    for (int64_t i = 0; i < p.nin; i++) du[i] = SENTINEL;
    ops_cpu64()->fftconv_bwd(du, NULL, NULL, NULL, NULL, p.r, p.u, p.w, p.v, p.bs, p.k, c.Lk, p.D, c.B, c.H, c.L);
    ck_assert(memcmp(du, full.du, p.nin * sizeof(double)) == 0);
    free(dk), free(du);
    grads_free(&full);
    prob_free(&p);
}
END_TEST

/* Shapes the op cannot serve are errors that name the values. */
START_TEST(bad_shapes_die) {
    double buf[64] = {0};
    EXPECT_DIE(ops_cpu64()->fftconv_fwd(buf, buf, NULL, NULL, 4, buf, 9, NULL, 1, 1, 4), "Lk 9");
    EXPECT_DIE(ops_cpu64()->fftconv_fwd(buf, buf, NULL, NULL, 7, buf, 4, NULL, 1, 2, 4), "in_bstride 7");
    EXPECT_DIE(ops_cpu()->fftconv_bwd(buf, NULL, NULL, buf, NULL, buf, buf, NULL, NULL, 4, buf, 0, NULL, 1, 1, 4),
               "Lk 0");
}
END_TEST

int main(void) {
    Suite *s = suite_create("fftconv");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_matches_direct_convolution);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, fp32_matches_fp64);
    tcase_add_test(tc, accumulation_and_determinism);
    tcase_add_test(tc, null_outputs_skipped);
    tcase_add_test(tc, bad_shapes_die);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
