/* Learning-rate schedule, optimizer groups and the global gradient norm. */
#include <math.h>
#include <string.h>

#include "optim/optim.h"
#include "testutil.h"

static TrainConfig tc_default(void) {
    Config c;
    config_defaults(&c);
    c.train.lr = 1e-3;
    c.train.warmup_init_lr = 1e-6;
    c.train.warmup_steps = 10;
    c.train.max_steps = 110;
    c.train.min_lr_ratio = 0.1;
    return c.train;
}

START_TEST(warmup_then_cosine_like_timm) {
    TrainConfig tc = tc_default();
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 0), 1e-6, 1e-15);
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 5), 1e-6 + (1e-3 - 1e-6) * 0.5, 1e-15);
    /* timm counts t from 0 including warmup: at t = 10 the cosine is already past its peak */
    double expect10 = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + cos(M_PI * 10 / 110.0));
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 10), expect10, 1e-15);
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 55), 1e-4 + 0.5 * (1e-3 - 1e-4), 1e-15);
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 110), 1e-4, 1e-15);
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 500), 1e-4, 1e-15);
    for (int s = 11; s < 110; s++) ck_assert(lr_at(&tc, tc.lr, s) < lr_at(&tc, tc.lr, s - 1));
}
END_TEST

START_TEST(linear_constant_and_decay_steps) {
    TrainConfig tc = tc_default();
    strcpy(tc.schedule, "linear");
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 55), 1e-3 + (1e-4 - 1e-3) * 0.5, 1e-15);
    tc.decay_steps = 55;
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 55), 1e-4, 1e-15);
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 100), 1e-4, 1e-15);
    strcpy(tc.schedule, "constant");
    ck_assert_double_eq_tol(lr_at(&tc, tc.lr, 100), 1e-3, 1e-15);
    ck_assert_double_eq_tol(lr_at(&tc, 2e-3, 100), 2e-3, 1e-15); /* per-group peaks scale */
}
END_TEST

START_TEST(groups_follow_the_config) {
    TrainConfig tc = tc_default();
    tc.weight_decay = 0.1;
    tc.filter_lr = 5e-4;
    tc.filter_wd = 0.01;
    tc.pos_emb_lr = 1e-5;
    double lr, wd;
    group_hparams(&tc, GROUP_DECAY, &lr, &wd);
    ck_assert(lr == 1e-3 && wd == 0.1);
    group_hparams(&tc, GROUP_NO_DECAY, &lr, &wd);
    ck_assert(lr == 1e-3 && wd == 0.0);
    tc.decay_all = 1;
    group_hparams(&tc, GROUP_NO_DECAY, &lr, &wd);
    ck_assert(wd == 0.1);
    group_hparams(&tc, GROUP_FILTER, &lr, &wd);
    ck_assert(lr == 5e-4 && wd == 0.01);
    group_hparams(&tc, GROUP_POS_EMB, &lr, &wd);
    ck_assert(lr == 1e-5 && wd == 0.0);
    group_hparams(&tc, GROUP_FROZEN, &lr, &wd);
    ck_assert(lr == 0.0 && wd == 0.0);
}
END_TEST

START_TEST(global_norm_skips_frozen_rows) {
    const Ops *ops = ops_cpu64();
    ParamTable t = {0};
    int a = params_add(&t, "a", INIT_ZERO, 0, GROUP_DECAY, DIMS(3));
    int f = params_add(&t, "frozen", INIT_ZERO, 0, GROUP_FROZEN, DIMS(2));
    int b = params_add(&t, "b", INIT_ZERO, 0, GROUP_NO_DECAY, DIMS(1));
    params_allocate(&t, ops, 1);
    double ga[3] = {1, 2, 2}, gf[2] = {100, 100}, gb[1] = {4};
    ops->acc_from_f64(param_grad(&t, ops, a), ga, 3);
    ops->acc_from_f64(param_grad(&t, ops, f), gf, 2);
    ops->acc_from_f64(param_grad(&t, ops, b), gb, 1);
    ck_assert_double_eq_tol(grad_global_norm(&t, ops), 5.0, 1e-12); /* sqrt(1+4+4+16) */
    params_free(&t, ops);
}
END_TEST

int main(void) {
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("schedule");
    tcase_add_test(tc, warmup_then_cosine_like_timm);
    tcase_add_test(tc, linear_constant_and_decay_steps);
    tcase_add_test(tc, groups_follow_the_config);
    tcase_add_test(tc, global_norm_skips_frozen_rows);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
