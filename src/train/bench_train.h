/* `longconv bench train CONFIG [key=value ...] [--steps N] [--warmup N] [--profile-steps N] [--json FILE]`:
 * training throughput of a config (tokens/s, ms/step, MFU), peak device memory, and the time per
 * op of a separate profiled pass (ops_profile.h). A step is what the trainer runs: grad_accum
 * micro-batches of forward + backward from the data sampler, the global gradient norm, clipping
 * and the AdamW step. No checkpoints, no evaluation, nothing written but --json. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "kernels/ops_profile.h"

typedef struct BenchTrainOptions {
    int steps;          /* timed steps (default 10) */
    int warmup;         /* untimed steps first (default 3): plans, workspaces, clocks */
    int profile_steps;  /* steps of the profiled pass after the timed ones (default 2; 0: none) */
    const char *json_path;
} BenchTrainOptions;

typedef struct BenchTrainResult {
    char device[16], conv_which[32], gpu[160];
    int B, L, accum, steps, warmup, profile_steps;
    int64_t trainable, tokens_per_step;
    double ms_mean, ms_median, ms_min, tokens_per_s;
    double flops_per_token, peak_flops, mfu; /* mfu NaN when the peak is unknown (CPU) */
    /* device memory in use (CUDA; 0 on CPU): before the model, after model_init, and the peak
     * sampled after every step of the timed pass and every op of the profiled one */
    size_t mem_base, mem_model, mem_peak;
    size_t bytes_params, bytes_compute, bytes_grads, bytes_optim; /* the parameter part of the plan */
    double loss_first, loss_last;
    double profile_step_ms; /* wall ms per step of the profiled pass (slower: syncs around each op) */
} BenchTrainResult;

/* Run the benchmark on a validated config. prof (may be NULL) receives the profiled pass's
 * per-op times; it is detached on return. Prints the report; writes opt->json_path if set. */
void bench_train_run(const Config *cfg, const BenchTrainOptions *opt, BenchTrainResult *res, OpProfile *prof);
/* argv[0] is CONFIG.yaml, then overrides and options. Returns the process exit code. */
int bench_train_main(int argc, char **argv);
