/* Errors and logging: every failure is one line naming what failed and where, then exit(1).
 * Helpers that allocate or open things check the result themselves (llm.c style). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LC_NORETURN __attribute__((noreturn))
#else
#define LC_PRINTF(a, b)
#define LC_NORETURN
#endif

/* Print "longconv: error: <message>" and exit(1). Use for bad input (config, data, checkpoint). */
LC_NORETURN void lc_die(const char *fmt, ...) LC_PRINTF(1, 2);
/* Same, prefixed with the source location; use for failed library calls and broken invariants. */
LC_NORETURN void lc_die_at(const char *file, int line, const char *fmt, ...) LC_PRINTF(3, 4);
#define LC_FATAL(...) lc_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define LC_ASSERT(cond, ...) do { if (!(cond)) lc_die_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Tests replace the exit with a longjmp so that error paths can be asserted on.
 * When set, lc_die stores the message in lc_last_error and calls the hook, which must not return. */
extern char lc_last_error[1024];
extern void (*lc_die_hook)(void);

/* Informational output; rank 0 only once distributed runs exist. */
void lc_log(const char *fmt, ...) LC_PRINTF(1, 2);
void lc_warn(const char *fmt, ...) LC_PRINTF(1, 2);

void *lc_malloc_at(size_t bytes, const char *file, int line);
void *lc_calloc_at(size_t n, size_t size, const char *file, int line);
void *lc_realloc_at(void *p, size_t bytes, const char *file, int line);
#define xmalloc(b) lc_malloc_at((b), __FILE__, __LINE__)
#define xcalloc(n, s) lc_calloc_at((n), (s), __FILE__, __LINE__)
#define xrealloc(p, b) lc_realloc_at((p), (b), __FILE__, __LINE__)
#define xfree(p) do { free(p); (p) = NULL; } while (0)
char *xstrdup(const char *s);

FILE *lc_fopen_at(const char *path, const char *mode, const char *file, int line);
#define xfopen(p, m) lc_fopen_at((p), (m), __FILE__, __LINE__)

/* HDF5 calls return negative on failure; the HDF5 error stack is silenced and we name the object. */
#define H5_CHECK(call, what) do { if ((call) < 0) lc_die("HDF5: %s failed (%s)", #call, (what)); } while (0)

#ifdef __cplusplus
}
#endif
