#include "model/params.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

int params_add(ParamTable *t, const char *name, InitKind init, double a, ParamGroup group,
               const int64_t *shape, int ndim) {
    LC_ASSERT(ndim >= 1 && ndim <= 4, "parameter %s: ndim %d not in 1..4", name, ndim);
    LC_ASSERT(params_find(t, name) < 0, "parameter %s defined twice", name);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->specs = xrealloc(t->specs, (size_t)t->cap * sizeof(ParamSpec));
    }
    ParamSpec *s = &t->specs[t->n];
    memset(s, 0, sizeof *s);
    LC_ASSERT(strlen(name) < sizeof s->name, "parameter name too long: %s", name);
    strcpy(s->name, name);
    s->ndim = ndim;
    s->numel = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = shape[i];
        LC_ASSERT(s->shape[i] >= 1, "parameter %s: dimension %d is %lld", name, i, (long long)s->shape[i]);
        s->numel *= s->shape[i];
    }
    /* 8-element (32-byte fp32, 16-byte bf16) alignment of every tensor: cuBLAS needs 16-byte
     * aligned pointers for its fast paths and the fused bias epilogue. */
    s->offset = (t->total + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    s->init = init;
    s->a = a;
    s->group = group;
    t->total = s->offset + s->numel;
    return t->n++;
}

int params_find(const ParamTable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->specs[i].name, name) == 0) return i;
    return -1;
}

void params_allocate(ParamTable *t, const Ops *ops, int with_optimizer) {
    size_t bytes = (size_t)t->total * ops->acc_bytes;
    t->master = ops->alloc(bytes);
    t->grad = ops->alloc(bytes);
    if (with_optimizer) {
        t->m = ops->alloc(bytes);
        t->v = ops->alloc(bytes);
    }
    t->compute = ops->act_is_acc ? t->master : ops->alloc((size_t)t->total * ops->act_bytes);
}

void params_free(ParamTable *t, const Ops *ops) {
    if (t->compute && t->compute != t->master) ops->free(t->compute);
    if (t->master) ops->free(t->master);
    if (t->grad) ops->free(t->grad);
    if (t->m) ops->free(t->m);
    if (t->v) ops->free(t->v);
    free(t->specs);
    memset(t, 0, sizeof *t);
}

static double init_value(const ParamSpec *s, uint64_t seed, uint64_t row, int64_t i) {
    switch (s->init) {
    case INIT_ZERO: return 0.0;
    case INIT_ONE: return 1.0;
    case INIT_CONST: return s->a;
    case INIT_NORMAL: return s->a * philox_normal(seed, row, (uint64_t)i);
    case INIT_UNIFORM: return s->a * (2.0 * philox_uniform(seed, row, (uint64_t)i) - 1.0);
    case INIT_HOST: break;
    }
    return 0.0;
}

void params_init(ParamTable *t, const Ops *ops, uint64_t seed) {
    for (int r = 0; r < t->n; r++) {
        const ParamSpec *s = &t->specs[r];
        if (s->init == INIT_HOST) continue;
        double *host = xmalloc((size_t)s->numel * sizeof(double));
        /* The stream is the row index, so adding a parameter at the end leaves the others unchanged. */
        for (int64_t i = 0; i < s->numel; i++) host[i] = init_value(s, seed, (uint64_t)r, i);
        ops->acc_from_f64(param_master(t, ops, r), host, s->numel);
        free(host);
    }
    params_sync_compute(t, ops);
}

void params_upload(ParamTable *t, const Ops *ops, int idx, const double *host) {
    ops->acc_from_f64(param_master(t, ops, idx), host, t->specs[idx].numel);
}

void params_sync_compute(ParamTable *t, const Ops *ops) {
    if (t->compute != t->master) ops->act_from_acc(t->compute, t->master, t->total);
}

act_t *param_compute(const ParamTable *t, const Ops *ops, int idx) {
    return lc_offset(t->compute, t->specs[idx].offset, ops->act_bytes);
}
acc_t *param_master(const ParamTable *t, const Ops *ops, int idx) {
    return lc_offset(t->master, t->specs[idx].offset, ops->acc_bytes);
}
acc_t *param_grad(const ParamTable *t, const Ops *ops, int idx) {
    return lc_offset(t->grad, t->specs[idx].offset, ops->acc_bytes);
}
