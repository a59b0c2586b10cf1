/* GPT-style language model with Hyena mixers (safari's ConvLMHeadModel, as Hyena-s and HyenaDNA):
 *   x = dropout(wte[tokens]);  per block (pre-LN):  x += mixer(LN1(x));  x += MLP(LN2(x));
 *   logits = LN_f(x) @ wte^T (tied, no bias, padded vocabulary); loss = cross-entropy.
 * MLP: fc1 d->d_inner (bias), tanh-GELU, fc2 d_inner->d (bias). No positional embeddings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "model/hyena.h"
#include "model/model.h"

#define ACT(n) ((size_t)(n) * ops->act_bytes)
#define ACC(n) ((size_t)(n) * ops->acc_bytes)
#define PC(idx) param_compute(&m->params, ops, (idx))
#define PG(idx) param_grad(&m->params, ops, (idx))

/* Bytes of logits materialized at once: bounds the loss head's memory at any vocabulary size,
 * while keeping chunks tall enough (~2.5k rows of a 50k vocabulary in bf16) that the head's
 * weight-gradient GEMM has a long inner dimension. */
#define LOSS_CHUNK_BYTES ((int64_t)256 << 20)

typedef struct Block {
    int ln1_w, ln1_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
    HyenaMixer mixer;
    /* saved activations */
    act_t *res_in;         /* [B,L,d] block input (residual stream) */
    act_t *ln1, *ln2;      /* [B,L,d] */
    acc_t *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* [B*L] */
    act_t *res_mid;        /* [B,L,d] after the mixer residual */
    act_t *h1, *g1;        /* [B,L,d_inner] fc1 output, GELU output */
} Block;

struct Model {
    Config cfg;
    const Ops *ops;
    ParamTable params;
    int B, L, d, di, n_layer, V, Vp;
    float ln_eps, p_embed, p_resid;
    int wte, lnf_w, lnf_b;
    Block *blocks;
    /* activations outside the blocks */
    tok_t *tokens, *targets;  /* device [B*L] */
    act_t *res_out;           /* [B,L,d] final residual stream */
    act_t *lnf;               /* [B,L,d] */
    acc_t *lnf_mean, *lnf_rstd, *losses;
    act_t *logits;            /* [chunk, Vp] */
    int64_t chunk_rows;
    /* backward scratch */
    act_t *dres, *dbranch, *dln, *dmid, *dg;
    HyenaScratch hs;
    Arena arena;
    size_t act_bytes_total;
    /* state of the last forward */
    int pending_backward;
    uint64_t dropout_stream;
};

static void define_params(Model *m) {
    const ModelConfig *mc = &m->cfg.model;
    ParamTable *t = &m->params;
    const int64_t d = m->d, di = m->di;
    const double std = mc->init_std, out_std = std / sqrt(2.0 * m->n_layer);
    char p[160];
    m->wte = params_add(t, "backbone.embeddings.word_embeddings.weight", INIT_NORMAL, std, GROUP_NO_DECAY, DIMS(m->Vp, d));
    for (int l = 0; l < m->n_layer; l++) {
        Block *b = &m->blocks[l];
#define BLOCK_PARAM(field, suffix, init, a, group, ...)                                   \
        snprintf(p, sizeof p, "backbone.layers.%d.%s", l, suffix);                        \
        b->field = params_add(t, p, init, a, group, DIMS(__VA_ARGS__));
        BLOCK_PARAM(ln1_w, "norm1.weight", INIT_ONE, 0, GROUP_NO_DECAY, d)
        BLOCK_PARAM(ln1_b, "norm1.bias", INIT_ZERO, 0, GROUP_NO_DECAY, d)
        snprintf(p, sizeof p, "backbone.layers.%d.mixer.", l);
        hyena_mixer_define(&b->mixer, t, mc, config_l_max(&m->cfg), m->n_layer, p);
        BLOCK_PARAM(ln2_w, "norm2.weight", INIT_ONE, 0, GROUP_NO_DECAY, d)
        BLOCK_PARAM(ln2_b, "norm2.bias", INIT_ZERO, 0, GROUP_NO_DECAY, d)
        BLOCK_PARAM(fc1_w, "mlp.fc1.weight", INIT_NORMAL, std, GROUP_DECAY, di, d)
        BLOCK_PARAM(fc1_b, "mlp.fc1.bias", INIT_ZERO, 0, GROUP_NO_DECAY, di)
        BLOCK_PARAM(fc2_w, "mlp.fc2.weight", INIT_NORMAL, out_std, GROUP_DECAY, d, di)
        BLOCK_PARAM(fc2_b, "mlp.fc2.bias", INIT_ZERO, 0, GROUP_NO_DECAY, d)
#undef BLOCK_PARAM
    }
    m->lnf_w = params_add(t, "backbone.ln_f.weight", INIT_ONE, 0, GROUP_NO_DECAY, DIMS(d));
    m->lnf_b = params_add(t, "backbone.ln_f.bias", INIT_ZERO, 0, GROUP_NO_DECAY, DIMS(d));
}

/* Bind every activation buffer; called once counting (a->base NULL) and once for real. */
static void bind_activations(Model *m, Arena *a) {
    const Ops *ops = m->ops;
    const int64_t BL = (int64_t)m->B * m->L, d = m->d, di = m->di;
    m->tokens = arena_take(a, (size_t)BL * sizeof(tok_t));
    m->targets = arena_take(a, (size_t)BL * sizeof(tok_t));
    for (int l = 0; l < m->n_layer; l++) {
        Block *b = &m->blocks[l];
        b->res_in = arena_take(a, ACT(BL * d));
        b->ln1 = arena_take(a, ACT(BL * d));
        b->ln1_mean = arena_take(a, ACC(BL));
        b->ln1_rstd = arena_take(a, ACC(BL));
        hyena_mixer_bind(&b->mixer, a, ops, m->B, m->L);
        b->res_mid = arena_take(a, ACT(BL * d));
        b->ln2 = arena_take(a, ACT(BL * d));
        b->ln2_mean = arena_take(a, ACC(BL));
        b->ln2_rstd = arena_take(a, ACC(BL));
        b->h1 = arena_take(a, ACT(BL * di));
        b->g1 = arena_take(a, ACT(BL * di));
    }
    m->res_out = arena_take(a, ACT(BL * d));
    m->lnf = arena_take(a, ACT(BL * d));
    m->lnf_mean = arena_take(a, ACC(BL));
    m->lnf_rstd = arena_take(a, ACC(BL));
    m->losses = arena_take(a, ACC(BL));
    m->logits = arena_take(a, ACT(m->chunk_rows * m->Vp));
    m->dres = arena_take(a, ACT(BL * d));
    m->dbranch = arena_take(a, ACT(BL * d));
    m->dln = arena_take(a, ACT(BL * d));
    m->dmid = arena_take(a, ACT(BL * di));
    m->dg = arena_take(a, ACT(BL * di));
    hyena_scratch_bind(&m->hs, a, ops, m->B, m->L, m->d, (int)m->cfg.model.filter_order,
                       (int)m->cfg.model.filter_emb_dim);
}

Model *model_create(const Config *cfg, const Ops *ops, int B, int L, int with_optimizer) {
    LC_ASSERT(strcmp(cfg->model.arch, "hyena_lm") == 0, "model.arch '%s' is not implemented", cfg->model.arch);
    Model *m = xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->ops = ops;
    m->B = B;
    m->L = L;
    m->d = (int)cfg->model.d_model;
    m->di = (int)cfg->model.d_inner;
    m->n_layer = (int)cfg->model.n_layer;
    m->V = (int)cfg->model.vocab_size;
    m->Vp = (int)config_vocab_padded(cfg);
    m->ln_eps = (float)cfg->model.ln_eps;
    m->p_embed = (float)cfg->model.embed_dropout;
    m->p_resid = (float)cfg->model.resid_dropout;
    if (L > config_l_max(cfg))
        lc_die("sequence length %d exceeds model.l_max %lld", L, (long long)config_l_max(cfg));
    m->blocks = xcalloc((size_t)m->n_layer, sizeof(Block));
    define_params(m);
    params_allocate(&m->params, ops, with_optimizer);
    int64_t BL = (int64_t)B * L;
    m->chunk_rows = LOSS_CHUNK_BYTES / ((int64_t)ops->act_bytes * m->Vp);
    if (m->chunk_rows < 1) m->chunk_rows = 1;
    if (m->chunk_rows > BL) m->chunk_rows = BL;
    Arena counting = {0};
    bind_activations(m, &counting);
    m->act_bytes_total = counting.used;
    m->arena = arena_create(ops, counting.used);
    bind_activations(m, &m->arena);
    LC_ASSERT(m->arena.used == counting.used, "activation plan changed between passes");
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    params_free(&m->params, m->ops);
    m->ops->free(m->arena.base);
    free(m->blocks);
    free(m);
}

void model_init(Model *m, uint64_t seed) {
    params_init(&m->params, m->ops, seed);
    for (int l = 0; l < m->n_layer; l++)
        hyena_mixer_init_host(&m->blocks[l].mixer, &m->params, m->ops, &m->cfg.model);
    params_sync_compute(&m->params, m->ops);
}

/* Dropout stream ids: one per (micro-step, site); site 0 is the embedding, then 2 per layer. */
static uint64_t dropout_id(const Model *m, int site) { return (m->dropout_stream << 16) | (uint64_t)site; }

/* out = res + dropout(branch); branch is clobbered when p > 0 is not needed afterwards. */
static void residual_add(Model *m, act_t *out, const act_t *res, act_t *branch, act_t *tmp, float p, int site, int train) {
    const Ops *ops = m->ops;
    int64_t n = (int64_t)m->B * m->L * m->d;
    if (train && p > 0) {
        ops->dropout_fwd(tmp, branch, p, m->cfg.train.seed, dropout_id(m, site), n);
        branch = tmp;
    }
    ops->add(out, res, branch, n);
}

static double loss_head(Model *m, float dloss_scale) {
    const Ops *ops = m->ops;
    const int64_t BL = (int64_t)m->B * m->L;
    for (int64_t r0 = 0; r0 < BL; r0 += m->chunk_rows) {
        int64_t rows = BL - r0 < m->chunk_rows ? BL - r0 : m->chunk_rows;
        const act_t *x = lc_offset(m->lnf, r0 * m->d, ops->act_bytes);
        ops->linear_fwd(m->logits, x, PC(m->wte), NULL, rows, m->d, m->Vp);
        ops->xent_fwd_bwd(lc_offset(m->losses, r0, ops->acc_bytes), m->logits, m->targets + r0, rows, m->V, m->Vp,
                          dloss_scale);
        if (dloss_scale != 0.0f)
            ops->linear_bwd(lc_offset(m->dln, r0 * m->d, ops->act_bytes), PG(m->wte), NULL, m->logits, x,
                            PC(m->wte), rows, m->d, m->Vp);
    }
    return ops->sum(m->losses, BL);
}

double model_forward(Model *m, const int32_t *inputs, const int32_t *targets, float dloss_scale, int train,
                     uint64_t dropout_stream, int64_t *n_targets) {
    const Ops *ops = m->ops;
    const int64_t BL = (int64_t)m->B * m->L, d = m->d;
    int64_t count = 0;
    for (int64_t i = 0; i < BL; i++) count += targets[i] >= 0;
    if (n_targets) *n_targets = count;
    ops->to_device(m->tokens, inputs, (size_t)BL * sizeof(tok_t));
    ops->to_device(m->targets, targets, (size_t)BL * sizeof(tok_t));
    m->dropout_stream = dropout_stream;

    act_t *x = m->n_layer > 0 ? m->blocks[0].res_in : m->res_out;
    ops->embedding_fwd(m->dbranch, m->tokens, PC(m->wte), BL, (int)d);
    if (train && m->p_embed > 0) ops->dropout_fwd(x, m->dbranch, m->p_embed, m->cfg.train.seed, dropout_id(m, 0), BL * d);
    else ops->copy(x, m->dbranch, ACT(BL * d));
    for (int l = 0; l < m->n_layer; l++) {
        Block *b = &m->blocks[l];
        act_t *next = l + 1 < m->n_layer ? m->blocks[l + 1].res_in : m->res_out;
        ops->layernorm_fwd(b->ln1, b->ln1_mean, b->ln1_rstd, b->res_in, PC(b->ln1_w), PC(b->ln1_b), BL, (int)d, m->ln_eps);
        hyena_mixer_forward(&b->mixer, &m->params, ops, m->dbranch, b->ln1, m->B, m->L);
        residual_add(m, b->res_mid, b->res_in, m->dbranch, m->dln, m->p_resid, 1 + 2 * l, train);
        ops->layernorm_fwd(b->ln2, b->ln2_mean, b->ln2_rstd, b->res_mid, PC(b->ln2_w), PC(b->ln2_b), BL, (int)d, m->ln_eps);
        ops->linear_fwd(b->h1, b->ln2, PC(b->fc1_w), PC(b->fc1_b), BL, (int)d, m->di);
        ops->gelu_fwd(b->g1, b->h1, BL * m->di);
        ops->linear_fwd(m->dbranch, b->g1, PC(b->fc2_w), PC(b->fc2_b), BL, m->di, (int)d);
        residual_add(m, next, b->res_mid, m->dbranch, m->dln, m->p_resid, 2 + 2 * l, train);
    }
    ops->layernorm_fwd(m->lnf, m->lnf_mean, m->lnf_rstd, m->res_out, PC(m->lnf_w), PC(m->lnf_b), BL, (int)d, m->ln_eps);
    m->pending_backward = dloss_scale != 0.0f;
    double loss = loss_head(m, dloss_scale);
    if (!train) m->pending_backward = 0;
    return loss;
}

/* dres holds d(out); produce d(branch output) in dbranch, undoing the branch's dropout. */
static const act_t *branch_grad(Model *m, float p, int site) {
    const Ops *ops = m->ops;
    if (p <= 0) return m->dres;
    ops->dropout_bwd(m->dbranch, m->dres, p, m->cfg.train.seed, dropout_id(m, site), (int64_t)m->B * m->L * m->d);
    return m->dbranch;
}

void model_backward(Model *m) {
    const Ops *ops = m->ops;
    LC_ASSERT(m->pending_backward, "model_backward without a training forward (dloss_scale != 0)");
    const int64_t BL = (int64_t)m->B * m->L, d = m->d;
    ops->zero(m->dres, ACT(BL * d));
    ops->layernorm_bwd(m->dres, PG(m->lnf_w), PG(m->lnf_b), m->dln, m->res_out, PC(m->lnf_w), m->lnf_mean,
                       m->lnf_rstd, BL, (int)d);
    for (int l = m->n_layer - 1; l >= 0; l--) {
        Block *b = &m->blocks[l];
        /* MLP branch: dres = d(block output) */
        const act_t *dmlp = branch_grad(m, m->p_resid, 2 + 2 * l);
        ops->linear_bwd(m->dg, PG(b->fc2_w), PG(b->fc2_b), dmlp, b->g1, PC(b->fc2_w), BL, m->di, (int)d);
        ops->gelu_bwd(m->dmid, b->h1, m->dg, BL * m->di);
        ops->linear_bwd(m->dln, PG(b->fc1_w), PG(b->fc1_b), m->dmid, b->ln2, PC(b->fc1_w), BL, (int)d, m->di);
        ops->layernorm_bwd(m->dres, PG(b->ln2_w), PG(b->ln2_b), m->dln, b->res_mid, PC(b->ln2_w), b->ln2_mean,
                           b->ln2_rstd, BL, (int)d);
        /* mixer branch: dres = d(res_mid) */
        const act_t *dmix = branch_grad(m, m->p_resid, 1 + 2 * l);
        hyena_mixer_backward(&b->mixer, &m->params, ops, &m->hs, m->dln, dmix, b->ln1, m->B, m->L);
        ops->layernorm_bwd(m->dres, PG(b->ln1_w), PG(b->ln1_b), m->dln, b->res_in, PC(b->ln1_w), b->ln1_mean,
                           b->ln1_rstd, BL, (int)d);
    }
    const act_t *demb = branch_grad(m, m->p_embed, 0);
    ops->embedding_bwd(PG(m->wte), demb, m->tokens, BL, (int)d);
    m->pending_backward = 0;
}

void model_zero_grad(Model *m) { m->ops->zero(m->params.grad, (size_t)m->params.total * m->ops->acc_bytes); }

ParamTable *model_params(Model *m) { return &m->params; }
const Ops *model_ops(const Model *m) { return m->ops; }

int64_t model_num_trainable(const Model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->params.n; i++)
        if (m->params.specs[i].group != GROUP_FROZEN) n += m->params.specs[i].numel;
    return n;
}

double model_flops_per_token(const Model *m) {
    const double d = m->d, di = m->di;
    /* matmul weights touched per token: in_proj 3d^2, out_proj d^2, MLP 2 d di, tied head Vp d */
    double matmul = m->n_layer * (4.0 * d * d + 2.0 * d * di) + (double)m->Vp * d;
    return 6.0 * matmul + 3.0 * m->n_layer * hyena_conv_flops_per_token(m->d, m->L);
}

static void print_bytes(const char *what, size_t bytes) {
    lc_log("  %-22s %10.1f MiB", what, (double)bytes / (1024.0 * 1024.0));
}

void model_print_memory(const Model *m) {
    const Ops *ops = m->ops;
    size_t p = (size_t)m->params.total * ops->acc_bytes;
    lc_log("memory plan (%s, micro-batch %d x %d):", ops->name, m->B, m->L);
    print_bytes("parameters (master)", p);
    if (!ops->act_is_acc) print_bytes("parameters (compute)", (size_t)m->params.total * ops->act_bytes);
    print_bytes("gradients", p);
    print_bytes("optimizer state", m->params.m ? 2 * p : 0);
    print_bytes("activations", m->act_bytes_total);
}
