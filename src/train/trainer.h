/* The training loop: micro-batches with gradient accumulation, AdamW with schedule and clipping,
 * validation, progress lines and log.jsonl, atomic checkpoints with keep-last-N, exact resume,
 * SIGINT/SIGTERM handling, compute budgets and a non-finite guard. */
#pragma once
#include "core/config.h"

/* resume: NULL (fresh run), a checkpoint path, or "auto" (the newest checkpoint in train.out_dir,
 * fresh if none). Returns the process exit code. */
int train_run(const Config *cfg, const char *resume);
/* Validation loss of a checkpoint on the config's val split (prints loss and perplexity). */
int eval_run(const Config *cfg, const char *ckpt_path);
/* Loss and every parameter gradient of the first training batch (data cursor 0) for the
 * parameters of ckpt_path (NULL: the initialization of train.seed), written with
 * ckpt_save_state for scripts/reference_hyena.py. */
int dump_run(const Config *cfg, const char *ckpt_path, const char *out_path);
