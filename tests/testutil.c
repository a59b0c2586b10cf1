#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

jmp_buf tu_die_jmp;
void tu_die_hook(void) { longjmp(tu_die_jmp, 1); }

uint64_t tu_seed(void) {
    const char *env = getenv("LONGCONV_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    fprintf(stderr, "test seed %llu (set LONGCONV_TEST_SEED to repeat)\n", (unsigned long long)seed);
    return seed ? seed : 1;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_uniform(uint64_t *state) { return (splitmix64(state) >> 11) * (1.0 / 9007199254740992.0); }

double tu_normal(uint64_t *state) {
    double u1 = tu_uniform(state), u2 = tu_uniform(state);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void tu_fill_normal(double *x, int64_t n, double std, uint64_t *state) {
    for (int64_t i = 0; i < n; i++) x[i] = std * tu_normal(state);
}

void tu_fill_normal_f(float *x, int64_t n, float std, uint64_t *state) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(std * tu_normal(state));
}

double tu_rel_l2_d(const double *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

double tu_rel_l2_f(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

double tu_rel_l2_fd(const float *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

void tu_check_err(const char *name, double measured, double bound) {
    fprintf(stderr, "  %-40s measured %.3e  bound %.1e  (margin %.1fx)\n", name, measured, bound,
            measured > 0 ? bound / measured : INFINITY);
    ck_assert_msg(measured <= bound && !isnan(measured), "%s: error %.3e exceeds bound %.1e", name,
                  measured, bound);
}

int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
