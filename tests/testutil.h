/* Shared helpers for the Check suites: error capture, random data, error metrics, gradient checks. */
#pragma once
#include <check.h>
#include <setjmp.h>
#include <stdint.h>

#include "core/error.h"

/* EXPECT_DIE(stmt, "substring"): stmt must call lc_die with a message containing the substring. */
extern jmp_buf tu_die_jmp;
void tu_die_hook(void);
#define EXPECT_DIE(stmt, substr)                                                          \
    do {                                                                                  \
        lc_die_hook = tu_die_hook;                                                        \
        if (setjmp(tu_die_jmp) == 0) {                                                    \
            stmt;                                                                         \
            lc_die_hook = NULL;                                                           \
            ck_abort_msg("expected an error containing '%s', got none", (substr));        \
        }                                                                                 \
        lc_die_hook = NULL;                                                               \
        ck_assert_msg(strstr(lc_last_error, (substr)) != NULL,                            \
                      "error '%s' does not contain '%s'", lc_last_error, (substr));       \
    } while (0)

/* Fresh random inputs per run: seed from the clock unless LONGCONV_TEST_SEED is set; printed. */
uint64_t tu_seed(void);
double tu_uniform(uint64_t *state);          /* [0,1) */
double tu_normal(uint64_t *state);           /* N(0,1) */
void tu_fill_normal(double *x, int64_t n, double std, uint64_t *state);
void tu_fill_normal_f(float *x, int64_t n, float std, uint64_t *state);

/* ||a-b|| / ||b|| over n elements (b is the reference). */
double tu_rel_l2_d(const double *a, const double *b, int64_t n);
double tu_rel_l2_f(const float *a, const float *b, int64_t n);
double tu_rel_l2_fd(const float *a, const double *b, int64_t n);

/* Print "name: measured X, bound Y (margin Zx)" and assert measured <= bound. */
void tu_check_err(const char *name, double measured, double bound);

/* Run a suite with Check; returns the process exit code (0 when all pass). */
int tu_run_suite(Suite *s);
