/* Op profiler: an op table whose every entry wraps the same entry of a base table, timing it.
 *
 * Since models call every numeric operation through the table, time grouped by op is the
 * breakdown by layer type (linear, layernorm, fftconv, shortconv, xent, embedding, adamw, ...).
 * linear_fwd / linear_bwd are further split by shape (C->OC), which separates the projections,
 * the MLP, the filter MLP and the tied head.
 *
 * Timing: the base's synchronize() before and after each op and a monotonic clock, so each op is
 * charged its own device time plus launch latency (and the step runs slower than unprofiled:
 * time throughput with the profile disabled). alloc, free and synchronize are forwarded untimed.
 * On the CUDA backend the device memory in use (cudaMemGetInfo) is sampled after every timed op.
 *
 * One profiled table is active at a time: the wrappers are plain C functions, which carry no
 * context, so they reach the profile through one static pointer. ops_profile_detach ends it. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OPS_PROFILE_MAX_ENTRIES 128

typedef struct OpProfileEntry {
    const char *op;   /* the Ops field name, e.g. "linear_fwd" */
    char label[48];   /* op, plus the shape for linear: "linear_fwd 864->2592" */
    int64_t calls;
    double seconds;
} OpProfileEntry;

typedef struct OpProfile {
    Ops table;        /* the wrapping table handed out by ops_profiled */
    const Ops *base;
    int enabled;      /* 0: the wrappers only forward (no syncs, no clock, no sampling) */
    int is_cuda;      /* sample device memory after each op */
    int64_t steps;    /* steps the counts cover (set by the caller; calls and ms are per step) */
    int n;
    OpProfileEntry e[OPS_PROFILE_MAX_ENTRIES];
    size_t peak_device_used; /* bytes in use on the device, max over the samples (CUDA) */
} OpProfile;

/* Start profiling base into prof (zeroed here, enabled, steps = 1); returns &prof->table, which
 * names itself like base. Dies if another profile is active. */
const Ops *ops_profiled(const Ops *base, OpProfile *prof);
/* Stop routing the wrappers to prof (they must not be called afterwards). */
void ops_profile_detach(OpProfile *prof);
void ops_profile_enable(OpProfile *prof, int enabled);
/* Clear counts and times (keeps the peak memory sample). */
void ops_profile_reset(OpProfile *prof);

/* Sums over the entries of one op (all shapes), or of every op when op is NULL. */
int64_t ops_profile_calls(const OpProfile *prof, const char *op);
double ops_profile_seconds(const OpProfile *prof, const char *op);

/* Table sorted by time: label, calls per step, ms per step, share of the step; then the time
 * outside the ops (host work, launch gaps) and a summary per op family (linear, layernorm, ...).
 * step_seconds: wall time of one step of the profiled pass. */
void ops_profile_print(const OpProfile *prof, FILE *f, double step_seconds);
/* The same rows as a JSON array (no trailing newline). */
void ops_profile_json(const OpProfile *prof, FILE *f, double step_seconds);

/* Bytes in use on CUDA device 0 now (cudaMemGetInfo: total - free); 0 without CUDA. */
size_t ops_profile_device_used(void);

#ifdef __cplusplus
}
#endif
