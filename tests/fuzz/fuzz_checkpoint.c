/* libFuzzer harness of the checkpoint reader (src/core/checkpoint.c).
 *
 * The input is written to /tmp/fuzz_checkpoint_<pid>.h5, then:
 *   ckpt_read_config            then config_load_string + config_validate on the stored YAML;
 *   ckpt_load                   into the fixed tiny model of fuzz_ckpt_config (with AdamW moments);
 *   ckpt_inspect                to /dev/null;
 *   ckpt_verify                 must never die (it returns 0 with a reason instead). Last, since
 *                               libhdf5 crashes inside it on many damaged files (docs/reliability.md,
 *                               L1); FUZZ_CKPT_SKIP_VERIFY=1 leaves it out (ckpt_inspect walks
 *                               the same links, so that only halves the restarts).
 * Errors are expected (lc_die). An HDF5 identifier left open after a call that succeeded is a
 * finding (abort); after an lc_die, checkpoint.c does not close its handles (docs/reliability.md),
 * so the harness closes them and counts them, printed at exit, unless FUZZ_STRICT_HANDLES=1. */
#define FUZZ_WITH_HDF5
#include "fuzz_common.h"

#include "core/checkpoint.h"
#include "model/model.h"

static Model *model;
static FILE *devnull;
static char *yaml;  /* static: the die hook unwinds past it */
static Config stored;
static int strict_handles, skip_verify;
static long died_with_handles, inputs_run;

static void report_at_exit(void) {
    if (inputs_run == 0) return;  /* the fork-mode parent runs no input */
    fprintf(stderr, "fuzz_checkpoint: %ld inputs, %ld of them died leaving HDF5 identifiers open\n", inputs_run,
            died_with_handles);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_h5_init();
    fuzz_path_init("fuzz_checkpoint");
    Config c = fuzz_ckpt_config();
    model = model_create(&c, ops_cpu(), FUZZ_CKPT_B, FUZZ_CKPT_L, 1);
    model_init(model, 1);
    devnull = fopen("/dev/null", "w");
    if (!devnull) abort();
    const char *s = getenv("FUZZ_STRICT_HANDLES");
    strict_handles = s && strcmp(s, "1") == 0;
    s = getenv("FUZZ_CKPT_SKIP_VERIFY");
    skip_verify = s && strcmp(s, "1") == 0;
    atexit(report_at_exit);
    return 0;
}

static void stage_config(void) {
    yaml = ckpt_read_config(fuzz_path);
    config_defaults(&stored);
    config_load_string(&stored, yaml, "checkpoint config");
    config_validate(&stored);
}

static void stage_load(void) {
    TrainState st;
    ckpt_load(fuzz_path, model_params(model), ops_cpu(), &st);
}

static void stage_inspect(void) { ckpt_inspect(fuzz_path, devnull); }

/* Runs f with lc_die caught; then checks for handles left open. */
static void attempt(void (*f)(void), const char *what) {
    int died = 0;
    lc_die_hook = fuzz_die_hook;
    if (setjmp(fuzz_jmp)) {
        fuzz_note_fatal();
        died = 1;
    } else {
        f();
    }
    lc_die_hook = NULL;
    int leaked = fuzz_h5_close_leftovers();
    if (leaked && (!died || strict_handles)) {
        fprintf(stderr, "FINDING: %s left %d HDF5 identifiers open (%s)\n", what, leaked,
                died ? lc_last_error : "it succeeded");
        abort();
    }
    died_with_handles += leaked > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char why[512];
    inputs_run++;
    fuzz_write_file(data, size);

    attempt(stage_config, "ckpt_read_config");
    xfree(yaml);
    attempt(stage_load, "ckpt_load");
    attempt(stage_inspect, "ckpt_inspect");
    lc_last_error[0] = 0;

    if (skip_verify) return 0;
    lc_die_hook = fuzz_die_is_finding;
    (void)ckpt_verify(fuzz_path, why, sizeof why);
    lc_die_hook = NULL;
    if (fuzz_h5_close_leftovers()) {
        fprintf(stderr, "FINDING: ckpt_verify left HDF5 identifiers open (%s)\n", why);
        abort();
    }
    return 0;
}
