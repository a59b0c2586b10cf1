/* Token-stream HDF5 reader (layout in docs/formats.md): one group (/train or /val) holding a 1-D
 * dataset `tokens` (uint16 or int32), read by hyperslabs, never loaded whole; plus the training
 * sampler (seeded, rank-sharded permutation of windows, exact resume from a cursor) and the
 * fixed validation order.
 *
 * Every failure (unreadable file, missing group/dataset/attribute, wrong dtype or rank, vocab
 * mismatch, out-of-range token, read error) is an lc_die naming the file, the dataset and, for
 * token errors, the absolute offset. */
#pragma once
#include <stdint.h>

typedef struct TokenStream TokenStream;

/* Opens `group` ("train", "val"; a leading '/' is optional) of the file at `path` and validates
 * the layout. expected_vocab > 0 must equal the file's vocab_size (the model's vocab_size);
 * pass 0 to accept any. */
TokenStream *tokens_open(const char *path, const char *group, int64_t expected_vocab);
void tokens_close(TokenStream *ts);

int64_t tokens_count(const TokenStream *ts);       /* tokens in the dataset */
int64_t tokens_vocab(const TokenStream *ts);       /* root attribute vocab_size */
int64_t tokens_eot(const TokenStream *ts);         /* root attribute eot_token */
int64_t tokens_n_documents(const TokenStream *ts); /* group attribute n_documents, -1 if absent */
double tokens_unigram_entropy(const TokenStream *ts); /* group attribute unigram_entropy (nats), NaN if absent */
const char *tokens_tokenizer(const TokenStream *ts);
const char *tokens_name(const TokenStream *ts);    /* "path:/group/tokens", for messages */

/* out[n] = tokens[offset, offset+n) as int32; every token is checked to be in [0, vocab_size). */
void tokens_read(TokenStream *ts, int64_t offset, int64_t n, int32_t *out);

/* Windows of seq_len+1 tokens start at i*seq_len, i in [0, nwin), nwin = (count-1)/seq_len, so
 * consecutive windows share one token (the last target of one is the first input of the next).
 * Dies naming both numbers when the stream is too short for one window. */
int64_t tokens_num_windows(const TokenStream *ts, int64_t seq_len);

/* Validation batch k of an evaluation of n_batches batches: sample s = k*B + b (b < B) of the
 * S = n_batches*B samples is window floor(s * nwin / S) when S <= nwin (samples spread evenly
 * over the whole split, so a short evaluation still sees every part of it), else s mod nwin.
 * Every evaluation reads the same data. With several ranks pass k = j*world + rank and
 * n_batches = total batches over all ranks. inputs, targets: [B, seq_len]; targets are the
 * inputs shifted by one token. */
void tokens_val_batch(TokenStream *ts, int64_t seq_len, int64_t batch_index, int64_t n_batches, int B,
                      int32_t *inputs, int32_t *targets);

/* Training sampler. The global sample stream visits, in epoch e, all nwin windows in the order
 * of a Fisher-Yates permutation drawn from philox_u64(seed, SAMPLER_STREAM + e, j). Global sample
 * g lies in epoch g / nwin at position g % nwin. A batch of B rows on rank r of W takes global
 * samples cursor + b*W + r (b in [0,B)), then the cursor advances by B*W; so the W ranks together
 * read exactly what a single rank with batch B*W would. The cursor is the whole state: saving it
 * and calling sampler_seek resumes exactly. */
#define SAMPLER_STREAM 0x5A3D000000000000ull /* keeps permutation draws apart from other Philox users */

typedef struct {
    TokenStream *ts;   /* not owned */
    int64_t seq_len, nwin;
    uint64_t seed;
    int rank, world;
    int64_t cursor;    /* global samples consumed, over all ranks */
    int64_t *perm;     /* [nwin] permutation of epoch perm_epoch */
    int64_t perm_epoch;
    int32_t *win;      /* [seq_len+1] scratch */
} Sampler;

void sampler_init(Sampler *s, TokenStream *ts, int64_t seq_len, uint64_t seed, int rank, int world);
/* inputs, targets: [B, seq_len] */
void sampler_next_batch(Sampler *s, int B, int32_t *inputs, int32_t *targets);
int64_t sampler_cursor(const Sampler *s);
int64_t sampler_epoch(const Sampler *s);   /* epoch of the global cursor: cursor / nwin */
void sampler_seek(Sampler *s, int64_t cursor);
void sampler_free(Sampler *s);
