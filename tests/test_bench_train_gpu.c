/* `longconv bench train` on the GPU. Without arguments: a short run of configs/hyena-s-4k.yaml
 * (grad_accum 1, 1 warm-up, 2 timed and 1 profiled step) whose report must be sane: finite
 * losses, tokens/s and MFU in (0, 1), a peak device memory above the parameter plan, and a
 * per-op breakdown whose op times fit in the profiled step. With arguments: they are handed to
 * bench_train_main as they are (the full benchmark, e.g.
 * `test_bench_train_gpu configs/hyena-s-4k.yaml train.grad_accum=1 --steps 10 --warmup 3 --json b.json`).
 * Skips without a device, or without data/text.h5 (scripts/prepare_text.py --default). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#ifdef LONGCONV_CUDA
#include "core/config.h"
#include "kernels/cuda/device.h"
#include "train/bench_train.h"

START_TEST(bench_train_hyena_s_4k) {
    Config c;
    config_defaults(&c);
    config_load_file(&c, "configs/hyena-s-4k.yaml");
    config_apply_override(&c, "train.grad_accum=1");
    config_validate(&c);
    BenchTrainOptions opt = {.steps = 2, .warmup = 1, .profile_steps = 1, .json_path = NULL};
    BenchTrainResult r;
    OpProfile prof;
    bench_train_run(&c, &opt, &r, &prof);
    ck_assert_str_eq(r.device, "cuda");
    ck_assert(isfinite(r.loss_first) && isfinite(r.loss_last));
    ck_assert(r.tokens_per_s > 0 && r.ms_mean > 0);
    /* MFU is model FLOPs over the datasheet peak: a value outside (0, 1) means a wrong count or peak */
    ck_assert_msg(r.peak_flops == 0 || (r.mfu > 0 && r.mfu < 1), "MFU %g", r.mfu);
    size_t plan = r.bytes_params + r.bytes_compute + r.bytes_grads + r.bytes_optim;
    ck_assert_msg(r.mem_peak - r.mem_base >= plan, "peak %zu bytes below the parameter plan %zu", r.mem_peak - r.mem_base,
                  plan);
    ck_assert(ops_profile_calls(&prof, "fftconv_fwd") == c.model.n_layer);
    ck_assert(ops_profile_seconds(&prof, NULL) <= 1e-3 * r.profile_step_ms);
}
END_TEST

int main(int argc, char **argv) {
    if (cuda_device_count() == 0) {
        printf("SKIP: no CUDA device on this machine\n");
        return 77;
    }
    if (argc > 1) return bench_train_main(argc - 1, argv + 1);
    if (access("data/text.h5", R_OK) != 0) {
        printf("SKIP: data/text.h5 is missing (scripts/prepare_text.py --default)\n");
        return 77;
    }
    /* Check forks per test by default; a child of a process that touched CUDA cannot use it. */
    setenv("CK_FORK", "no", 1);
    Suite *s = suite_create("bench_train_gpu");
    TCase *tc = tcase_create("bench");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, bench_train_hyena_s_4k);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
#else
int main(void) {
    printf("SKIP: built without CUDA\n");
    return 77;
}
#endif
