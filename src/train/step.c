#include "train/step.h"

double step_accumulate(Model *m, Sampler *s, int B, int L, int accum, int64_t step, int32_t *inputs,
                       int32_t *targets) {
    const int64_t tokens = (int64_t)B * L;
    model_zero_grad(m);
    double loss = 0;
    int64_t count = 0;
    for (int micro = 0; micro < accum; micro++) {
        int64_t n;
        sampler_next_batch(s, B, inputs, targets);
        float dscale = 1.0f / (float)(tokens * accum);
        uint64_t stream = (uint64_t)step * (uint64_t)accum + (uint64_t)micro;
        loss += model_forward(m, inputs, targets, dscale, 1, stream, &n);
        model_backward(m);
        count += n;
    }
    return loss / (double)(count ? count : 1);
}

float step_clip_scale(const TrainConfig *tc, double norm) {
    return tc->grad_clip > 0 && norm > tc->grad_clip ? (float)(tc->grad_clip / (norm + 1e-6)) : 1.0f;
}
