#include "train/trainer.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/device.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "data/tokens.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/step.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { stop_requested = sig; }

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) lc_die("cannot create folder '%s': %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) lc_die("cannot create folder '%s': %s", buf, strerror(errno));
}

/* Steps of the checkpoints ckpt_<step:08>.h5 in dir, newest first; returns how many (at most cap). */
static int list_checkpoints(const char *dir, int64_t *steps, int cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        long long s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt_%lld.h%1s", &s, tail) == 2 && strcmp(tail, "5") == 0) steps[n++] = s;
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort, descending */
        for (int j = i; j > 0 && steps[j] > steps[j - 1]; j--) {
            int64_t t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    return n;
}

static void checkpoint_path(char *out, size_t n, const char *dir, int64_t step) {
    snprintf(out, n, "%s/ckpt_%08lld.h5", dir, (long long)step);
}

/* Delete all but the newest keep_last checkpoints. */
static void prune_checkpoints(const char *dir, int64_t keep_last) {
    int64_t steps[4096];
    int n = list_checkpoints(dir, steps, 4096);
    for (int i = (int)keep_last; i < n; i++) {
        char p[4200];
        checkpoint_path(p, sizeof p, dir, steps[i]);
        if (remove(p) != 0) lc_warn("cannot delete old checkpoint %s: %s", p, strerror(errno));
    }
}

typedef struct Run {
    Config cfg;
    const Ops *ops;
    Model *model;
    TokenStream *train, *val;
    Sampler sampler;
    TrainState st;
    int B, L, accum;
    int32_t *inputs, *targets;
    FILE *log;
    double ema_tok_s;
    int n_ema;
    double peak_flops; /* 0: unknown, MFU not reported */
    const char *conv_which; /* the long-convolution implementation that runs at this seq_len */
} Run;

/* Forbid resuming with a different model: compare every model.* key and data.seq_len. */
static void check_same_model(const Config *a, const Config *b, const char *ckpt) {
    for (int i = 0; i < lc_config_nkeys; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        if (strncmp(k->key, "model.", 6) != 0 || strcmp(k->key, "model.conv_impl") == 0) continue;
        if (memcmp((const char *)a + k->offset, (const char *)b + k->offset, k->size) != 0)
            lc_die("%s was trained with a different %s; resume with the checkpoint's model settings", ckpt, k->key);
    }
}

/* Parameters (and moments, when the model has them) and the train state from a checkpoint whose
 * model settings match this run's. */
static void load_checkpoint(Run *r, const char *path) {
    char *yaml = ckpt_read_config(path);
    Config saved;
    config_defaults(&saved);
    config_load_string(&saved, yaml, path);
    free(yaml);
    check_same_model(&saved, &r->cfg, path);
    ckpt_load(path, model_params(r->model), r->ops, &r->st);
}

static double evaluate(Run *r) {
    double total = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < r->cfg.train.eval_batches; i++) {
        int64_t n;
        tokens_val_batch(r->val, r->L, i, r->cfg.train.eval_batches, r->B, r->inputs, r->targets);
        total += model_forward(r->model, r->inputs, r->targets, 0.0f, 0, 0, &n);
        count += n;
    }
    return total / (double)(count ? count : 1);
}

static void log_json(Run *r, const char *fmt, ...) LC_PRINTF(2, 3);
static void log_json(Run *r, const char *fmt, ...) {
    if (!r->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->log, fmt, ap);
    va_end(ap);
    fputc('\n', r->log);
    fflush(r->log);
}

static void report_eval(Run *r) {
    double t0 = now_seconds();
    double loss = evaluate(r);
    double h = tokens_unigram_entropy(r->train);
    char baseline[96] = "";
    if (!isnan(h)) snprintf(baseline, sizeof baseline, " | unigram entropy %.4f", h);
    lc_log("step %6lld | val loss %.4f | val ppl %.2f%s | %.1f s", (long long)r->st.step, loss, exp(loss), baseline,
           now_seconds() - t0);
    log_json(r, "{\"type\": \"eval\", \"step\": %lld, \"val_loss\": %.6f, \"val_ppl\": %.4f, \"tokens\": %lld}",
             (long long)r->st.step, loss, exp(loss), (long long)r->st.tokens_seen);
}

static void save_checkpoint(Run *r) {
    char path[4200];
    checkpoint_path(path, sizeof path, r->cfg.train.out_dir, r->st.step);
    r->st.data_cursor = sampler_cursor(&r->sampler);
    ckpt_save(path, model_params(r->model), r->ops, &r->cfg, &r->st, 1);
    prune_checkpoints(r->cfg.train.out_dir, r->cfg.train.keep_last);
    lc_log("step %6lld | saved %s", (long long)r->st.step, path);
}

/* Name the first parameter whose value or gradient is not finite. */
static void describe_nonfinite(Run *r, char *out, size_t n) {
    ParamTable *t = model_params(r->model);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < t->n; i++) {
            acc_t *x = pass == 0 ? param_master(t, r->ops, i) : param_grad(t, r->ops, i);
            if (!isfinite(r->ops->sum_squares(x, t->specs[i].numel))) {
                snprintf(out, n, "first non-finite %s: %s", pass == 0 ? "parameter" : "gradient", t->specs[i].name);
                return;
            }
        }
    }
    snprintf(out, n, "parameters and gradients are finite: the loss overflowed in the forward");
}

/* One optimizer step. Returns 0 when the update was skipped (non-finite, nonfinite=skip). */
static int train_step(Run *r, double *loss_out, double *norm_out, double *lr_out) {
    const TrainConfig *tc = &r->cfg.train;
    double loss = step_accumulate(r->model, &r->sampler, r->B, r->L, r->accum, r->st.step, r->inputs, r->targets);
    double norm = grad_global_norm(model_params(r->model), r->ops);
    *loss_out = loss;
    *norm_out = norm;
    if (!isfinite(loss) || !isfinite(norm)) {
        char why[300];
        describe_nonfinite(r, why, sizeof why);
        if (strcmp(tc->nonfinite, "skip") == 0) {
            lc_warn("step %lld: non-finite loss %g or gradient norm %g (%s); update skipped",
                    (long long)r->st.step, loss, norm, why);
            return 0;
        }
        lc_die("step %lld: non-finite loss %g or gradient norm %g (%s); set train.nonfinite=skip to skip such steps",
               (long long)r->st.step, loss, norm, why);
    }
    *lr_out = optim_step(model_params(r->model), r->ops, tc, r->st.step, step_clip_scale(tc, norm));
    return 1;
}

static void print_progress(Run *r, double loss, double norm, double lr, double step_s) {
    const TrainConfig *tc = &r->cfg.train;
    double tok = (double)r->B * r->L * r->accum;
    double tok_s = tok / step_s;
    /* bias-corrected EMA like Adam, so the first reports are not dragged toward 0 */
    r->ema_tok_s = 0.9 * r->ema_tok_s + 0.1 * tok_s;
    r->n_ema++;
    double ema = r->ema_tok_s / (1.0 - pow(0.9, r->n_ema));
    double eta = (double)(tc->max_steps - r->st.step) * tok / ema;
    char mfu[32] = "";
    double mfu_frac = r->peak_flops > 0 ? ema * model_flops_per_token(r->model) / r->peak_flops : NAN;
    char mfu_json[32] = "null";
    if (!isnan(mfu_frac)) {
        snprintf(mfu, sizeof mfu, " | MFU %.1f%%", 100 * mfu_frac);
        snprintf(mfu_json, sizeof mfu_json, "%.4f", mfu_frac);
    }
    lc_log("step %6lld/%lld | loss %.4f | lr %.3e | norm %.3f | %.0f ms | %.0f tok/s%s | ETA %02d:%02d:%02d",
           (long long)r->st.step, (long long)tc->max_steps, loss, lr, norm, 1000 * step_s, ema, mfu,
           (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    log_json(r,
             "{\"type\": \"train\", \"step\": %lld, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6f, "
             "\"step_ms\": %.2f, \"tokens_per_s\": %.1f, \"mfu\": %s, \"tokens\": %lld, \"elapsed_s\": %.3f, "
             "\"flops\": %.6e}",
             (long long)r->st.step, loss, lr, norm, 1000 * step_s, ema, mfu_json,
             (long long)r->st.tokens_seen, r->st.elapsed_seconds, r->st.flops);
}

static int budget_spent(const Run *r) {
    const TrainConfig *tc = &r->cfg.train;
    if (tc->budget_seconds > 0 && r->st.elapsed_seconds >= tc->budget_seconds) return 1;
    if (tc->budget_flops > 0 && r->st.flops >= tc->budget_flops) return 1;
    return 0;
}

static void setup_threads(const TrainConfig *tc) {
    if (tc->threads > 0) omp_set_num_threads((int)tc->threads);
}

static void open_run(Run *r, const Config *cfg) {
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    config_validate(&r->cfg);
    setup_threads(&r->cfg.train);
    r->ops = ops_with_conv_impl(ops_get(r->cfg.train.device), r->cfg.model.conv_impl, (int)r->cfg.data.seq_len,
                                &r->conv_which);
#ifdef LONGCONV_CUDA
    if (strcmp(r->ops->name, "cuda") == 0) r->peak_flops = cuda_peak_bf16_flops(0);
#endif
    r->B = (int)r->cfg.train.batch_size;
    r->L = (int)r->cfg.data.seq_len;
    r->accum = (int)r->cfg.train.grad_accum;
    r->train = tokens_open(r->cfg.data.path, r->cfg.data.train_group, r->cfg.model.vocab_size);
    r->val = tokens_open(r->cfg.data.path, r->cfg.data.val_group, r->cfg.model.vocab_size);
    tokens_num_windows(r->val, r->L); /* dies now, not at the first evaluation, if val is too short */
    sampler_init(&r->sampler, r->train, r->L, (uint64_t)r->cfg.data.seed, 0, 1);
    r->inputs = xmalloc((size_t)r->B * r->L * sizeof(int32_t));
    r->targets = xmalloc((size_t)r->B * r->L * sizeof(int32_t));
    r->st.world_size = 1;
}

static void close_run(Run *r) {
    if (r->log) fclose(r->log);
    model_free(r->model);
    sampler_free(&r->sampler);
    tokens_close(r->train);
    tokens_close(r->val);
    free(r->inputs);
    free(r->targets);
}

/* --resume auto: the newest checkpoint in out_dir that passes ckpt_verify; a damaged newer one
 * (e.g. a crash or a full disk while writing outside our atomic rename) is skipped with a warning. */
static const char *resolve_resume(const Config *cfg, const char *resume, char *buf, size_t n) {
    if (!resume) return NULL;
    if (strcmp(resume, "auto") != 0) return resume;
    int64_t steps[4096];
    int count = list_checkpoints(cfg->train.out_dir, steps, 4096);
    for (int i = 0; i < count; i++) {
        char why[512];
        checkpoint_path(buf, n, cfg->train.out_dir, steps[i]);
        if (ckpt_verify(buf, why, sizeof why)) return buf;
        lc_warn("skipping damaged checkpoint %s: %s", buf, why);
    }
    if (count > 0)
        lc_die("resume auto: none of the %d checkpoints in %s is usable (see the warnings above)", count,
               cfg->train.out_dir);
    lc_log("resume auto: no checkpoint in %s, starting fresh", cfg->train.out_dir);
    return NULL;
}

int train_run(const Config *cfg, const char *resume) {
    Run run, *r = &run;
    char resume_buf[4200];
    const char *ckpt = resolve_resume(cfg, resume, resume_buf, sizeof resume_buf);
    open_run(r, cfg);
    make_dirs(r->cfg.train.out_dir);
    r->model = model_create(&r->cfg, r->ops, r->B, r->L, 1);
    lc_log("longconv train | %s | device %s | long conv %s | %lld trainable parameters | %.3g FLOPs/token",
           r->cfg.model.arch, r->ops->name, r->conv_which, (long long)model_num_trainable(r->model),
           model_flops_per_token(r->model));
    config_print(&r->cfg, stdout);
    lc_log("data: %s (%lld train tokens, %lld val tokens, tokenizer %s)", r->cfg.data.path,
           (long long)tokens_count(r->train), (long long)tokens_count(r->val), tokens_tokenizer(r->train));
    model_print_memory(r->model);
    if (ckpt) {
        load_checkpoint(r, ckpt);
        if (r->st.world_size != 1) lc_die("%s was written by %d ranks; this run has 1", ckpt, r->st.world_size);
        sampler_seek(&r->sampler, r->st.data_cursor);
        lc_log("resumed from %s at step %lld (data cursor %lld)", ckpt, (long long)r->st.step, (long long)r->st.data_cursor);
    } else {
        model_init(r->model, (uint64_t)r->cfg.train.seed);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", r->cfg.train.out_dir);
    FILE *cf = xfopen(path, "w");
    config_write_yaml(&r->cfg, cf);
    fclose(cf);
    snprintf(path, sizeof path, "%s/log.jsonl", r->cfg.train.out_dir);
    r->log = xfopen(path, "a");

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    const TrainConfig *tc = &r->cfg.train;
    const double flops_per_step = model_flops_per_token(r->model) * r->B * r->L * r->accum;
    int stopped_early = 0;
    while (r->st.step < tc->max_steps) {
        if (budget_spent(r)) {
            lc_log("step %6lld | compute budget spent (%.1f s, %.3e FLOPs): stopping", (long long)r->st.step,
                   r->st.elapsed_seconds, r->st.flops);
            stopped_early = 1;
            break;
        }
        double t0 = now_seconds(), loss, norm, lr = 0;
        int applied = train_step(r, &loss, &norm, &lr);
        r->ops->synchronize();
        double dt = now_seconds() - t0;
        r->st.elapsed_seconds += dt;
        r->st.flops += flops_per_step;
        r->st.tokens_seen += (int64_t)r->B * r->L * r->accum;
        r->st.step++;
        if (applied && (r->st.step % tc->log_every == 0 || r->st.step == 1)) print_progress(r, loss, norm, lr, dt);
        if (tc->eval_every > 0 && r->st.step % tc->eval_every == 0 && r->st.step < tc->max_steps) report_eval(r);
        if (tc->ckpt_every > 0 && r->st.step % tc->ckpt_every == 0 && r->st.step < tc->max_steps) save_checkpoint(r);
        if (stop_requested) {
            lc_log("step %6lld | signal %d: saving a checkpoint and exiting", (long long)r->st.step, (int)stop_requested);
            stopped_early = 1;
            break;
        }
    }
    if (!stop_requested) report_eval(r);
    save_checkpoint(r);
    lc_log("done: %lld steps, %lld tokens, %.1f s training time%s", (long long)r->st.step,
           (long long)r->st.tokens_seen, r->st.elapsed_seconds, stopped_early ? " (stopped early)" : "");
    close_run(r);
    return 0;
}

int eval_run(const Config *cfg, const char *ckpt_path) {
    Run run, *r = &run;
    open_run(r, cfg);
    r->model = model_create(&r->cfg, r->ops, r->B, r->L, 0);
    load_checkpoint(r, ckpt_path);
    double loss = evaluate(r);
    lc_log("%s (step %lld): val loss %.4f | val ppl %.2f | %lld batches of %d x %d", ckpt_path, (long long)r->st.step,
           loss, exp(loss), (long long)r->cfg.train.eval_batches, r->B, r->L);
    close_run(r);
    return 0;
}

int dump_run(const Config *cfg, const char *ckpt_path, const char *out_path) {
    Run run, *r = &run;
    open_run(r, cfg);
    r->model = model_create(&r->cfg, r->ops, r->B, r->L, 0);
    if (ckpt_path) load_checkpoint(r, ckpt_path);
    else model_init(r->model, (uint64_t)r->cfg.train.seed);
    /* The first training batch of the run (data cursor 0). */
    sampler_next_batch(&r->sampler, r->B, r->inputs, r->targets);
    int64_t count = 0;
    for (int64_t i = 0; i < (int64_t)r->B * r->L; i++) count += r->targets[i] >= 0;
    model_zero_grad(r->model);
    double total = model_forward(r->model, r->inputs, r->targets, 1.0f / (float)count, 1, 0, NULL);
    model_backward(r->model);
    ckpt_save_state(out_path, model_params(r->model), r->ops, &r->cfg, r->inputs, r->targets, r->B, r->L,
                    total / (double)count, count);
    lc_log("wrote %s: loss %.6f over %lld targets (%s, batch %d x %d)", out_path, total / (double)count,
           (long long)count, r->ops->name, r->B, r->L);
    close_run(r);
    return 0;
}
