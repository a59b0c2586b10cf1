/* Whole-model checks of the Hyena LM on the CPU backends:
 *  - every parameter gradient against central finite differences of the total loss, computed in
 *    double precision by the same model code on the fp64 backend (cpu64), dropout included;
 *  - the fp32 backend against fp64 (loss and gradients);
 *  - the loss at initialization is close to ln(V) (GPT-2 init: logits ~ 0). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "model/model.h"
#include "testutil.h"

enum { B = 2, L = 16, V = 50 };

static Config tiny_config(void) {
    Config c;
    config_defaults(&c);
    c.model.d_model = 8;
    c.model.n_layer = 2;
    c.model.d_inner = 16;
    c.model.vocab_size = V; /* padded to 56: padding rows must get zero gradient from the loss */
    c.model.filter_order = 8;
    c.model.filter_emb_dim = 5;
    c.model.filter_sine_freq = 3;
    c.model.embed_dropout = 0.1;
    c.model.resid_dropout = 0.1;
    c.data.seq_len = L;
    c.model.l_max = 24; /* longer than L: the filter uses the first L rows of z */
    return c;
}

static void random_tokens(int32_t *in, int32_t *tg, uint64_t *rng) {
    for (int i = 0; i < B * L; i++) {
        in[i] = (int32_t)(tu_uniform(rng) * V);
        tg[i] = (int32_t)(tu_uniform(rng) * V);
    }
    tg[3] = -1; /* an ignored target */
}

/* Perturb the model a little away from its init (zero biases make some gradients trivially
 * small) so every parameter's gradient is exercised. */
static void perturb_params(Model *m, uint64_t *rng) {
    ParamTable *t = model_params(m);
    const Ops *ops = model_ops(m);
    double *h = xmalloc((size_t)t->total * sizeof(double));
    ops->acc_to_f64(h, t->master, t->total);
    for (int i = 0; i < t->n; i++) {
        if (t->specs[i].group == GROUP_FROZEN) continue;
        for (int64_t j = 0; j < t->specs[i].numel; j++) h[t->specs[i].offset + j] += 0.05 * tu_normal(rng);
    }
    ops->acc_from_f64(t->master, h, t->total);
    params_sync_compute(t, ops);
    free(h);
}

static double total_loss(Model *m, const int32_t *in, const int32_t *tg) {
    return model_forward(m, in, tg, 0.0f, 1, 7, NULL);
}

START_TEST(gradients_match_finite_differences) {
    uint64_t rng = tu_seed();
    Config c = tiny_config();
    const Ops *ops = ops_cpu64();
    Model *m = model_create(&c, ops, B, L, 0);
    model_init(m, 42);
    perturb_params(m, &rng);
    int32_t in[B * L], tg[B * L];
    random_tokens(in, tg, &rng);
    ParamTable *t = model_params(m);
    model_zero_grad(m);
    model_forward(m, in, tg, 1.0f, 1, 7, NULL);
    model_backward(m);
    double *grad = xmalloc((size_t)t->total * sizeof(double));
    ops->acc_to_f64(grad, t->grad, t->total);
    /* h = 1e-5. Truncation error ~h^2 |f'''| ~ 1e-10; rounding error ~ eps64 |f| / h with the
     * total loss |f| ~ B*L*ln V ~ 125 gives ~3e-9 absolute. Each probe must satisfy
     * |fd - analytic| <= 1e-6 |fd| + 3e-8 (10x margin over the absolute part); the relative
     * error is reported over probes whose gradient is large enough to resolve (|fd| > 1e-2). */
    const double h = 1e-5;
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < t->n; i++) {
        const ParamSpec *s = &t->specs[i];
        if (s->group == GROUP_FROZEN) continue;
        int probes = s->numel < 6 ? (int)s->numel : 6;
        for (int p = 0; p < probes; p++) {
            int64_t j = s->offset + (int64_t)(tu_uniform(&rng) * s->numel);
            if (strstr(s->name, "word_embeddings") && p < 2) /* a padding row: its gradient must be 0 */
                j = s->offset + (int64_t)(V + p) * c.model.d_model + p;
            double x;
            acc_t *at = lc_offset(t->master, j, ops->acc_bytes);
            ops->acc_to_f64(&x, at, 1);
            double xp = x + h, xm = x - h;
            ops->acc_from_f64(at, &xp, 1);
            double fp = total_loss(m, in, tg);
            ops->acc_from_f64(at, &xm, 1);
            double fm = total_loss(m, in, tg);
            ops->acc_from_f64(at, &x, 1);
            double fd = (fp - fm) / (2 * h), err = fabs(fd - grad[j]);
            ck_assert_msg(err <= 1e-6 * fabs(fd) + 3e-8, "%s[%lld]: finite difference %.9e, analytic %.9e", s->name,
                          (long long)(j - s->offset), fd, grad[j]);
            if (fabs(fd) > 1e-2 && err / fabs(fd) > worst) worst = err / fabs(fd);
            checked++;
        }
    }
    fprintf(stderr, "  %d gradient probes over %d tensors\n", checked, t->n);
    tu_check_err("worst resolved gradient rel. error (cpu64)", worst, 1e-6);
    free(grad);
    model_free(m);
}
END_TEST

START_TEST(fp32_matches_fp64) {
    uint64_t rng = tu_seed();
    Config c = tiny_config();
    Model *m64 = model_create(&c, ops_cpu64(), B, L, 0), *m32 = model_create(&c, ops_cpu(), B, L, 0);
    model_init(m64, 5);
    perturb_params(m64, &rng);
    ParamTable *t64 = model_params(m64), *t32 = model_params(m32);
    ck_assert_int_eq(t64->total, t32->total);
    double *h = xmalloc((size_t)t64->total * sizeof(double));
    ops_cpu64()->acc_to_f64(h, t64->master, t64->total);
    ops_cpu()->acc_from_f64(t32->master, h, t32->total);
    ops_cpu()->acc_to_f64(h, t32->master, t32->total); /* both models start from the same fp32 values */
    ops_cpu64()->acc_from_f64(t64->master, h, t64->total);
    int32_t in[B * L], tg[B * L];
    random_tokens(in, tg, &rng);
    model_zero_grad(m64);
    model_zero_grad(m32);
    double l64 = model_forward(m64, in, tg, 1.0f, 1, 9, NULL);
    double l32 = model_forward(m32, in, tg, 1.0f, 1, 9, NULL);
    model_backward(m64);
    model_backward(m32);
    /* fp32 rounding (eps 6e-8) grows through ~10 sequential ops and FFTs of length 32:
     * loss to ~1e-7 relative, gradients to ~1e-6 (measured); bounds leave ~100x. */
    tu_check_err("loss fp32 vs fp64", fabs(l32 - l64) / fabs(l64), 1e-5);
    double *g64 = xmalloc((size_t)t64->total * sizeof(double));
    float *g32 = xmalloc((size_t)t32->total * sizeof(float));
    ops_cpu64()->acc_to_f64(g64, t64->grad, t64->total);
    ops_cpu()->acc_to_f32(g32, t32->grad, t32->total);
    double worst = 0;
    for (int i = 0; i < t64->n; i++) {
        const ParamSpec *s = &t64->specs[i];
        if (s->group == GROUP_FROZEN) continue;
        double e = tu_rel_l2_fd(g32 + s->offset, g64 + s->offset, s->numel);
        if (e > worst) worst = e;
        ck_assert_msg(e < 1e-4, "%s: fp32 gradient rel. error %.3e", s->name, e);
    }
    tu_check_err("worst gradient fp32 vs fp64", worst, 1e-4);
    free(h);
    free(g64);
    free(g32);
    model_free(m64);
    model_free(m32);
}
END_TEST

START_TEST(initial_loss_is_log_vocab) {
    uint64_t rng = tu_seed();
    Config c = tiny_config();
    c.model.d_model = 32;
    Model *m = model_create(&c, ops_cpu(), B, L, 0);
    model_init(m, 1);
    int32_t in[B * L], tg[B * L];
    random_tokens(in, tg, &rng);
    int64_t n;
    double mean = model_forward(m, in, tg, 0.0f, 0, 0, &n) / (double)n;
    ck_assert_int_eq(n, B * L - 1);
    /* logits are O(0.02 * sqrt(d)) at init, so the loss is within ~0.1 of ln V */
    tu_check_err("|initial loss - ln V|", fabs(mean - log((double)V)), 0.1);
    model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("hyena_lm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, fp32_matches_fp64);
    tcase_add_test(tc, initial_loss_is_log_vocab);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
