/* Checkpoints: one HDF5 file per save, written to "<path>.tmp", flushed, fsync'ed and renamed,
 * so a crash leaves either the old file or the new one. Layout (docs/formats.md):
 *   attributes  format="longconv-checkpoint", version=1, step, data_cursor, tokens_seen,
 *               elapsed_seconds, flops, world_size, backend, config (resolved YAML)
 *   /params/<name>   master values, the parameter's shape (chunked, Fletcher-32 checksummed)
 *   /adam_m/<name>, /adam_v/<name>   AdamW moments (absent in weights-only files) */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "model/params.h"

typedef struct TrainState {
    int64_t step;         /* optimizer steps completed */
    int64_t data_cursor;  /* training samples consumed (all ranks) */
    int64_t tokens_seen;
    double elapsed_seconds;
    double flops;
    int world_size;
} TrainState;

void ckpt_save(const char *path, const ParamTable *t, const Ops *ops, const Config *cfg, const TrainState *st,
               int with_optimizer);
/* Restore parameters (and moments when the table has them and the file does); every parameter of
 * the table must be present with the same shape. Dies naming the file and dataset otherwise. */
void ckpt_load(const char *path, ParamTable *t, const Ops *ops, TrainState *st);
/* A gradient snapshot for cross-checks against the PyTorch reference (scripts/reference_hyena.py):
 * attributes format="longconv-state", loss (mean over targets), n_targets, backend, config;
 * /inputs, /targets [B,L] int32; /params/<name> and /grads/<name> (float64). */
void ckpt_save_state(const char *path, const ParamTable *t, const Ops *ops, const Config *cfg, const int32_t *inputs,
                     const int32_t *targets, int B, int L, double loss, int64_t n_targets);
/* Read every dataset (checking the per-chunk Fletcher-32 checksums) without dying: 1 when the
 * file is sound, else 0 with the reason in why. Used to pick a sound checkpoint to resume from. */
int ckpt_verify(const char *path, char *why, size_t n);
/* The resolved config stored in a checkpoint (malloc'd YAML text). */
char *ckpt_read_config(const char *path);
/* `longconv inspect`: config, state and the parameter table. */
void ckpt_inspect(const char *path, FILE *out);
