/* The parameter table: every tensor of a model is one row {name, shape, init, group}. The names
 * (PyTorch state-dict names of the reference models) key the arena, the checkpoint datasets,
 * the PyTorch reference scripts and test messages. One block of acc_t holds all master values,
 * with gradients and AdamW moments in blocks of the same layout. */
#pragma once
#include <stdint.h>

#include "kernels/ops.h"

typedef enum {
    INIT_ZERO,
    INIT_ONE,
    INIT_NORMAL,   /* N(0, a^2) */
    INIT_UNIFORM,  /* U(-a, a) */
    INIT_CONST,    /* every element = a */
    INIT_HOST,     /* values supplied by the model (positional features, decay rates) */
} InitKind;

/* Optimizer groups: each has its own lr/wd from the config (see optim/adamw.c). */
typedef enum {
    GROUP_DECAY,     /* matrices: weight decay */
    GROUP_NO_DECAY,  /* biases, norms, embeddings, D (decayed only with train.decay_all) */
    GROUP_FILTER,    /* implicit filter MLP and its sine frequency: train.filter_lr / filter_wd */
    GROUP_POS_EMB,   /* positional features z: train.pos_emb_lr, no decay */
    GROUP_FROZEN,    /* buffers: saved, never updated */
    GROUP_COUNT
} ParamGroup;

#define PARAM_ALIGN 8 /* elements */

typedef struct ParamSpec {
    char name[128];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    int64_t offset;  /* elements into the blocks */
    InitKind init;
    double a;
    ParamGroup group;
} ParamSpec;

typedef struct ParamTable {
    ParamSpec *specs;
    int n, cap;
    int64_t total;  /* elements, including alignment gaps between tensors */
    acc_t *master, *grad, *m, *v;  /* device blocks, NULL until params_allocate */
    act_t *compute;                /* compute copy (== master when the backend's act_is_acc) */
} ParamTable;

/* Add a row; returns its index. Shape via DIMS: params_add(t, name, INIT_ZERO, 0, GROUP_NO_DECAY, DIMS(3 * d)). */
#define DIMS(...) (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
int params_add(ParamTable *t, const char *name, InitKind init, double a, ParamGroup group,
               const int64_t *shape, int ndim);
int params_find(const ParamTable *t, const char *name);  /* -1 when absent */
void params_allocate(ParamTable *t, const Ops *ops, int with_optimizer);
void params_free(ParamTable *t, const Ops *ops);
/* Draw every INIT_* value from Philox(seed, row index, element) and upload; INIT_HOST rows are
 * left for the model (params_upload). */
void params_init(ParamTable *t, const Ops *ops, uint64_t seed);
void params_upload(ParamTable *t, const Ops *ops, int idx, const double *host);
/* Refresh the compute copy after the masters changed (no-op when they alias). */
void params_sync_compute(ParamTable *t, const Ops *ops);

/* Typed views into the blocks (void pointers advanced by element offsets). */
act_t *param_compute(const ParamTable *t, const Ops *ops, int idx);
acc_t *param_master(const ParamTable *t, const Ops *ops, int idx);
acc_t *param_grad(const ParamTable *t, const Ops *ops, int idx);

static inline void *lc_offset(const void *base, int64_t elements, size_t elem_bytes) {
    return base ? (char *)base + (size_t)elements * elem_bytes : NULL;
}
