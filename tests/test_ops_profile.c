/* The op profiler (kernels/ops_profile.h) and `bench train` on the CPU:
 *  - a profiled cpu table computes bitwise what the plain one does (single ops, and a tiny model's
 *    forward, backward and optimizer step built on it), enabled or not;
 *  - the calls per op label equal the counts derived from the model's code (lm.c, hyena.c,
 *    adamw.c) for one training step, and nothing else is called;
 *  - the times are sane: each entry >= 0, their sum within the wall time around them, and the
 *    printed table has the rows and the step shares;
 *  - bench_train_run on a tiny config with a synthetic token file: counts per step and the report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "kernels/ops_profile.h"
#include "model/model.h"
#include "optim/optim.h"
#include "testutil.h"
#include "tokfile.h"
#include "train/bench_train.h"

enum { B = 2, L = 16, V = 50, D = 8, NL = 2, ORDER = 6, INNER = 2 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Widths chosen so every linear shape is distinct: in_proj 8->24, out_proj 8->8, fc1 8->16,
 * fc2 16->8, filter 5->6, 6->6 (x INNER), 6->8, head 8->56 (V = 50 padded to 56). */
static Config tiny_config(void) {
    Config c;
    config_defaults(&c);
    c.model.d_model = D;
    c.model.n_layer = NL;
    c.model.d_inner = 2 * D;
    c.model.vocab_size = V;
    c.model.filter_order = ORDER;
    c.model.filter_emb_dim = 5;
    c.model.filter_inner_mlps = INNER;
    c.model.embed_dropout = 0.1;
    c.model.resid_dropout = 0.1;
    c.data.seq_len = L;
    c.train.batch_size = B;
    c.train.threads = 2;
    return c;
}

static void random_tokens(int32_t *in, int32_t *tg, int n, uint64_t *rng) {
    for (int i = 0; i < n; i++) {
        in[i] = (int32_t)(tu_uniform(rng) * V);
        tg[i] = (int32_t)(tu_uniform(rng) * V);
    }
}

/* ---- single ops ---- */

START_TEST(single_ops_bitwise) {
    uint64_t rng = tu_seed();
    const Ops *cpu = ops_cpu();
    OpProfile prof;
    const Ops *p = ops_profiled(cpu, &prof);
    ck_assert_str_eq(p->name, cpu->name);
    ck_assert(p->alloc == cpu->alloc && p->free == cpu->free && p->synchronize == cpu->synchronize);
    enum { N = 37, C = 24, OC = 40 };
    float *x = xmalloc(N * C * 4), *w = xmalloc(OC * C * 4), *bias = xmalloc(OC * 4), *dout = xmalloc(N * OC * 4);
    tu_fill_normal_f(x, N * C, 1, &rng);
    tu_fill_normal_f(w, OC * C, 1, &rng);
    tu_fill_normal_f(bias, OC, 1, &rng);
    tu_fill_normal_f(dout, N * OC, 1, &rng);
    for (int enabled = 1; enabled >= 0; enabled--) {
        ops_profile_reset(&prof);
        ops_profile_enable(&prof, enabled);
        float out[2][N * OC], dinp[2][N * C], dw[2][OC * C], db[2][OC], g[2][N * C], mean[2][N], rstd[2][N], ln[2][N * C];
        double ss[2];
        for (int k = 0; k < 2; k++) {
            const Ops *o = k ? p : cpu;
            memset(dw[k], 0, sizeof dw[k]);
            memset(db[k], 0, sizeof db[k]);
            o->linear_fwd(out[k], x, w, bias, N, C, OC);
            o->linear_bwd(dinp[k], dw[k], db[k], dout, x, w, N, C, OC);
            o->gelu_fwd(g[k], x, N * C);
            o->layernorm_fwd(ln[k], mean[k], rstd[k], x, w, bias, N, C, 1e-5f);
            ss[k] = o->sum_squares(x, N * C);
        }
        ck_assert(memcmp(out[0], out[1], sizeof out[0]) == 0);
        ck_assert(memcmp(dinp[0], dinp[1], sizeof dinp[0]) == 0);
        ck_assert(memcmp(dw[0], dw[1], sizeof dw[0]) == 0 && memcmp(db[0], db[1], sizeof db[0]) == 0);
        ck_assert(memcmp(g[0], g[1], sizeof g[0]) == 0 && memcmp(ln[0], ln[1], sizeof ln[0]) == 0);
        ck_assert(memcmp(mean[0], mean[1], sizeof mean[0]) == 0 && memcmp(rstd[0], rstd[1], sizeof rstd[0]) == 0);
        ck_assert(ss[0] == ss[1]);
        /* enabled: one call per label; disabled: nothing recorded */
        ck_assert_int_eq(ops_profile_calls(&prof, NULL), enabled ? 5 : 0);
        ck_assert_int_eq(prof.n, enabled ? 5 : 0);
        if (enabled) {
            ck_assert_str_eq(prof.e[0].label, "linear_fwd 24->40");
            ck_assert_str_eq(prof.e[1].label, "linear_bwd 24->40");
            ck_assert_str_eq(prof.e[1].op, "linear_bwd");
            ck_assert_int_eq(ops_profile_calls(&prof, "sum_squares"), 1);
            for (int i = 0; i < prof.n; i++) ck_assert(prof.e[i].seconds >= 0);
        }
    }
    free(x), free(w), free(bias), free(dout);
    ops_profile_detach(&prof);
}
END_TEST

/* ---- the tiny model: bitwise equality and the derived call counts ---- */

typedef struct Expect {
    const char *label;
    int64_t calls;
} Expect;

/* Calls of one training step of the LM (model_zero_grad, forward with the fused loss head,
 * backward, global norm, AdamW) read off lm.c, hyena.c and adamw.c, for dropout > 0 everywhere,
 * a trainable z, one loss chunk (B*L*Vp is far below the chunk budget) and the fp32 cpu backend
 * (compute copy aliases the masters: no act_from_acc). n_trainable: tensors not frozen. */
static int expected_step(Expect *e, int n_trainable) {
    const int nl = NL, nlin = INNER + 2, chunks = 1;
    Expect x[] = {
        {"zero", 2},                       /* model_zero_grad, dres */
        {"to_device", 2},                  /* tokens, targets */
        {"embedding_fwd", 1},
        {"embedding_bwd", 1},
        {"dropout_fwd", 1 + 2 * nl},       /* embedding + two residual branches per block */
        {"dropout_bwd", 1 + 2 * nl},
        {"layernorm_fwd", 2 * nl + 1},
        {"layernorm_bwd", 2 * nl + 1},
        {"add", 2 * nl},
        {"gelu_fwd", nl},
        {"gelu_bwd", nl},
        {"shortconv_fwd", nl},
        {"shortconv_bwd", nl},
        {"fftconv_fwd", nl},
        {"fftconv_bwd", nl},
        {"blc_from_bcl", nl},
        {"bcl_from_blc", nl},
        {"sin_fwd", nl * (nlin - 1)},
        {"sin_bwd", nl * (nlin - 1)},
        {"expmod_fwd", nl},
        {"expmod_bwd", nl},
        {"acc_add_act", nl},               /* dz */
        {"xent_fwd_bwd", chunks},
        {"sum", 1},                        /* the loss */
        {"sum_squares", 2 * nl + 1},       /* grad_global_norm: one per run of trainable rows; the
                                              frozen t and deltas split each block twice */
        {"adamw", n_trainable},
        {"linear_fwd 8->24", nl},          /* in_proj */
        {"linear_fwd 8->8", nl},           /* out_proj */
        {"linear_fwd 8->16", nl},          /* fc1 */
        {"linear_fwd 16->8", nl},          /* fc2 */
        {"linear_fwd 5->6", nl},           /* filter MLP */
        {"linear_fwd 6->6", nl * INNER},
        {"linear_fwd 6->8", nl},
        {"linear_fwd 8->56", chunks},      /* tied head */
        {"linear_bwd 8->24", nl},
        {"linear_bwd 8->8", nl},
        {"linear_bwd 8->16", nl},
        {"linear_bwd 16->8", nl},
        {"linear_bwd 5->6", nl},
        {"linear_bwd 6->6", nl * INNER},
        {"linear_bwd 6->8", nl},
        {"linear_bwd 8->56", chunks},
    };
    int n = (int)(sizeof x / sizeof x[0]);
    memcpy(e, x, sizeof x);
    return n;
}

static int count_trainable(Model *m) {
    const ParamTable *t = model_params(m);
    int n = 0;
    for (int i = 0; i < t->n; i++) n += t->specs[i].group != GROUP_FROZEN;
    return n;
}

static void check_counts(const OpProfile *prof, int n_trainable, int64_t steps) {
    Expect e[64];
    int ne = expected_step(e, n_trainable);
    for (int i = 0; i < ne; i++) {
        int64_t got = -1;
        for (int j = 0; j < prof->n; j++)
            if (strcmp(prof->e[j].label, e[i].label) == 0) got = prof->e[j].calls;
        ck_assert_msg(got == e[i].calls * steps, "%s: %lld calls, expected %lld", e[i].label, (long long)got,
                      (long long)(e[i].calls * steps));
    }
    for (int j = 0; j < prof->n; j++) {
        int known = 0;
        for (int i = 0; i < ne; i++) known |= strcmp(prof->e[j].label, e[i].label) == 0;
        ck_assert_msg(known, "unexpected op %s (%lld calls)", prof->e[j].label, (long long)prof->e[j].calls);
    }
}

/* One training step (as the trainer's, grad_accum 1) on model m. */
static double train_once(Model *m, const Config *c, const int32_t *in, const int32_t *tg) {
    const Ops *ops = model_ops(m);
    model_zero_grad(m);
    double loss = model_forward(m, in, tg, 1.0f / (B * L), 1, 3, NULL);
    model_backward(m);
    double norm = grad_global_norm(model_params(m), ops);
    optim_step(model_params(m), ops, &c->train, 0, 1.0f);
    return loss + 0 * norm;
}

START_TEST(tiny_model_bitwise_and_counts) {
    uint64_t rng = tu_seed();
    Config c = tiny_config();
    const Ops *cpu = ops_cpu();
    OpProfile prof;
    const Ops *p = ops_profiled(cpu, &prof);
    Model *plain = model_create(&c, cpu, B, L, 1), *prof_m = model_create(&c, p, B, L, 1);
    model_init(plain, 11);
    model_init(prof_m, 11);
    int32_t in[B * L], tg[B * L];
    random_tokens(in, tg, B * L, &rng);
    const int n_tr = count_trainable(plain);
    ops_profile_reset(&prof);
    double t0 = now_s();
    double lp = train_once(prof_m, &c, in, tg);
    double wall = now_s() - t0;
    double l0 = train_once(plain, &c, in, tg);
    ck_assert_msg(lp == l0, "loss %.17g (profiled) vs %.17g", lp, l0);
    const ParamTable *ta = model_params(plain), *tb = model_params(prof_m);
    size_t bytes = (size_t)ta->total * cpu->acc_bytes;
    ck_assert(memcmp(ta->grad, tb->grad, bytes) == 0);
    ck_assert(memcmp(ta->master, tb->master, bytes) == 0);
    ck_assert(memcmp(ta->m, tb->m, bytes) == 0 && memcmp(ta->v, tb->v, bytes) == 0);
    check_counts(&prof, n_tr, 1);
    /* the op times are disjoint intervals inside [t0, t0 + wall] */
    double total = ops_profile_seconds(&prof, NULL);
    fprintf(stderr, "  tiny step: ops %.3f ms of %.3f ms wall, %lld calls\n", 1e3 * total, 1e3 * wall,
            (long long)ops_profile_calls(&prof, NULL));
    ck_assert(total > 0 && total <= wall);
    double by_op = 0;
    for (int i = 0; i < prof.n; i++) by_op += prof.e[i].seconds;
    ck_assert(fabs(by_op - total) <= 1e-12 * total);

    /* the printed table: rows, totals and family line; shares from the given step time */
    FILE *f = tmpfile();
    ck_assert(f != NULL);
    ops_profile_print(&prof, f, wall);
    rewind(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    fputs(buf, stderr);
    ck_assert(strstr(buf, "linear_fwd 8->56") && strstr(buf, "fftconv_bwd") && strstr(buf, "(outside ops)"));
    ck_assert(strstr(buf, "by family:") && strstr(buf, " linear "));
    /* (all ops) + (outside ops) = the step: parse the two shares */
    const char *a = strstr(buf, "(all ops)"), *o = strstr(buf, "(outside ops)");
    double calls, ms_a, sh_a, ms_o, sh_o;
    ck_assert_int_eq(sscanf(a, "(all ops) %lf %lf %lf%%", &calls, &ms_a, &sh_a), 3);
    ck_assert_int_eq(sscanf(o, "(outside ops) %lf %lf%%", &ms_o, &sh_o), 2);
    ck_assert(fabs(sh_a + sh_o - 100.0) < 0.2); /* two values printed to 0.1 % */
    ck_assert_int_eq((int64_t)calls, ops_profile_calls(&prof, NULL));

    /* disabled: a second step records nothing and still matches bitwise */
    ops_profile_reset(&prof);
    ops_profile_enable(&prof, 0);
    random_tokens(in, tg, B * L, &rng);
    lp = train_once(prof_m, &c, in, tg);
    l0 = train_once(plain, &c, in, tg);
    ck_assert(lp == l0 && memcmp(ta->master, tb->master, bytes) == 0);
    ck_assert_int_eq(ops_profile_calls(&prof, NULL), 0);
    model_free(plain);
    model_free(prof_m);
    ops_profile_detach(&prof);
}
END_TEST

START_TEST(second_profile_refused) {
    OpProfile a, b;
    ops_profiled(ops_cpu(), &a);
    EXPECT_DIE(ops_profiled(ops_cpu(), &b), "another op profile is active");
    ops_profile_detach(&a);
    ops_profiled(ops_cpu(), &b); /* fine once the first is detached */
    ops_profile_detach(&b);
}
END_TEST

/* ---- bench train on the CPU ---- */

START_TEST(bench_train_cpu) {
    const char *data = "/tmp/lc_test_ops_profile_tokens.h5";
    tokfile_write(data, 4000, 600, V, tu_seed());
    Config c = tiny_config();
    snprintf(c.data.path, sizeof c.data.path, "%s", data);
    c.train.grad_accum = 2;
    const char *json = "/tmp/lc_test_ops_profile_bench.json";
    BenchTrainOptions opt = {.steps = 3, .warmup = 1, .profile_steps = 2, .json_path = json};
    BenchTrainResult r;
    OpProfile prof;
    bench_train_run(&c, &opt, &r, &prof);
    ck_assert_str_eq(r.device, "cpu");
    ck_assert_int_eq(r.tokens_per_step, (int64_t)B * L * 2);
    ck_assert(r.tokens_per_s > 0 && r.ms_min <= r.ms_median && r.ms_median > 0);
    ck_assert(isnan(r.mfu) && r.mem_peak == 0);
    ck_assert(isfinite(r.loss_first) && isfinite(r.loss_last));
    ck_assert(r.flops_per_token > 0 && r.bytes_optim == 2 * r.bytes_params);
    ck_assert_int_eq(prof.steps, 2);
    /* per step: every forward/backward op twice (grad_accum 2), the optimizer once */
    ck_assert_int_eq(ops_profile_calls(&prof, "fftconv_fwd"), 2 * 2 * NL);
    ck_assert_int_eq(ops_profile_calls(&prof, "linear_bwd"), 2 * 2 * (NL * (4 + INNER + 2) + 1));
    ck_assert_int_eq(ops_profile_calls(&prof, "adamw") % 2, 0);
    ck_assert(ops_profile_calls(&prof, "adamw") > 0);
    ck_assert(ops_profile_seconds(&prof, NULL) <= 1e-3 * r.profile_step_ms * 2);
    FILE *f = fopen(json, "r");
    ck_assert(f != NULL);
    char buf[32768];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    ck_assert(strstr(buf, "\"tokens_per_s\": ") && strstr(buf, "\"mfu\": null") && strstr(buf, "\"breakdown\": [{"));
    ck_assert(strstr(buf, "\"op\": \"fftconv_fwd\""));
    remove(json);
    remove(data);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_profile");
    TCase *tc = tcase_create("profile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, single_ops_bitwise);
    tcase_add_test(tc, tiny_model_bitwise_and_counts);
    tcase_add_test(tc, second_profile_refused);
    tcase_add_test(tc, bench_train_cpu);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
