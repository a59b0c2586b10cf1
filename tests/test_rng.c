/* Philox: known-answer test from the Random123 distribution, and basic statistics. */
#include <math.h>

#include "core/rng.h"
#include "testutil.h"

START_TEST(philox_known_answer) {
    /* Random123 kat_vectors: philox4x32 10 rounds, counter = 0, key = 0. */
    philox4 r = philox4x32(0, 0, 0);
    ck_assert_uint_eq(r.v[0], 0x6627e8d5u);
    ck_assert_uint_eq(r.v[1], 0xe169c58du);
    ck_assert_uint_eq(r.v[2], 0xbc57ac4cu);
    ck_assert_uint_eq(r.v[3], 0x9b00dbd8u);
}
END_TEST

START_TEST(uniform_and_normal_moments) {
    uint64_t seed = tu_seed();
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        float u = philox_uniform(seed, 3, (uint64_t)i);
        ck_assert(u >= 0.0f && u < 1.0f);
        su += u;
        double z = philox_normal(seed, 4, (uint64_t)i);
        sn += z;
        sn2 += z * z;
    }
    /* 5 standard errors: a false failure has probability below 1e-6. */
    ck_assert_msg(fabs(su / n - 0.5) < 5 * sqrt(1.0 / 12 / n), "uniform mean %f", su / n);
    ck_assert_msg(fabs(sn / n) < 5 * sqrt(1.0 / n), "normal mean %f", sn / n);
    ck_assert_msg(fabs(sn2 / n - 1) < 5 * sqrt(2.0 / n), "normal variance %f", sn2 / n);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("philox");
    tcase_add_test(tc, philox_known_answer);
    tcase_add_test(tc, uniform_and_normal_moments);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
