/* AdamW over the parameter table with per-group lr / weight decay, the learning-rate schedule,
 * and global-norm gradient clipping. */
#pragma once
#include "core/config.h"
#include "model/params.h"

/* Learning rate at optimizer step `step` (0-based) for a group whose peak is `peak`:
 * linear warmup from train.warmup_init_lr over warmup_steps, then (timm CosineLRScheduler
 * semantics: t counts from 0, warmup included) cosine or linear decay from peak to
 * peak * min_lr_ratio at decay_steps (0: max_steps), flat after; "constant" keeps the peak. */
double lr_at(const TrainConfig *tc, double peak, int64_t step);

/* Peak lr and weight decay of a group under this config. */
void group_hparams(const TrainConfig *tc, ParamGroup g, double *peak_lr, double *wd);

/* Global L2 norm of all trainable gradients (fixed order; NaN/Inf propagate). */
double grad_global_norm(const ParamTable *t, const Ops *ops);

/* Scale gradients by `grad_scale` (clipping), then one AdamW step (t = step + 1) on every
 * trainable row; refreshes the compute copy. Returns the lr of the default group. */
double optim_step(ParamTable *t, const Ops *ops, const TrainConfig *tc, int64_t step, float grad_scale);
