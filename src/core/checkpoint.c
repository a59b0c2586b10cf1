#include "core/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

#define CKPT_FORMAT "longconv-checkpoint"
#define CKPT_VERSION 1

static void silence_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Scalar numeric attribute: file type ftype, value at v in memory type mtype. */
static void write_attr_num(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v, const char *path) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) lc_die("%s: cannot create attribute '%s'", path, name);
    H5_CHECK(H5Awrite(a, mtype, v), path);
    H5Aclose(a);
    H5Sclose(sp);
}

static void write_attr_i64(hid_t obj, const char *name, int64_t v, const char *path) {
    write_attr_num(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, path);
}

static void write_attr_f64(hid_t obj, const char *name, double v, const char *path) {
    write_attr_num(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, path);
}

static void write_attr_str(hid_t obj, const char *name, const char *v, const char *path) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, strlen(v) + 1);
    H5Tset_cset(ty, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) lc_die("%s: cannot create attribute '%s'", path, name);
    H5_CHECK(H5Awrite(a, ty, v), path);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
}

/* Open attribute `name` and check it holds exactly one value of class cls: a damaged or hostile
 * file could otherwise make H5Aread write several values into one. */
static hid_t open_scalar_attr(hid_t obj, const char *name, H5T_class_t cls, const char *path) {
    if (H5Aexists(obj, name) <= 0) lc_die("%s: checkpoint attribute '%s' is missing", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) lc_die("%s: cannot open attribute '%s'", path, name);
    hid_t sp = H5Aget_space(a), ty = H5Aget_type(a);
    hssize_t npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    H5T_class_t got = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (npts != 1) lc_die("%s: attribute '%s' must hold one value, found %lld", path, name, (long long)npts);
    if (got != cls) lc_die("%s: attribute '%s' has the wrong type", path, name);
    return a;
}

static void read_attr_num(hid_t obj, const char *name, hid_t mtype, void *v, const char *path) {
    H5T_class_t cls = H5Tget_class(mtype);
    hid_t a = open_scalar_attr(obj, name, cls == H5T_INTEGER ? H5T_INTEGER : H5T_FLOAT, path);
    if (H5Aread(a, mtype, v) < 0) lc_die("%s: cannot read attribute '%s'", path, name);
    H5Aclose(a);
}

static int64_t read_attr_i64(hid_t obj, const char *name, const char *path) {
    int64_t v = 0;
    read_attr_num(obj, name, H5T_NATIVE_INT64, &v, path);
    return v;
}

static double read_attr_f64(hid_t obj, const char *name, const char *path) {
    double v = 0;
    read_attr_num(obj, name, H5T_NATIVE_DOUBLE, &v, path);
    return v;
}

/* Variable or fixed-length string attribute -> malloc'd string. */
static char *read_attr_str(hid_t obj, const char *name, const char *path) {
    hid_t a = open_scalar_attr(obj, name, H5T_STRING, path);
    hid_t ft = H5Aget_type(a);
    char *out;
    if (H5Tis_variable_str(ft) > 0) {
        char *tmp = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        H5_CHECK(H5Aread(a, mt, &tmp), path);
        out = xstrdup(tmp ? tmp : "");
        H5free_memory(tmp);
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(ft);
        out = xcalloc(n + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        H5_CHECK(H5Aread(a, mt, out), path);
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

static hid_t acc_mem_type(const Ops *ops) { return ops->acc_bytes == 8 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT; }

/* Host staging buffer size: the largest parameter. */
static size_t largest_param_bytes(const ParamTable *t, const Ops *ops) {
    size_t max_bytes = 0;
    for (int i = 0; i < t->n; i++)
        if ((size_t)t->specs[i].numel * ops->acc_bytes > max_bytes) max_bytes = (size_t)t->specs[i].numel * ops->acc_bytes;
    return max_bytes;
}

/* Chunked layout with HDF5's Fletcher-32 checksum on every chunk, verified on every read, so a
 * corrupted checkpoint is refused instead of loaded. Chunks split the first dimension so that
 * none exceeds 64 MiB (HDF5 caps a chunk at 4 GiB). */
static hid_t checksummed_layout(const ParamSpec *s, size_t elem_bytes) {
    hsize_t chunk[4];
    size_t row_bytes = elem_bytes;
    for (int k = 0; k < s->ndim; k++) chunk[k] = (hsize_t)s->shape[k];
    for (int k = 1; k < s->ndim; k++) row_bytes *= (size_t)s->shape[k];
    size_t rows = ((size_t)64 << 20) / row_bytes;
    if (rows < 1) rows = 1;
    if ((hsize_t)rows < chunk[0]) chunk[0] = (hsize_t)rows;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (H5Pset_chunk(dcpl, s->ndim, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0)
        lc_die("HDF5: cannot set up the checksummed layout of %s", s->name);
    return dcpl;
}

/* One dataset per parameter under `group`, stored as file_type (converted from the acc dtype). */
static void write_block_as(hid_t file, const char *group, const ParamTable *t, const Ops *ops, const acc_t *block,
                           hid_t file_type, const char *path) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = H5Gcreate2(file, group, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (g < 0) lc_die("%s: cannot create group %s", path, group);
    void *host = xmalloc(largest_param_bytes(t, ops));
    for (int i = 0; i < t->n; i++) {
        const ParamSpec *s = &t->specs[i];
        hsize_t dims[4];
        for (int k = 0; k < s->ndim; k++) dims[k] = (hsize_t)s->shape[k];
        hid_t sp = H5Screate_simple(s->ndim, dims, NULL);
        hid_t dcpl = checksummed_layout(s, H5Tget_size(file_type));
        hid_t ds = H5Dcreate2(g, s->name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        if (ds < 0) lc_die("%s: cannot create dataset %s/%s", path, group, s->name);
        ops->to_host(host, lc_offset(block, s->offset, ops->acc_bytes), (size_t)s->numel * ops->acc_bytes);
        if (H5Dwrite(ds, acc_mem_type(ops), H5S_ALL, H5S_ALL, H5P_DEFAULT, host) < 0)
            lc_die("%s: writing %s/%s failed (disk full?)", path, group, s->name);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    free(host);
    H5Gclose(g);
}

static void write_block(hid_t file, const char *group, const ParamTable *t, const Ops *ops, const acc_t *block,
                        const char *path) {
    write_block_as(file, group, t, ops, block, ops->acc_bytes == 8 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, path);
}

static void fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) lc_die("cannot open '%s' to sync it: %s", path, strerror(errno));
    if (fsync(fd) != 0 && !directory) lc_die("fsync of '%s' failed: %s", path, strerror(errno));
    close(fd);
}

void ckpt_save(const char *path, const ParamTable *t, const Ops *ops, const Config *cfg, const TrainState *st,
               int with_optimizer) {
    silence_hdf5();
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) lc_die("cannot create checkpoint '%s' (does the folder exist and is it writable?)", tmp);
    write_attr_str(f, "format", CKPT_FORMAT, tmp);
    write_attr_i64(f, "version", CKPT_VERSION, tmp);
    write_attr_i64(f, "step", st->step, tmp);
    write_attr_i64(f, "data_cursor", st->data_cursor, tmp);
    write_attr_i64(f, "tokens_seen", st->tokens_seen, tmp);
    write_attr_f64(f, "elapsed_seconds", st->elapsed_seconds, tmp);
    write_attr_f64(f, "flops", st->flops, tmp);
    write_attr_i64(f, "world_size", st->world_size, tmp);
    write_attr_str(f, "backend", ops->name, tmp);
    char *yaml = config_to_yaml(cfg);
    write_attr_str(f, "config", yaml, tmp);
    free(yaml);
    write_block(f, "params", t, ops, t->master, tmp);
    if (with_optimizer && t->m && t->v) {
        write_block(f, "adam_m", t, ops, t->m, tmp);
        write_block(f, "adam_v", t, ops, t->v, tmp);
    }
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(f) < 0) lc_die("cannot finish checkpoint '%s' (disk full?)", tmp);
    fsync_path(tmp, 0);
    if (rename(tmp, path) != 0) lc_die("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    fsync_path(dirname(dir), 1);
}

static void write_tokens(hid_t f, const char *name, const int32_t *v, int B, int L, const char *path) {
    hsize_t dims[2] = {(hsize_t)B, (hsize_t)L};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        lc_die("%s: cannot write %s", path, name);
    H5Dclose(ds);
    H5Sclose(sp);
}

void ckpt_save_state(const char *path, const ParamTable *t, const Ops *ops, const Config *cfg, const int32_t *inputs,
                     const int32_t *targets, int B, int L, double loss, int64_t n_targets) {
    silence_hdf5();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) lc_die("cannot create state file '%s'", path);
    write_attr_str(f, "format", "longconv-state", path);
    write_attr_f64(f, "loss", loss, path);
    write_attr_i64(f, "n_targets", n_targets, path);
    write_attr_str(f, "backend", ops->name, path);
    char *yaml = config_to_yaml(cfg);
    write_attr_str(f, "config", yaml, path);
    free(yaml);
    write_tokens(f, "inputs", inputs, B, L, path);
    write_tokens(f, "targets", targets, B, L, path);
    write_block_as(f, "params", t, ops, t->master, H5T_IEEE_F64LE, path);
    write_block_as(f, "grads", t, ops, t->grad, H5T_IEEE_F64LE, path);
    if (H5Fclose(f) < 0) lc_die("cannot finish state file '%s'", path);
}

static hid_t open_checkpoint(const char *path) {
    silence_hdf5();
    if (access(path, R_OK) != 0) lc_die("cannot read checkpoint '%s': %s", path, strerror(errno));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) lc_die("'%s' is not a readable HDF5 checkpoint (truncated or not HDF5)", path);
    char *fmt = read_attr_str(f, "format", path);
    if (strcmp(fmt, CKPT_FORMAT) != 0) lc_die("%s: attribute format is '%s', expected '%s'", path, fmt, CKPT_FORMAT);
    free(fmt);
    int64_t v = read_attr_i64(f, "version", path);
    if (v != CKPT_VERSION) lc_die("%s: checkpoint version %lld is not supported (expected %d)", path, (long long)v, CKPT_VERSION);
    return f;
}

static void read_block(hid_t f, const char *group, ParamTable *t, const Ops *ops, acc_t *block, const char *path) {
    void *host = xmalloc(largest_param_bytes(t, ops));
    for (int i = 0; i < t->n; i++) {
        const ParamSpec *s = &t->specs[i];
        char name[300];
        snprintf(name, sizeof name, "/%s/%s", group, s->name);
        if (H5Lexists(f, name, H5P_DEFAULT) <= 0) lc_die("%s: dataset %s is missing (different model config?)", path, name);
        hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
        if (ds < 0) lc_die("%s: cannot open dataset %s (damaged file?)", path, name);
        hid_t sp = H5Dget_space(ds);
        hsize_t dims[H5S_MAX_RANK];
        int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
        if (nd < 0) lc_die("%s: cannot read the shape of dataset %s (damaged file?)", path, name);
        if (nd != s->ndim) lc_die("%s: dataset %s has %d dimensions, the model expects %d", path, name, nd, s->ndim);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int k = 0; k < nd; k++)
            if ((int64_t)dims[k] != s->shape[k])
                lc_die("%s: dataset %s dimension %d is %llu, the model expects %lld", path, name, k,
                       (unsigned long long)dims[k], (long long)s->shape[k]);
        hid_t ty = H5Dget_type(ds);
        if (H5Tget_class(ty) != H5T_FLOAT) lc_die("%s: dataset %s is not floating point", path, name);
        H5Tclose(ty);
        if (H5Dread(ds, acc_mem_type(ops), H5S_ALL, H5S_ALL, H5P_DEFAULT, host) < 0)
            lc_die("%s: reading dataset %s failed: checksum mismatch or truncated file", path, name);
        ops->to_device(lc_offset(block, s->offset, ops->acc_bytes), host, (size_t)s->numel * ops->acc_bytes);
        H5Sclose(sp);
        H5Dclose(ds);
    }
    free(host);
}

void ckpt_load(const char *path, ParamTable *t, const Ops *ops, TrainState *st) {
    hid_t f = open_checkpoint(path);
    st->step = read_attr_i64(f, "step", path);
    st->data_cursor = read_attr_i64(f, "data_cursor", path);
    st->tokens_seen = read_attr_i64(f, "tokens_seen", path);
    st->elapsed_seconds = read_attr_f64(f, "elapsed_seconds", path);
    st->flops = read_attr_f64(f, "flops", path);
    st->world_size = (int)read_attr_i64(f, "world_size", path);
    read_block(f, "params", t, ops, t->master, path);
    if (t->m && t->v) {
        if (H5Lexists(f, "/adam_m", H5P_DEFAULT) <= 0)
            lc_die("%s: no optimizer state (/adam_m): a weights-only file cannot resume training", path);
        read_block(f, "adam_m", t, ops, t->m, path);
        read_block(f, "adam_v", t, ops, t->v, path);
    }
    H5Fclose(f);
    params_sync_compute(t, ops);
}

typedef struct { int ok; char *why; size_t n; } VerifyCtx;

static herr_t verify_one(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    VerifyCtx *c = data;
    hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
    if (ds < 0) {
        snprintf(c->why, c->n, "cannot open dataset %s", name);
        c->ok = 0;
        return 1;
    }
    hid_t sp = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    double *buf = n > 0 ? malloc((size_t)n * sizeof(double)) : NULL;
    herr_t st = n < 0 || (n > 0 && !buf) ? -1 : H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    free(buf);
    H5Sclose(sp);
    H5Dclose(ds);
    if (st < 0) {
        snprintf(c->why, c->n, "dataset %s fails its checksum or is truncated", name);
        c->ok = 0;
        return 1;
    }
    return 0;
}

int ckpt_verify(const char *path, char *why, size_t n) {
    silence_hdf5();
    snprintf(why, n, "ok");
    if (access(path, R_OK) != 0) {
        snprintf(why, n, "cannot read: %s", strerror(errno));
        return 0;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(why, n, "not a readable HDF5 file (truncated?)");
        return 0;
    }
    VerifyCtx c = {1, why, n};
    static const char *const groups[] = {"params", "adam_m", "adam_v"};
    for (int i = 0; i < 3 && c.ok; i++) {
        if (H5Lexists(f, groups[i], H5P_DEFAULT) <= 0) {
            if (i == 0) {
                snprintf(why, n, "group /params is missing");
                c.ok = 0;
            }
            continue;
        }
        hid_t g = H5Gopen2(f, groups[i], H5P_DEFAULT);
        if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, verify_one, &c) < 0) c.ok = 0;
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    return c.ok;
}

char *ckpt_read_config(const char *path) {
    hid_t f = open_checkpoint(path);
    char *yaml = read_attr_str(f, "config", path);
    H5Fclose(f);
    return yaml;
}

/* error: set by inspect_one instead of dying inside the HDF5 callback (jumping out of libhdf5
 * mid-call would leave its references behind); the caller closes everything, then dies. */
typedef struct { FILE *out; const char *path; int64_t total; int count; char error[512]; } InspectCtx;

static herr_t inspect_one(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    InspectCtx *c = data;
    hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
    if (ds < 0) return 0;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[H5S_MAX_RANK];
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd < 0 || nd > 4) {
        snprintf(c->error, sizeof c->error, "%s: dataset %s has rank %d (parameters have 1 to 4 dimensions)", c->path,
                 name, nd);
        if (sp >= 0) H5Sclose(sp);
        H5Dclose(ds);
        return -1;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    /* Statistics need the whole tensor in memory: refuse sizes no model of ours has (a damaged
     * header could claim exabytes). */
    const hsize_t max_elems = (hsize_t)1 << 34;
    hsize_t total = 1;
    for (int k = 0; k < nd; k++) {
        if (dims[k] != 0 && total > max_elems / dims[k]) {
            snprintf(c->error, sizeof c->error, "%s: dataset %s claims more than 2^34 elements (damaged file?)",
                     c->path, name);
            H5Sclose(sp);
            H5Dclose(ds);
            return -1;
        }
        total *= dims[k];
    }
    int64_t n = 1;
    char shape[128] = "";
    for (int k = 0; k < nd; k++) {
        n *= (int64_t)dims[k];
        char part[32];
        snprintf(part, sizeof part, "%s%llu", k ? ", " : "", (unsigned long long)dims[k]);
        strncat(shape, part, sizeof shape - strlen(shape) - 1);
    }
    double *v = xmalloc((size_t)n * sizeof(double));
    double mean = 0, sq = 0;
    if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
        for (int64_t i = 0; i < n; i++) mean += v[i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) sq += (v[i] - mean) * (v[i] - mean);
    }
    fprintf(c->out, "  %-62s [%s]%*s %10lld  mean %+.3e  std %.3e\n", name, shape, (int)(18 - strlen(shape)), "",
            (long long)n, mean, sqrt(sq / (double)n));
    free(v);
    c->total += n;
    c->count++;
    H5Sclose(sp);
    H5Dclose(ds);
    return 0;
}

void ckpt_inspect(const char *path, FILE *out) {
    hid_t f = open_checkpoint(path);
    char *backend = read_attr_str(f, "backend", path);
    fprintf(out, "checkpoint %s\n", path);
    fprintf(out, "  step %lld, data cursor %lld, tokens seen %lld, elapsed %.1f s, %.3e FLOPs, world size %lld, backend %s\n",
            (long long)read_attr_i64(f, "step", path), (long long)read_attr_i64(f, "data_cursor", path),
            (long long)read_attr_i64(f, "tokens_seen", path), read_attr_f64(f, "elapsed_seconds", path),
            read_attr_f64(f, "flops", path), (long long)read_attr_i64(f, "world_size", path), backend);
    free(backend);
    fprintf(out, "  optimizer state: %s\n", H5Lexists(f, "/adam_m", H5P_DEFAULT) > 0 ? "yes" : "no (weights only)");
    char *yaml = read_attr_str(f, "config", path);
    fprintf(out, "config:\n%s", yaml);
    free(yaml);
    fprintf(out, "parameters:\n");
    InspectCtx c = {out, path, 0, 0, ""};
    hid_t g = H5Gopen2(f, "params", H5P_DEFAULT);
    if (g < 0) lc_die("%s: group /params is missing", path);
    /* Creation order is the model's parameter order; files from elsewhere may only index names. */
    if (H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, inspect_one, &c) < 0 && !c.error[0])
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, inspect_one, &c);
    if (c.error[0]) {
        H5Gclose(g);
        H5Fclose(f);
        lc_die("%s", c.error);
    }
    H5Gclose(g);
    fprintf(out, "  %d tensors, %lld values\n", c.count, (long long)c.total);
    H5Fclose(f);
}
