/* Token-stream reader: files written here with the HDF5 C API (uint16 and int32, chunked, gzip),
 * hyperslab reads against the written tokens, the sampler's permutation, sharding and resume,
 * validation order, and one test per error the reader must report. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/tokens.h"
#include "testutil.h"

/* ---- writing test files ---- */

typedef struct {
    hid_t dtype;            /* file type of tokens: H5T_STD_U16LE, H5T_STD_I32BE, H5T_IEEE_F32LE, ... */
    int rank2;              /* write tokens as [n/2, 2] */
    int64_t chunk;          /* 0: contiguous */
    int gzip;
    const char *group;      /* group to create ("train") */
    int no_dataset;         /* create the group only */
    const char *skip_attr;  /* omit this root attribute */
    int vocab_as_string;    /* write vocab_size as a string */
    int fixed_strings;      /* tokenizer/format as fixed-length ASCII instead of variable UTF-8 */
    const char *format;     /* default "longconv-tokens" */
    int64_t version;        /* default 1 */
    int64_t vocab, eot, n_documents;  /* n_documents < 0: omitted */
} FileSpec;

static FileSpec spec_default(int64_t vocab) {
    FileSpec s = {.dtype = H5T_STD_U16LE, .chunk = 1024, .gzip = 1, .group = "train",
                  .format = "longconv-tokens", .version = 1, .vocab = vocab, .eot = 0, .n_documents = -1};
    return s;
}

static void put_int_attr(hid_t obj, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
}

/* Variable-length UTF-8 like h5py's str attributes, or fixed-length ASCII like numpy bytes. */
static void put_str_attr(hid_t obj, const char *name, const char *v, int fixed) {
    hid_t sp = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
    if (fixed) {
        H5Tset_size(t, strlen(v));
        H5Tset_strpad(t, H5T_STR_NULLPAD);
    } else {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(a >= 0);
    ck_assert(H5Awrite(a, t, fixed ? (const void *)v : (const void *)&v) >= 0);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
}

static void maybe_int_attr(const FileSpec *s, hid_t f, const char *name, int64_t v) {
    if (!s->skip_attr || strcmp(s->skip_attr, name) != 0) put_int_attr(f, name, v);
}

static void maybe_str_attr(const FileSpec *s, hid_t f, const char *name, const char *v) {
    if (!s->skip_attr || strcmp(s->skip_attr, name) != 0) put_str_attr(f, name, v, s->fixed_strings);
}

/* tokens: [n] int32 in memory, converted by HDF5 to the file type. */
static void write_file(const char *path, const FileSpec *s, const int32_t *tokens, int64_t n) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot create %s", path);
    maybe_str_attr(s, f, "format", s->format);
    maybe_int_attr(s, f, "version", s->version);
    if (s->vocab_as_string) put_str_attr(f, "vocab_size", "50257", 0);
    else maybe_int_attr(s, f, "vocab_size", s->vocab);
    maybe_str_attr(s, f, "tokenizer", "gpt2");
    maybe_int_attr(s, f, "eot_token", s->eot);
    hid_t g = H5Gcreate2(f, s->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(g >= 0);
    if (s->n_documents >= 0) put_int_attr(g, "n_documents", s->n_documents);
    if (!s->no_dataset) {
        int rank = s->rank2 ? 2 : 1;
        hsize_t dims[2] = {(hsize_t)(s->rank2 ? n / 2 : n), 2};
        hid_t sp = H5Screate_simple(rank, dims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (s->chunk > 0) {
            hsize_t cd[2] = {(hsize_t)(s->chunk < (int64_t)dims[0] ? s->chunk : (int64_t)dims[0]), 2};
            ck_assert(H5Pset_chunk(dcpl, rank, cd) >= 0);
            if (s->gzip) ck_assert(H5Pset_deflate(dcpl, 4) >= 0);
        }
        hid_t d = H5Dcreate2(g, "tokens", s->dtype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        ck_assert(d >= 0);
        ck_assert(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens) >= 0);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    H5Gclose(g);
    ck_assert(H5Fclose(f) >= 0);
}

/* Unique per process: Check forks each test, and ctest may run suites side by side. */
static const char *tmp_path(char buf[256], const char *tag) {
    snprintf(buf, 256, "/tmp/longconv_test_data_%d_%s.h5", (int)getpid(), tag);
    return buf;
}

/* Writes a file whose token i is i (mod vocab), so every window is identified by its first token. */
static void write_iota(const char *path, const FileSpec *s, int64_t n) {
    int32_t *t = xmalloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(i % s->vocab);
    write_file(path, s, t, n);
    free(t);
}

/* ---- reads ---- */

/* Random tokens through a file of the given type; reads at random offsets must equal them. */
static void check_roundtrip(hid_t dtype, int64_t vocab, int fixed_strings, int gzip, uint64_t *rng) {
    char path[256];
    tmp_path(path, "roundtrip");
    const int64_t n = 100003;  /* not a multiple of the chunk: the last chunk is partial */
    int32_t *t = xmalloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(tu_uniform(rng) * (double)vocab);
    t[n - 1] = (int32_t)(vocab - 1);  /* the largest legal token */
    FileSpec s = spec_default(vocab);
    s.dtype = dtype;
    s.gzip = gzip;
    s.chunk = 4096;
    s.fixed_strings = fixed_strings;
    s.eot = vocab - 1;
    s.n_documents = 17;
    write_file(path, &s, t, n);

    TokenStream *ts = tokens_open(path, "/train", vocab);
    ck_assert_int_eq(tokens_count(ts), n);
    ck_assert_int_eq(tokens_vocab(ts), vocab);
    ck_assert_int_eq(tokens_eot(ts), vocab - 1);
    ck_assert_int_eq(tokens_n_documents(ts), 17);
    ck_assert_str_eq(tokens_tokenizer(ts), "gpt2");
    int32_t *buf = xmalloc((size_t)n * sizeof(int32_t));
    tokens_read(ts, 0, n, buf);
    ck_assert(memcmp(buf, t, (size_t)n * sizeof(int32_t)) == 0);
    for (int k = 0; k < 200; k++) {
        int64_t len = 1 + (int64_t)(tu_uniform(rng) * 9000);  /* up to ~3 chunks */
        int64_t off = (int64_t)(tu_uniform(rng) * (double)(n - len + 1));
        tokens_read(ts, off, len, buf);
        ck_assert_msg(memcmp(buf, t + off, (size_t)len * sizeof(int32_t)) == 0, "read %lld at %lld differs",
                      (long long)len, (long long)off);
    }
    tokens_read(ts, n - 1, 1, buf);
    ck_assert_int_eq(buf[0], vocab - 1);
    tokens_close(ts);
    free(buf);
    free(t);
    unlink(path);
}

START_TEST(read_uint16_gzip) {
    uint64_t rng = tu_seed();
    check_roundtrip(H5T_STD_U16LE, 65536, 0, 1, &rng);  /* the whole uint16 range */
}
END_TEST

START_TEST(read_int32_gzip) {
    uint64_t rng = tu_seed();
    check_roundtrip(H5T_STD_I32LE, 100000, 1, 1, &rng);
}
END_TEST

START_TEST(read_int32_bigendian_uncompressed) {
    uint64_t rng = tu_seed();
    check_roundtrip(H5T_STD_I32BE, 50257, 0, 0, &rng);
}
END_TEST

/* ---- sampler ---- */

enum { T = 8, NWIN = 37 };

static int64_t window_of(const int32_t *in, const int32_t *tgt) {
    int64_t start = in[0];
    ck_assert_int_eq(start % T, 0);
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(in[t], start + t);
        ck_assert_int_eq(tgt[t], start + t + 1);
    }
    return start / T;
}

/* Windows of `nb` batches of B rows from s: out[nb*B]. */
static void draw(Sampler *s, int nb, int B, int64_t *out) {
    int32_t *in = xmalloc((size_t)B * T * sizeof(int32_t)), *tg = xmalloc((size_t)B * T * sizeof(int32_t));
    for (int i = 0; i < nb; i++) {
        sampler_next_batch(s, B, in, tg);
        for (int b = 0; b < B; b++) out[(size_t)i * B + b] = window_of(in + (size_t)b * T, tg + (size_t)b * T);
    }
    free(in);
    free(tg);
}

/* nwin = (n-1)/T = 37 with 5 spare tokens that no window may reach. */
static TokenStream *open_iota(char path[256]) {
    tmp_path(path, "iota");
    FileSpec s = spec_default(1000);
    s.chunk = 64;
    write_iota(path, &s, (int64_t)NWIN * T + 1 + 5);
    TokenStream *ts = tokens_open(path, "train", 1000);
    ck_assert_int_eq(tokens_num_windows(ts, T), NWIN);
    return ts;
}

START_TEST(sampler_epochs_are_permutations) {
    uint64_t seed = tu_seed();
    char path[256];
    TokenStream *ts = open_iota(path);
    Sampler s;
    sampler_init(&s, ts, T, seed, 0, 1);
    /* B = 5 does not divide 37, so batches straddle epoch boundaries. */
    const int B = 5, nb = 23;  /* 115 samples: epochs 0, 1, 2 and 4 samples of epoch 3 */
    int64_t w[115];
    draw(&s, nb, B, w);
    ck_assert_int_eq(sampler_cursor(&s), 115);
    ck_assert_int_eq(sampler_epoch(&s), 3);
    for (int e = 0; e < 3; e++) {
        int seen[NWIN] = {0};
        for (int j = 0; j < NWIN; j++) seen[w[e * NWIN + j]]++;
        for (int i = 0; i < NWIN; i++) ck_assert_msg(seen[i] == 1, "epoch %d visits window %d %d times", e, i, seen[i]);
    }
    /* Two epochs (or an epoch and the identity) agree with probability 1/37!. */
    int same01 = 1, same12 = 1, ident = 1;
    for (int j = 0; j < NWIN; j++) {
        same01 &= w[j] == w[NWIN + j];
        same12 &= w[NWIN + j] == w[2 * NWIN + j];
        ident &= w[j] == j;
    }
    ck_assert(!same01 && !same12 && !ident);

    /* Same seed: same stream; another seed: another one. */
    Sampler s2, s3;
    int64_t w2[115], w3[115];
    sampler_init(&s2, ts, T, seed, 0, 1);
    sampler_init(&s3, ts, T, seed + 1, 0, 1);
    draw(&s2, nb, B, w2);
    draw(&s3, nb, B, w3);
    ck_assert(memcmp(w, w2, sizeof w) == 0);
    ck_assert(memcmp(w, w3, sizeof w) != 0);
    sampler_free(&s);
    sampler_free(&s2);
    sampler_free(&s3);
    tokens_close(ts);
    unlink(path);
}
END_TEST

START_TEST(sampler_rank_sharding) {
    uint64_t seed = tu_seed();
    char path[256];
    TokenStream *ts = open_iota(path);
    const int W = 3, B = 4, nb = 10;  /* 120 global samples, across 3 epoch boundaries */
    Sampler single;
    int64_t ref[120];
    sampler_init(&single, ts, T, seed, 0, 1);
    draw(&single, nb, B * W, ref);
    for (int r = 0; r < W; r++) {
        Sampler s;
        int64_t w[40];
        sampler_init(&s, ts, T, seed, r, W);
        draw(&s, nb, B, w);
        ck_assert_int_eq(sampler_cursor(&s), 120);
        /* Rank r's row b of batch i is row b*W + r of the single-rank batch i. */
        for (int i = 0; i < nb; i++)
            for (int b = 0; b < B; b++)
                ck_assert_int_eq(w[i * B + b], ref[i * B * W + b * W + r]);
        sampler_free(&s);
    }
    sampler_free(&single);
    tokens_close(ts);
    unlink(path);
}
END_TEST

START_TEST(sampler_seek_resumes_exactly) {
    uint64_t seed = tu_seed();
    char path[256];
    TokenStream *ts = open_iota(path);
    const int W = 3, B = 2;
    for (int r = 0; r < W; r++) {
        Sampler a, b;
        int64_t skip[7 * B], wa[20 * B], wb[20 * B];
        sampler_init(&a, ts, T, seed, r, W);
        draw(&a, 7, B, skip);
        int64_t cur = sampler_cursor(&a);
        ck_assert_int_eq(cur, 7 * B * W);
        draw(&a, 20, B, wa);
        /* A fresh sampler seeked to the saved cursor; b first visits another epoch so that its
         * cached permutation is stale. */
        sampler_init(&b, ts, T, seed, r, W);
        sampler_seek(&b, 5 * NWIN);
        draw(&b, 1, B, skip);
        sampler_seek(&b, cur);
        draw(&b, 20, B, wb);
        ck_assert(memcmp(wa, wb, sizeof wa) == 0);
        ck_assert_int_eq(sampler_cursor(&a), sampler_cursor(&b));
        sampler_free(&a);
        sampler_free(&b);
    }
    tokens_close(ts);
    unlink(path);
}
END_TEST

START_TEST(val_batches_wrap_when_longer_than_the_split) {
    char path[256];
    TokenStream *ts = open_iota(path);
    const int B = 6;
    int32_t in[6 * T], tg[6 * T];
    for (int64_t k = 0; k < 20; k++) {  /* 120 samples > 37 windows: wraps past 37 three times */
        tokens_val_batch(ts, T, k, 20, B, in, tg);
        for (int b = 0; b < B; b++) ck_assert_int_eq(window_of(in + b * T, tg + b * T), (k * B + b) % NWIN);
    }
    tokens_close(ts);
    unlink(path);
}
END_TEST

START_TEST(val_batches_spread_over_the_split) {
    char path[256];
    TokenStream *ts = open_iota(path);
    const int B = 2, K = 5; /* 10 samples over 37 windows: floor(s * 37 / 10) */
    int32_t in[2 * T], tg[2 * T];
    int64_t prev = -1;
    for (int64_t k = 0; k < K; k++) {
        tokens_val_batch(ts, T, k, K, B, in, tg);
        for (int b = 0; b < B; b++) {
            int64_t w = window_of(in + b * T, tg + b * T);
            ck_assert_int_eq(w, (k * B + b) * NWIN / (K * B));
            ck_assert_int_gt(w, prev);
            prev = w;
        }
    }
    ck_assert_int_ge(prev, NWIN - NWIN / (K * B) - 1); /* the last sample lies near the end */
    tokens_close(ts);
    unlink(path);
}
END_TEST

/* ---- errors ---- */

/* Writes spec s over 1000 iota tokens and expects tokens_open(path, "train", vocab) to fail. */
static void expect_open_error(const FileSpec *s, int64_t vocab, const char *substr) {
    char path[256];
    tmp_path(path, "err");
    write_iota(path, s, 1000);
    EXPECT_DIE(tokens_open(path, "train", vocab), substr);
    ck_assert_msg(strstr(lc_last_error, path) != NULL, "error '%s' does not name the file", lc_last_error);
    unlink(path);
}

START_TEST(error_not_hdf5) {
    char path[256];
    tmp_path(path, "text");
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fprintf(f, "this is not an HDF5 file\n");
    fclose(f);
    EXPECT_DIE(tokens_open(path, "train", 0), "not an HDF5 file");
    ck_assert(strstr(lc_last_error, path) != NULL);
    unlink(path);
    EXPECT_DIE(tokens_open(path, "train", 0), "No such file");
}
END_TEST

START_TEST(error_missing_group_and_dataset) {
    char path[256];
    FileSpec s = spec_default(1000);
    tmp_path(path, "grp");
    write_iota(path, &s, 100);
    EXPECT_DIE(tokens_open(path, "val", 0), "missing group /val");
    unlink(path);
    s.no_dataset = 1;
    expect_open_error(&s, 0, "group /train has no dataset 'tokens'");
}
END_TEST

START_TEST(error_dtype_and_rank) {
    FileSpec s = spec_default(1000);
    s.dtype = H5T_IEEE_F32LE;
    expect_open_error(&s, 0, "/train/tokens: dtype float32, expected uint16 or int32");
    s.dtype = H5T_STD_I16LE;
    expect_open_error(&s, 0, "dtype int16");
    s.dtype = H5T_STD_U32LE;
    expect_open_error(&s, 0, "dtype uint32");
    s = spec_default(1000);
    s.rank2 = 1;
    expect_open_error(&s, 0, "/train/tokens: rank 2, expected a 1-D dataset");
}
END_TEST

START_TEST(error_attributes) {
    const char *names[] = {"vocab_size", "tokenizer", "eot_token", "format", "version"};
    for (int i = 0; i < 5; i++) {
        FileSpec s = spec_default(1000);
        s.skip_attr = names[i];
        char want[128];
        snprintf(want, sizeof want, "missing attribute '%s' on /", names[i]);
        expect_open_error(&s, 0, want);
    }
    FileSpec s = spec_default(1000);
    s.vocab_as_string = 1;
    expect_open_error(&s, 0, "attribute 'vocab_size' of / must be an integer, found string");
    s = spec_default(1000);
    s.format = "longconv-glue";
    expect_open_error(&s, 0, "format is \"longconv-glue\", expected \"longconv-tokens\"");
    s = spec_default(1000);
    s.version = 2;
    expect_open_error(&s, 0, "version 2 is not supported");
    s = spec_default(1000);
    s.eot = 1000;
    expect_open_error(&s, 0, "eot_token 1000 is outside [0, vocab_size 1000)");
}
END_TEST

START_TEST(error_vocab_mismatch) {
    FileSpec s = spec_default(50257);
    expect_open_error(&s, 1000, "data vocab_size 50257 does not match model.vocab_size 1000");
}
END_TEST

START_TEST(error_token_out_of_range) {
    char path[256];
    tmp_path(path, "badtok");
    const int64_t n = 5000, bad = 3333;
    int32_t *t = xcalloc((size_t)n, sizeof(int32_t));
    t[bad] = 1000;  /* == vocab_size */
    FileSpec s = spec_default(1000);
    write_file(path, &s, t, n);
    TokenStream *ts = tokens_open(path, "train", 1000);
    int32_t buf[100];
    tokens_read(ts, bad - 100, 100, buf);  /* up to the bad token: fine */
    tokens_read(ts, bad + 1, 100, buf);
    EXPECT_DIE(tokens_read(ts, bad - 50, 100, buf), "token 1000 at offset 3333 is outside [0, vocab_size 1000)");
    ck_assert(strstr(lc_last_error, ":/train/tokens") != NULL && strstr(lc_last_error, path) != NULL);
    tokens_close(ts);

    /* A negative token in an int32 file. */
    t[bad] = -7;
    s.dtype = H5T_STD_I32LE;
    write_file(path, &s, t, n);
    ts = tokens_open(path, "train", 1000);
    int32_t *all = xmalloc((size_t)n * sizeof(int32_t));
    EXPECT_DIE(tokens_read(ts, 0, n, all), "token -7 at offset 3333");
    tokens_close(ts);
    free(all);
    free(t);
    unlink(path);
}
END_TEST

/* A file cut to half its size must fail with a message, at open or at the first read, not crash. */
START_TEST(error_truncated_file) {
    uint64_t rng = tu_seed();
    char path[256];
    tmp_path(path, "trunc");
    const int64_t n = 200000;
    int32_t *t = xmalloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(tu_uniform(&rng) * 50000);  /* incompressible-ish */
    FileSpec s = spec_default(50257);
    s.chunk = 8192;
    write_file(path, &s, t, n);
    FILE *f = fopen(path, "rb");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert(truncate(path, size / 2) == 0);

    lc_die_hook = tu_die_hook;
    if (setjmp(tu_die_jmp) == 0) {
        TokenStream *ts = tokens_open(path, "train", 50257);
        int32_t *buf = xmalloc((size_t)n * sizeof(int32_t));
        tokens_read(ts, 0, n, buf);
        lc_die_hook = NULL;
        ck_abort_msg("a truncated file was read without error");
    }
    lc_die_hook = NULL;
    fprintf(stderr, "  truncated file: %s\n", lc_last_error);
    ck_assert(strstr(lc_last_error, path) != NULL);
    ck_assert(strstr(lc_last_error, "truncated") != NULL);
    free(t);
    unlink(path);
}
END_TEST

/* Garbage over compressed chunk data: the read fails with the dataset and offset named. */
START_TEST(error_corrupt_chunk) {
    uint64_t rng = tu_seed();
    char path[256];
    tmp_path(path, "corrupt");
    const int64_t n = 200000;
    int32_t *t = xmalloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(tu_uniform(&rng) * 50000);
    FileSpec s = spec_default(50257);
    s.chunk = 8192;
    write_file(path, &s, t, n);
    /* Metadata sits in the first few KiB; 3/4 into the file is chunk data. */
    FILE *f = fopen(path, "r+b");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size * 3 / 4, SEEK_SET);
    for (int i = 0; i < 4096; i++) fputc((int)(tu_uniform(&rng) * 256), f);
    fclose(f);
    TokenStream *ts = tokens_open(path, "train", 50257);
    EXPECT_DIE(tokens_read(ts, 0, n, t), "tokens at offset 0 failed");
    fprintf(stderr, "  corrupt chunk: %s\n", lc_last_error);
    ck_assert(strstr(lc_last_error, ":/train/tokens") != NULL && strstr(lc_last_error, path) != NULL);
    tokens_close(ts);
    free(t);
    unlink(path);
}
END_TEST

START_TEST(error_too_short) {
    char path[256];
    FileSpec s = spec_default(1000);
    tmp_path(path, "short");
    write_iota(path, &s, 10);
    TokenStream *ts = tokens_open(path, "train", 1000);
    Sampler smp;
    EXPECT_DIE(sampler_init(&smp, ts, 16, 1, 0, 1), "10 tokens are too few for one window of seq_len 16");
    ck_assert_int_eq(tokens_num_windows(ts, 9), 1);  /* 10 = 9 + 1 is exactly one window */
    tokens_close(ts);
    write_iota(path, &s, 1);
    EXPECT_DIE(tokens_open(path, "train", 1000), "1 tokens, need at least 2");
    unlink(path);
}
END_TEST

int main(void) {
    Suite *su = suite_create("data");
    TCase *tr = tcase_create("read");
    tcase_add_test(tr, read_uint16_gzip);
    tcase_add_test(tr, read_int32_gzip);
    tcase_add_test(tr, read_int32_bigendian_uncompressed);
    suite_add_tcase(su, tr);
    TCase *tsm = tcase_create("sampler");
    tcase_add_test(tsm, sampler_epochs_are_permutations);
    tcase_add_test(tsm, sampler_rank_sharding);
    tcase_add_test(tsm, sampler_seek_resumes_exactly);
    tcase_add_test(tsm, val_batches_wrap_when_longer_than_the_split);
    tcase_add_test(tsm, val_batches_spread_over_the_split);
    suite_add_tcase(su, tsm);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, error_not_hdf5);
    tcase_add_test(te, error_missing_group_and_dataset);
    tcase_add_test(te, error_dtype_and_rank);
    tcase_add_test(te, error_attributes);
    tcase_add_test(te, error_vocab_mismatch);
    tcase_add_test(te, error_token_out_of_range);
    tcase_add_test(te, error_truncated_file);
    tcase_add_test(te, error_corrupt_chunk);
    tcase_add_test(te, error_too_short);
    suite_add_tcase(su, te);
    return tu_run_suite(su);
}
