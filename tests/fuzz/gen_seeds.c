/* Seed corpora of the HDF5 harnesses: small valid files, each under ~64 KB.
 *   gen_seeds <tokens_dir> <checkpoint_dir>
 * Token streams cover the layouts the reader accepts (docs/formats.md): uint16 and int32,
 * contiguous, chunked, gzip (with shuffle and Fletcher-32), fixed- and variable-length string
 * attributes, optional group attributes, old and newest HDF5 object formats. Checkpoints are
 * ckpt_save output of the fuzz_checkpoint model (fuzz_ckpt_config), with and without moments,
 * copied into compact HDF5 structures (same content: see compact_copy). */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "fuzz_common.h"
#include "model/model.h"

#define CHECK(x) do { if ((x) < 0) { fprintf(stderr, "gen_seeds: %s failed\n", #x); exit(1); } } while (0)

typedef struct {
    const char *name;
    int int32;        /* int32 tokens, else uint16 */
    int chunk;        /* 0: contiguous */
    int gzip;         /* with shuffle and Fletcher-32 too */
    int vlen_str;     /* variable-length UTF-8 string attributes (h5py str) */
    int group_attrs;  /* n_documents, unigram_entropy */
    int latest;       /* newest object header and attribute formats */
    int64_t n_train, n_val, vocab;
} TokSeed;

static void attr_i64(hid_t obj, const char *name, hid_t ftype, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a);
    CHECK(H5Awrite(a, H5T_NATIVE_INT64, &v));
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_f64(hid_t obj, const char *name, double v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a);
    CHECK(H5Awrite(a, H5T_NATIVE_DOUBLE, &v));
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_str(hid_t obj, const char *name, const char *v, int vlen) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    CHECK(H5Tset_size(ty, vlen ? H5T_VARIABLE : strlen(v) + 1));
    if (vlen) CHECK(H5Tset_cset(ty, H5T_CSET_UTF8));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a);
    CHECK(vlen ? H5Awrite(a, ty, &v) : H5Awrite(a, ty, v));
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
}

static void write_split(hid_t f, const TokSeed *s, const char *group, int64_t n, uint64_t seed) {
    hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(g);
    if (s->group_attrs) {
        attr_i64(g, "n_documents", H5T_STD_I64LE, n / 16 + 1);
        attr_f64(g, "unigram_entropy", 2.5);
    }
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((seed >> 33) % (uint64_t)s->vocab);
        if (i % 16 == 15) tok[i] = (int32_t)(s->vocab - 1);  /* end of a document */
    }
    /* the newest format refuses a chunk larger than a fixed dimension */
    hsize_t dims[1] = {(hsize_t)n}, chunk[1] = {(hsize_t)(s->chunk < n ? s->chunk : n)};
    hid_t sp = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (s->chunk) CHECK(H5Pset_chunk(dcpl, 1, chunk));
    if (s->gzip) {
        CHECK(H5Pset_shuffle(dcpl));
        CHECK(H5Pset_deflate(dcpl, 6));
        CHECK(H5Pset_fletcher32(dcpl));
    }
    hid_t ds = H5Dcreate2(g, "tokens", s->int32 ? H5T_STD_I32LE : H5T_STD_U16LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(ds);
    CHECK(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tok));
    free(tok);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Gclose(g);
}

static void write_tokens(const char *dir, const TokSeed *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.h5", dir, s->name);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (s->latest) CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST));
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    CHECK(f);
    attr_str(f, "format", "longconv-tokens", s->vlen_str);
    attr_i64(f, "version", s->vlen_str ? H5T_STD_I64LE : H5T_STD_U8LE, 1);
    attr_i64(f, "vocab_size", H5T_STD_I64LE, s->vocab);
    attr_str(f, "tokenizer", s->vocab > 65536 ? "bert-base-uncased" : "gpt2", s->vlen_str);
    attr_i64(f, "eot_token", s->vlen_str ? H5T_STD_I64LE : H5T_STD_I32LE, s->vocab - 1);
    write_split(f, s, "train", s->n_train, 1);
    write_split(f, s, "val", s->n_val, 2);
    H5Fclose(f);
    H5Pclose(fapl);
}

/* Root attributes of a checkpoint (scalars and fixed-length strings): copied byte for byte. */
static herr_t copy_attr(hid_t src, const char *name, const H5A_info_t *info, void *dst) {
    hid_t a = H5Aopen(src, name, H5P_DEFAULT), ty = H5Aget_type(a), sp = H5Aget_space(a);
    CHECK(a);
    size_t bytes = H5Tget_size(ty) * (size_t)H5Sget_simple_extent_npoints(sp);
    void *buf = malloc(bytes);
    CHECK(H5Aread(a, ty, buf));
    hid_t b = H5Acreate2(*(hid_t *)dst, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(b);
    CHECK(H5Awrite(b, ty, buf));
    free(buf);
    H5Aclose(b);
    H5Sclose(sp);
    H5Tclose(ty);
    H5Aclose(a);
    return 0;
}

/* One dataset rewritten (same type, shape, chunking and checksum filter): the destination file's
 * format decides the chunk index, where H5Ocopy would keep the source's v1 B-tree. */
static herr_t copy_dataset(hid_t src_group, const char *name, const H5L_info_t *info, void *dst_group) {
    hid_t ds = H5Dopen2(src_group, name, H5P_DEFAULT);
    CHECK(ds);
    hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    size_t bytes = H5Tget_size(ty) * (size_t)H5Sget_simple_extent_npoints(sp);
    void *buf = malloc(bytes);
    CHECK(H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    hid_t out = H5Dcreate2(*(hid_t *)dst_group, name, ty, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(out);
    CHECK(H5Dwrite(out, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    free(buf);
    H5Dclose(out);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(ty);
    H5Dclose(ds);
    return 0;
}

/* ckpt_save writes one v1 B-tree per dataset (a few KB each, even for 4 values): the same
 * content written into smaller HDF5 structures keeps each seed a few KB. latest: the newest
 * object formats (v2 object headers, single-chunk index); else the default formats with the
 * smallest B-tree nodes. Groups keep the tracked creation order that ckpt_save sets, unless
 * symtab: old-style groups indexed by name only (as h5py writes them), whose links live in a
 * symbol table instead of dense link storage. */
static void compact_copy(const char *from, const char *to, int latest, int symtab) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS), gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (latest) CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST));
    CHECK(H5Pset_istore_k(fcpl, 1));
    CHECK(H5Pset_sym_k(fcpl, 1, 1));
    if (!symtab) CHECK(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
    hid_t src = H5Fopen(from, H5F_ACC_RDONLY, H5P_DEFAULT), dst = H5Fcreate(to, H5F_ACC_TRUNC, fcpl, fapl);
    CHECK(src);
    CHECK(dst);
    CHECK(H5Aiterate2(src, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, copy_attr, &dst));
    static const char *const groups[] = {"params", "adam_m", "adam_v"};
    for (int i = 0; i < 3; i++) {
        if (H5Lexists(src, groups[i], H5P_DEFAULT) <= 0) continue;
        hid_t gs = H5Gopen2(src, groups[i], H5P_DEFAULT), gd = H5Gcreate2(dst, groups[i], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        CHECK(gs);
        CHECK(gd);
        CHECK(H5Literate(gs, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, copy_dataset, &gd));
        H5Gclose(gd);
        H5Gclose(gs);
    }
    H5Fclose(dst);
    H5Fclose(src);
    H5Pclose(gcpl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
}

/* A seed must load into the harness's model and pass ckpt_verify. */
static void check_loads(const char *path, const ParamTable *want, const Ops *ops) {
    char why[512];
    Config c = fuzz_ckpt_config();
    Model *m = model_create(&c, ops, FUZZ_CKPT_B, FUZZ_CKPT_L, 1);
    TrainState st;
    if (!ckpt_verify(path, why, sizeof why)) {
        fprintf(stderr, "gen_seeds: %s fails ckpt_verify: %s\n", path, why);
        exit(1);
    }
    ckpt_load(path, model_params(m), ops, &st);
    if (memcmp(model_params(m)->master, want->master, (size_t)want->total * ops->acc_bytes) != 0) {
        fprintf(stderr, "gen_seeds: %s does not load the saved values\n", path);
        exit(1);
    }
    model_free(m);
}

static void write_checkpoints(const char *dir) {
    Config c = fuzz_ckpt_config();
    const Ops *ops = ops_cpu();
    Model *m = model_create(&c, ops, FUZZ_CKPT_B, FUZZ_CKPT_L, 1);
    model_init(m, 7);
    char path[4096], tmp[4096];
    TrainState st = {.step = 12, .data_cursor = 96, .tokens_seen = 768, .elapsed_seconds = 0.5, .flops = 1e6,
                     .world_size = 1};
    static const struct { const char *name; int with_optimizer, latest, symtab; } kinds[] = {
        {"ckpt_full_v18", 1, 0, 0},         {"ckpt_full_latest", 1, 1, 0},
        {"ckpt_weights_only_v18", 0, 0, 0}, {"ckpt_weights_only_latest", 0, 1, 0},
        {"ckpt_full_symtab", 1, 0, 1},      {"ckpt_weights_only_symtab", 0, 0, 1}};
    for (int i = 0; i < 6; i++) {
        snprintf(tmp, sizeof tmp, "%s/ckpt_save.h5.tmp-seed", dir);
        ckpt_save(tmp, model_params(m), ops, &c, &st, kinds[i].with_optimizer);
        snprintf(path, sizeof path, "%s/%s.h5", dir, kinds[i].name);
        compact_copy(tmp, path, kinds[i].latest, kinds[i].symtab);
        remove(tmp);
        /* ckpt_load into a model with moments needs them: check the weights-only ones' params only */
        if (kinds[i].with_optimizer) check_loads(path, model_params(m), ops);
    }
    model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gen_seeds <tokens_dir> <checkpoint_dir>\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    static const TokSeed seeds[] = {
        {"u16_contiguous", 0, 0, 0, 0, 0, 0, 200, 40, 50},
        {"u16_gzip_chunked", 0, 16, 1, 1, 1, 0, 100, 33, 50},
        {"i32_chunked_latest", 1, 32, 0, 1, 1, 1, 96, 20, 70000},
        {"i32_gzip_latest", 1, 8, 1, 0, 0, 1, 40, 9, 70000},
        {"u16_two_tokens", 0, 0, 0, 1, 0, 0, 2, 2, 2},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) write_tokens(argv[1], &seeds[i]);
    write_checkpoints(argv[2]);
    return 0;
}
