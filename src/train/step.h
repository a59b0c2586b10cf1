/* The parts of an optimizer step shared by the trainer and `longconv bench train`. */
#pragma once
#include <stdint.h>

#include "core/config.h"
#include "data/tokens.h"
#include "model/model.h"

/* Zero the gradients, then grad_accum micro-batches of B x L from the sampler: forward with the
 * fused loss head and backward, each token's loss weighted 1/(B*L*grad_accum) (all tokens are
 * targets in a language model). Dropout masks are keyed by (step, micro-batch). Returns the mean
 * loss over the step's targets. inputs/targets: host scratch [B*L]. */
double step_accumulate(Model *m, Sampler *s, int B, int L, int accum, int64_t step, int32_t *inputs,
                       int32_t *targets);

/* Factor that clips the global gradient norm to train.grad_clip (1 when not clipping). */
float step_clip_scale(const TrainConfig *tc, double norm);
