/* Test helper: write a token-stream HDF5 file (layout of docs/formats.md) with given tokens. */
#pragma once
#include <hdf5.h>
#include <stdint.h>
#include <string.h>

static void tokfile_attr_i64(hid_t obj, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void tokfile_attr_str(hid_t obj, const char *name, const char *v) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, ty, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
}

static void tokfile_split(hid_t f, const char *group, const uint16_t *tok, int64_t n) {
    hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(g, "tokens", H5T_STD_U16LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, tok);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Gclose(g);
}

/* Train and val splits of a cyclic-with-noise stream (learnable, so losses fall). */
static void tokfile_write(const char *path, int64_t n_train, int64_t n_val, int64_t vocab, uint64_t seed) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    tokfile_attr_i64(f, "vocab_size", vocab);
    tokfile_attr_i64(f, "eot_token", vocab - 1);
    tokfile_attr_str(f, "tokenizer", "synthetic");
    tokfile_attr_str(f, "format", "longconv-tokens");
    tokfile_attr_i64(f, "version", 1);
    int64_t n = n_train > n_val ? n_train : n_val;
    uint16_t *tok = (uint16_t *)malloc((size_t)n * sizeof(uint16_t));
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (uint16_t)((s >> 60) < 3 ? (s >> 33) % (uint64_t)vocab : (uint64_t)(i * 7 % vocab));
    }
    tokfile_split(f, "train", tok, n_train);
    tokfile_split(f, "val", tok, n_val);
    free(tok);
    H5Fclose(f);
}
