/* Configuration: the schema table built from the X-macro lists in config.h, YAML loading
 * (libyaml document API), command-line overrides, cross-field validation and output.
 *
 * Every user-facing problem becomes one line through lc_die: "<origin>:<line>: <message>",
 * where the message names the full key ("model.d_model"). The loader formats its error into a
 * buffer, frees libyaml's state and only then dies, so tests that catch the error leak nothing. */
#include "core/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"

/* ---------------------------------------------------------------- schema table */

/* offsetof(Config, model) + offsetof(ModelConfig, x) rather than offsetof(Config, model.x):
 * a nested member designator is a GNU extension. */
#define LC_KEY(sec, Sec, name, type, def, lo, hi, choices, help)                                 \
    {#sec "." #name, CFG_##type, offsetof(Config, sec) + offsetof(Sec, name),                     \
     sizeof(((Sec *)0)->name), def, lo, hi, choices, help},
#define LC_KEY_MODEL(...) LC_KEY(model, ModelConfig, __VA_ARGS__)
#define LC_KEY_DATA(...) LC_KEY(data, DataConfig, __VA_ARGS__)
#define LC_KEY_TRAIN(...) LC_KEY(train, TrainConfig, __VA_ARGS__)
#define LC_COUNT(...) +1

const ConfigKey lc_config_keys[] = {
    LC_MODEL_FIELDS(LC_KEY_MODEL) LC_DATA_FIELDS(LC_KEY_DATA) LC_TRAIN_FIELDS(LC_KEY_TRAIN)};
/* A compile-time count, so per-key arrays need no VLA. */
enum { LC_NKEYS = 0 LC_MODEL_FIELDS(LC_COUNT) LC_DATA_FIELDS(LC_COUNT) LC_TRAIN_FIELDS(LC_COUNT) };
const int lc_config_nkeys = LC_NKEYS;

static const char *const config_sections[] = {"model", "data", "train"};
enum { LC_NSECTIONS = 3 };

/* ---------------------------------------------------------------- small helpers */

/* A growable string for the YAML writer and the tables. */
typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static void buf_printf(Buf *b, const char *fmt, ...) LC_PRINTF(2, 3);
static void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    LC_ASSERT(n >= 0, "vsnprintf failed on '%s'", fmt);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = 2 * (b->len + (size_t)n + 1) + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static int is_space(int ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }
static int ascii_lower(int ch) { return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch; }

static int str_ieq(const char *a, const char *b) {
    while (*a && *b && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) a++, b++;
    return *a == 0 && *b == 0;
}

/* User text shown inside an error: at most ~60 bytes, control bytes escaped, so the message
 * stays one line whatever the input holds. */
static void msg_text(char *dst, size_t cap, const char *s, size_t len) {
    size_t o = 0, limit = len > 60 ? 60 : len;
    while (limit < len && limit > 0 && ((unsigned char)s[limit] & 0xC0) == 0x80) limit--;  /* whole UTF-8 chars */
    for (size_t i = 0; i < limit && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') o += (size_t)snprintf(dst + o, cap - o, "\\n");
        else if (ch < 0x20 || ch == 0x7F) o += (size_t)snprintf(dst + o, cap - o, "\\x%02X", ch);
        else dst[o++] = (char)ch;
    }
    if (limit < len && o + 4 < cap) o += (size_t)snprintf(dst + o, cap - o, "...");
    dst[o < cap ? o : cap - 1] = 0;
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions: "d_modle" is
 * one edit from "d_model"). Strings longer than 64 bytes are never close to a key. */
static int osa_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 1 << 20;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

/* Index of a full key ("model.d_model", len bytes), or -1. */
static int config_find(const char *key, size_t len) {
    for (int i = 0; i < LC_NKEYS; i++) {
        if (strlen(lc_config_keys[i].key) == len && memcmp(lc_config_keys[i].key, key, len) == 0) return i;
    }
    return -1;
}

static int section_find(const char *name) {
    for (int s = 0; s < LC_NSECTIONS; s++) {
        if (strcmp(config_sections[s], name) == 0) return s;
    }
    return -1;
}

/* " (did you mean 'x'?)" naming the keys closest to `key` (a full key or a bare name), or "".
 * A right name in the wrong section costs 2, so "model.seq_len" suggests "data.seq_len"; the
 * start of a name costs 1, so "train.warmup" suggests "train.warmup_steps". */
static void config_suggest(const char *key, char *out, size_t cap) {
    const char *dot = strchr(key, '.');
    const char *name = dot ? dot + 1 : key;
    size_t seclen = dot ? (size_t)(dot - key) : 0;
    int dist[LC_NKEYS], bestd = 1 << 30;
    for (int i = 0; i < LC_NKEYS; i++) {
        const char *k = lc_config_keys[i].key, *kdot = strchr(k, '.');
        int same_section = seclen == (size_t)(kdot - k) && memcmp(k, key, seclen) == 0;
        int d = osa_distance(key, k);
        int dn = osa_distance(name, kdot + 1);
        if (strlen(name) >= 3 && strncmp(kdot + 1, name, strlen(name)) == 0 && dn > 1) dn = 1;  /* "warmup" */
        dn += same_section ? 0 : 2;
        dist[i] = dn < d ? dn : d;
        if (dist[i] < bestd) bestd = dist[i];
    }
    int limit = (int)strlen(name) / 3, o = 0, shown = 0;
    out[0] = 0;
    if (bestd > (limit < 2 ? 2 : limit)) return;
    for (int i = 0; i < LC_NKEYS && shown < 3 && o >= 0 && (size_t)o < cap; i++) {
        if (dist[i] != bestd) continue;  /* ties ("seed": data.seed, train.seed) are all named */
        o += snprintf(out + o, cap - (size_t)o, "%s'%s'", shown++ ? " or " : " (did you mean ", lc_config_keys[i].key);
    }
    if (o >= 0 && (size_t)o < cap) snprintf(out + o, cap - (size_t)o, "?)");
}

/* ---------------------------------------------------------------- value conversion */

/* Decode one UTF-8 character; returns its byte count, 0 when malformed (overlong, surrogate,
 * beyond U+10FFFF or truncated). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    if (s[0] < 0x80) return *cp = s[0], 1;
    size_t k = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    uint32_t v = s[0] & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_for_len[k] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return *cp = v, k;
}

static int utf8_valid(const char *s, size_t n) {
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k) {
        if ((k = utf8_next((const unsigned char *)s + i, n - i, &cp)) == 0) return 0;
    }
    return 1;
}

/* Copy a number's text without the '_' digit separators YAML allows ("1_000_000");
 * an underscore is accepted only between two digits. Returns 0, or -1 for bad text. */
static int number_text(const char *s, char *out, size_t cap) {
    size_t o = 0;
    if (*s == 0 || is_space((unsigned char)*s)) return -1;
    for (const char *p = s; *p; p++) {
        if (*p == '_') {
            if (p == s || !is_digit((unsigned char)p[-1]) || !is_digit((unsigned char)p[1])) return -1;
            continue;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = *p;
    }
    out[o] = 0;
    return 0;
}

/* Decimal integer literal: [+-]?[0-9]+ (with '_' separators), nothing else.
 * Returns 1 for a syntax error, 2 for a value beyond int64. */
static int parse_int(const char *s, int64_t *v) {
    const char *p = s + (*s == '+' || *s == '-');
    char t[32];
    size_t o = 0;
    int big = 0;
    if (!is_digit((unsigned char)*p)) return 1;
    if (*s == '-') t[o++] = '-';
    size_t lead = o;
    for (; *p; p++) {
        if (*p == '_' && p > s && is_digit((unsigned char)p[-1]) && is_digit((unsigned char)p[1])) continue;
        if (!is_digit((unsigned char)*p)) return 1;
        if (*p == '0' && o == lead) continue;  /* leading zeros do not count towards overflow */
        if (o + 1 < sizeof t) t[o++] = *p;
        else big = 1;
    }
    if (big) return 2;
    if (o == lead) t[o++] = '0';
    t[o] = 0;
    errno = 0;
    long long x = strtoll(t, NULL, 10);
    if (errno == ERANGE) return 2;
    *v = (int64_t)x;
    return 0;
}

/* Any finite number strtod reads in full (the program never calls setlocale, so '.' is the
 * decimal point). 1 = syntax error or not finite. */
static int parse_float(const char *s, double *v) {
    char t[512], *end;
    if (number_text(s, t, sizeof t)) return 1;
    double x = strtod(t, &end);
    if (end == t || *end || !isfinite(x)) return 1;
    *v = x;
    return 0;
}

static int parse_bool(const char *s, int *v) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (str_ieq(s, yes[i])) return *v = 1, 0;
        if (str_ieq(s, no[i])) return *v = 0, 0;
    }
    return 1;
}

static int enum_has(const char *choices, const char *s) {
    size_t n = strlen(s);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, s, n) == 0) return 1;
        p += len + (bar != NULL);
    }
    return 0;
}

/* "a|b|c" -> "a, b, c" */
static void enum_list(const char *choices, char *out, size_t cap) {
    size_t o = 0;
    for (const char *p = choices; *p && o + 3 < cap; p++) {
        if (*p == '|') o += (size_t)snprintf(out + o, cap - o, ", ");
        else out[o++] = *p;
    }
    out[o < cap ? o : cap - 1] = 0;
}

/* Exact text of a double, as short as possible: integers below 2^53 in digits ("10", not
 * "1e+01"), else the shortest %g that reads back to the same bits (0.1 stays "0.1"). */
static void fmt_double(double v, char *out, size_t cap) {
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, cap, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        double back = strtod(out, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) return;
    }
}

/* "[lo, hi]" of an INT or FLOAT key. */
static void fmt_range(const ConfigKey *k, char *out, size_t cap) {
    char lo[40], hi[40];
    if (k->type == CFG_INT) {
        snprintf(lo, sizeof lo, "%lld", (long long)k->lo);
        snprintf(hi, sizeof hi, "%lld", (long long)k->hi);
    } else {
        fmt_double(k->lo, lo, sizeof lo);
        fmt_double(k->hi, hi, sizeof hi);
    }
    snprintf(out, cap, "[%s, %s]", lo, hi);
}

/* Convert `text` (len bytes: YAML escapes can put NUL bytes inside; text[len] is NUL) for key k
 * and store it into c. Returns 0, or -1 with a one-line message that starts with the key in err. */
#define SET_FAIL(...) do { snprintf(err, cap, __VA_ARGS__); return -1; } while (0)
static int config_set(Config *c, const ConfigKey *k, const char *text, size_t len, char *err, size_t cap) {
    char shown[160], range[96], list[256];
    char *field = (char *)c + k->offset;
    msg_text(shown, sizeof shown, text, len);
    fmt_range(k, range, sizeof range);
    if (memchr(text, 0, len)) SET_FAIL("%s: value '%s' contains a NUL byte", k->key, shown);
    if (k->type == CFG_INT) {
        int64_t v = 0;
        int rc = parse_int(text, &v);
        if (rc == 1) SET_FAIL("%s: expected an integer, got '%s'", k->key, shown);
        /* lo/hi are integral and below 2^63 (checked in config_defaults): compare as integers,
         * since (double)v rounds above 2^53. */
        if (rc == 2 || v < (int64_t)k->lo || v > (int64_t)k->hi) SET_FAIL("%s = %s is out of range %s", k->key, shown, range);
        memcpy(field, &v, sizeof v);
    } else if (k->type == CFG_FLOAT) {
        double v = 0;
        if (parse_float(text, &v)) SET_FAIL("%s: expected a finite number, got '%s'", k->key, shown);
        if (v < k->lo || v > k->hi) SET_FAIL("%s = %s is out of range %s", k->key, shown, range);
        memcpy(field, &v, sizeof v);
    } else if (k->type == CFG_BOOL) {
        int v = 0;
        if (parse_bool(text, &v)) SET_FAIL("%s: expected true or false (or yes/no, on/off, 1/0), got '%s'", k->key, shown);
        memcpy(field, &v, sizeof v);
    } else {
        if (len >= k->size) SET_FAIL("%s: value '%s' is too long (%zu bytes, at most %zu)", k->key, shown, len, k->size - 1);
        /* Only valid UTF-8 can be written back as YAML and read again unchanged. */
        if (!utf8_valid(text, len)) SET_FAIL("%s: value '%s' is not valid UTF-8", k->key, shown);
        enum_list(k->choices, list, sizeof list);
        if (k->type == CFG_ENUM && !enum_has(k->choices, text)) SET_FAIL("%s: '%s' is not one of: %s", k->key, shown, list);
        /* Zero the whole field so that equal configs are equal bytes (memcmp, checkpoints). */
        memset(field, 0, k->size);
        memcpy(field, text, len);
    }
    return 0;
}
#undef SET_FAIL

void config_defaults(Config *c) {
    char err[512];
    memset(c, 0, sizeof *c);  /* padding too, so configs compare with memcmp */
    for (int i = 0; i < LC_NKEYS; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        if (k->type == CFG_INT && (k->lo != floor(k->lo) || k->hi != floor(k->hi) || k->lo < 0 || k->hi > 9.2e18))
            LC_FATAL("schema: bounds of %s must be integers in [0, 2^63)", k->key);
        if (config_set(c, k, k->def, strlen(k->def), err, sizeof err)) LC_FATAL("schema: bad default: %s", err);
    }
}

/* ---------------------------------------------------------------- YAML loading */

typedef struct {
    Config *c;
    const char *origin;
    yaml_document_t *doc;
    size_t key_line[LC_NKEYS];          /* where each key was set in this document (0: not yet) */
    size_t section_line[LC_NSECTIONS];
    char err[1024];
} Loader;

static int load_fail(Loader *ld, size_t line, const char *fmt, ...) LC_PRINTF(3, 4);
static int load_fail(Loader *ld, size_t line, const char *fmt, ...) {
    int n = snprintf(ld->err, sizeof ld->err, "%s:%zu: ", ld->origin, line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof ld->err) vsnprintf(ld->err + n, sizeof ld->err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static size_t node_line(const yaml_node_t *n) { return n->start_mark.line + 1; }

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "mapping" : n->type == YAML_SEQUENCE_NODE ? "sequence" : "scalar";
}

/* An empty plain value (`model:` with nothing under it) or an explicit null. */
static int node_is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == 0 || strcmp(v, "~") == 0 || str_ieq(v, "null");
}

static int load_section(Loader *ld, int s, yaml_node_t *map) {
    const char *sec = config_sections[s];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        LC_ASSERT(kn && vn, "libyaml: dangling node in a mapping of '%s'", ld->origin);
        if (kn->type != YAML_SCALAR_NODE)
            return load_fail(ld, node_line(kn), "keys in section '%s' must be names, found a %s", sec, node_kind(kn));
        const char *name = (const char *)kn->data.scalar.value;
        char full[160], shown[160], hint[96];
        snprintf(full, sizeof full, "%s.%s", sec, name);
        int i = strlen(name) < 100 ? config_find(full, strlen(full)) : -1;
        if (i < 0) {
            msg_text(shown, sizeof shown, full, strlen(full));
            config_suggest(full, hint, sizeof hint);
            return load_fail(ld, node_line(kn), "unknown key '%s'%s", shown, hint);
        }
        if (ld->key_line[i])
            return load_fail(ld, node_line(kn), "duplicate key '%s' (first set at line %zu)", full, ld->key_line[i]);
        ld->key_line[i] = node_line(kn);
        if (vn->type != YAML_SCALAR_NODE)
            return load_fail(ld, node_line(vn), "%s: expected a single value, found a %s", full, node_kind(vn));
        char err[768];
        if (config_set(ld->c, &lc_config_keys[i], (const char *)vn->data.scalar.value, vn->data.scalar.length, err,
                       sizeof err))
            return load_fail(ld, node_line(vn), "%s", err);
    }
    return 0;
}

static int load_document(Loader *ld) {
    yaml_node_t *root = yaml_document_get_root_node(ld->doc);
    if (!root || node_is_null(root)) return 0;  /* an empty file changes nothing */
    if (root->type != YAML_MAPPING_NODE)
        return load_fail(ld, node_line(root), "the top level must be a mapping of sections (model, data, train), found a %s",
                         node_kind(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        LC_ASSERT(kn && vn, "libyaml: dangling node in the top mapping of '%s'", ld->origin);
        if (kn->type != YAML_SCALAR_NODE)
            return load_fail(ld, node_line(kn), "section names must be model, data or train, found a %s", node_kind(kn));
        const char *name = (const char *)kn->data.scalar.value;
        char shown[160], hint[96];
        msg_text(shown, sizeof shown, name, strlen(name));
        int s = section_find(name);
        if (s < 0) {
            const char *dot = strchr(name, '.');
            if (dot && config_find(name, strlen(name)) >= 0)
                return load_fail(ld, node_line(kn), "'%s' must be written as '%s:' inside the '%.*s:' section", shown,
                                 dot + 1, (int)(dot - name), name);
            hint[0] = 0;
            for (int t = 0; t < LC_NSECTIONS; t++) {
                if (osa_distance(name, config_sections[t]) <= 2)
                    snprintf(hint, sizeof hint, " (did you mean '%s'?)", config_sections[t]);
            }
            return load_fail(ld, node_line(kn), "unknown section '%s'%s; sections are model, data and train", shown, hint);
        }
        if (ld->section_line[s])
            return load_fail(ld, node_line(kn), "duplicate section '%s' (first at line %zu)", name, ld->section_line[s]);
        ld->section_line[s] = node_line(kn);
        if (node_is_null(vn)) continue;
        if (vn->type != YAML_MAPPING_NODE)
            return load_fail(ld, node_line(vn), "section '%s' must be a mapping of 'key: value' lines, found a %s", name,
                             node_kind(vn));
        if (load_section(ld, s, vn)) return -1;
    }
    return 0;
}

/* libyaml's problem text with the line it points at. Reader errors (bad UTF-8, control
 * characters) carry a byte offset instead of a mark: count newlines up to it. */
static void load_syntax_error(const yaml_parser_t *p, const char *origin, const char *text, size_t len, char *err,
                              size_t cap) {
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_MEMORY_ERROR) LC_FATAL("libyaml ran out of memory parsing %s", origin);
    if (p->error == YAML_READER_ERROR) {
        size_t line = 1, end = p->problem_offset < len ? p->problem_offset : len;
        for (size_t i = 0; i < end; i++) line += text[i] == '\n';
        snprintf(err, cap, "%s:%zu: YAML syntax error: %s (byte %zu)", origin, line, problem, p->problem_offset);
        return;
    }
    if (p->context)
        snprintf(err, cap, "%s:%zu: YAML syntax error: %s (%s at line %zu)", origin, p->problem_mark.line + 1, problem,
                 p->context, p->context_mark.line + 1);
    else
        snprintf(err, cap, "%s:%zu: YAML syntax error: %s", origin, p->problem_mark.line + 1, problem);
}

/* Parse `text` (len bytes) over c. Returns 0, or -1 with the one-line error in err[1024];
 * the caller frees what it owns before dying. */
static int config_load_buffer(Config *c, const char *text, size_t len, const char *origin, char *err) {
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    Loader *ld = xcalloc(1, sizeof *ld);
    ld->c = c;
    ld->origin = origin;
    ld->doc = &doc;
    if (!yaml_parser_initialize(&parser)) LC_FATAL("yaml_parser_initialize failed (out of memory)");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        load_syntax_error(&parser, origin, text, len, ld->err, sizeof ld->err);
        rc = -1;
    } else {
        rc = load_document(ld);
        /* One document per config: a second one would be silently ignored otherwise. */
        while (rc == 0) {
            if (!yaml_parser_load(&parser, &extra)) {
                load_syntax_error(&parser, origin, text, len, ld->err, sizeof ld->err);
                rc = -1;
                break;
            }
            yaml_node_t *root = yaml_document_get_root_node(&extra);
            int done = root == NULL;
            if (root && !node_is_null(root))
                rc = load_fail(ld, node_line(root), "a config holds one YAML document; another one starts here");
            yaml_document_delete(&extra);
            if (done) break;
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    memcpy(err, ld->err, sizeof ld->err);
    free(ld);
    return rc;
}

void config_load_string(Config *c, const char *yaml, const char *origin) {
    char err[1024];
    if (config_load_buffer(c, yaml, strlen(yaml), origin ? origin : "<string>", err)) lc_die("%s", err);
}

void config_load_file(Config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) lc_die("%s: cannot open config file: %s", path, strerror(errno));
    size_t cap = 1 << 14, n = 0;
    char *text = xmalloc(cap), err[1024];
    for (;;) {
        if (n + 1 == cap) text = xrealloc(text, cap *= 2);
        size_t got = fread(text + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        free(text);
        lc_die("%s: cannot read config file: %s", path, strerror(e));
    }
    fclose(f);
    text[n] = 0;
    int rc = config_load_buffer(c, text, n, path, err);
    free(text);
    if (rc) lc_die("%s", err);
}

/* ---------------------------------------------------------------- overrides */

void config_apply_override(Config *c, const char *assignment) {
    char shown[160], keyshown[160], hint[96], err[768];
    msg_text(shown, sizeof shown, assignment, strlen(assignment));
    const char *eq = strchr(assignment, '=');
    if (!eq) lc_die("command line: override '%s' has no '=' (expected section.key=value, e.g. train.lr=3e-4)", shown);
    /* Trim blanks around the key and the value ("train.lr = 3e-4" as one shell word). */
    const char *k0 = assignment, *k1 = eq, *v0 = eq + 1, *v1 = eq + strlen(eq);
    while (k0 < k1 && is_space((unsigned char)*k0)) k0++;
    while (k1 > k0 && is_space((unsigned char)k1[-1])) k1--;
    while (v0 < v1 && is_space((unsigned char)*v0)) v0++;
    while (v1 > v0 && is_space((unsigned char)v1[-1])) v1--;
    size_t klen = (size_t)(k1 - k0), vlen = (size_t)(v1 - v0);
    int i = config_find(k0, klen);
    if (i < 0) {
        char key[128];
        msg_text(keyshown, sizeof keyshown, k0, klen);
        snprintf(key, sizeof key, "%.*s", (int)(klen < 100 ? klen : 100), k0);
        config_suggest(key, hint, sizeof hint);
        lc_die("command line: override '%s': unknown key '%s'%s", shown, keyshown, hint);
    }
    char *value = xmalloc(vlen + 1);
    memcpy(value, v0, vlen);
    value[vlen] = 0;
    int rc = config_set(c, &lc_config_keys[i], value, vlen, err, sizeof err);
    free(value);
    if (rc) lc_die("command line: override '%s': %s", shown, err);
}

/* ---------------------------------------------------------------- validation */

static int64_t field_int(const Config *c, const ConfigKey *k) {
    int64_t v;
    memcpy(&v, (const char *)c + k->offset, sizeof v);
    return v;
}
static double field_float(const Config *c, const ConfigKey *k) {
    double v;
    memcpy(&v, (const char *)c + k->offset, sizeof v);
    return v;
}
static int field_bool(const Config *c, const ConfigKey *k) {
    int v;
    memcpy(&v, (const char *)c + k->offset, sizeof v);
    return v;
}

/* The parser enforces each key's own type and range; a Config filled in code (tests, a
 * checkpoint's attribute) has not been through it, so the schema is re-checked here too. */
static void validate_schema(const Config *c) {
    char range[96], shown[160], list[256];
    for (int i = 0; i < LC_NKEYS; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        const char *field = (const char *)c + k->offset, *nul = memchr(field, 0, k->size);
        fmt_range(k, range, sizeof range);
        if (k->type == CFG_INT && (field_int(c, k) < (int64_t)k->lo || field_int(c, k) > (int64_t)k->hi))
            lc_die("%s (%lld) is out of range %s", k->key, (long long)field_int(c, k), range);
        if (k->type == CFG_FLOAT && !(field_float(c, k) >= k->lo && field_float(c, k) <= k->hi))
            lc_die("%s (%g) is out of range %s", k->key, field_float(c, k), range);
        if (k->type == CFG_BOOL && field_bool(c, k) != 0 && field_bool(c, k) != 1)
            lc_die("%s (%d) must be 0 or 1", k->key, field_bool(c, k));
        if (k->type != CFG_STR && k->type != CFG_ENUM) continue;
        if (!nul) lc_die("%s is not NUL-terminated within %zu bytes", k->key, k->size);
        msg_text(shown, sizeof shown, field, (size_t)(nul - field));
        if (!utf8_valid(field, (size_t)(nul - field))) lc_die("%s ('%s') is not valid UTF-8", k->key, shown);
        enum_list(k->choices, list, sizeof list);
        if (k->type == CFG_ENUM && !enum_has(k->choices, field)) lc_die("%s: '%s' is not one of: %s", k->key, shown, list);
    }
}

void config_validate(const Config *c) {
    const ModelConfig *m = &c->model;
    const DataConfig *d = &c->data;
    const TrainConfig *t = &c->train;
    /* The positional features are [t, cos(f_k t), sin(f_k t)]: 1 + 2 * bands, so odd and >= 3. */
    if (m->filter_emb_dim < 3 || m->filter_emb_dim % 2 == 0)
        lc_die("model.filter_emb_dim (%lld) must be odd and >= 3 (t plus cos and sin bands)", (long long)m->filter_emb_dim);
    /* The filter is generated for l_max positions and must cover every position of a sequence. */
    if (m->l_max != 0 && m->l_max < d->seq_len)
        lc_die("model.l_max (%lld) must be >= data.seq_len (%lld) (or 0 to use data.seq_len)", (long long)m->l_max,
               (long long)d->seq_len);
    if (t->warmup_steps > t->max_steps)
        lc_die("train.warmup_steps (%lld) must be <= train.max_steps (%lld)", (long long)t->warmup_steps,
               (long long)t->max_steps);
    if (m->d_inner < 1) lc_die("model.d_inner (%lld) must be >= 1", (long long)m->d_inner);
    /* The decay phase runs from the end of the warmup to decay_steps; it cannot end before it starts. */
    if (t->decay_steps != 0 && t->decay_steps < t->warmup_steps)
        lc_die("train.decay_steps (%lld) must be 0 or >= train.warmup_steps (%lld)", (long long)t->decay_steps,
               (long long)t->warmup_steps);
    /* Token and FLOP counters are doubles: a step's tokens must be exact in them. */
    double tokens = (double)t->batch_size * (double)t->grad_accum * (double)d->seq_len;
    if (tokens > 9007199254740992.0)
        lc_die("train.batch_size * train.grad_accum * data.seq_len (%.3g tokens per step) must be <= 2^53", tokens);
    /* Empty names would only fail later, far from the config (HDF5 open, mkdir). */
    if (!d->path[0]) lc_die("data.path must not be empty");
    if (!d->train_group[0]) lc_die("data.train_group must not be empty");
    if (!d->val_group[0]) lc_die("data.val_group must not be empty");
    if (!t->out_dir[0]) lc_die("train.out_dir must not be empty");
    validate_schema(c);
}

/* ---------------------------------------------------------------- output */

/* A YAML double-quoted scalar that libyaml reads back byte for byte: escape quotes, backslashes,
 * control characters, and the characters libyaml treats as line breaks (U+0085, U+2028/9) or
 * refuses (C1 controls, U+FEFF, U+FFFE/F). */
static void yaml_quote(Buf *b, const char *s) {
    size_t n = strlen(s);
    buf_printf(b, "\"");
    for (size_t i = 0, k; i < n; i += k) {
        uint32_t cp;
        k = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (k == 0) {  /* not UTF-8 (only via a Config filled in code): keep the YAML valid */
            buf_printf(b, "\\x%02X", (unsigned char)s[i]);
            k = 1;
        } else if (cp == '"' || cp == '\\') buf_printf(b, "\\%c", (char)cp);
        else if (cp == '\n') buf_printf(b, "\\n");
        else if (cp == '\t') buf_printf(b, "\\t");
        else if (cp < 0x20 || cp == 0x7F) buf_printf(b, "\\x%02X", (unsigned)cp);
        else if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
                 cp == 0xFFFE || cp == 0xFFFF)
            buf_printf(b, "\\u%04X", (unsigned)cp);
        else buf_printf(b, "%.*s", (int)k, s + i);
    }
    buf_printf(b, "\"");
}

/* One value as YAML text (strings quoted). */
static void value_append(Buf *b, const ConfigKey *k, const Config *c) {
    char t[40];
    if (k->type == CFG_INT) buf_printf(b, "%lld", (long long)field_int(c, k));
    if (k->type == CFG_FLOAT) {
        fmt_double(field_float(c, k), t, sizeof t);
        buf_printf(b, "%s", t);
    }
    if (k->type == CFG_BOOL) buf_printf(b, "%s", field_bool(c, k) ? "true" : "false");
    if (k->type == CFG_STR) yaml_quote(b, (const char *)c + k->offset);
    if (k->type == CFG_ENUM) buf_printf(b, "%s", (const char *)c + k->offset);
}

char *config_to_yaml(const Config *c) {
    Buf b = {0};
    const char *cur = "";
    size_t curlen = 0;
    for (int i = 0; i < LC_NKEYS; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        const char *dot = strchr(k->key, '.');
        if ((size_t)(dot - k->key) != curlen || memcmp(cur, k->key, curlen) != 0) {
            cur = k->key, curlen = (size_t)(dot - k->key);
            buf_printf(&b, "%.*s:\n", (int)curlen, cur);
        }
        buf_printf(&b, "  %s: ", dot + 1);
        value_append(&b, k, c);
        buf_printf(&b, "\n");
    }
    return b.p;
}

void config_write_yaml(const Config *c, FILE *f) {
    char *s = config_to_yaml(c);
    if (fputs(s, f) == EOF || fflush(f) != 0) {
        int e = errno;
        free(s);
        lc_die("writing the config as YAML failed: %s", strerror(e));
    }
    free(s);
}

void config_print(const Config *c, FILE *f) {
    Config def;
    config_defaults(&def);
    int w = 0;
    for (int i = 0; i < LC_NKEYS; i++) {
        int n = (int)strlen(lc_config_keys[i].key);
        if (n > w) w = n;
    }
    Buf b = {0};
    for (int i = 0; i < LC_NKEYS; i++) {
        const ConfigKey *k = &lc_config_keys[i];
        buf_printf(&b, "%-*s = ", w, k->key);
        value_append(&b, k, c);
        /* Changed values are the interesting ones at startup: show what they replaced. */
        if (memcmp((const char *)c + k->offset, (const char *)&def + k->offset, k->size) != 0) {
            buf_printf(&b, "  (default ");
            value_append(&b, k, &def);
            buf_printf(&b, ")");
        }
        buf_printf(&b, "\n");
    }
    fputs(b.p, f);
    free(b.p);
}

static const char *type_name(ConfigType t) {
    static const char *const names[] = {"int", "float", "bool", "string", "enum"};
    return names[t];
}

/* The range/choices cell of the help table. */
static void help_range(const ConfigKey *k, char *out, size_t cap) {
    if (k->type == CFG_INT || k->type == CFG_FLOAT) fmt_range(k, out, cap);
    else if (k->type == CFG_BOOL) snprintf(out, cap, "true | false");
    else if (k->type == CFG_STR) snprintf(out, cap, "up to %zu bytes", k->size - 1);
    else {
        size_t o = 0;
        for (const char *p = k->choices; *p && o + 4 < cap; p++) {
            if (*p == '|') o += (size_t)snprintf(out + o, cap - o, " | ");
            else out[o++] = *p;
        }
        out[o] = 0;
    }
}

/* Markdown cell text: a '|' would end the cell. */
static void md_cell(Buf *b, const char *s, int code) {
    buf_printf(b, " %s", code ? "`" : "");
    for (; *s; s++) buf_printf(b, *s == '|' ? "\\|" : "%c", *s);
    buf_printf(b, "%s |", code ? "`" : "");
}

void config_print_help(FILE *f, int markdown) {
    Buf b = {0};
    char range[128];
    if (markdown) {
        buf_printf(&b, "| Key | Type | Default | Range / choices | Description |\n");
        buf_printf(&b, "|---|---|---|---|---|\n");
        for (int i = 0; i < LC_NKEYS; i++) {
            const ConfigKey *k = &lc_config_keys[i];
            help_range(k, range, sizeof range);
            buf_printf(&b, "|");
            md_cell(&b, k->key, 1);
            md_cell(&b, type_name(k->type), 0);
            md_cell(&b, k->def[0] ? k->def : "\"\"", 1);
            md_cell(&b, range, 0);
            md_cell(&b, k->help, 0);
            buf_printf(&b, "\n");
        }
    } else {
        int wk = 3, wd = 7, wr = 15;
        for (int i = 0; i < LC_NKEYS; i++) {
            const ConfigKey *k = &lc_config_keys[i];
            help_range(k, range, sizeof range);
            if ((int)strlen(k->key) > wk) wk = (int)strlen(k->key);
            if ((int)strlen(k->def) > wd) wd = (int)strlen(k->def);
            if ((int)strlen(range) > wr) wr = (int)strlen(range);
        }
        buf_printf(&b, "%-*s  %-6s  %-*s  %-*s  %s\n", wk, "key", "type", wd, "default", wr, "range / choices",
                   "description");
        for (int i = 0; i < LC_NKEYS; i++) {
            const ConfigKey *k = &lc_config_keys[i];
            help_range(k, range, sizeof range);
            buf_printf(&b, "%-*s  %-6s  %-*s  %-*s  %s\n", wk, k->key, type_name(k->type), wd, k->def[0] ? k->def : "\"\"",
                       wr, range, k->help);
        }
    }
    fputs(b.p, f);
    free(b.p);
}

/* ---------------------------------------------------------------- derived values */

int64_t config_vocab_padded(const Config *c) {
    int64_t v = c->model.vocab_size, m = c->model.vocab_pad_multiple;
    LC_ASSERT(v >= 1 && m >= 1, "model.vocab_size (%lld) and model.vocab_pad_multiple (%lld) must be >= 1", (long long)v,
              (long long)m);
    return (v + m - 1) / m * m;
}

int64_t config_l_max(const Config *c) { return c->model.l_max ? c->model.l_max : c->data.seq_len; }
