/* libFuzzer harness of the config reader (src/core/config.c).
 *
 * Input: YAML text, then override lines ("section.key=value", one per line). The split is at
 * the first NUL byte, or else at the first line starting with "#OVERRIDES" (so seeds stay text).
 * Steps: config_defaults, config_load_string, each override through config_apply_override
 * (errors expected), then checks that must hold for every config the loader accepted:
 *   - config_to_yaml loads back (no error) into a byte-identical Config (memcmp);
 *   - config_validate gives the same verdict on the original and on the reloaded copy;
 *   - the printed forms (startup table, YAML to a FILE) do not fail. */
#include "fuzz_common.h"

/* State of the current input that the die hook can unwind past (static, so longjmp keeps it). */
static char *yaml_in, *yaml_out;
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    devnull = fopen("/dev/null", "w");
    if (!devnull) abort();
    return 0;
}

/* Where the YAML ends and the overrides start: the first NUL, or the first "#OVERRIDES" line. */
static size_t split_point(const uint8_t *data, size_t size, size_t *ovr_start) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t end = nul ? (size_t)(nul - data) : size;
    for (size_t i = 0; i + 10 <= end; i++) {
        if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "#OVERRIDES", 10) == 0) {
            *ovr_start = i;
            return i;
        }
    }
    *ovr_start = nul ? end + 1 : size;
    return end;
}

/* Returns 1 when every step ran, 0 when an expected error stopped it (cfg is then partial). */
static int load_with_overrides(Config *cfg, const uint8_t *data, size_t size) {
    size_t ovr = 0, yaml_len = split_point(data, size, &ovr);
    yaml_in = xmalloc(yaml_len + 1);
    memcpy(yaml_in, data, yaml_len);
    yaml_in[yaml_len] = 0;
    lc_die_hook = fuzz_die_hook;
    if (setjmp(fuzz_jmp)) {
        fuzz_note_fatal();
        return 0;
    }
    config_defaults(cfg);
    config_load_string(cfg, yaml_in, "fuzz.yaml");
    /* Override lines: the "#OVERRIDES" marker line itself is skipped; each other line whole. */
    size_t i = ovr;
    if (i < size && size - i >= 10 && memcmp(data + i, "#OVERRIDES", 10) == 0) {
        while (i < size && data[i] != '\n') i++;
    }
    while (i < size) {
        size_t j = i;
        while (j < size && data[j] != '\n' && data[j] != 0) j++;
        if (j > i) {
            char line[1024];
            size_t n = j - i < sizeof line - 1 ? j - i : sizeof line - 1;
            memcpy(line, data + i, n);
            line[n] = 0;
            config_apply_override(cfg, line);
        }
        i = j + 1;
    }
    return 1;
}

/* config_validate's verdict: 1 valid, 0 an expected error (message kept in msg). */
static int validates(const Config *cfg, char *msg, size_t cap) {
    lc_die_hook = fuzz_die_hook;
    if (setjmp(fuzz_jmp)) {
        fuzz_note_fatal();
        snprintf(msg, cap, "%s", lc_last_error);
        return 0;
    }
    config_validate(cfg);
    lc_die_hook = NULL;
    msg[0] = 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Config cfg, back;  /* static: not clobbered by longjmp */
    static char why1[1024], why2[1024];
    int loaded = load_with_overrides(&cfg, data, size);
    lc_die_hook = NULL;
    xfree(yaml_in);
    if (!loaded) return 0;

    /* Round trip: from here on any lc_die is a finding. */
    lc_die_hook = fuzz_die_is_finding;
    yaml_out = config_to_yaml(&cfg);
    config_defaults(&back);
    config_load_string(&back, yaml_out, "round-trip.yaml");
    if (memcmp(&cfg, &back, sizeof cfg) != 0) {
        for (int k = 0; k < lc_config_nkeys; k++) {
            const ConfigKey *key = &lc_config_keys[k];
            if (memcmp((char *)&cfg + key->offset, (char *)&back + key->offset, key->size) != 0)
                fprintf(stderr, "FINDING: %s changed in the YAML round trip\n", key->key);
        }
        fprintf(stderr, "FINDING: config_to_yaml wrote:\n%s\n", yaml_out);
        abort();
    }
    config_print(&cfg, devnull);
    config_write_yaml(&cfg, devnull);
    xfree(yaml_out);
    (void)config_vocab_padded(&cfg);
    (void)config_l_max(&cfg);

    int ok1 = validates(&cfg, why1, sizeof why1), ok2 = validates(&back, why2, sizeof why2);
    lc_die_hook = NULL;
    if (ok1 != ok2 || strcmp(why1, why2) != 0) {
        fprintf(stderr, "FINDING: validation differs after the round trip: '%s' vs '%s'\n", why1, why2);
        abort();
    }
    return 0;
}
