/* Op profiler: wrappers generated per op field (one macro line each), entries keyed by label. */
#include "kernels/ops_profile.h"

#include <string.h>
#include <time.h>

#include "core/error.h"
#ifdef LONGCONV_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/device.h"
#endif

static OpProfile *g_prof; /* the active profile: wrappers reach base and entries through it */

static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t ops_profile_device_used(void) {
#ifdef LONGCONV_CUDA
    if (cuda_device_count() == 0) return 0;
    size_t free_b = 0, total_b = 0;
    cudaError_t err = cudaMemGetInfo(&free_b, &total_b);
    if (err != cudaSuccess) lc_die_at(__FILE__, __LINE__, "CUDA: cudaMemGetInfo failed: %s", cudaGetErrorString(err));
    return total_b - free_b;
#else
    return 0;
#endif
}

/* Drain the device so the clock brackets only this op's work. */
static double prof_begin(void) {
    g_prof->base->synchronize();
    return prof_now();
}

static OpProfileEntry *prof_entry(const char *op, const char *label) {
    OpProfile *p = g_prof;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->e[i].label, label) == 0) return &p->e[i];
    LC_ASSERT(p->n < OPS_PROFILE_MAX_ENTRIES, "op profile: more than %d distinct op labels", OPS_PROFILE_MAX_ENTRIES);
    OpProfileEntry *e = &p->e[p->n++];
    e->op = op;
    snprintf(e->label, sizeof e->label, "%s", label);
    e->calls = 0;
    e->seconds = 0;
    return e;
}

static void prof_end(const char *op, const char *label, double t0) {
    g_prof->base->synchronize();
    double dt = prof_now() - t0;
    OpProfileEntry *e = prof_entry(op, label ? label : op);
    e->calls++;
    e->seconds += dt;
    if (g_prof->is_cuda) {
        size_t used = ops_profile_device_used();
        if (used > g_prof->peak_device_used) g_prof->peak_device_used = used;
    }
}

/* "linear_fwd 864->2592": the shape separates projections, MLP, filter MLP and the head. */
static const char *prof_shape(char *buf, size_t n, const char *op, int C, int OC) {
    snprintf(buf, n, "%s %d->%d", op, C, OC);
    return buf;
}

/* Ops timed under their field name: (field, parameter list, argument list). */
#define PROF_VOID_OPS(X)                                                                                  \
    X(zero, (void *p, size_t bytes), (p, bytes))                                                          \
    X(copy, (void *dst, const void *src, size_t bytes), (dst, src, bytes))                                \
    X(to_host, (void *host_dst, const void *src, size_t bytes), (host_dst, src, bytes))                   \
    X(to_device, (void *dst, const void *host_src, size_t bytes), (dst, host_src, bytes))                 \
    X(acc_from_f32, (acc_t *dst, const float *src, int64_t n), (dst, src, n))                             \
    X(acc_to_f32, (float *dst, const acc_t *src, int64_t n), (dst, src, n))                               \
    X(acc_from_f64, (acc_t *dst, const double *src, int64_t n), (dst, src, n))                            \
    X(acc_to_f64, (double *dst, const acc_t *src, int64_t n), (dst, src, n))                              \
    X(act_from_acc, (act_t *dst, const acc_t *src, int64_t n), (dst, src, n))                             \
    X(act_to_acc, (acc_t *dst, const act_t *src, int64_t n), (dst, src, n))                               \
    X(acc_add_act, (acc_t *dst, const act_t *src, int64_t n), (dst, src, n))                              \
    X(add, (act_t *out, const act_t *a, const act_t *b, int64_t n), (out, a, b, n))                       \
    X(accumulate, (act_t *dst, const act_t *src, int64_t n), (dst, src, n))                               \
    X(gelu_fwd, (act_t *out, const act_t *inp, int64_t n), (out, inp, n))                                 \
    X(gelu_bwd, (act_t *dinp, const act_t *inp, const act_t *dout, int64_t n), (dinp, inp, dout, n))      \
    X(dropout_fwd, (act_t *out, const act_t *inp, float p, uint64_t seed, uint64_t stream, int64_t n),     \
      (out, inp, p, seed, stream, n))                                                                     \
    X(dropout_bwd, (act_t *dinp, const act_t *dout, float p, uint64_t seed, uint64_t stream, int64_t n),   \
      (dinp, dout, p, seed, stream, n))                                                                   \
    X(embedding_fwd, (act_t *out, const tok_t *tokens, const act_t *wte, int64_t N, int C),               \
      (out, tokens, wte, N, C))                                                                           \
    X(embedding_bwd, (acc_t *dwte, const act_t *dout, const tok_t *tokens, int64_t N, int C),             \
      (dwte, dout, tokens, N, C))                                                                         \
    X(layernorm_fwd, (act_t *out, acc_t *mean, acc_t *rstd, const act_t *inp, const act_t *w,             \
                      const act_t *b, int64_t N, int C, float eps),                                       \
      (out, mean, rstd, inp, w, b, N, C, eps))                                                            \
    X(layernorm_bwd, (act_t *dinp, acc_t *dw, acc_t *db, const act_t *dout, const act_t *inp,             \
                      const act_t *w, const acc_t *mean, const acc_t *rstd, int64_t N, int C),            \
      (dinp, dw, db, dout, inp, w, mean, rstd, N, C))                                                     \
    X(bcl_from_blc, (act_t *out, const act_t *inp, int B, int L, int C), (out, inp, B, L, C))             \
    X(blc_from_bcl, (act_t *out, const act_t *inp, int B, int L, int C), (out, inp, B, L, C))             \
    X(shortconv_fwd, (act_t *out, const act_t *inp, const act_t *w, const act_t *bias, int B, int L,      \
                      int C, int K),                                                                      \
      (out, inp, w, bias, B, L, C, K))                                                                    \
    X(shortconv_bwd, (act_t *dinp, acc_t *dw, acc_t *dbias, const act_t *dout, const act_t *inp,          \
                      const act_t *w, int B, int L, int C, int K),                                        \
      (dinp, dw, dbias, dout, inp, w, B, L, C, K))                                                        \
    X(fftconv_fwd, (act_t *y, const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,         \
                    const acc_t *k, int Lk, const acc_t *D, int B, int H, int L),                         \
      (y, u, w, v, in_bstride, k, Lk, D, B, H, L))                                                        \
    X(fftconv_bwd, (act_t *du, act_t *dw, act_t *dv, acc_t *dk, acc_t *dD, const act_t *dy,               \
                    const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride, const acc_t *k,   \
                    int Lk, const acc_t *D, int B, int H, int L),                                         \
      (du, dw, dv, dk, dD, dy, u, w, v, in_bstride, k, Lk, D, B, H, L))                                   \
    X(sin_fwd, (act_t *out, const act_t *inp, const acc_t *freq, int64_t N, int C), (out, inp, freq, N, C)) \
    X(sin_bwd, (act_t *dinp, acc_t *dfreq, const act_t *dout, const act_t *inp, const acc_t *freq,        \
                int64_t N, int C),                                                                        \
      (dinp, dfreq, dout, inp, freq, N, C))                                                               \
    X(expmod_fwd, (acc_t *k, const act_t *h, const acc_t *deltas, const acc_t *t_pos, float shift,        \
                   int modulate, int L, int C),                                                           \
      (k, h, deltas, t_pos, shift, modulate, L, C))                                                       \
    X(expmod_bwd, (act_t *dh, const acc_t *dk, const acc_t *deltas, const acc_t *t_pos, float shift,      \
                   int modulate, int L, int C),                                                           \
      (dh, dk, deltas, t_pos, shift, modulate, L, C))                                                     \
    X(xent_fwd_bwd, (acc_t *losses, act_t *logits, const tok_t *targets, int64_t N, int V, int Vp,        \
                     float dscale),                                                                       \
      (losses, logits, targets, N, V, Vp, dscale))                                                        \
    X(adamw, (acc_t *p, const acc_t *g, acc_t *m, acc_t *v, int64_t n, float lr, float beta1, float beta2, \
              float eps, float wd, int t),                                                                \
      (p, g, m, v, n, lr, beta1, beta2, eps, wd, t))                                                      \
    X(scale, (acc_t *x, float s, int64_t n), (x, s, n))

#define PROF_DOUBLE_OPS(X)                               \
    X(sum, (const acc_t *x, int64_t n), (x, n))          \
    X(sum_squares, (const acc_t *x, int64_t n), (x, n))

#define PROF_WRAP_VOID(field, params, args)              \
    static void prof_##field params {                    \
        if (!g_prof->enabled) {                          \
            g_prof->base->field args;                    \
            return;                                      \
        }                                                \
        double t0_ = prof_begin();                       \
        g_prof->base->field args;                        \
        prof_end(#field, NULL, t0_);                     \
    }

#define PROF_WRAP_DOUBLE(field, params, args)            \
    static double prof_##field params {                  \
        if (!g_prof->enabled) return g_prof->base->field args; \
        double t0_ = prof_begin();                       \
        double r_ = g_prof->base->field args;            \
        prof_end(#field, NULL, t0_);                     \
        return r_;                                       \
    }

PROF_VOID_OPS(PROF_WRAP_VOID)
PROF_DOUBLE_OPS(PROF_WRAP_DOUBLE)

/* linear: labelled by shape. */
static void prof_linear_fwd(act_t *out, const act_t *inp, const act_t *w, const act_t *b, int64_t N, int C, int OC) {
    if (!g_prof->enabled) {
        g_prof->base->linear_fwd(out, inp, w, b, N, C, OC);
        return;
    }
    char lab[48];
    double t0 = prof_begin();
    g_prof->base->linear_fwd(out, inp, w, b, N, C, OC);
    prof_end("linear_fwd", prof_shape(lab, sizeof lab, "linear_fwd", C, OC), t0);
}

static void prof_linear_bwd(act_t *dinp, acc_t *dw, acc_t *db, const act_t *dout, const act_t *inp, const act_t *w,
                            int64_t N, int C, int OC) {
    if (!g_prof->enabled) {
        g_prof->base->linear_bwd(dinp, dw, db, dout, inp, w, N, C, OC);
        return;
    }
    char lab[48];
    double t0 = prof_begin();
    g_prof->base->linear_bwd(dinp, dw, db, dout, inp, w, N, C, OC);
    prof_end("linear_bwd", prof_shape(lab, sizeof lab, "linear_bwd", C, OC), t0);
}

const Ops *ops_profiled(const Ops *base, OpProfile *prof) {
    LC_ASSERT(base && prof, "ops_profiled: NULL argument");
    LC_ASSERT(!g_prof || g_prof == prof, "ops_profiled: another op profile is active (ops_profile_detach it first)");
    memset(prof, 0, sizeof *prof);
    prof->base = base;
    prof->enabled = 1;
    prof->steps = 1;
    prof->is_cuda = strcmp(base->name, "cuda") == 0;
    /* Copy first: alloc, free, synchronize and any field added later are forwarded as they are. */
    prof->table = *base;
#define PROF_INSTALL(field, params, args) prof->table.field = base->field ? prof_##field : NULL;
    PROF_VOID_OPS(PROF_INSTALL)
    PROF_DOUBLE_OPS(PROF_INSTALL)
#undef PROF_INSTALL
    prof->table.linear_fwd = base->linear_fwd ? prof_linear_fwd : NULL;
    prof->table.linear_bwd = base->linear_bwd ? prof_linear_bwd : NULL;
    g_prof = prof;
    return &prof->table;
}

void ops_profile_detach(OpProfile *prof) {
    if (g_prof == prof) g_prof = NULL;
}

void ops_profile_enable(OpProfile *prof, int enabled) { prof->enabled = enabled; }

void ops_profile_reset(OpProfile *prof) {
    prof->n = 0;
    prof->steps = 1;
}

int64_t ops_profile_calls(const OpProfile *prof, const char *op) {
    int64_t c = 0;
    for (int i = 0; i < prof->n; i++)
        if (!op || strcmp(prof->e[i].op, op) == 0) c += prof->e[i].calls;
    return c;
}

double ops_profile_seconds(const OpProfile *prof, const char *op) {
    double s = 0;
    for (int i = 0; i < prof->n; i++)
        if (!op || strcmp(prof->e[i].op, op) == 0) s += prof->e[i].seconds;
    return s;
}

/* Entry indices by time, largest first (insertion sort: at most a few dozen rows). */
static void prof_order(const OpProfile *prof, int *idx) {
    for (int i = 0; i < prof->n; i++) {
        int j = i;
        for (; j > 0 && prof->e[idx[j - 1]].seconds < prof->e[i].seconds; j--) idx[j] = idx[j - 1];
        idx[j] = i;
    }
}

/* The family of an op: its name without _fwd, _bwd or _fwd_bwd ("linear", "xent", "adamw"). */
static void prof_family(const char *op, char *out, size_t n) {
    snprintf(out, n, "%s", op);
    static const char *suffix[] = {"_fwd_bwd", "_fwd", "_bwd"};
    size_t len = strlen(out);
    for (int s = 0; s < 3; s++) {
        size_t k = strlen(suffix[s]);
        if (len > k && strcmp(out + len - k, suffix[s]) == 0) {
            out[len - k] = 0;
            return;
        }
    }
}

void ops_profile_print(const OpProfile *prof, FILE *f, double step_seconds) {
    int idx[OPS_PROFILE_MAX_ENTRIES];
    prof_order(prof, idx);
    const double steps = prof->steps > 0 ? (double)prof->steps : 1.0;
    const double step_ms = 1000.0 * step_seconds;
    fprintf(f, "%-28s %12s %12s %8s\n", "op", "calls/step", "ms/step", "share");
    for (int r = 0; r < prof->n; r++) {
        const OpProfileEntry *e = &prof->e[idx[r]];
        double ms = 1000.0 * e->seconds / steps;
        fprintf(f, "%-28s %12.1f %12.3f %7.1f%%\n", e->label, (double)e->calls / steps, ms, 100.0 * ms / step_ms);
    }
    double ops_ms = 1000.0 * ops_profile_seconds(prof, NULL) / steps;
    fprintf(f, "%-28s %12.1f %12.3f %7.1f%%\n", "(all ops)", (double)ops_profile_calls(prof, NULL) / steps, ops_ms,
            100.0 * ops_ms / step_ms);
    fprintf(f, "%-28s %12s %12.3f %7.1f%%\n", "(outside ops)", "", step_ms - ops_ms, 100.0 * (step_ms - ops_ms) / step_ms);
    /* families, by time */
    char fam[OPS_PROFILE_MAX_ENTRIES][48];
    double fms[OPS_PROFILE_MAX_ENTRIES];
    int nf = 0;
    for (int i = 0; i < prof->n; i++) {
        char name[48];
        prof_family(prof->e[i].op, name, sizeof name);
        int j = 0;
        while (j < nf && strcmp(fam[j], name) != 0) j++;
        if (j == nf) {
            snprintf(fam[nf], sizeof fam[nf], "%s", name);
            fms[nf++] = 0;
        }
        fms[j] += 1000.0 * prof->e[i].seconds / steps;
    }
    fprintf(f, "by family:");
    for (int done = 0; done < nf; done++) {
        int best = -1;
        for (int j = 0; j < nf; j++)
            if (fms[j] >= 0 && (best < 0 || fms[j] > fms[best])) best = j;
        fprintf(f, " %s %.1f%%%s", fam[best], 100.0 * fms[best] / step_ms, done + 1 < nf ? "," : "");
        fms[best] = -1;
    }
    fprintf(f, "\n");
}

void ops_profile_json(const OpProfile *prof, FILE *f, double step_seconds) {
    int idx[OPS_PROFILE_MAX_ENTRIES];
    prof_order(prof, idx);
    const double steps = prof->steps > 0 ? (double)prof->steps : 1.0;
    fprintf(f, "[");
    for (int r = 0; r < prof->n; r++) {
        const OpProfileEntry *e = &prof->e[idx[r]];
        double ms = 1000.0 * e->seconds / steps;
        fprintf(f, "%s{\"op\": \"%s\", \"calls_per_step\": %.2f, \"ms_per_step\": %.4f, \"share\": %.5f}",
                r ? ", " : "", e->label, (double)e->calls / steps, ms, ms / (1000.0 * step_seconds));
    }
    fprintf(f, "]");
}
