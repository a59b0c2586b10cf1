/* [B,L,C] <-> [B,C,L]: index mapping against naive loops (bitwise: a pure copy), round trips,
 * odd sizes that leave partial tiles, and both backends. */
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

/* Both directions for one shape, fp32 and fp64. */
static void check_shape(int B, int L, int C, uint64_t *rng) {
    int64_t n = (int64_t)B * L * C;
    float *x = malloc(n * sizeof(float)), *t = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double)), *td = malloc(n * sizeof(double));
    tu_fill_normal_f(x, n, 1.0f, rng);
    for (int64_t i = 0; i < n; i++) xd[i] = x[i];
    ops_cpu()->bcl_from_blc(t, x, B, L, C);
    ops_cpu64()->bcl_from_blc(td, xd, B, L, C);
    int64_t bad = 0; /* counted, then asserted once: ck_assert per element is slow */
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++)
            for (int c = 0; c < C; c++) {
                int64_t blc = ((int64_t)b * L + l) * C + c, bcl = ((int64_t)b * C + c) * L + l;
                bad += t[bcl] != x[blc];
                bad += td[bcl] != xd[blc];
            }
    ck_assert_msg(bad == 0, "bcl_from_blc B=%d L=%d C=%d: %lld wrong elements", B, L, C, (long long)bad);
    /* the inverse: read [B,C,L] back into [B,L,C] */
    ops_cpu()->blc_from_bcl(back, t, B, L, C);
    ck_assert_msg(memcmp(back, x, n * sizeof(float)) == 0, "round trip B=%d L=%d C=%d", B, L, C);
    ops_cpu64()->blc_from_bcl(xd, td, B, L, C);
    for (int64_t i = 0; i < n; i++) bad += xd[i] != x[i];
    ck_assert_msg(bad == 0, "fp64 round trip B=%d L=%d C=%d", B, L, C);
    free(x), free(t), free(back), free(xd), free(td);
}

START_TEST(transposes_match_naive) {
    uint64_t rng = tu_seed();
    check_shape(1, 1, 1, &rng);
    check_shape(2, 5, 3, &rng);
    check_shape(3, 33, 65, &rng);    /* partial tiles on both axes */
    check_shape(2, 128, 96, &rng);   /* whole tiles */
    check_shape(4, 1000, 37, &rng);  /* above the parallel threshold */
    check_shape(1, 7, 4096, &rng);
}
END_TEST

int main(void) {
    Suite *s = suite_create("layout");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, transposes_match_naive);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
