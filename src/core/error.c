#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

char lc_last_error[1024];
void (*lc_die_hook)(void) = NULL;

static LC_NORETURN void finish_die(void) {
    if (lc_die_hook) {
        lc_die_hook();
    }
    fprintf(stderr, "longconv: error: %s\n", lc_last_error);
    fflush(stdout);
    exit(1);
}

void lc_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lc_last_error, sizeof lc_last_error, fmt, ap);
    va_end(ap);
    finish_die();
}

void lc_die_at(const char *file, int line, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(lc_last_error, sizeof lc_last_error, "%s (at %s:%d)", msg, file, line);
    finish_die();
}

void lc_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void lc_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "longconv: warning: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *lc_malloc_at(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) lc_die_at(file, line, "out of host memory allocating %zu bytes", bytes);
    return p;
}

void *lc_calloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) lc_die_at(file, line, "out of host memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *lc_realloc_at(void *p, size_t bytes, const char *file, int line) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) lc_die_at(file, line, "out of host memory reallocating %zu bytes", bytes);
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

FILE *lc_fopen_at(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) lc_die_at(file, line, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    return f;
}
