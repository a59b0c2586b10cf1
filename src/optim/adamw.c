#include <math.h>
#include <string.h>

#include "core/error.h"
#include "optim/optim.h"

double lr_at(const TrainConfig *tc, double peak, int64_t step) {
    if (step < tc->warmup_steps)
        return tc->warmup_init_lr + (peak - tc->warmup_init_lr) * (double)step / (double)tc->warmup_steps;
    if (strcmp(tc->schedule, "constant") == 0) return peak;
    const int64_t total = tc->decay_steps > 0 ? tc->decay_steps : tc->max_steps;
    const double lo = peak * tc->min_lr_ratio;
    if (step >= total) return lo;
    const double frac = (double)step / (double)total;
    if (strcmp(tc->schedule, "linear") == 0) return peak + (lo - peak) * frac;
    return lo + 0.5 * (peak - lo) * (1.0 + cos(M_PI * frac));
}

void group_hparams(const TrainConfig *tc, ParamGroup g, double *peak_lr, double *wd) {
    switch (g) {
    case GROUP_DECAY: *peak_lr = tc->lr; *wd = tc->weight_decay; return;
    case GROUP_NO_DECAY: *peak_lr = tc->lr; *wd = tc->decay_all ? tc->weight_decay : 0.0; return;
    case GROUP_FILTER: *peak_lr = tc->filter_lr; *wd = tc->filter_wd; return;
    case GROUP_POS_EMB: *peak_lr = tc->pos_emb_lr; *wd = 0.0; return;
    default: *peak_lr = 0.0; *wd = 0.0; return;
    }
}

/* Consecutive trainable rows form one range (alignment gaps between them hold zeros), so the norm
 * costs one reduction per range instead of one per tensor: on a GPU each is a launch and a sync. */
double grad_global_norm(const ParamTable *t, const Ops *ops) {
    double ss = 0.0;
    for (int i = 0; i < t->n;) {
        if (t->specs[i].group == GROUP_FROZEN) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < t->n && t->specs[j + 1].group != GROUP_FROZEN) j++;
        int64_t begin = t->specs[i].offset, end = t->specs[j].offset + t->specs[j].numel;
        ss += ops->sum_squares(lc_offset(t->grad, begin, ops->acc_bytes), end - begin);
        i = j + 1;
    }
    return sqrt(ss);
}

double optim_step(ParamTable *t, const Ops *ops, const TrainConfig *tc, int64_t step, float grad_scale) {
    LC_ASSERT(t->m && t->v, "optimizer state not allocated");
    /* one launch for the whole block: frozen rows' gradients are never applied */
    if (grad_scale != 1.0f) ops->scale(t->grad, grad_scale, t->total);
    for (int i = 0; i < t->n; i++) {
        const ParamSpec *s = &t->specs[i];
        if (s->group == GROUP_FROZEN) continue;
        double peak, wd;
        group_hparams(tc, s->group, &peak, &wd);
        if (peak == 0.0) continue; /* lr 0 means "not trained" (reference: registered as a buffer) */
        acc_t *g = param_grad(t, ops, i);
        ops->adamw(param_master(t, ops, i), g, lc_offset(t->m, s->offset, ops->acc_bytes),
                   lc_offset(t->v, s->offset, ops->acc_bytes), s->numel, (float)lr_at(tc, peak, step),
                   (float)tc->beta1, (float)tc->beta2, (float)tc->adam_eps, (float)wd, (int)(step + 1));
    }
    params_sync_compute(t, ops);
    return lr_at(tc, tc->lr, step);
}
