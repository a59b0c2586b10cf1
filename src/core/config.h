/* Configuration: one schema table drives parsing, validation, defaults, the startup table,
 * `longconv help config` and docs/config.md, so they cannot drift apart.
 *
 * A config file is YAML with three sections (model, data, train), each a mapping of scalars.
 * Command-line overrides are `section.key=value`. Unknown keys, wrong types, out-of-range values
 * and bad enum choices are one-line errors naming the key, the file and the line.
 *
 * X(name, TYPE, default, min, max, choices, help)
 *   TYPE: INT (int64_t), FLOAT (double), BOOL (int 0/1), STR (char[256]), ENUM (char[64], one of
 *   choices separated by '|'). Defaults are strings parsed and validated like user values.
 *   min/max bound INT and FLOAT (inclusive). */
#pragma once
#include <stdint.h>
#include <stdio.h>

#define LC_MODEL_FIELDS(X)                                                                          \
    X(arch, ENUM, "hyena_lm", 0, 0, "hyena_lm", "model family")                                    \
    X(d_model, INT, "128", 1, 65536, "", "model width d")                                           \
    X(n_layer, INT, "2", 1, 1024, "", "number of blocks")                                           \
    X(d_inner, INT, "256", 1, 1048576, "", "MLP hidden width (Hyena-s: 2*d_model)")                 \
    X(vocab_size, INT, "50257", 2, 16777216, "", "tokens in the vocabulary (must match the data)")  \
    X(vocab_pad_multiple, INT, "8", 1, 4096, "", "embedding rows padded up to a multiple of this")  \
    X(l_max, INT, "0", 0, 1073741824, "", "filter positional table length; 0 means data.seq_len")   \
    X(short_filter_order, INT, "3", 1, 64, "", "width of the causal depthwise short conv")          \
    X(filter_order, INT, "64", 1, 65536, "", "width of the implicit filter MLP")                    \
    X(filter_emb_dim, INT, "33", 3, 4097, "", "positional feature size (odd: t, cos and sin bands)") \
    X(filter_inner_mlps, INT, "2", 0, 16, "", "hidden Linear+Sin pairs in the filter MLP")          \
    X(filter_sine_freq, FLOAT, "1", 1e-6, 1e6, "", "initial frequency w of the shared Sin")         \
    X(filter_modulate, BOOL, "true", 0, 0, "", "multiply the filter by an exponential decay")       \
    X(filter_fast_decay_pct, FLOAT, "0.3", 1e-6, 1e6, "", "decay modulation: fast_decay_pct")       \
    X(filter_slow_decay_pct, FLOAT, "1.5", 1e-6, 1e6, "", "decay modulation: slow_decay_pct")       \
    X(filter_target, FLOAT, "0.01", 1e-12, 1, "", "decay modulation: target")                       \
    X(filter_shift, FLOAT, "0", -1e6, 1e6, "", "decay modulation: shift")                           \
    X(filter_pos_emb_trainable, BOOL, "true", 0, 0, "", "train the positional features z")          \
    X(embed_dropout, FLOAT, "0.1", 0, 0.99, "", "dropout on the embedding output")                  \
    X(resid_dropout, FLOAT, "0", 0, 0.99, "", "dropout on each sublayer output")                    \
    X(ln_eps, FLOAT, "1e-5", 1e-12, 1, "", "LayerNorm epsilon")                                     \
    X(init_std, FLOAT, "0.02", 1e-6, 10, "", "std of Linear/Embedding init (GPT-2 style)")          \
    X(conv_impl, ENUM, "flashfft", 0, 0, "flashfft|cufft", "long conv kernels on the GPU (CPU: FFTW)")

#define LC_DATA_FIELDS(X)                                                                           \
    X(path, STR, "data/text.h5", 0, 0, "", "HDF5 token-stream file (groups /train and /val)")      \
    X(train_group, STR, "train", 0, 0, "", "group holding the training tokens")                     \
    X(val_group, STR, "val", 0, 0, "", "group holding the validation tokens")                       \
    X(seq_len, INT, "256", 2, 1073741824, "", "tokens per training sequence")                       \
    X(seed, INT, "1337", 0, 9007199254740992.0, "", "seed of the sample permutation")

#define LC_TRAIN_FIELDS(X)                                                                          \
    X(device, ENUM, "cpu", 0, 0, "cpu|cuda|cpu64", "where to run (cpu64: the fp64 reference, for checks)") \
    X(threads, INT, "0", 0, 4096, "", "CPU threads (0: OpenMP default)")                            \
    X(batch_size, INT, "8", 1, 1048576, "", "sequences per micro-batch")                            \
    X(grad_accum, INT, "1", 1, 1048576, "", "micro-batches per optimizer step")                     \
    X(max_steps, INT, "1000", 1, 1000000000000.0, "", "optimizer steps")                            \
    X(lr, FLOAT, "6e-4", 0, 10, "", "peak learning rate")                                           \
    X(schedule, ENUM, "cosine", 0, 0, "cosine|linear|constant", "decay after warmup")              \
    X(warmup_steps, INT, "100", 0, 1000000000000.0, "", "linear warmup steps")                      \
    X(warmup_init_lr, FLOAT, "1e-6", 0, 10, "", "learning rate at step 0 of the warmup")            \
    X(min_lr_ratio, FLOAT, "0.1", 0, 1, "", "final learning rate as a fraction of lr")              \
    X(decay_steps, INT, "0", 0, 1000000000000.0, "", "steps until the minimum (0: max_steps)")      \
    X(weight_decay, FLOAT, "0.1", 0, 10, "", "decoupled AdamW weight decay")                        \
    X(decay_all, BOOL, "false", 0, 0, "", "decay norms, biases, embeddings and D too (safari Pile)") \
    X(beta1, FLOAT, "0.9", 0, 0.999999, "", "AdamW beta1")                                          \
    X(beta2, FLOAT, "0.999", 0, 0.999999999, "", "AdamW beta2")                                     \
    X(adam_eps, FLOAT, "1e-8", 1e-30, 1, "", "AdamW epsilon")                                       \
    X(filter_lr, FLOAT, "6e-4", 0, 10, "", "learning rate of the implicit filter MLP")             \
    X(filter_wd, FLOAT, "0", 0, 10, "", "weight decay of the implicit filter MLP")                  \
    X(pos_emb_lr, FLOAT, "6e-4", 0, 10, "", "learning rate of the positional features z")          \
    X(grad_clip, FLOAT, "1.0", 0, 1e12, "", "clip the global gradient norm (0: off)")               \
    X(nonfinite, ENUM, "stop", 0, 0, "stop|skip", "on a NaN/Inf loss or gradient: stop or skip")   \
    X(seed, INT, "2222", 0, 9007199254740992.0, "", "seed of init and dropout")                     \
    X(log_every, INT, "10", 1, 1000000000, "", "steps between progress lines")                      \
    X(eval_every, INT, "200", 0, 1000000000, "", "steps between validations (0: only at the end)")  \
    X(eval_batches, INT, "20", 1, 1000000000, "", "micro-batches per validation")                   \
    X(ckpt_every, INT, "500", 0, 1000000000, "", "steps between checkpoints (0: only at the end)")  \
    X(keep_last, INT, "3", 1, 1000000, "", "checkpoints kept (older ones are deleted)")             \
    X(out_dir, STR, "runs/default", 0, 0, "", "run folder: checkpoints and log.jsonl")              \
    X(budget_seconds, FLOAT, "0", 0, 1e12, "", "stop after this much training time (0: off)")       \
    X(budget_flops, FLOAT, "0", 0, 1e30, "", "stop after this many model FLOPs (0: off)")

#define LC_DECL_INT(n) int64_t n;
#define LC_DECL_FLOAT(n) double n;
#define LC_DECL_BOOL(n) int n;
#define LC_DECL_STR(n) char n[256];
#define LC_DECL_ENUM(n) char n[64];
#define LC_DECLARE(name, type, def, lo, hi, choices, help) LC_DECL_##type(name)

typedef struct { LC_MODEL_FIELDS(LC_DECLARE) } ModelConfig;
typedef struct { LC_DATA_FIELDS(LC_DECLARE) } DataConfig;
typedef struct { LC_TRAIN_FIELDS(LC_DECLARE) } TrainConfig;

typedef struct Config {
    ModelConfig model;
    DataConfig data;
    TrainConfig train;
} Config;

typedef enum { CFG_INT, CFG_FLOAT, CFG_BOOL, CFG_STR, CFG_ENUM } ConfigType;

typedef struct ConfigKey {
    const char *key;      /* "model.d_model" */
    ConfigType type;
    size_t offset;        /* into Config */
    size_t size;          /* bytes of the field (string capacity) */
    const char *def;
    double lo, hi;
    const char *choices;  /* ENUM: "a|b|c" */
    const char *help;
} ConfigKey;

extern const ConfigKey lc_config_keys[];
extern const int lc_config_nkeys;

/* Fill every field with its default. */
void config_defaults(Config *c);
/* Read a YAML file over the current values; dies naming file, line and key on any problem. */
void config_load_file(Config *c, const char *path);
/* Parse YAML text (for tests and for configs stored in checkpoints); `origin` names it in errors. */
void config_load_string(Config *c, const char *yaml, const char *origin);
/* Apply one "section.key=value" override; dies naming the override on any problem. */
void config_apply_override(Config *c, const char *assignment);
/* Cross-field checks (e.g. filter_emb_dim odd, l_max >= seq_len); dies naming the keys. */
void config_validate(const Config *c);
/* Write the resolved config as YAML (round-trips through config_load_string). */
void config_write_yaml(const Config *c, FILE *f);
/* Same into a malloc'd string (caller frees). */
char *config_to_yaml(const Config *c);
/* The startup table: one "key = value" line per field. */
void config_print(const Config *c, FILE *f);
/* `longconv help config`: key, type, default, range/choices, help (Markdown table when markdown). */
void config_print_help(FILE *f, int markdown);
/* Resolved values derived from the config. */
int64_t config_vocab_padded(const Config *c);
int64_t config_l_max(const Config *c);
