/* Token-stream HDF5 reader and samplers; see tokens.h and docs/formats.md. */
#include "data/tokens.h"

#include <errno.h>
#include <math.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

#define TOKENS_FORMAT "longconv-tokens"
#define TOKENS_VERSION 1

struct TokenStream {
    char *path;
    char *group;        /* "/train" */
    char *name;         /* "path:/train/tokens" */
    hid_t file, grp, dset, fspace;
    int64_t count, vocab, eot, n_documents;
    double unigram_entropy;
    char *tokenizer;
    int32_t *win;       /* scratch for one window (validation batches) */
    int64_t win_cap;
};

/* ---------------------------------------------------------------------------------------------
 * HDF5 helpers: the library's own error printing is off; its innermost message is appended to
 * ours, so that e.g. a truncated file says so. */

static herr_t h5_walk_first(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0 && e->desc) snprintf((char *)data, 256, "%s", e->desc);
    return 0;
}

/* The most specific message on HDF5's error stack (then cleared), or "" when there is none. */
static const char *h5_detail(char buf[256]) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_first, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

/* "uint16", "int32", "float32", "string", ... for error messages. */
static const char *h5_type_name(hid_t t, char buf[64]) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, 64, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT: snprintf(buf, 64, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, 64, "string"); break;
    case H5T_COMPOUND: snprintf(buf, 64, "compound"); break;
    case H5T_ENUM: snprintf(buf, 64, "enum"); break;
    case H5T_ARRAY: snprintf(buf, 64, "array"); break;
    case H5T_VLEN: snprintf(buf, 64, "vlen"); break;
    default: snprintf(buf, 64, "HDF5 type class %d", (int)H5Tget_class(t)); break;
    }
    return buf;
}

static void h5_close_handles(TokenStream *ts) {
    if (ts->fspace >= 0) H5Sclose(ts->fspace);
    if (ts->dset >= 0) H5Dclose(ts->dset);
    if (ts->grp >= 0) H5Gclose(ts->grp);
    if (ts->file >= 0) H5Fclose(ts->file);
    ts->fspace = ts->dset = ts->grp = ts->file = -1;
}

static void tokens_free(TokenStream *ts) {
    free(ts->path);
    free(ts->group);
    free(ts->name);
    free(ts->tokenizer);
    free(ts->win);
    free(ts);
}

/* Releases everything opened so far, then dies: tests catch lc_die and go on in-process, and a
 * file left open would make rewriting it fail. */
static LC_NORETURN LC_PRINTF(2, 3) void open_fail(TokenStream *ts, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h5_close_handles(ts);
    tokens_free(ts);
    lc_die("%s", msg);
}

/* ---------------------------------------------------------------------------------------------
 * Attributes. obj_name is "/" or "/train", for messages. */

/* Opens attribute `attr` of obj and checks it holds one value of the given class; returns -1 when
 * absent and !required. */
static hid_t attr_open(TokenStream *ts, hid_t obj, const char *obj_name, const char *attr,
                       H5T_class_t cls, int required) {
    char d[256], tn[64];
    htri_t ex = H5Aexists(obj, attr);
    if (ex < 0) open_fail(ts, "%s: cannot query attribute '%s' of %s: %s", ts->path, attr, obj_name, h5_detail(d));
    if (ex == 0) {
        if (!required) return -1;
        open_fail(ts, "%s: missing attribute '%s' on %s (token-stream layout, docs/formats.md)",
                  ts->path, attr, obj_name);
    }
    hid_t a = H5Aopen(obj, attr, H5P_DEFAULT);
    if (a < 0) open_fail(ts, "%s: cannot open attribute '%s' of %s: %s", ts->path, attr, obj_name, h5_detail(d));
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    hssize_t npts = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    int ok_class = type >= 0 && H5Tget_class(type) == cls;
    if (!ok_class) h5_type_name(type, tn);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (!ok_class || npts != 1) {
        H5Aclose(a);
        if (!ok_class)
            open_fail(ts, "%s: attribute '%s' of %s must be %s, found %s", ts->path, attr, obj_name,
                      cls == H5T_INTEGER ? "an integer" : cls == H5T_FLOAT ? "a float" : "a string", tn);
        open_fail(ts, "%s: attribute '%s' of %s must hold one value, found %lld", ts->path, attr,
                  obj_name, (long long)npts);
    }
    return a;
}

/* Integer attribute (any integer width in the file); dflt when absent and !required. */
static int64_t attr_int(TokenStream *ts, hid_t obj, const char *obj_name, const char *attr,
                        int required, int64_t dflt) {
    char d[256];
    hid_t a = attr_open(ts, obj, obj_name, attr, H5T_INTEGER, required);
    if (a < 0) return dflt;
    int64_t v = 0;
    herr_t st = H5Aread(a, H5T_NATIVE_INT64, &v);
    if (st < 0) h5_detail(d);  /* before the next HDF5 call clears the error stack */
    H5Aclose(a);
    if (st < 0) open_fail(ts, "%s: cannot read attribute '%s' of %s: %s", ts->path, attr, obj_name, d);
    return v;
}

/* Optional floating-point attribute; dflt when absent. */
static double attr_float(TokenStream *ts, hid_t obj, const char *obj_name, const char *attr, double dflt) {
    char d[256];
    hid_t a = attr_open(ts, obj, obj_name, attr, H5T_FLOAT, 0);
    if (a < 0) return dflt;
    double v = 0;
    herr_t st = H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    if (st < 0) h5_detail(d);
    H5Aclose(a);
    if (st < 0) open_fail(ts, "%s: cannot read attribute '%s' of %s: %s", ts->path, attr, obj_name, d);
    return v;
}

/* String attribute, fixed-length (numpy bytes) or variable-length (h5py str); malloc'ed. */
static char *attr_str(TokenStream *ts, hid_t obj, const char *obj_name, const char *attr) {
    char d[256];
    hid_t a = attr_open(ts, obj, obj_name, attr, H5T_STRING, 1);
    hid_t ftype = H5Aget_type(a), mtype = H5Tcopy(H5T_C_S1);
    htri_t vlen = ftype >= 0 ? H5Tis_variable_str(ftype) : -1;
    size_t fsize = ftype >= 0 ? H5Tget_size(ftype) : 0;
    char *out = NULL;
    herr_t st = -1;
    /* The memory type takes the file's character set: HDF5 does not convert ASCII <-> UTF-8. */
    if (ftype >= 0 && mtype >= 0 && vlen >= 0 && H5Tset_cset(mtype, H5Tget_cset(ftype)) >= 0) {
        if (vlen) {
            char *p = NULL;
            if (H5Tset_size(mtype, H5T_VARIABLE) >= 0 && (st = H5Aread(a, mtype, &p)) >= 0) {
                out = xstrdup(p ? p : "");
                H5free_memory(p);
            }
        } else {
            out = xcalloc(fsize + 1, 1);
            if (H5Tset_size(mtype, fsize + 1) >= 0 && H5Tset_strpad(mtype, H5T_STR_NULLTERM) >= 0)
                st = H5Aread(a, mtype, out);
        }
    }
    if (st < 0) h5_detail(d);  /* the chain above stops at the first failing call */
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    H5Aclose(a);
    if (st < 0) {
        free(out);
        open_fail(ts, "%s: cannot read string attribute '%s' of %s: %s", ts->path, attr, obj_name, d);
    }
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Opening */

static void open_file(TokenStream *ts) {
    char d[256];
    FILE *f = fopen(ts->path, "rb");
    if (!f) open_fail(ts, "cannot open token file '%s': %s", ts->path, strerror(errno));
    fclose(f);
    htri_t is = H5Fis_hdf5(ts->path);
    if (is <= 0) open_fail(ts, "'%s' is not an HDF5 file (expected the token-stream layout, docs/formats.md)", ts->path);
    ts->file = H5Fopen(ts->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (ts->file < 0) open_fail(ts, "cannot open HDF5 file '%s': %s", ts->path, h5_detail(d));
}

static void open_root_attrs(TokenStream *ts, int64_t expected_vocab) {
    char *fmt = attr_str(ts, ts->file, "/", "format");
    int bad_fmt = strcmp(fmt, TOKENS_FORMAT) != 0;
    if (bad_fmt) {
        char got[128];
        snprintf(got, sizeof got, "%s", fmt);
        free(fmt);
        open_fail(ts, "%s: attribute format is \"%s\", expected \"" TOKENS_FORMAT "\"", ts->path, got);
    }
    free(fmt);
    int64_t version = attr_int(ts, ts->file, "/", "version", 1, 0);
    if (version != TOKENS_VERSION)
        open_fail(ts, "%s: token-stream format version %lld is not supported (this reader reads version %d)",
                  ts->path, (long long)version, TOKENS_VERSION);
    ts->vocab = attr_int(ts, ts->file, "/", "vocab_size", 1, 0);
    ts->tokenizer = attr_str(ts, ts->file, "/", "tokenizer");
    ts->eot = attr_int(ts, ts->file, "/", "eot_token", 1, 0);
    /* Tokens become int32 in memory. */
    if (ts->vocab < 1 || ts->vocab > INT32_MAX)
        open_fail(ts, "%s: vocab_size %lld is outside [1, 2^31)", ts->path, (long long)ts->vocab);
    if (expected_vocab > 0 && ts->vocab != expected_vocab)
        open_fail(ts, "%s: data vocab_size %lld does not match model.vocab_size %lld", ts->path,
                  (long long)ts->vocab, (long long)expected_vocab);
    if (ts->eot < 0 || ts->eot >= ts->vocab)
        open_fail(ts, "%s: eot_token %lld is outside [0, vocab_size %lld)", ts->path, (long long)ts->eot,
                  (long long)ts->vocab);
}

static void open_group(TokenStream *ts) {
    char d[256];
    /* H5Lexists also fails (< 0) when an intermediate group of a nested name is missing. */
    htri_t ex = H5Lexists(ts->file, ts->group, H5P_DEFAULT);
    if (ex < 0) open_fail(ts, "%s: cannot look up group %s: %s", ts->path, ts->group, h5_detail(d));
    if (ex == 0) open_fail(ts, "%s: missing group %s", ts->path, ts->group);
    ts->grp = H5Gopen2(ts->file, ts->group, H5P_DEFAULT);
    if (ts->grp < 0) open_fail(ts, "%s: %s is not a group: %s", ts->path, ts->group, h5_detail(d));
    ts->n_documents = attr_int(ts, ts->grp, ts->group, "n_documents", 0, -1);
    ts->unigram_entropy = attr_float(ts, ts->grp, ts->group, "unigram_entropy", NAN);
}

/* Compressed chunks are decompressed whole on every read that touches them unless they fit in
 * the chunk cache (1 MiB by default, smaller than a 1M-token chunk): give the cache room for 8
 * chunks (counted at int32 size), at most 64 MiB. Uncompressed data keeps the default, so HDF5 reads just the requested bytes. */
static hid_t dataset_access_plist(TokenStream *ts, hid_t dset) {
    hid_t dcpl = H5Dget_create_plist(dset);
    hid_t dapl = H5P_DEFAULT;
    if (dcpl < 0) return dapl;
    hsize_t chunk = 0;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) > 0 && H5Pget_chunk(dcpl, 1, &chunk) == 1) {
        size_t chunk_bytes = (size_t)chunk * sizeof(int32_t);
        size_t cache = 8 * chunk_bytes;
        if (cache > ((size_t)64 << 20)) cache = (size_t)64 << 20;
        if (cache > ((size_t)1 << 20)) {
            dapl = H5Pcreate(H5P_DATASET_ACCESS);
            if (dapl < 0 || H5Pset_chunk_cache(dapl, 521, cache, 0.75) < 0) {
                if (dapl >= 0) H5Pclose(dapl);
                dapl = H5P_DEFAULT;
            }
        }
    }
    H5Pclose(dcpl);
    return dapl;
}

static void open_dataset(TokenStream *ts) {
    char d[256], tn[64];
    htri_t ex = H5Lexists(ts->grp, "tokens", H5P_DEFAULT);
    if (ex < 0) open_fail(ts, "%s: cannot look up dataset 'tokens' in %s: %s", ts->path, ts->group, h5_detail(d));
    if (ex == 0) open_fail(ts, "%s: group %s has no dataset 'tokens'", ts->path, ts->group);
    ts->dset = H5Dopen2(ts->grp, "tokens", H5P_DEFAULT);
    if (ts->dset < 0) open_fail(ts, "%s: cannot open dataset (%s)", ts->name, h5_detail(d));
    hid_t dapl = dataset_access_plist(ts, ts->dset);
    if (dapl != H5P_DEFAULT) {
        H5Dclose(ts->dset);
        ts->dset = H5Dopen2(ts->grp, "tokens", dapl);
        if (ts->dset < 0) h5_detail(d);
        H5Pclose(dapl);
        if (ts->dset < 0) open_fail(ts, "%s: cannot open dataset (%s)", ts->name, d);
    }

    hid_t type = H5Dget_type(ts->dset);
    if (type < 0) open_fail(ts, "%s: cannot read the dataset type: %s", ts->name, h5_detail(d));
    int ok = H5Tget_class(type) == H5T_INTEGER &&
             ((H5Tget_size(type) == 2 && H5Tget_sign(type) == H5T_SGN_NONE) ||
              (H5Tget_size(type) == 4 && H5Tget_sign(type) == H5T_SGN_2));
    h5_type_name(type, tn);
    H5Tclose(type);
    if (!ok) open_fail(ts, "%s: dtype %s, expected uint16 or int32", ts->name, tn);

    ts->fspace = H5Dget_space(ts->dset);
    if (ts->fspace < 0) open_fail(ts, "%s: cannot read the dataspace: %s", ts->name, h5_detail(d));
    int rank = H5Sget_simple_extent_ndims(ts->fspace);
    if (rank != 1) open_fail(ts, "%s: rank %d, expected a 1-D dataset", ts->name, rank);
    hsize_t n = 0;
    H5_CHECK(H5Sget_simple_extent_dims(ts->fspace, &n, NULL), ts->name);
    ts->count = (int64_t)n;
    if (ts->count < 2)
        open_fail(ts, "%s: %lld tokens, need at least 2 (one input and its target)", ts->name, (long long)ts->count);
}

TokenStream *tokens_open(const char *path, const char *group, int64_t expected_vocab) {
    /* Our messages name the file and object; HDF5's own stack dump would only add noise. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    TokenStream *ts = xcalloc(1, sizeof *ts);
    ts->file = ts->grp = ts->dset = ts->fspace = -1;
    ts->path = xstrdup(path);
    while (*group == '/') group++;
    size_t gl = strlen(group) + 2;
    ts->group = xmalloc(gl);
    snprintf(ts->group, gl, "/%s", group);
    size_t nl = strlen(path) + gl + 16;
    ts->name = xmalloc(nl);
    snprintf(ts->name, nl, "%s:%s/tokens", path, ts->group);

    open_file(ts);
    open_root_attrs(ts, expected_vocab);
    open_group(ts);
    open_dataset(ts);
    return ts;
}

void tokens_close(TokenStream *ts) {
    if (!ts) return;
    h5_close_handles(ts);
    tokens_free(ts);
}

int64_t tokens_count(const TokenStream *ts) { return ts->count; }
int64_t tokens_vocab(const TokenStream *ts) { return ts->vocab; }
int64_t tokens_eot(const TokenStream *ts) { return ts->eot; }
int64_t tokens_n_documents(const TokenStream *ts) { return ts->n_documents; }
double tokens_unigram_entropy(const TokenStream *ts) { return ts->unigram_entropy; }
const char *tokens_tokenizer(const TokenStream *ts) { return ts->tokenizer; }
const char *tokens_name(const TokenStream *ts) { return ts->name; }

/* ---------------------------------------------------------------------------------------------
 * Reading */

void tokens_read(TokenStream *ts, int64_t offset, int64_t n, int32_t *out) {
    char d[256];
    if (offset < 0 || n < 0 || offset > ts->count - n)
        LC_FATAL("%s: read of %lld tokens at offset %lld is outside [0, %lld)", ts->name, (long long)n,
                 (long long)offset, (long long)ts->count);
    if (n == 0) return;
    hsize_t start = (hsize_t)offset, cnt = (hsize_t)n;
    if (H5Sselect_hyperslab(ts->fspace, H5S_SELECT_SET, &start, NULL, &cnt, NULL) < 0)
        lc_die("%s: cannot select %lld tokens at offset %lld: %s", ts->name, (long long)n, (long long)offset, h5_detail(d));
    hid_t mspace = H5Screate_simple(1, &cnt, NULL);
    if (mspace < 0) LC_FATAL("%s: H5Screate_simple failed: %s", ts->name, h5_detail(d));
    /* HDF5 converts uint16 (or any-endian int32) in the file to native int32. */
    herr_t st = H5Dread(ts->dset, H5T_NATIVE_INT32, mspace, ts->fspace, H5P_DEFAULT, out);
    if (st < 0) h5_detail(d);  /* before H5Sclose clears the error stack */
    H5Sclose(mspace);
    if (st < 0)
        lc_die("%s: reading %lld tokens at offset %lld failed (file damaged or truncated?): %s", ts->name,
               (long long)n, (long long)offset, d);
    for (int64_t i = 0; i < n; i++) {
        if (out[i] < 0 || out[i] >= ts->vocab)
            lc_die("%s: token %d at offset %lld is outside [0, vocab_size %lld)", ts->name, out[i],
                   (long long)(offset + i), (long long)ts->vocab);
    }
}

int64_t tokens_num_windows(const TokenStream *ts, int64_t seq_len) {
    if (seq_len < 1) lc_die("%s: seq_len %lld must be >= 1", ts->name, (long long)seq_len);
    int64_t nwin = (ts->count - 1) / seq_len;
    if (nwin < 1)
        lc_die("%s: %lld tokens are too few for one window of seq_len %lld (needs seq_len+1 = %lld tokens)",
               ts->name, (long long)ts->count, (long long)seq_len, (long long)(seq_len + 1));
    return nwin;
}

/* One window w: in_row, tgt_row [seq_len]; win [seq_len+1] scratch. */
static void read_window(TokenStream *ts, int64_t seq_len, int64_t w, int32_t *win, int32_t *in_row,
                        int32_t *tgt_row) {
    tokens_read(ts, w * seq_len, seq_len + 1, win);
    memcpy(in_row, win, (size_t)seq_len * sizeof(int32_t));
    memcpy(tgt_row, win + 1, (size_t)seq_len * sizeof(int32_t));
}

void tokens_val_batch(TokenStream *ts, int64_t seq_len, int64_t batch_index, int64_t n_batches, int B,
                      int32_t *inputs, int32_t *targets) {
    int64_t nwin = tokens_num_windows(ts, seq_len);
    LC_ASSERT(n_batches >= 1 && batch_index >= 0 && batch_index < n_batches,
              "tokens_val_batch: batch %lld of %lld", (long long)batch_index, (long long)n_batches);
    if (ts->win_cap < seq_len + 1) {
        ts->win = xrealloc(ts->win, (size_t)(seq_len + 1) * sizeof(int32_t));
        ts->win_cap = seq_len + 1;
    }
    const __int128 total = (__int128)n_batches * B;
    for (int b = 0; b < B; b++) {
        __int128 sample = (__int128)batch_index * B + b;
        int64_t w = total <= nwin ? (int64_t)(sample * nwin / total) : (int64_t)(sample % nwin);
        read_window(ts, seq_len, w, ts->win, inputs + (size_t)b * seq_len, targets + (size_t)b * seq_len);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Training sampler */

void sampler_init(Sampler *s, TokenStream *ts, int64_t seq_len, uint64_t seed, int rank, int world) {
    if (world < 1 || rank < 0 || rank >= world)
        LC_FATAL("sampler: rank %d is outside world size %d", rank, world);
    memset(s, 0, sizeof *s);
    s->ts = ts;
    s->seq_len = seq_len;
    s->nwin = tokens_num_windows(ts, seq_len);
    s->seed = seed;
    s->rank = rank;
    s->world = world;
    s->perm = xmalloc((size_t)s->nwin * sizeof(int64_t));
    s->perm_epoch = -1;
    s->win = xmalloc((size_t)(seq_len + 1) * sizeof(int32_t));
}

/* perm = Fisher-Yates shuffle of [0, nwin) for this epoch. The modulo bias is below nwin / 2^64. */
static void sampler_make_perm(Sampler *s, int64_t epoch) {
    for (int64_t i = 0; i < s->nwin; i++) s->perm[i] = i;
    for (int64_t j = s->nwin - 1; j > 0; j--) {
        uint64_t r = philox_u64(s->seed, SAMPLER_STREAM + (uint64_t)epoch, (uint64_t)j);
        int64_t k = (int64_t)(r % (uint64_t)(j + 1));
        int64_t t = s->perm[j];
        s->perm[j] = s->perm[k];
        s->perm[k] = t;
    }
    s->perm_epoch = epoch;
}

/* Window index of global sample g. */
static int64_t sampler_window(Sampler *s, int64_t g) {
    int64_t epoch = g / s->nwin;
    if (epoch != s->perm_epoch) sampler_make_perm(s, epoch);
    return s->perm[g % s->nwin];
}

void sampler_next_batch(Sampler *s, int B, int32_t *inputs, int32_t *targets) {
    for (int b = 0; b < B; b++) {
        int64_t g = s->cursor + (int64_t)b * s->world + s->rank;
        int64_t w = sampler_window(s, g);
        read_window(s->ts, s->seq_len, w, s->win, inputs + (size_t)b * s->seq_len,
                    targets + (size_t)b * s->seq_len);
    }
    s->cursor += (int64_t)B * s->world;
}

int64_t sampler_cursor(const Sampler *s) { return s->cursor; }
int64_t sampler_epoch(const Sampler *s) { return s->cursor / s->nwin; }

void sampler_seek(Sampler *s, int64_t cursor) {
    if (cursor < 0) lc_die("sampler: data cursor %lld must be >= 0", (long long)cursor);
    s->cursor = cursor;  /* the permutation is rebuilt lazily for the cursor's epoch */
}

void sampler_free(Sampler *s) {
    free(s->perm);
    free(s->win);
    memset(s, 0, sizeof *s);
}
