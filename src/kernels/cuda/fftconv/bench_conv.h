/* `longconv bench conv`: long-convolution timings of every implementation against the memory floor. */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* argv[0] is the first option: [--json FILE] [--max-n L] [--iters K]. Returns the process exit code. */
int bench_conv_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
