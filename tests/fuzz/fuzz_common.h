/* Shared pieces of the libFuzzer harnesses (built by scripts/fuzz.sh, see docs/reliability.md).
 *
 * Expected errors: every reader reports bad input through lc_die; the harness installs a hook
 * that longjmps back, so one process runs millions of inputs. Anything else (a sanitizer report,
 * a crash, a leak, an abort from a harness check) is a finding. */
#pragma once
/* Not every harness uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"

/* ------------------------------------------------------------------ lc_die -> longjmp */

static jmp_buf fuzz_jmp;
/* FUZZ_VERBOSE=1 prints each expected error (for replaying one input). */
static void fuzz_die_hook(void) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") && strcmp(getenv("FUZZ_VERBOSE"), "1") == 0;
    if (verbose) fprintf(stderr, "expected error: %s\n", lc_last_error);
    longjmp(fuzz_jmp, 1);
}

/* An lc_die where none is allowed (a round trip, ckpt_verify): a finding. */
static void fuzz_die_is_finding(void) {
    fprintf(stderr, "FINDING: unexpected lc_die: %s\n", lc_last_error);
    abort();
}

/* lc_die_at ("... (at src/x.c:N)") marks a failed library call or a broken invariant: input
 * that reaches one passed validation it should not have. They are not fatal to the run (out of
 * memory is one of them), but each distinct site is printed once so the logs show them. The
 * site is the message's suffix: user text quoted inside a message can contain "(at src/". */
static const char *fuzz_fatal_site(const char *msg) {
    size_t n = strlen(msg);
    if (n < 2 || msg[n - 1] != ')') return NULL;
    const char *at = NULL;
    for (const char *p = strstr(msg, " (at src/"); p; p = strstr(p + 1, " (at src/")) at = p;
    if (!at) return NULL;
    const char *colon = strrchr(at, ':');
    if (!colon || colon < at + 9 || colon[-2] != '.' || colon[-1] != 'c') return NULL;
    for (const char *q = at + 9; q < colon; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '/' || *q == '.')) return NULL;
    for (const char *q = colon + 1; q < msg + n - 1; q++)
        if (*q < '0' || *q > '9') return NULL;
    return colon + 1 < msg + n - 1 ? at : NULL;
}

static void fuzz_note_fatal(void) {
    static char seen[32][160];
    static int nseen;
    const char *at = fuzz_fatal_site(lc_last_error);
    if (!at) return;
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], at) == 0) return;
    if (nseen < 32) snprintf(seen[nseen++], sizeof seen[0], "%s", at);
    fprintf(stderr, "NOTE: lc_die_at reached: %s\n", lc_last_error);
}

/* The model fuzz_checkpoint loads into; seeds (gen_seeds.c) are checkpoints of exactly this one,
 * so that the fuzzer starts from files that load. Small, to keep each seed a few KB. */
static Config fuzz_ckpt_config(void) {
    Config c;
    config_defaults(&c);
    c.model.d_model = 4;
    c.model.n_layer = 1;
    c.model.d_inner = 8;
    c.model.vocab_size = 8;
    c.model.filter_order = 4;
    c.model.filter_emb_dim = 3;
    c.model.filter_inner_mlps = 1;
    c.data.seq_len = 8;
    return c;
}
enum { FUZZ_CKPT_B = 1, FUZZ_CKPT_L = 8 };

/* ------------------------------------------------------------------ temp file */

/* The readers take a path: each process writes its input to its own file, in $FUZZ_TMPDIR
 * (scripts/fuzz.sh: build-fuzz/tmp, where it removes the files of crashed workers) or /tmp. */
static char fuzz_path[4096];

static void fuzz_unlink(void) {
    if (fuzz_path[0]) unlink(fuzz_path);
}

static void fuzz_path_init(const char *name) {
    const char *dir = getenv("FUZZ_TMPDIR");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/%s_%d.h5", dir && dir[0] ? dir : "/tmp", name, (int)getpid());
    atexit(fuzz_unlink);
}

static void fuzz_write_file(const uint8_t *data, size_t size) {
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(fuzz_path);
        abort();  /* the harness itself failed: not a finding in the code under test */
    }
}

/* ------------------------------------------------------------------ HDF5 identifiers */
#ifdef FUZZ_WITH_HDF5
#include <hdf5.h>

/* After an lc_die a reader may leave files, groups, datasets or attributes open. They are
 * closed here (objects before files): a file left open would make HDF5 serve its cached
 * metadata for the next input written to the same path. HDF5 cannot enumerate transient
 * identifiers (dataspaces, datatypes, property lists), so those are not tracked. */
static void fuzz_h5_init(void) {
    /* One process per file: no locks needed, and a stale lock must not fail the next open. */
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
    if (H5open() < 0) abort();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void fuzz_h5_release(hid_t id) {
    while (H5Iis_valid(id) > 0 && H5Idec_ref(id) > 0) {
    }
}

/* Close every file-related identifier still open; returns how many there were. */
static int fuzz_h5_close_leftovers(void) {
    enum { MAXIDS = 4096 };
    static hid_t ids[MAXIDS];
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n <= 0) return 0;
    n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, MAXIDS, ids);
    for (ssize_t i = 0; i < n; i++)
        if (H5Iget_type(ids[i]) != H5I_FILE) fuzz_h5_release(ids[i]);
    for (ssize_t i = 0; i < n; i++)
        if (H5Iget_type(ids[i]) == H5I_FILE) fuzz_h5_release(ids[i]);
    H5Eclear2(H5E_DEFAULT);
    ssize_t left = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (left != 0) {
        /* Seen when an lc_die longjmps out of a callback that libhdf5 is running (H5Literate):
         * the library is left inside an API call and keeps its references. */
        fprintf(stderr, "FINDING: %zd of %zd HDF5 identifiers cannot be closed after: %s\n", left, n, lc_last_error);
        abort();
    }
    return (int)n;
}
#endif
