/* `longconv bench train`: the trainer's step (train_step in trainer.c) timed on its own. */
#include "train/bench_train.h"
#include "train/step.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/device.h"
#endif

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "data/tokens.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "optim/optim.h"

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct Bench {
    Config cfg;
    const Ops *ops; /* the profiled table (forwarding only while the profile is disabled) */
    OpProfile *prof;
    Model *model;
    TokenStream *train;
    Sampler sampler;
    int B, L, accum;
    int64_t step;
    int32_t *inputs, *targets;
} Bench;

/* One optimizer step as train_step: grad_accum micro-batches, global norm, clipping, AdamW.
 * Returns the mean loss. A non-finite loss or norm is reported and the update still runs (a
 * benchmark measures time; the trainer's guard is not what is being timed). */
static double bench_step(Bench *b) {
    const TrainConfig *tc = &b->cfg.train;
    double loss = step_accumulate(b->model, &b->sampler, b->B, b->L, b->accum, b->step, b->inputs, b->targets);
    double norm = grad_global_norm(model_params(b->model), b->ops);
    if (!isfinite(loss) || !isfinite(norm))
        lc_warn("bench step %lld: non-finite loss %g or gradient norm %g", (long long)b->step, loss, norm);
    optim_step(model_params(b->model), b->ops, tc, b->step, step_clip_scale(tc, norm));
    b->step++;
    return loss;
}

/* Wall seconds of one step, the device drained at its end (as the trainer measures). */
static double bench_timed_step(Bench *b, double *loss) {
    double t0 = bench_now();
    *loss = bench_step(b);
    b->ops->synchronize();
    return bench_now() - t0;
}

/* Device memory in use now: CUDA only. */
static size_t bench_mem(const Bench *b) { return b->prof->is_cuda ? ops_profile_device_used() : 0; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_open(Bench *b, const Config *cfg, OpProfile *prof, BenchTrainResult *res) {
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    config_validate(&b->cfg);
    if (b->cfg.train.threads > 0) omp_set_num_threads((int)b->cfg.train.threads);
    const char *which = "";
    const Ops *base = ops_with_conv_impl(ops_get(b->cfg.train.device), b->cfg.model.conv_impl,
                                         (int)b->cfg.data.seq_len, &which);
    snprintf(res->device, sizeof res->device, "%s", base->name);
    snprintf(res->conv_which, sizeof res->conv_which, "%s", which);
#ifdef LONGCONV_CUDA
    if (strcmp(base->name, "cuda") == 0) {
        res->peak_flops = cuda_peak_bf16_flops(0);
        cuda_device_describe(0, res->gpu, (int)sizeof res->gpu);
    }
#endif
    b->prof = prof;
    b->ops = ops_profiled(base, prof);
    ops_profile_enable(prof, 0);
    b->B = (int)b->cfg.train.batch_size;
    b->L = (int)b->cfg.data.seq_len;
    b->accum = (int)b->cfg.train.grad_accum;
    b->train = tokens_open(b->cfg.data.path, b->cfg.data.train_group, b->cfg.model.vocab_size);
    sampler_init(&b->sampler, b->train, b->L, (uint64_t)b->cfg.data.seed, 0, 1);
    b->inputs = xmalloc((size_t)b->B * b->L * sizeof(int32_t));
    b->targets = xmalloc((size_t)b->B * b->L * sizeof(int32_t));
    b->ops->synchronize();
    res->mem_base = bench_mem(b);
    b->model = model_create(&b->cfg, b->ops, b->B, b->L, 1);
    model_init(b->model, (uint64_t)b->cfg.train.seed);
    b->ops->synchronize();
    res->mem_model = bench_mem(b);
}

static void bench_close(Bench *b) {
    model_free(b->model);
    sampler_free(&b->sampler);
    tokens_close(b->train);
    free(b->inputs);
    free(b->targets);
    ops_profile_detach(b->prof);
}

static void fill_plan(const Bench *b, BenchTrainResult *res) {
    const ParamTable *t = model_params(b->model);
    const Ops *ops = b->ops;
    res->trainable = model_num_trainable(b->model);
    res->bytes_params = (size_t)t->total * ops->acc_bytes;
    res->bytes_compute = ops->act_is_acc ? 0 : (size_t)t->total * ops->act_bytes;
    res->bytes_grads = res->bytes_params;
    res->bytes_optim = t->m ? 2 * res->bytes_params : 0;
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

static void print_report(const BenchTrainResult *r, const OpProfile *prof) {
    lc_log("bench train | device %s%s%s | long conv %s | micro-batch %d x %d | grad_accum %d | %lld trainable parameters",
           r->device, r->gpu[0] ? " | " : "", r->gpu, r->conv_which, r->B, r->L, r->accum, (long long)r->trainable);
    lc_log("  steps %d (after %d warm-up) | %lld tokens/step | loss %.4f -> %.4f", r->steps, r->warmup,
           (long long)r->tokens_per_step, r->loss_first, r->loss_last);
    lc_log("  ms/step: mean %.2f | median %.2f | min %.2f", r->ms_mean, r->ms_median, r->ms_min);
    char mfu[64] = "n/a (peak unknown)";
    if (!isnan(r->mfu)) snprintf(mfu, sizeof mfu, "%.2f%% of %.0f TFLOP/s", 100 * r->mfu, r->peak_flops / 1e12);
    lc_log("  tokens/s %.0f | model FLOPs/token %.4g | %.1f TFLOP/s | MFU %s", r->tokens_per_s, r->flops_per_token,
           r->tokens_per_s * r->flops_per_token / 1e12, mfu);
    lc_log("  memory plan: parameters %.1f MiB + compute copy %.1f MiB, gradients %.1f MiB, optimizer %.1f MiB",
           mib(r->bytes_params), mib(r->bytes_compute), mib(r->bytes_grads), mib(r->bytes_optim));
    if (r->mem_peak > 0)
        lc_log("  device memory in use: before the model %.1f MiB, after init %.1f MiB, peak %.1f MiB "
               "(peak - before: %.1f MiB)",
               mib(r->mem_base), mib(r->mem_model), mib(r->mem_peak), mib(r->mem_peak - r->mem_base));
    else
        lc_log("  device memory: n/a (CPU)");
    if (r->profile_steps > 0) {
        lc_log("per-op breakdown (%d profiled steps, %.2f ms/step with a sync around every op):", r->profile_steps,
               r->profile_step_ms);
        fflush(stdout);
        ops_profile_print(prof, stdout, r->profile_step_ms / 1000.0);
        fflush(stdout);
    }
}

static void json_num(FILE *f, const char *key, double v, int last) {
    if (isfinite(v)) fprintf(f, "  \"%s\": %.6g%s\n", key, v, last ? "" : ",");
    else fprintf(f, "  \"%s\": null%s\n", key, last ? "" : ",");
}

static void json_bytes(FILE *f, const char *key, size_t v, int valid) {
    if (valid) fprintf(f, "  \"%s\": %zu,\n", key, v);
    else fprintf(f, "  \"%s\": null,\n", key);
}

static void write_json(const char *path, const Config *cfg, const BenchTrainResult *r, const OpProfile *prof) {
    FILE *f = xfopen(path, "w");
    fprintf(f, "{\n  \"bench\": \"train\",\n  \"device\": \"%s\",\n  \"gpu\": \"%s\",\n  \"conv_impl\": \"%s\",\n",
            r->device, r->gpu, r->conv_which);
    fprintf(f, "  \"d_model\": %lld,\n  \"n_layer\": %lld,\n", (long long)cfg->model.d_model,
            (long long)cfg->model.n_layer);
    fprintf(f, "  \"batch_size\": %d,\n  \"seq_len\": %d,\n  \"grad_accum\": %d,\n  \"steps\": %d,\n  \"warmup\": %d,\n",
            r->B, r->L, r->accum, r->steps, r->warmup);
    fprintf(f, "  \"trainable_params\": %lld,\n  \"tokens_per_step\": %lld,\n", (long long)r->trainable,
            (long long)r->tokens_per_step);
    json_num(f, "ms_per_step", r->ms_mean, 0);
    json_num(f, "ms_per_step_median", r->ms_median, 0);
    json_num(f, "ms_per_step_min", r->ms_min, 0);
    json_num(f, "tokens_per_s", r->tokens_per_s, 0);
    json_num(f, "flops_per_token", r->flops_per_token, 0);
    json_num(f, "peak_flops", r->peak_flops > 0 ? r->peak_flops : NAN, 0);
    json_num(f, "mfu", r->mfu, 0);
    json_num(f, "loss_first", r->loss_first, 0);
    json_num(f, "loss_last", r->loss_last, 0);
    int cuda = r->mem_peak > 0;
    json_bytes(f, "mem_before_model_bytes", r->mem_base, cuda);
    json_bytes(f, "mem_after_init_bytes", r->mem_model, cuda);
    json_bytes(f, "mem_peak_used_bytes", r->mem_peak, cuda);
    json_bytes(f, "peak_memory_bytes", cuda ? r->mem_peak - r->mem_base : 0, cuda);
    fprintf(f, "  \"memory_plan_bytes\": {\"params\": %zu, \"compute_copy\": %zu, \"grads\": %zu, \"optimizer\": %zu},\n",
            r->bytes_params, r->bytes_compute, r->bytes_grads, r->bytes_optim);
    json_num(f, "profile_steps", r->profile_steps, 0);
    json_num(f, "profile_ms_per_step", r->profile_steps > 0 ? r->profile_step_ms : NAN, 0);
    fprintf(f, "  \"breakdown\": ");
    if (r->profile_steps > 0) ops_profile_json(prof, f, r->profile_step_ms / 1000.0);
    else fprintf(f, "[]");
    fprintf(f, "\n}\n");
    if (fclose(f) != 0) lc_die("cannot write %s", path);
}

void bench_train_run(const Config *cfg, const BenchTrainOptions *opt, BenchTrainResult *res, OpProfile *prof) {
    LC_ASSERT(opt->steps >= 1 && opt->warmup >= 0 && opt->profile_steps >= 0, "bench train: bad step counts");
    OpProfile local;
    if (!prof) prof = &local;
    memset(res, 0, sizeof *res);
    Bench bench, *b = &bench;
    bench_open(b, cfg, prof, res);
    fill_plan(b, res);
    res->B = b->B;
    res->L = b->L;
    res->accum = b->accum;
    res->steps = opt->steps;
    res->warmup = opt->warmup;
    res->profile_steps = opt->profile_steps;
    res->tokens_per_step = (int64_t)b->B * b->L * b->accum;
    res->flops_per_token = model_flops_per_token(b->model);
    res->mem_peak = res->mem_model;

    double loss;
    for (int i = 0; i < opt->warmup; i++) bench_timed_step(b, &loss);
    double *dt = xmalloc((size_t)opt->steps * sizeof(double)), total = 0;
    for (int i = 0; i < opt->steps; i++) {
        dt[i] = bench_timed_step(b, &loss);
        total += dt[i];
        if (i == 0) res->loss_first = loss;
        res->loss_last = loss;
        /* every allocation persists past its op (scratch, plans, workspaces), so the level after
         * a step is the step's high-water mark; the profiled pass below samples after each op */
        size_t used = bench_mem(b);
        if (used > res->mem_peak) res->mem_peak = used;
    }
    res->ms_mean = 1000.0 * total / opt->steps;
    qsort(dt, (size_t)opt->steps, sizeof(double), cmp_double);
    res->ms_min = 1000.0 * dt[0];
    res->ms_median = 1000.0 * (opt->steps % 2 ? dt[opt->steps / 2] : 0.5 * (dt[opt->steps / 2 - 1] + dt[opt->steps / 2]));
    free(dt);
    res->tokens_per_s = (double)res->tokens_per_step / (total / opt->steps);
    res->mfu = res->peak_flops > 0 ? res->tokens_per_s * res->flops_per_token / res->peak_flops : NAN;

    if (opt->profile_steps > 0) {
        ops_profile_reset(prof);
        ops_profile_enable(prof, 1);
        double t = 0;
        for (int i = 0; i < opt->profile_steps; i++) t += bench_timed_step(b, &loss);
        ops_profile_enable(prof, 0);
        prof->steps = opt->profile_steps;
        res->profile_step_ms = 1000.0 * t / opt->profile_steps;
        if (prof->peak_device_used > res->mem_peak) res->mem_peak = prof->peak_device_used;
    }
    print_report(res, prof);
    if (opt->json_path) {
        write_json(opt->json_path, &b->cfg, res, prof);
        lc_log("wrote %s", opt->json_path);
    }
    bench_close(b);
}

static int parse_count(const char *flag, const char *v, int lo) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || x < lo || x > 1000000) lc_die("%s needs an integer >= %d, got '%s'", flag, lo, v);
    return (int)x;
}

int bench_train_main(int argc, char **argv) {
    if (argc < 1 || argv[0][0] == '-')
        lc_die("usage: longconv bench train CONFIG.yaml [section.key=value ...] [--steps N] [--warmup N] "
               "[--profile-steps N] [--json FILE]");
    BenchTrainOptions opt = {.steps = 10, .warmup = 3, .profile_steps = 2, .json_path = NULL};
    Config cfg;
    config_defaults(&cfg);
    config_load_file(&cfg, argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int is_flag = strcmp(a, "--steps") == 0 || strcmp(a, "--warmup") == 0 || strcmp(a, "--profile-steps") == 0 ||
                      strcmp(a, "--json") == 0;
        if (is_flag && i + 1 >= argc) lc_die("%s needs a value", a);
        if (strcmp(a, "--steps") == 0) opt.steps = parse_count(a, argv[++i], 1);
        else if (strcmp(a, "--warmup") == 0) opt.warmup = parse_count(a, argv[++i], 0);
        else if (strcmp(a, "--profile-steps") == 0) opt.profile_steps = parse_count(a, argv[++i], 0);
        else if (strcmp(a, "--json") == 0) opt.json_path = argv[++i];
        else if (a[0] == '-') lc_die("bench train: unknown option '%s'", a);
        else config_apply_override(&cfg, a);
    }
    config_validate(&cfg);
    BenchTrainResult res;
    OpProfile prof;
    bench_train_run(&cfg, &opt, &res, &prof);
    return 0;
}
