/* A model: parameters, saved activations for one micro-batch, forward (with the fused loss) and
 * backward. Written once over the op table; the backend decides where and in what precision. */
#pragma once
#include <stdint.h>

#include "core/config.h"
#include "kernels/ops.h"
#include "model/params.h"

typedef struct Model Model;

/* Build the parameter table and bind activation memory for micro-batches of B sequences of L. */
Model *model_create(const Config *cfg, const Ops *ops, int B, int L, int with_optimizer);
void model_free(Model *m);
/* Initialize every parameter from train.seed (deterministic, independent of the backend). */
void model_init(Model *m, uint64_t seed);

/* Forward over host token arrays [B*L]. Returns the SUM of per-token losses over targets >= 0
 * and writes the count of such targets. When dloss_scale != 0 the loss head's backward runs
 * fused (llm.c style) with d(total)/d(token loss) = dloss_scale, and model_backward must follow.
 * dropout_stream: distinct per micro-step (dropout masks are Philox(train.seed, stream, i));
 * pass train = 0 for evaluation (no dropout). */
double model_forward(Model *m, const int32_t *inputs, const int32_t *targets, float dloss_scale,
                     int train, uint64_t dropout_stream, int64_t *n_targets);
/* Add this micro-batch's parameter gradients into the gradient block. */
void model_backward(Model *m);
void model_zero_grad(Model *m);

ParamTable *model_params(Model *m);
const Ops *model_ops(const Model *m);
int64_t model_num_trainable(const Model *m);
/* Model FLOPs per trained token (forward + backward: 6 x matmul params + long convs). */
double model_flops_per_token(const Model *m);
/* The memory plan: bytes of parameters, gradients, optimizer state, activations. */
void model_print_memory(const Model *m);
