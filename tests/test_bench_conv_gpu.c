/* `longconv bench conv` smoke test: runs the conv benchmark (default --max-n 65536 --iters 5) and
 * expects exit code 0; any arguments given to this program replace the defaults, so the full
 * table can be produced with e.g. `test_bench_conv_gpu --json bench.json --iters 10`. The timings
 * are printed, not checked (they depend on the machine). Skips without a device. */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/device.h"
#include "kernels/cuda/fftconv/bench_conv.h"

static int bench_argc;
static char **bench_argv;

START_TEST(test_bench_runs) { ck_assert_int_eq(bench_conv_main(bench_argc, bench_argv), 0); }
END_TEST

int main(int argc, char **argv) {
    if (cuda_device_count() == 0) {
        printf("SKIP: no CUDA device on this machine\n");
        return 77;
    }
    static char *defaults[] = {"--max-n", "65536", "--iters", "5"};
    bench_argc = argc > 1 ? argc - 1 : 4;
    bench_argv = argc > 1 ? argv + 1 : defaults;
    /* Check forks per test by default; a child of a process that touched CUDA cannot use it. */
    setenv("CK_FORK", "no", 1);
    Suite *s = suite_create("bench_conv_gpu");
    TCase *tc = tcase_create("bench");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_bench_runs);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
#else
int main(void) {
    printf("SKIP: built without CUDA\n");
    return 77;
}
#endif
