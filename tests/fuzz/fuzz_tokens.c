/* libFuzzer harness of the token-stream reader (src/data/tokens.c).
 *
 * The input is written to /tmp/fuzz_tokens_<pid>.h5 and read as a training split would be:
 * tokens_open("train"), the metadata getters, tokens_read at the start, middle and end,
 * validation batches and (for streams of up to 2^16 tokens) a sampler over two batches; then
 * the "val" split, opened against the train split's vocabulary. Errors are expected (lc_die);
 * tokens.c closes what it opened before dying, so an HDF5 identifier still open after an
 * input is a finding too (the harness prints it and aborts). */
#define FUZZ_WITH_HDF5
#include "fuzz_common.h"

#include "data/tokens.h"

enum { MAX_READ = 64, B = 2 };

/* Everything the die hook can unwind past (static, so longjmp cannot clobber it). */
static TokenStream *train, *val;
static Sampler sampler;
static int have_sampler;
static int32_t buf[MAX_READ + 1], inputs[B * MAX_READ], targets[B * MAX_READ];
static volatile uint64_t sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_h5_init();
    fuzz_path_init("fuzz_tokens");
    return 0;
}

/* tokens_read promises every token in [0, vocab_size): checked again here. */
static void check_range(const TokenStream *ts, const int32_t *tok, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        if (tok[i] < 0 || tok[i] >= tokens_vocab(ts)) {
            fprintf(stderr, "FINDING: %s returned token %d outside [0, %lld)\n", what, tok[i], (long long)tokens_vocab(ts));
            abort();
        }
        sink += (uint64_t)tok[i];
    }
}

static void read_some(TokenStream *ts, int64_t offset, int64_t n) {
    tokens_read(ts, offset, n, buf);
    check_range(ts, buf, n, "tokens_read");
}

/* A batch of B rows of L: in range, and each target row is its input row shifted by one. */
static void check_batch(const TokenStream *ts, int64_t L, const char *what) {
    check_range(ts, inputs, B * L, what);
    check_range(ts, targets, B * L, what);
    for (int b = 0; b < B; b++) {
        if (memcmp(inputs + b * L + 1, targets + b * L, (size_t)(L - 1) * sizeof(int32_t)) != 0) {
            fprintf(stderr, "FINDING: %s: targets of row %d are not its inputs shifted by one\n", what, b);
            abort();
        }
    }
}

static void exercise_train(void) {
    train = tokens_open(fuzz_path, "train", 0);
    int64_t count = tokens_count(train);
    sink += (uint64_t)tokens_vocab(train) + (uint64_t)tokens_eot(train) + (uint64_t)tokens_n_documents(train);
    sink += strlen(tokens_tokenizer(train)) + strlen(tokens_name(train));
    double h = tokens_unigram_entropy(train);
    sink += h == h;
    int64_t k = count < MAX_READ ? count : MAX_READ;
    read_some(train, 0, k);
    read_some(train, count - k, k);
    read_some(train, (count - k) / 2, k);

    /* Windows of 1 token and of up to MAX_READ tokens. */
    int64_t L = count - 1 < MAX_READ ? count - 1 : MAX_READ;
    sink += (uint64_t)tokens_num_windows(train, 1);
    tokens_val_batch(train, 1, 0, 3, B, inputs, targets);
    check_batch(train, 1, "tokens_val_batch");
    tokens_val_batch(train, L, 1, 2, B, inputs, targets);
    check_batch(train, L, "tokens_val_batch");
    tokens_val_batch(train, L, 0, 1000, B, inputs, targets);
    check_batch(train, L, "tokens_val_batch");
    if (count <= (1 << 16)) {  /* the sampler allocates and shuffles all windows */
        sampler_init(&sampler, train, L, 1337, 0, 1);
        have_sampler = 1;
        sampler_next_batch(&sampler, B, inputs, targets);
        check_batch(train, L, "sampler_next_batch");
        sampler_seek(&sampler, sampler.nwin * 3 - 1);  /* across an epoch boundary */
        sampler_next_batch(&sampler, B, inputs, targets);
        check_batch(train, L, "sampler_next_batch");
        sink += (uint64_t)sampler_epoch(&sampler) + (uint64_t)sampler_cursor(&sampler);
    }
}

static void exercise_val(void) {
    val = tokens_open(fuzz_path, "/val", tokens_vocab(train));
    int64_t count = tokens_count(val);
    read_some(val, 0, count < 16 ? count : 16);
}

/* Runs f; 1 when it finished, 0 when an expected error stopped it. */
static int attempt(void (*f)(void)) {
    lc_die_hook = fuzz_die_hook;
    if (setjmp(fuzz_jmp)) {
        fuzz_note_fatal();
        lc_die_hook = NULL;
        return 0;
    }
    f();
    lc_die_hook = NULL;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(data, size);
    train = val = NULL;
    have_sampler = 0;
    if (attempt(exercise_train)) attempt(exercise_val);
    if (have_sampler) sampler_free(&sampler);
    tokens_close(val);
    tokens_close(train);
    int leaked = fuzz_h5_close_leftovers();
    if (leaked) {
        fprintf(stderr, "FINDING: %d HDF5 identifiers left open (last error: %s)\n", leaked, lc_last_error);
        abort();
    }
    lc_last_error[0] = 0;
    return 0;
}
