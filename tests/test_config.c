/* Config: schema table, defaults, YAML loading, round trips of random configs, every error
 * (one line naming the file, the line and the key), overrides, validation, derived values,
 * and that docs/config.md holds the table `config_print_help` prints. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static const ConfigKey *key_of(const char *name) {
    for (int i = 0; i < lc_config_nkeys; i++) {
        if (strcmp(lc_config_keys[i].key, name) == 0) return &lc_config_keys[i];
    }
    ck_abort_msg("no key %s", name);
    return NULL;
}

/* Write `text` to a file of this process under /tmp; returns its path (static buffer). */
static const char *tmp_write(const char *tag, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/lc_test_config_%ld_%s.yaml", (long)getpid(), tag);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(fputs(text, f) != EOF);
    ck_assert(fclose(f) == 0);
    return path;
}

/* Read a whole stream from the start into a malloc'd string. */
static char *stream_text(FILE *f) {
    ck_assert(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    ck_assert(n >= 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = 0;
    return s;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The error must be one line, start with "<path>:<line>: " and contain each of the needles. */
static void expect_load_error(const char *yaml, int line, const char *needle1, const char *needle2) {
    Config c;
    char prefix[300];
    config_defaults(&c);
    const char *path = tmp_write("err", yaml);
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    EXPECT_DIE(config_load_file(&c, path), needle1);
    ck_assert_msg(strncmp(lc_last_error, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", lc_last_error,
                  prefix);
    ck_assert_msg(!needle2 || strstr(lc_last_error, needle2), "'%s' does not contain '%s'", lc_last_error, needle2);
    ck_assert_msg(!strchr(lc_last_error, '\n'), "error spans several lines: '%s'", lc_last_error);
    unlink(path);
}

static void expect_override_error(const char *assignment, const char *needle) {
    Config c;
    config_defaults(&c);
    EXPECT_DIE(config_apply_override(&c, assignment), needle);
    ck_assert_msg(strstr(lc_last_error, "command line") != NULL, "'%s' does not name the command line", lc_last_error);
    ck_assert_msg(!strchr(lc_last_error, '\n'), "error spans several lines: '%s'", lc_last_error);
}

static void expect_validate_error(const Config *c, const char *needle) {
    EXPECT_DIE(config_validate(c), needle);
    ck_assert_msg(!strchr(lc_last_error, '\n'), "error spans several lines: '%s'", lc_last_error);
}

/* ---------------------------------------------------------------- schema and defaults */

START_TEST(schema_table) {
    static const size_t type_size[] = {sizeof(int64_t), sizeof(double), sizeof(int), 256, 64};
    ck_assert_int_gt(lc_config_nkeys, 50);
    for (int i = 0; i < lc_config_nkeys; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        ck_assert_msg(strncmp(k->key, "model.", 6) == 0 || strncmp(k->key, "data.", 5) == 0 ||
                          strncmp(k->key, "train.", 6) == 0, "%s has no section", k->key);
        ck_assert_msg(k->size == type_size[k->type], "%s: size %zu", k->key, k->size);
        ck_assert_msg(k->offset + k->size <= sizeof(Config), "%s lies outside Config", k->key);
        ck_assert_msg(k->help[0] != 0, "%s has no help", k->key);
        for (int j = 0; j < i; j++) {
            const ConfigKey *o = &lc_config_keys[j];
            ck_assert_msg(strcmp(k->key, o->key) != 0, "duplicate key %s", k->key);
            ck_assert_msg(k->offset >= o->offset + o->size || o->offset >= k->offset + k->size, "%s overlaps %s", k->key,
                          o->key);
        }
    }
    ck_assert_uint_eq(key_of("model.d_model")->offset, offsetof(Config, model.d_model));
    ck_assert_uint_eq(key_of("train.seed")->offset, offsetof(Config, train.seed));
    ck_assert_uint_eq(key_of("data.seed")->offset, offsetof(Config, data.seed));
}
END_TEST

START_TEST(defaults_valid) {
    Config c;
    config_defaults(&c);
    config_validate(&c);  /* dies (fails the test) on any problem */
    ck_assert_int_eq(c.model.d_model, 128);
    ck_assert_int_eq(c.model.vocab_size, 50257);
    ck_assert_int_eq(c.model.filter_emb_dim, 33);
    ck_assert_int_eq(c.model.filter_modulate, 1);
    ck_assert_int_eq(c.train.decay_all, 0);
    ck_assert_str_eq(c.model.conv_impl, "flashfft");
    ck_assert_str_eq(c.data.path, "data/text.h5");
    ck_assert_str_eq(c.train.out_dir, "runs/default");
    ck_assert(c.train.lr == 6e-4 && c.model.ln_eps == 1e-5 && c.train.adam_eps == 1e-8);
    ck_assert_int_eq(c.data.seed, 1337);
    ck_assert_int_eq(c.train.seed, 2222);
    ck_assert_int_eq(config_vocab_padded(&c), 50264);
    ck_assert_int_eq(config_l_max(&c), 256);
}
END_TEST

/* ---------------------------------------------------------------- loading */

START_TEST(load_sample) {
    const char *yaml =
        "# a Hyena-s-like model\n"
        "model:\n"
        "  d_model: 864        # width\n"
        "  n_layer: '18'\n"
        "  d_inner: \"1728\"\n"
        "  l_max: 4_096\n"
        "  filter_modulate: Off\n"
        "  filter_pos_emb_trainable: YES\n"
        "  filter_shift: -1.5e+2\n"
        "  embed_dropout: .25\n"
        "  conv_impl: cufft\n"
        "data: {path: 'it''s here.h5', seq_len: 4096}\n"
        "train:\n"
        "  lr: 6e-4\n"
        "  decay_all: 1\n"
        "  out_dir: \"runs/a\\tb \\\"q\\\" \\u00e9\"\n"
        "  max_steps: &steps 5000\n"
        "  decay_steps: *steps\n"
        "  schedule: linear\n";
    Config c;
    config_defaults(&c);
    config_load_string(&c, yaml, "sample");
    ck_assert_int_eq(c.model.d_model, 864);
    ck_assert_int_eq(c.model.n_layer, 18);
    ck_assert_int_eq(c.model.d_inner, 1728);
    ck_assert_int_eq(c.model.l_max, 4096);
    ck_assert_int_eq(c.model.filter_modulate, 0);
    ck_assert_int_eq(c.model.filter_pos_emb_trainable, 1);
    ck_assert(c.model.filter_shift == -150.0);
    ck_assert(c.model.embed_dropout == 0.25);
    ck_assert_str_eq(c.model.conv_impl, "cufft");
    ck_assert_str_eq(c.data.path, "it's here.h5");
    ck_assert_int_eq(c.data.seq_len, 4096);
    ck_assert(c.train.lr == strtod("6e-4", NULL));
    ck_assert_int_eq(c.train.decay_all, 1);
    ck_assert_str_eq(c.train.out_dir, "runs/a\tb \"q\" \xc3\xa9");
    ck_assert_int_eq(c.train.max_steps, 5000);
    ck_assert_int_eq(c.train.decay_steps, 5000);
    ck_assert_str_eq(c.train.schedule, "linear");
    /* keys the file does not mention keep their values */
    ck_assert_int_eq(c.model.vocab_size, 50257);
    ck_assert_int_eq(c.train.batch_size, 8);
    config_validate(&c);
    ck_assert_int_eq(config_l_max(&c), 4096);

    /* the same text from a file */
    Config f;
    config_defaults(&f);
    const char *path = tmp_write("sample", yaml);
    config_load_file(&f, path);
    unlink(path);
    ck_assert(memcmp(&c, &f, sizeof c) == 0);
}
END_TEST

START_TEST(load_spellings) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON", "1", "'true'"};
    static const char *const no[] = {"false", "False", "no", "NO", "off", "Off", "0", "\"no\""};
    char yaml[128];
    Config c;
    config_defaults(&c);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        snprintf(yaml, sizeof yaml, "train:\n  decay_all: %s\n", yes[i]);
        c.train.decay_all = 0;
        config_load_string(&c, yaml, "bools");
        ck_assert_msg(c.train.decay_all == 1, "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        snprintf(yaml, sizeof yaml, "train:\n  decay_all: %s\n", no[i]);
        c.train.decay_all = 1;
        config_load_string(&c, yaml, "bools");
        ck_assert_msg(c.train.decay_all == 0, "%s", no[i]);
    }
    /* empty inputs change nothing */
    Config d;
    config_defaults(&c);
    config_defaults(&d);
    config_load_string(&c, "", "empty");
    config_load_string(&c, "# only a comment\n", "comment");
    config_load_string(&c, "model:\ndata: ~\ntrain:\n", "empty sections");
    config_load_string(&c, "model:\n  d_model: 64\n...\n", "document end marker");
    ck_assert_int_eq(c.model.d_model, 64);
    c.model.d_model = d.model.d_model;
    ck_assert(memcmp(&c, &d, sizeof c) == 0);
    /* numbers: signs, leading zeros, separators, exponents */
    config_load_string(&c, "model:\n  d_model: +0_064\n  filter_sine_freq: 1E3\ntrain:\n  lr: 0.5e-3\n", "numbers");
    ck_assert_int_eq(c.model.d_model, 64);
    ck_assert(c.model.filter_sine_freq == 1000.0 && c.train.lr == 0.5e-3);
    /* a string of exactly 255 bytes fits */
    char big[300];
    memset(big, 'a', 255);
    big[255] = 0;
    char *y = malloc(400);
    snprintf(y, 400, "data:\n  path: %s\n", big);
    config_load_string(&c, y, "long string");
    free(y);
    ck_assert_uint_eq(strlen(c.data.path), 255);
}
END_TEST

/* ---------------------------------------------------------------- round trips */

/* A random string of up to `cap - 1` bytes drawn from pieces YAML finds awkward: quotes,
 * backslashes, comment and mapping indicators, control characters, multi-byte UTF-8 and the
 * characters libyaml treats as line breaks or rejects unescaped (U+0085, U+2028, U+FEFF, ...). */
static void random_string(char *out, size_t cap, uint64_t *st) {
    static const char *const pieces[] = {
        "a", "Z", "0", "/", ".", "_", " ", "  ", "\"", "'", "''", "\\", "\\n", "#", " #", ": ", ":", "- ", "---", "...",
        "&a", "*a", "!", "%", "@", "`", "{", "}", "[", "]", ",", "?", "|", ">", "~", "null", "true", "1e5", "\n",
        "\t", "\r", "\x01", "\x1b", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc2\x85", "\xc2\x80",
        "\xc2\xa0", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xef\xbb\xbf", "\xef\xbf\xbe", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf"};
    size_t n = 0, want = (size_t)(tu_uniform(st) * (double)cap);
    out[0] = 0;
    for (;;) {
        const char *p = pieces[(size_t)(tu_uniform(st) * (double)(sizeof pieces / sizeof *pieces))];
        size_t len = strlen(p);
        if (n + len >= cap || n + len > want) break;
        memcpy(out + n, p, len);
        out[n += len] = 0;
    }
}

/* Random values over each key's whole range, bounds included. Fields are written in place
 * (not through the parser), so the round trip checks the writer and the reader separately. */
static void random_config(Config *c, uint64_t *st) {
    config_defaults(c);
    for (int i = 0; i < lc_config_nkeys; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        char *field = (char *)c + k->offset;
        double u = tu_uniform(st), pick = tu_uniform(st);
        if (k->type == CFG_INT) {
            int64_t lo = (int64_t)k->lo, hi = (int64_t)k->hi, v;
            if (pick < 0.2) v = lo;
            else if (pick < 0.4) v = hi;
            else if (pick < 0.7) v = lo + (int64_t)(u * u * u * 1000.0) % (hi - lo + 1);
            else v = lo + (int64_t)(u * (double)(hi - lo));
            memcpy(field, &v, sizeof v);
        } else if (k->type == CFG_FLOAT) {
            double v;
            if (pick < 0.15) v = k->lo;
            else if (pick < 0.3) v = k->hi;
            else if (pick < 0.6 && k->lo > 0) v = exp(log(k->lo) + u * (log(k->hi) - log(k->lo)));
            else if (pick < 0.65 && k->lo < 0) v = -0.0;
            else v = k->lo + u * (k->hi - k->lo);
            if (v < k->lo) v = k->lo;
            if (v > k->hi) v = k->hi;
            memcpy(field, &v, sizeof v);
        } else if (k->type == CFG_BOOL) {
            int v = u < 0.5;
            memcpy(field, &v, sizeof v);
        } else if (k->type == CFG_ENUM) {
            int n = 1, pickn;
            for (const char *p = k->choices; *p; p++) n += *p == '|';
            pickn = (int)(u * n);
            const char *p = k->choices;
            for (int j = 0; j < pickn; j++) p = strchr(p, '|') + 1;
            size_t len = strchr(p, '|') ? (size_t)(strchr(p, '|') - p) : strlen(p);
            memset(field, 0, k->size);
            memcpy(field, p, len);
        } else {
            memset(field, 0, k->size);
            random_string(field, k->size, st);
        }
    }
}

/* Name the first field where two configs differ (memcmp says only that they do). */
static void assert_same_config(const Config *a, const Config *b, const char *yaml) {
    for (int i = 0; i < lc_config_nkeys; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        ck_assert_msg(memcmp((const char *)a + k->offset, (const char *)b + k->offset, k->size) == 0,
                      "%s differs after the round trip; YAML was:\n%s", k->key, yaml);
    }
    ck_assert_msg(memcmp(a, b, sizeof *a) == 0, "padding differs after the round trip");
}

START_TEST(round_trip_defaults) {
    Config a, b;
    config_defaults(&a);
    char *yaml = config_to_yaml(&a);
    config_defaults(&b);
    b.model.d_model = 7;  /* every key is written, so what b held before must not matter */
    config_load_string(&b, yaml, "round trip");
    assert_same_config(&a, &b, yaml);
    free(yaml);
}
END_TEST

START_TEST(round_trip_random) {
    uint64_t st = tu_seed();
    Config a, b;
    /* 300 configs x ~60 keys: every string piece and range end appears many times */
    for (int rep = 0; rep < 300; rep++) {
        random_config(&a, &st);
        random_config(&b, &st);
        char *yaml = config_to_yaml(&a);
        config_load_string(&b, yaml, "round trip");
        assert_same_config(&a, &b, yaml);
        free(yaml);
    }
    /* through a file with config_write_yaml */
    random_config(&a, &st);
    const char *path = tmp_write("roundtrip", "");
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    config_write_yaml(&a, f);
    ck_assert(fclose(f) == 0);
    config_defaults(&b);
    config_load_file(&b, path);
    unlink(path);
    assert_same_config(&a, &b, "(file)");
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(error_missing_file) {
    Config c;
    char path[128];
    config_defaults(&c);
    snprintf(path, sizeof path, "/tmp/lc_test_config_%ld_missing.yaml", (long)getpid());
    EXPECT_DIE(config_load_file(&c, path), path);
    ck_assert_msg(strstr(lc_last_error, "No such file or directory"), "%s", lc_last_error);
    EXPECT_DIE(config_load_file(&c, "/tmp"), "/tmp");
    ck_assert_msg(strstr(lc_last_error, "Is a directory"), "%s", lc_last_error);
}
END_TEST

START_TEST(error_syntax) {
    expect_load_error("model:\n  d_model: 128\n n_layer: 2\n", 3, "YAML syntax error", "did not find expected key");
    expect_load_error("model:\n  d_model: [1, 2\n", 3, "YAML syntax error", "flow sequence at line 2");
    expect_load_error("model:\n  d_model: 1\n  x: y: z\n", 3, "YAML syntax error", "mapping values");
    expect_load_error("model:\n\td_model: 1\n", 2, "YAML syntax error", NULL);
    expect_load_error("model:\n  d_model: *nowhere\n", 2, "YAML syntax error", "undefined alias");
    expect_load_error("model:\n  d_model: 1\ndata:\n  path: \xff\n", 4, "YAML syntax error", "UTF-8");
}
END_TEST

START_TEST(error_structure) {
    expect_load_error("- model\n- data\n", 1, "top level must be a mapping", "sequence");
    expect_load_error("just text\n", 1, "top level must be a mapping", "scalar");
    expect_load_error("modle:\n  d_model: 1\n", 1, "unknown section 'modle'", "did you mean 'model'");
    expect_load_error("optimizer:\n  lr: 1\n", 1, "unknown section 'optimizer'", "model, data and train");
    expect_load_error("model.d_model: 3\n", 1, "'model.d_model' must be written as 'd_model:'", "'model:' section");
    expect_load_error("model: 5\n", 1, "section 'model' must be a mapping", NULL);
    expect_load_error("train:\n  - lr\n", 2, "section 'train' must be a mapping", "sequence");
    expect_load_error("model:\n  d_model: 2\n\nmodel:\n  n_layer: 3\n", 4, "duplicate section 'model'", "line 1");
    expect_load_error("model:\n  d_model: 5\n---\ntrain:\n  lr: 1\n", 4, "one YAML document", NULL);
    expect_load_error("model:\n  ? [a]\n  : 1\n", 2, "keys in section 'model'", NULL);
}
END_TEST

START_TEST(error_keys) {
    expect_load_error("model:\n  d_model: 64\n  d_modle: 3\n", 3, "unknown key 'model.d_modle'",
                      "(did you mean 'model.d_model'?)");
    expect_load_error("model:\n  seq_len: 5\n", 2, "unknown key 'model.seq_len'", "did you mean 'data.seq_len'");
    expect_load_error("train:\n  warmup: 5\n", 2, "unknown key 'train.warmup'", "did you mean 'train.warmup_steps'");
    expect_load_error("model:\n  zzzzzzzz: 1\n", 2, "unknown key 'model.zzzzzzzz'", NULL);
    ck_assert_msg(!strstr(lc_last_error, "did you mean"), "far-off key got a suggestion: %s", lc_last_error);
    expect_load_error("model:\n  d_model: 2\n  n_layer: 3\n  # again\n  d_model: 4\n", 5, "duplicate key 'model.d_model'",
                      "first set at line 2");
    expect_load_error("train:\n  lr: [1, 2]\n", 2, "train.lr: expected a single value", "sequence");
    expect_load_error("train:\n  lr:\n    peak: 1\n", 3, "train.lr: expected a single value", "mapping");
}
END_TEST

START_TEST(error_values) {
    /* INT: integer literals only */
    static const char *const bad_int[] = {"12.5", "12abc", "1e3", "0x10", "''", "1__0", "_1", "1_", "12 13"};
    char yaml[512];
    for (size_t i = 0; i < sizeof bad_int / sizeof *bad_int; i++) {
        snprintf(yaml, sizeof yaml, "model:\n  n_layer: 2\n  d_model: %s\n", bad_int[i]);
        expect_load_error(yaml, 3, "model.d_model: expected an integer", NULL);
    }
    /* FLOAT: finite numbers only */
    static const char *const bad_float[] = {"abc", "nan", ".nan", "inf", ".inf", "-.inf", "1e400", "3e-4x", "1.2.3", "''"};
    for (size_t i = 0; i < sizeof bad_float / sizeof *bad_float; i++) {
        snprintf(yaml, sizeof yaml, "train:\n  lr: %s\n", bad_float[i]);
        expect_load_error(yaml, 2, "train.lr: expected a finite number", NULL);
    }
    /* BOOL */
    expect_load_error("model:\n  filter_modulate: maybe\n", 2, "model.filter_modulate: expected true or false", "maybe");
    expect_load_error("model:\n  filter_modulate: 2\n", 2, "model.filter_modulate", NULL);
    /* ENUM: the error lists the choices */
    expect_load_error("model:\n  conv_impl: fft\n", 2, "model.conv_impl: 'fft' is not one of: flashfft, cufft", NULL);
    expect_load_error("train:\n  schedule: Cosine\n", 2, "train.schedule", "cosine, linear, constant");
    /* STR: 256 bytes do not fit in char[256]; NUL bytes and invalid UTF-8 are refused */
    char big[300];
    memset(big, 'x', 256);
    big[256] = 0;
    snprintf(yaml, sizeof yaml, "data:\n  path: %s\n", big);
    expect_load_error(yaml, 2, "data.path", "too long (256 bytes, at most 255)");
    expect_load_error("data:\n  path: \"a\\0b\"\n", 2, "data.path", "NUL byte");
    /* ranges name both ends */
    expect_load_error("model:\n  d_model: 0\n", 2, "model.d_model = 0 is out of range [1, 65536]", NULL);
    expect_load_error("model:\n  d_model: 65537\n", 2, "model.d_model = 65537 is out of range [1, 65536]", NULL);
    expect_load_error("model:\n  d_model: 99999999999999999999999\n", 2, "model.d_model", "out of range [1, 65536]");
    expect_load_error("data:\n  seed: 9007199254740993\n", 2, "data.seed", "out of range [0, 9007199254740992]");
    expect_load_error("train:\n  lr: 11\n", 2, "train.lr = 11 is out of range [0, 10]", NULL);
    expect_load_error("train:\n  lr: -1e-9\n", 2, "train.lr = -1e-9 is out of range [0, 10]", NULL);
    expect_load_error("model:\n  filter_target: 0\n", 2, "model.filter_target", "[1e-12, 1]");
}
END_TEST

/* ---------------------------------------------------------------- overrides */

START_TEST(overrides) {
    Config c;
    config_defaults(&c);
    config_apply_override(&c, "train.lr=3e-4");
    ck_assert(c.train.lr == 3e-4);
    config_apply_override(&c, "  model.d_model = 256  ");
    ck_assert_int_eq(c.model.d_model, 256);
    config_apply_override(&c, "data.path=a=b.h5");
    ck_assert_str_eq(c.data.path, "a=b.h5");
    config_apply_override(&c, "train.decay_all=YES");
    ck_assert_int_eq(c.train.decay_all, 1);
    config_apply_override(&c, "model.conv_impl=cufft");
    ck_assert_str_eq(c.model.conv_impl, "cufft");
    config_apply_override(&c, "train.out_dir=");
    ck_assert_str_eq(c.train.out_dir, "");

    expect_override_error("train.lr", "override 'train.lr' has no '='");
    expect_override_error("train.lrr=3e-4", "override 'train.lrr=3e-4': unknown key 'train.lrr' (did you mean 'train.lr'?)");
    expect_override_error("lr=1", "did you mean 'train.lr'");
    expect_override_error("seed=1", "did you mean 'data.seed' or 'train.seed'?");
    expect_override_error("=1", "unknown key ''");
    expect_override_error("model.d_model=1.5", "override 'model.d_model=1.5': model.d_model: expected an integer");
    expect_override_error("model.d_model=0", "model.d_model = 0 is out of range [1, 65536]");
    expect_override_error("train.device=tpu", "train.device: 'tpu' is not one of: cpu, cuda");
    expect_override_error("train.lr=nan", "train.lr: expected a finite number");
}
END_TEST

/* ---------------------------------------------------------------- validation */

START_TEST(validate_errors) {
    Config c;
    config_defaults(&c);
    config_apply_override(&c, "model.filter_emb_dim=32");
    expect_validate_error(&c, "model.filter_emb_dim (32) must be odd and >= 3");
    c.model.filter_emb_dim = 1;  /* below the schema minimum: only a Config filled in code */
    expect_validate_error(&c, "model.filter_emb_dim (1) must be odd");

    config_defaults(&c);
    config_apply_override(&c, "model.l_max=128");
    expect_validate_error(&c, "model.l_max (128) must be >= data.seq_len (256)");
    config_apply_override(&c, "model.l_max=256");
    config_validate(&c);
    ck_assert_int_eq(config_l_max(&c), 256);

    config_defaults(&c);
    config_apply_override(&c, "train.warmup_steps=2000");
    expect_validate_error(&c, "train.warmup_steps (2000) must be <= train.max_steps (1000)");

    config_defaults(&c);
    c.model.d_inner = 0;
    expect_validate_error(&c, "model.d_inner (0) must be >= 1");

    config_defaults(&c);
    config_apply_override(&c, "train.decay_steps=50");
    expect_validate_error(&c, "train.decay_steps (50) must be 0 or >= train.warmup_steps (100)");

    config_defaults(&c);
    config_apply_override(&c, "data.path=");
    expect_validate_error(&c, "data.path must not be empty");

    config_defaults(&c);
    config_apply_override(&c, "train.batch_size=1048576");
    config_apply_override(&c, "train.grad_accum=1048576");
    config_apply_override(&c, "data.seq_len=1073741824");
    expect_validate_error(&c, "train.batch_size * train.grad_accum * data.seq_len");

    /* values set in code bypass the parser: the schema is checked again */
    config_defaults(&c);
    c.model.d_model = 0;
    expect_validate_error(&c, "model.d_model (0) is out of range [1, 65536]");
    config_defaults(&c);
    c.train.lr = NAN;
    expect_validate_error(&c, "train.lr");
    config_defaults(&c);
    strcpy(c.model.conv_impl, "fft");
    expect_validate_error(&c, "model.conv_impl: 'fft' is not one of");
    config_defaults(&c);
    c.train.decay_all = 2;
    expect_validate_error(&c, "train.decay_all (2) must be 0 or 1");
}
END_TEST

/* ---------------------------------------------------------------- derived values */

START_TEST(vocab_padding) {
    Config c;
    config_defaults(&c);
    ck_assert_int_eq(config_vocab_padded(&c), 50264);  /* GPT-2 BPE, padded to 8 */
    config_apply_override(&c, "model.vocab_size=50264");
    ck_assert_int_eq(config_vocab_padded(&c), 50264);
    config_apply_override(&c, "model.vocab_size=12");
    config_apply_override(&c, "model.vocab_pad_multiple=16");
    ck_assert_int_eq(config_vocab_padded(&c), 16);  /* HyenaDNA: 12 characters, 16 rows */
    config_apply_override(&c, "model.vocab_pad_multiple=1");
    ck_assert_int_eq(config_vocab_padded(&c), 12);
    uint64_t st = tu_seed();
    for (int i = 0; i < 10000; i++) {
        c.model.vocab_size = 2 + (int64_t)(tu_uniform(&st) * 16777214.0);
        c.model.vocab_pad_multiple = 1 + (int64_t)(tu_uniform(&st) * 4095.0);
        int64_t v = c.model.vocab_size, m = c.model.vocab_pad_multiple, p = config_vocab_padded(&c);
        ck_assert_msg(p % m == 0 && p >= v && p - v < m, "vocab %lld pad %lld -> %lld", (long long)v, (long long)m,
                      (long long)p);
    }
    config_defaults(&c);
    ck_assert_int_eq(config_l_max(&c), c.data.seq_len);
    config_apply_override(&c, "model.l_max=8192");
    ck_assert_int_eq(config_l_max(&c), 8192);
}
END_TEST

/* ---------------------------------------------------------------- tables and docs */

START_TEST(print_and_help) {
    Config c;
    config_defaults(&c);
    config_apply_override(&c, "model.d_model=512");
    FILE *f = tmpfile();
    ck_assert(f != NULL);
    config_print(&c, f);
    char *s = stream_text(f);
    fclose(f);
    ck_assert_int_eq(count_lines(s), lc_config_nkeys);
    ck_assert_msg(strstr(s, "model.d_model") && strstr(s, "= 512  (default 128)"), "%s", s);
    ck_assert_msg(strstr(s, "data.path") && strstr(s, "= \"data/text.h5\"\n"), "%s", s);
    free(s);

    f = tmpfile();
    ck_assert(f != NULL);
    config_print_help(f, 0);
    s = stream_text(f);
    fclose(f);
    ck_assert_int_eq(count_lines(s), lc_config_nkeys + 1);
    ck_assert(strstr(s, "[1, 65536]") && strstr(s, "flashfft | cufft"));
    free(s);

    f = tmpfile();
    ck_assert(f != NULL);
    config_print_help(f, 1);
    s = stream_text(f);
    fclose(f);
    ck_assert_int_eq(count_lines(s), lc_config_nkeys + 2);
    for (int i = 0; i < lc_config_nkeys; i++) {
        char row[128];
        snprintf(row, sizeof row, "\n| `%s` |", lc_config_keys[i].key);
        ck_assert_msg(strstr(s, row), "no row for %s", lc_config_keys[i].key);
    }
    ck_assert(strstr(s, "flashfft \\| cufft"));

    /* docs/config.md must hold exactly this table (tests run in the source root) */
    FILE *doc = fopen("docs/config.md", "rb");
    ck_assert_msg(doc != NULL, "docs/config.md not found (run from the source root)");
    char *d = stream_text(doc);
    fclose(doc);
    ck_assert_msg(strstr(d, s) != NULL, "docs/config.md is out of date: paste the table that "
                                         "config_print_help(f, 1) prints");
    free(d);
    free(s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, schema_table);
    tcase_add_test(tc, defaults_valid);
    tcase_add_test(tc, load_sample);
    tcase_add_test(tc, load_spellings);
    tcase_add_test(tc, round_trip_defaults);
    tcase_add_test(tc, round_trip_random);
    tcase_add_test(tc, error_missing_file);
    tcase_add_test(tc, error_syntax);
    tcase_add_test(tc, error_structure);
    tcase_add_test(tc, error_keys);
    tcase_add_test(tc, error_values);
    tcase_add_test(tc, overrides);
    tcase_add_test(tc, validate_errors);
    tcase_add_test(tc, vocab_padding);
    tcase_add_test(tc, print_and_help);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
