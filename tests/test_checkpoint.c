/* Checkpoint round trip and failure modes. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "model/model.h"
#include "testutil.h"

static Config cfg(int d) {
    Config c;
    config_defaults(&c);
    c.model.d_model = d;
    c.model.n_layer = 2;
    c.model.d_inner = 2 * d;
    c.model.vocab_size = 100;
    c.model.filter_order = 8;
    c.model.filter_emb_dim = 5;
    c.data.seq_len = 16;
    return c;
}

static void fill_random(Model *m, uint64_t *rng) {
    ParamTable *t = model_params(m);
    float *h = xmalloc((size_t)t->total * sizeof(float));
    for (acc_t **blk = (acc_t *[]){t->master, t->m, t->v, NULL}; *blk; blk++) {
        tu_fill_normal_f(h, t->total, 1.0f, rng);
        model_ops(m)->acc_from_f32(*blk, h, t->total);
    }
    free(h);
}

START_TEST(round_trip_is_exact) {
    uint64_t rng = tu_seed();
    Config c = cfg(16);
    const Ops *ops = ops_cpu();
    Model *a = model_create(&c, ops, 2, 16, 1), *b = model_create(&c, ops, 2, 16, 1);
    fill_random(a, &rng);
    TrainState st = {.step = 17, .data_cursor = 1234, .tokens_seen = 999, .elapsed_seconds = 1.5, .flops = 2e9,
                     .world_size = 1};
    const char *path = "/tmp/lc_test_ckpt.h5";
    ckpt_save(path, model_params(a), ops, &c, &st, 1);
    ck_assert_int_ne(access("/tmp/lc_test_ckpt.h5.tmp", F_OK), 0);
    TrainState got;
    ckpt_load(path, model_params(b), ops, &got);
    ck_assert_int_eq(got.step, 17);
    ck_assert_int_eq(got.data_cursor, 1234);
    ck_assert_int_eq(got.tokens_seen, 999);
    ck_assert(got.elapsed_seconds == 1.5 && got.flops == 2e9 && got.world_size == 1);
    ParamTable *ta = model_params(a), *tb = model_params(b);
    size_t bytes = (size_t)ta->total * ops->acc_bytes;
    ck_assert(memcmp(ta->master, tb->master, bytes) == 0);
    ck_assert(memcmp(ta->m, tb->m, bytes) == 0);
    ck_assert(memcmp(ta->v, tb->v, bytes) == 0);
    char *yaml = ckpt_read_config(path);
    Config back;
    config_defaults(&back);
    config_load_string(&back, yaml, path);
    ck_assert(memcmp(&back, &c, sizeof c) == 0);
    free(yaml);
    FILE *devnull = fopen("/dev/null", "w");
    ckpt_inspect(path, devnull);
    fclose(devnull);
    model_free(a);
    model_free(b);
}
END_TEST

START_TEST(mismatched_model_names_the_dataset) {
    Config c = cfg(16), other = cfg(24);
    const Ops *ops = ops_cpu();
    Model *a = model_create(&c, ops, 2, 16, 1), *b = model_create(&other, ops, 2, 16, 1);
    TrainState st = {.world_size = 1};
    ckpt_save("/tmp/lc_test_ckpt2.h5", model_params(a), ops, &c, &st, 1);
    TrainState got;
    EXPECT_DIE(ckpt_load("/tmp/lc_test_ckpt2.h5", model_params(b), ops, &got),
               "/params/backbone.embeddings.word_embeddings.weight dimension 1 is 16, the model expects 24");
    model_free(a);
    model_free(b);
}
END_TEST

START_TEST(weights_only_cannot_resume) {
    Config c = cfg(16);
    const Ops *ops = ops_cpu();
    Model *a = model_create(&c, ops, 2, 16, 1);
    TrainState st = {.world_size = 1}, got;
    ckpt_save("/tmp/lc_test_ckpt3.h5", model_params(a), ops, &c, &st, 0);
    EXPECT_DIE(ckpt_load("/tmp/lc_test_ckpt3.h5", model_params(a), ops, &got), "weights-only");
    model_free(a);
}
END_TEST

START_TEST(bad_files_fail_clearly) {
    Config c = cfg(16);
    const Ops *ops = ops_cpu();
    Model *a = model_create(&c, ops, 2, 16, 1);
    TrainState st = {.world_size = 1}, got;
    EXPECT_DIE(ckpt_load("/tmp/lc_no_such_ckpt.h5", model_params(a), ops, &got), "/tmp/lc_no_such_ckpt.h5");
    FILE *f = fopen("/tmp/lc_not_hdf5.h5", "w");
    fputs("not an hdf5 file\n", f);
    fclose(f);
    EXPECT_DIE(ckpt_load("/tmp/lc_not_hdf5.h5", model_params(a), ops, &got), "not a readable HDF5 checkpoint");
    ckpt_save("/tmp/lc_test_ckpt4.h5", model_params(a), ops, &c, &st, 1);
    ck_assert_int_eq(truncate("/tmp/lc_test_ckpt4.h5", 4096), 0);
    EXPECT_DIE(ckpt_load("/tmp/lc_test_ckpt4.h5", model_params(a), ops, &got), "/tmp/lc_test_ckpt4.h5");
    EXPECT_DIE(ckpt_save("/tmp/lc_no_such_dir/x.h5", model_params(a), ops, &c, &st, 1), "cannot create checkpoint");
    model_free(a);
}
END_TEST

/* Flip bytes in the middle half of the file, where the parameter data lies. */
static void corrupt(const char *path, uint64_t *rng) {
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    for (int i = 0; i < 16; i++) {
        long at = size / 4 + (long)(tu_uniform(rng) * (double)(size / 2));
        fseek(f, at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x5A, f);
    }
    fclose(f);
}

START_TEST(corruption_is_detected) {
    uint64_t rng = tu_seed();
    Config c = cfg(64);
    const Ops *ops = ops_cpu();
    Model *a = model_create(&c, ops, 2, 16, 1);
    fill_random(a, &rng);
    TrainState st = {.world_size = 1}, got;
    const char *path = "/tmp/lc_test_ckpt5.h5";
    ckpt_save(path, model_params(a), ops, &c, &st, 1);
    char why[512];
    ck_assert_int_eq(ckpt_verify(path, why, sizeof why), 1);
    corrupt(path, &rng);
    ck_assert_int_eq(ckpt_verify(path, why, sizeof why), 0);
    fprintf(stderr, "  corrupted checkpoint: %s\n", why);
    EXPECT_DIE(ckpt_load(path, model_params(a), ops, &got), path);
    model_free(a);
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, round_trip_is_exact);
    tcase_add_test(tc, mismatched_model_names_the_dataset);
    tcase_add_test(tc, weights_only_cannot_resume);
    tcase_add_test(tc, bad_files_fail_clearly);
    tcase_add_test(tc, corruption_is_detected);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
