/* Implicit-filter pieces. sin: forward against libm in double, dinp and dfreq by central finite
 * differences on cpu64, fp32 against fp64, dfreq accumulates. expmod: forward against the formula
 * with the [L,C] -> [C,L] transpose (modulated, with shift, negative deltas, and unmodulated), dh by
 * finite differences, fp32 against fp64. (CPU memory is device memory: ops get host arrays.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

#define EPS32 5.96e-8  /* fp32 unit roundoff 2^-24 */
#define EPS64 1.11e-16 /* fp64 unit roundoff 2^-53 */

static double *randn(int64_t n, double std, uint64_t *rng) {
    double *x = malloc(n * sizeof(double));
    tu_fill_normal(x, n, std, rng);
    for (int64_t i = 0; i < n; i++) x[i] = (float)x[i];   /* fp32-exact: both backends see the same */
    return x;
}

static float *to_f32(const double *x, int64_t n) {
    float *f = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static double *to_f64(const float *x, int64_t n) {
    double *d = malloc(n * sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ---- sin ---- */

/* N rows of the filter MLP (positions) by C (its width); freq near the Hyena (1) and M2 (10) inits */
typedef struct {
    int64_t N;
    int C;
    double freq_scale;
} SinCase;

static const SinCase sin_cases[] = {{32, 37, 1.0}, {20, 64, 10.0}, {7, 3, 3.0}};

static double *sin_freq(int C, double scale, uint64_t *rng) {
    double *f = malloc(C * sizeof(double));
    for (int c = 0; c < C; c++) f[c] = (float)(scale * (0.5 + tu_uniform(rng)));
    return f;
}

static double sin_objective(const double *r, double *out, const double *inp, const double *freq, int64_t N, int C) {
    ops_cpu64()->sin_fwd(out, inp, freq, N, C);
    double J = 0;
    for (int64_t i = 0; i < N * C; i++) J += r[i] * out[i];
    return J;
}

START_TEST(sin_forward_matches_libm) {
    uint64_t rng = tu_seed();
    char name[96];
    for (size_t ci = 0; ci < sizeof(sin_cases) / sizeof(sin_cases[0]); ci++) {
        SinCase sc = sin_cases[ci];
        int64_t n = sc.N * sc.C;
        double *inp = randn(n, 1.0, &rng), *freq = sin_freq(sc.C, sc.freq_scale, &rng);
        double *ref = malloc(n * sizeof(double)), *out = malloc(n * sizeof(double));
        for (int64_t i = 0; i < n; i++) ref[i] = sin(freq[i % sc.C] * inp[i]);
        ops_cpu64()->sin_fwd(out, inp, freq, sc.N, sc.C);
        /* fp64: the same product and libm call: equal up to an ulp or two */
        snprintf(name, sizeof(name), "sin fwd cpu64 N%lld C%d freq~%g", (long long)sc.N, sc.C, sc.freq_scale);
        tu_check_err(name, tu_rel_l2_d(out, ref, n), 4 * EPS64);
        /* fp32: the argument a = freq * inp is rounded (absolute error |a| EPS32, passed through
         * cos with slope <= 1) and the result once more (EPS32 |sin a|). Relative to rms(sin a)
         * (>= ~0.5 for the arguments here), the bound is (2 rms(a) + 2) EPS32. */
        float *inpf = to_f32(inp, n), *freqf = to_f32(freq, sc.C), *outf = malloc(n * sizeof(float));
        ops_cpu()->sin_fwd(outf, inpf, freqf, sc.N, sc.C);
        double a2 = 0;
        for (int64_t i = 0; i < n; i++) a2 += freq[i % sc.C] * inp[i] * freq[i % sc.C] * inp[i];
        snprintf(name, sizeof(name), "sin fwd cpu vs libm N%lld C%d freq~%g", (long long)sc.N, sc.C, sc.freq_scale);
        tu_check_err(name, tu_rel_l2_fd(outf, ref, n), (2 * sqrt(a2 / n) + 2) * EPS32);
        free(inp), free(freq), free(ref), free(out), free(inpf), free(freqf), free(outf);
    }
}
END_TEST

/* Central differences of J = sum(r ⊙ sin(freq ⊙ inp)). Truncation: h^2/6 * |d^3 J/dx^3|, with
 * third derivatives up to freq^3 (inp) or sum inp^3 (freq); rounding: EPS64 * sum|r out| / h.
 * h = 1e-5 / freq_scale makes both ~1e-10 relative; bound 1e-8. */
START_TEST(sin_gradients_match_finite_differences) {
    uint64_t rng = tu_seed();
    char name[96];
    for (size_t ci = 0; ci < sizeof(sin_cases) / sizeof(sin_cases[0]); ci++) {
        SinCase sc = sin_cases[ci];
        int64_t n = sc.N * sc.C;
        double *inp = randn(n, 1.0, &rng), *freq = sin_freq(sc.C, sc.freq_scale, &rng), *r = randn(n, 1.0, &rng);
        double *out = malloc(n * sizeof(double)), *dinp = malloc(n * sizeof(double));
        double *dfreq = calloc(sc.C, sizeof(double)), *fd_inp = malloc(n * sizeof(double)), *fd_freq = malloc(sc.C * sizeof(double));
        for (int64_t i = 0; i < n; i++) dinp[i] = 1e30; /* written, not added */
        ops_cpu64()->sin_bwd(dinp, dfreq, r, inp, freq, sc.N, sc.C);
        double h = 1e-5 / sc.freq_scale;
        for (int64_t i = 0; i < n; i++) {
            double x0 = inp[i];
            inp[i] = x0 + h;
            double jp = sin_objective(r, out, inp, freq, sc.N, sc.C);
            inp[i] = x0 - h;
            double jm = sin_objective(r, out, inp, freq, sc.N, sc.C);
            inp[i] = x0;
            fd_inp[i] = (jp - jm) / (2 * h);
        }
        /* freq multiplies inputs of rms 1 here: its step is the same relative size */
        double hf = 1e-5;
        for (int c = 0; c < sc.C; c++) {
            double f0 = freq[c];
            freq[c] = f0 + hf;
            double jp = sin_objective(r, out, inp, freq, sc.N, sc.C);
            freq[c] = f0 - hf;
            double jm = sin_objective(r, out, inp, freq, sc.N, sc.C);
            freq[c] = f0;
            fd_freq[c] = (jp - jm) / (2 * hf);
        }
        snprintf(name, sizeof(name), "sin dinp vs fd N%lld C%d freq~%g", (long long)sc.N, sc.C, sc.freq_scale);
        tu_check_err(name, tu_rel_l2_d(dinp, fd_inp, n), 1e-8);
        snprintf(name, sizeof(name), "sin dfreq vs fd N%lld C%d freq~%g", (long long)sc.N, sc.C, sc.freq_scale);
        tu_check_err(name, tu_rel_l2_d(dfreq, fd_freq, sc.C), 1e-8);
        free(inp), free(freq), free(r), free(out), free(dinp), free(dfreq), free(fd_inp), free(fd_freq);
    }
}
END_TEST

START_TEST(sin_fp32_accumulation_determinism) {
    uint64_t rng = tu_seed();
    const int64_t N = 2048;
    const int C = 64;
    int64_t n = N * C;
    double *inp = randn(n, 1.0, &rng), *freq = sin_freq(C, 1.0, &rng), *r = randn(n, 1.0, &rng);
    double *dinp = malloc(n * sizeof(double)), *dfreq = calloc(C, sizeof(double)), *dfreq1 = malloc(C * sizeof(double));
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    ops_cpu64()->sin_bwd(dinp, dfreq, r, inp, freq, N, C);
    memcpy(dfreq1, dfreq, C * sizeof(double));
    omp_set_num_threads(2);
    ops_cpu64()->sin_bwd(dinp, dfreq, r, inp, freq, N, C);
    omp_set_num_threads(nt);
    /* += with the same bits from 1 and 2 threads: exactly 2x (s + s is exact) */
    for (int c = 0; c < C; c++) ck_assert_msg(dfreq[c] == 2 * dfreq1[c], "dfreq[%d] not accumulated", c);

    float *inpf = to_f32(inp, n), *freqf = to_f32(freq, C), *rf = to_f32(r, n);
    float *dinpf = malloc(n * sizeof(float)), *dfreqf = calloc(C, sizeof(float));
    ops_cpu()->sin_bwd(dinpf, dfreqf, rf, inpf, freqf, N, C);
    /* dinp = r * freq * cos(a): the rounded argument moves cos by |a| EPS32 (slope <= 1) and three
     * roundings follow; relative to rms(cos) ~ 0.7: bound (2 rms(a) + 4) EPS32 with rms(a) ~ 1.3. */
    tu_check_err("sin dinp cpu vs cpu64", tu_rel_l2_fd(dinpf, dinp, n), (2 * 1.5 + 4) * EPS32);
    /* dfreq: a sum of N terms r * cos(a) * inp with the same per-term error; the sum (random signs,
     * in double) cancels to ~sqrt(N) times a term, and so do the independent term errors, so the
     * relative error stays ~ that of one term: bound 8 EPS32. */
    double *dfreqf64 = to_f64(dfreqf, C);
    for (int c = 0; c < C; c++) dfreq1[c] = dfreq[c] / 2;
    tu_check_err("sin dfreq cpu vs cpu64", tu_rel_l2_d(dfreqf64, dfreq1, C), 8 * EPS32);
    free(inp), free(freq), free(r), free(dinp), free(dfreq), free(dfreq1);
    free(inpf), free(freqf), free(rf), free(dinpf), free(dfreqf), free(dfreqf64);
}
END_TEST

/* ---- expmod ---- */

typedef struct {
    int L, C, modulate;
    float shift;
} ExpCase;

static const ExpCase exp_cases[] = {{48, 37, 1, 0.0f}, {24, 70, 1, 0.05f}, {33, 5, 0, 0.0f}};

/* Hyena defaults: t_pos = linspace(0, 1, L); |deltas| from 3.07 to 15.35; signs random here to check
 * the |.| (the reference takes the absolute value). */
static void exp_buffers(double *deltas, double *t_pos, int L, int C, uint64_t *rng) {
    for (int t = 0; t < L; t++) t_pos[t] = (float)(L > 1 ? (double)t / (L - 1) : 0.0);
    for (int c = 0; c < C; c++) {
        double d = 3.070 + (15.35 - 3.070) * (C > 1 ? (double)c / (C - 1) : 0.0);
        deltas[c] = (float)(tu_uniform(rng) < 0.5 ? -d : d);
    }
}

START_TEST(expmod_forward_and_gradient) {
    uint64_t rng = tu_seed();
    char name[96];
    for (size_t ci = 0; ci < sizeof(exp_cases) / sizeof(exp_cases[0]); ci++) {
        ExpCase ec = exp_cases[ci];
        int64_t n = (int64_t)ec.L * ec.C;
        double *h = randn(n, 1.0, &rng), *deltas = malloc(ec.C * sizeof(double)), *t_pos = malloc(ec.L * sizeof(double));
        exp_buffers(deltas, t_pos, ec.L, ec.C, &rng);
        double *ref = malloc(n * sizeof(double)), *k = malloc(n * sizeof(double));
        for (int c = 0; c < ec.C; c++)
            for (int t = 0; t < ec.L; t++) {
                double m = ec.modulate ? exp(-t_pos[t] * fabs(deltas[c])) + ec.shift : 1.0;
                ref[(int64_t)c * ec.L + t] = h[(int64_t)t * ec.C + c] * m;
            }
        ops_cpu64()->expmod_fwd(k, h, deltas, t_pos, ec.shift, ec.modulate, ec.L, ec.C);
        /* the same formula: a few ulps. Relative L2 is dominated by early t where k is largest. */
        snprintf(name, sizeof(name), "expmod fwd cpu64 L%d C%d mod%d shift%g", ec.L, ec.C, ec.modulate, ec.shift);
        tu_check_err(name, tu_rel_l2_d(k, ref, n), 4 * EPS64);
        /* fp32: exp of a rounded argument (absolute error |t delta| EPS32 <= 16 EPS32 becomes that
         * relative error of exp), then two roundings: bound 20 EPS32. */
        float *hf = to_f32(h, n), *df = to_f32(deltas, ec.C), *tf = to_f32(t_pos, ec.L), *kf = malloc(n * sizeof(float));
        ops_cpu()->expmod_fwd(kf, hf, df, tf, ec.shift, ec.modulate, ec.L, ec.C);
        snprintf(name, sizeof(name), "expmod fwd cpu vs formula L%d C%d mod%d", ec.L, ec.C, ec.modulate);
        tu_check_err(name, tu_rel_l2_fd(kf, ref, n), 20 * EPS32);

        /* dh: J = sum(r ⊙ k) is linear in h, so central differences are exact up to the rounding of
         * J (EPS64 * sum|r k| < 1e-13) over 2h = 1: bound 1e-11 relative. */
        double *r = randn(n, 1.0, &rng), *dh = malloc(n * sizeof(double)), *fd = malloc(n * sizeof(double));
        for (int64_t i = 0; i < n; i++) dh[i] = 1e30;
        ops_cpu64()->expmod_bwd(dh, r, deltas, t_pos, ec.shift, ec.modulate, ec.L, ec.C);
        const double step = 0.5;
        for (int64_t i = 0; i < n; i++) {
            double x0 = h[i], J[2];
            for (int s = 0; s < 2; s++) {
                h[i] = x0 + (s ? -step : step);
                ops_cpu64()->expmod_fwd(k, h, deltas, t_pos, ec.shift, ec.modulate, ec.L, ec.C);
                J[s] = 0;
                for (int64_t j = 0; j < n; j++) J[s] += r[j] * k[j];
            }
            h[i] = x0;
            fd[i] = (J[0] - J[1]) / (2 * step);
        }
        snprintf(name, sizeof(name), "expmod dh vs fd L%d C%d mod%d", ec.L, ec.C, ec.modulate);
        tu_check_err(name, tu_rel_l2_d(dh, fd, n), 1e-11);
        /* fp32 backward: same factor as the forward, times dk: bound 20 EPS32 */
        float *rf = to_f32(r, n), *dhf = malloc(n * sizeof(float));
        ops_cpu()->expmod_bwd(dhf, rf, df, tf, ec.shift, ec.modulate, ec.L, ec.C);
        snprintf(name, sizeof(name), "expmod dh cpu vs cpu64 L%d C%d mod%d", ec.L, ec.C, ec.modulate);
        tu_check_err(name, tu_rel_l2_fd(dhf, dh, n), 20 * EPS32);
        free(h), free(deltas), free(t_pos), free(ref), free(k), free(hf), free(df), free(tf), free(kf);
        free(r), free(dh), free(fd), free(rf), free(dhf);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sin_forward_matches_libm);
    tcase_add_test(tc, sin_gradients_match_finite_differences);
    tcase_add_test(tc, sin_fp32_accumulation_determinism);
    tcase_add_test(tc, expmod_forward_and_gradient);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
