/* fftconv on the GPU, every implementation of the CUDA backend (fftconv.h: "flashfft", the fused
 * Monarch kernels, which run every L <= 4096, odd and short rows included, and hand longer rows to
 * cufft, which the check names say: "flashfft>cufft"; and "cufft", the cuFFT baseline) against the fp64 CPU backend (ops_cpu64), which is itself checked against a direct O(L^2)
 * convolution written here for small L. Inputs are rounded to bf16 (u, w, v, dy) and fp32 (k, D)
 * on the host and the same values are fed to both sides. Per case: plain forward, gated forward
 * (w, v, D), plain backward (du, dk, dD; dw and dv must be left alone), gated backward (du, dw, dv,
 * dk, dD). Outputs are poisoned (NaN bits) before every run; row gaps (in_bstride > H*L) must stay
 * poisoned; dD starts at the reference value and must end at twice it (+=); every op runs twice
 * and must give the same bits. Cases: white-noise and Hyena-like decaying filters, causal (Lk = L,
 * Lk < L), bidirectional (Lk = 2L), strided rows, odd L (1, 37, 1000), chunked batches, NULL
 * outputs, and every power of two L from 2^7 to 2^19 plus 2^21 (FFT size 4M). Large L use B*H = 2
 * so the fp64 reference stays cheap.
 *
 * Error bounds (relative L2 against fp64):
 * - bf16 outputs (y, du, dw, dv): each is one fp32 value rounded once to bf16 (8 significant bits,
 *   unit roundoff u = 2^-8 = 3.9e-3), so |rel| <= u per element and the relative L2 error is <= u;
 *   for values spread over binades its RMS is about 2^-7/sqrt(12) * 0.74 = 1.7e-3 (what is
 *   measured). The inputs are exact on both sides, u ⊙ w and dy ⊙ v are exact in fp32, and the
 *   fp32 FFT path adds ~eps32 * log2 N ~ 1e-6. Bound 5e-3 (> u) up to FFT size 64K, 1e-2 beyond
 *   (headroom for fp32 error growth in very long transforms).
 * - fp32 outputs (dk, dD): no bf16 rounding; fp32 FFTs (~1e-6 relative for these white-ish
 *   spectra, whose dynamic range is < ~100) and fp32 block sums added in double. Bound 1e-4.
 * - flashfft (where it runs): the FFTs are matmuls with fp16 inputs (unit roundoff 2^-11 = 4.9e-4)
 *   and fp32 accumulation; each row is scaled by a power of two before every fp16 rounding, so
 *   the error is relative to the row's largest values. A transform rounds its data three times
 *   (outer-stage output, twiddled intermediate; the DFT-matrix entries once), so a spectrum has a
 *   relative RMS error of about sqrt(3) * 2^-11 / sqrt(3) ~ 5e-4, a product of two spectra ~7e-4
 *   (dk: measured 4-7e-4 on the CPU emulator of the kernels). For y, du, dw, dv that adds in
 *   quadrature to the final bf16 rounding (1.7e-3 -> ~1.9e-3): the bf16 bound above still holds.
 *   dk gets bound TOL_TC = 5e-3 (7x the expected error; Lk < L keeps only part of the
 *   correlation, which raises the relative error by up to sqrt(N / Lk) ~ 2.5 here); dD is summed
 *   in the time domain in fp32 as in cufft: bound 1e-4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/ops.h"
#include "testutil.h"
#ifdef LONGCONV_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/fftconv/cufft_conv.h"
#include "kernels/cuda/fftconv/fftconv.h"
#endif

#define TOL32 1e-4
#define TOL_TC 5e-3   /* dk of the tensor-core kernels (see the top of the file) */
#define DIRECT_TOL 1e-10   /* fp64 FFT vs direct sum: eps64 * log2 N * dynamic range << 1e-10 */

static double bound_bf16(int L) { return 2 * (int64_t)L <= 65536 ? 5e-3 : 1e-2; }

typedef struct {
    const char *name;
    int B, H, L, Lk, gap;
    int decay;       /* Hyena-like k = randn * exp(-0.1 d), d the distance of tap s; else white noise */
    int nulls;       /* gated backward with dv, dk, dD NULL (only du, dw) */
    int chunk_rows;  /* > 0: force chunks of this many rows (cufftconv_set_chunk_bytes) */
} Case;

#define P2(lg, b, h, lk, gp, dc) {"L=2^" #lg, b, h, 1 << lg, lk, gp, dc, 0, 0}
static const Case cases[] = {
    {"L=1 Lk=1", 2, 2, 1, 1, 0, 0, 0, 0},
    {"L=1 bidirectional", 2, 3, 1, 2, 3, 1, 0, 0},
    {"L=37 causal decay strided", 3, 5, 37, 37, 11, 1, 0, 0},
    {"L=37 bidirectional white", 2, 3, 37, 74, 0, 0, 0, 0},
    {"L=37 Lk=10", 2, 3, 37, 10, 5, 1, 0, 0},
    {"L=1000 causal white strided", 2, 3, 1000, 1000, 3, 0, 0, 0},
    {"L=1000 bidirectional decay", 2, 3, 1000, 2000, 0, 1, 0, 0},
    {"L=1000 Lk=333 decay", 2, 3, 1000, 333, 0, 1, 0, 0},
    {"L=1000 NULL dv dk dD", 2, 3, 1000, 1000, 2, 0, 1, 0},
    {"L=1000 chunks of 4 rows", 3, 5, 1000, 1500, 6, 1, 0, 4},
    {"L=4096 chunks of 1 row", 2, 3, 4096, 4096, 0, 0, 0, 1},
    /* several iterations and batch tiles per block of the fused kernels, odd strides (unaligned
     * bf16 pairs), NULL outputs, short and bidirectional filters at the lengths they handle */
    {"L=256 B=20 Lk=100", 20, 2, 256, 100, 0, 1, 0, 0},
    {"L=512 B=37 bidirectional odd stride", 37, 2, 512, 1024, 7, 0, 0, 0},
    {"L=1024 NULL dv dk dD", 2, 3, 1024, 1024, 2, 0, 1, 0},
    {"L=2048 B=9 Lk=700 strided", 9, 3, 2048, 700, 4, 1, 0, 0},
    {"L=4096 B=5 bidirectional odd stride", 5, 3, 4096, 8192, 1, 0, 0, 0},
    P2(7, 2, 3, 128, 0, 1),       P2(8, 2, 3, 512, 7, 1),       P2(9, 2, 3, 171, 0, 0),
    P2(10, 2, 3, 1024, 7, 0),     P2(11, 2, 3, 4096, 0, 1),     P2(12, 2, 3, 1366, 7, 1),
    P2(13, 2, 2, 8192, 0, 0),     P2(14, 2, 2, 32768, 7, 0),    P2(15, 2, 2, 10923, 0, 1),
    P2(16, 2, 2, 65536, 7, 1),    P2(17, 1, 2, 262144, 0, 0),   P2(18, 1, 2, 87382, 7, 0),
    P2(19, 1, 2, 524288, 0, 1),   P2(21, 1, 2, 2097152, 0, 1),
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static uint64_t rng;

#ifdef LONGCONV_CUDA
#define CK_CUDA(call)                                                                          \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        ck_assert_msg(e_ == cudaSuccess, "%s failed: %s", #call, cudaGetErrorString(e_));      \
    } while (0)

/* ---- bf16 on the host: round to nearest even (inputs are finite) ---- */
static uint16_t bf16_from_double(double x) {
    float f = (float)x;
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}
static double bf16_to_double(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* One problem: values in double (what both sides see) and their device copies. */
typedef struct {
    Case c;
    const char *impl;            /* implementation under test (fftconv.h), "a>b" when a hands L to b */
    int tc;                      /* the tensor-core kernels run (dk bound TOL_TC) */
    int64_t bs, nin, ny, nk;     /* in_bstride; elements of u (= w, v, du, dw, dv), y (= dy), k */
    double *u, *w, *v, *dy, *k, *D;
    /* fp64 references: plain (w = v = D = NULL) and gated */
    double *y_p, *y_g, *du_p, *dk_p, *dD_p, *du_g, *dw_g, *dv_g, *dk_g, *dD_g;
    /* device */
    void *d_u, *d_w, *d_v, *d_dy, *d_y, *d_du, *d_dw, *d_dv;
    float *d_k, *d_D, *d_dk, *d_dD;
} Prob;

static double *dalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CK_CUDA(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}

/* bf16-round x in place and upload it */
static void *dev_bf16(double *x, int64_t n) {
    uint16_t *h = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        h[i] = bf16_from_double(x[i]);
        x[i] = bf16_to_double(h[i]);
    }
    void *d = dev_alloc((size_t)n * 2);
    CK_CUDA(cudaMemcpy(d, h, (size_t)n * 2, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

/* fp32-round x in place and upload it */
static float *dev_f32(double *x, int64_t n) {
    float *h = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        h[i] = (float)x[i];
        x[i] = h[i];
    }
    float *d = dev_alloc((size_t)n * 4);
    CK_CUDA(cudaMemcpy(d, h, (size_t)n * 4, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static Prob prob_make(const Case *c) {
    Prob p = {.c = *c};
    p.bs = (int64_t)c->H * c->L + c->gap;
    p.nin = (int64_t)c->B * p.bs;
    p.ny = (int64_t)c->B * c->H * c->L;
    p.nk = (int64_t)c->H * c->Lk;
    p.u = dalloc(p.nin), p.w = dalloc(p.nin), p.v = dalloc(p.nin), p.dy = dalloc(p.ny);
    p.k = dalloc(p.nk), p.D = dalloc(c->H);
    tu_fill_normal(p.u, p.nin, 1.0, &rng);   /* gaps get noise too: they must not leak */
    tu_fill_normal(p.w, p.nin, 1.0, &rng);
    tu_fill_normal(p.v, p.nin, 1.0, &rng);
    tu_fill_normal(p.dy, p.ny, 1.0, &rng);
    tu_fill_normal(p.D, c->H, 1.0, &rng);
    for (int h = 0; h < c->H; h++) {   /* unit L2 norm per channel: y = k * x stays O(1) */
        double *kh = p.k + (int64_t)h * c->Lk, ss = 0;
        for (int s = 0; s < c->Lk; s++) {
            double dist = s < c->L ? s : 2.0 * c->L - s;
            kh[s] = tu_normal(&rng) * (c->decay ? exp(-0.1 * dist) : 1.0);
            ss += kh[s] * kh[s];
        }
        for (int s = 0; s < c->Lk; s++) kh[s] /= sqrt(ss);
    }
    p.d_u = dev_bf16(p.u, p.nin), p.d_w = dev_bf16(p.w, p.nin), p.d_v = dev_bf16(p.v, p.nin);
    p.d_dy = dev_bf16(p.dy, p.ny);
    p.d_k = dev_f32(p.k, p.nk), p.d_D = dev_f32(p.D, c->H);
    p.d_y = dev_alloc((size_t)p.ny * 2);
    p.d_du = dev_alloc((size_t)p.nin * 2), p.d_dw = dev_alloc((size_t)p.nin * 2), p.d_dv = dev_alloc((size_t)p.nin * 2);
    p.d_dk = dev_alloc((size_t)p.nk * 4), p.d_dD = dev_alloc((size_t)c->H * 4);
    return p;
}

static void prob_free(Prob *p) {
    double *h[] = {p->u, p->w, p->v, p->dy, p->k, p->D, p->y_p, p->y_g, p->du_p, p->dk_p, p->dD_p,
                   p->du_g, p->dw_g, p->dv_g, p->dk_g, p->dD_g};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    void *d[] = {p->d_u, p->d_w, p->d_v, p->d_dy, p->d_y, p->d_du, p->d_dw, p->d_dv, p->d_k, p->d_D, p->d_dk, p->d_dD};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) CK_CUDA(cudaFree(d[i]));
}

/* fp64 references on the CPU (same rounded inputs) */
static void prob_reference(Prob *p) {
    const Ops *cpu = ops_cpu64();
    const Case *c = &p->c;
    p->y_p = dalloc(p->ny), p->y_g = dalloc(p->ny);
    p->du_p = dalloc(p->nin), p->dk_p = dalloc(p->nk), p->dD_p = dalloc(c->H);
    p->du_g = dalloc(p->nin), p->dw_g = dalloc(p->nin), p->dv_g = dalloc(p->nin);
    p->dk_g = dalloc(p->nk), p->dD_g = dalloc(c->H);
    cpu->fftconv_fwd(p->y_p, p->u, NULL, NULL, p->bs, p->k, c->Lk, NULL, c->B, c->H, c->L);
    cpu->fftconv_fwd(p->y_g, p->u, p->w, p->v, p->bs, p->k, c->Lk, p->D, c->B, c->H, c->L);
    cpu->fftconv_bwd(p->du_p, NULL, NULL, p->dk_p, p->dD_p, p->dy, p->u, NULL, NULL, p->bs, p->k, c->Lk, NULL,
                     c->B, c->H, c->L);
    cpu->fftconv_bwd(p->du_g, p->dw_g, p->dv_g, p->dk_g, p->dD_g, p->dy, p->u, p->w, p->v, p->bs, p->k, c->Lk,
                     p->D, c->B, c->H, c->L);
}

/* The gated forward by direct summation in double (the reference's reference), for small sizes. */
static void direct_gated_fwd(double *y, const Prob *p) {
    const Case *c = &p->c;
    const int L = c->L;
    double *x = malloc(sizeof(double) * (size_t)L);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++) {
            const int64_t off = (int64_t)b * p->bs + (int64_t)h * L;
            const double *kh = p->k + (int64_t)h * c->Lk;
            for (int t = 0; t < L; t++) x[t] = p->u[off + t] * p->w[off + t];
            for (int t = 0; t < L; t++) {
                double acc = p->D[h] * x[t];
                for (int s = 0; s < c->Lk; s++) {
                    int j = s <= t ? t - s : t - s + 2 * L;   /* taps past t wrap (bidirectional) */
                    if (j < L) acc += kh[s] * x[j];
                }
                y[((int64_t)b * c->H + h) * L + t] = p->v[off + t] * acc;
            }
        }
    free(x);
}

/* ---- device helpers ---- */
static void poison(void *d, size_t bytes) { CK_CUDA(cudaMemset(d, 0xFF, bytes)); }   /* NaN in bf16 and fp32 */

static uint16_t *get_bf16(const void *d, int64_t n) {
    uint16_t *h = malloc((size_t)n * 2);
    CK_CUDA(cudaMemcpy(h, d, (size_t)n * 2, cudaMemcpyDeviceToHost));
    return h;
}
static float *get_f32(const float *d, int64_t n) {
    float *h = malloc((size_t)n * 4);
    CK_CUDA(cudaMemcpy(h, d, (size_t)n * 4, cudaMemcpyDeviceToHost));
    return h;
}

/* Relative L2 error of bf16 rows got against ref, rows (b,h) at b*bs + h*L in both. */
static double err_rows(const uint16_t *got, const double *ref, int64_t bs, const Case *c) {
    double num = 0, den = 0;
    for (int b = 0; b < c->B; b++)
        for (int64_t i = (int64_t)b * bs; i < (int64_t)b * bs + (int64_t)c->H * c->L; i++) {
            double d = bf16_to_double(got[i]) - ref[i];
            num += d * d, den += ref[i] * ref[i];
        }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

static double err_f32(const float *got, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d, den += ref[i] * ref[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

/* Elements of the row gaps (or, with all = 1, of the whole buffer) that lost their poison. */
static int64_t unpoisoned(const uint16_t *got, const Prob *p, int all) {
    int64_t bad = 0;
    for (int b = 0; b < p->c.B; b++)
        for (int64_t i = (int64_t)b * p->bs + (all ? 0 : (int64_t)p->c.H * p->c.L); i < (int64_t)(b + 1) * p->bs; i++)
            bad += got[i] != 0xFFFF;
    return bad;
}

static void check(const Prob *p, const char *what, double err, double bound) {
    char name[160];
    snprintf(name, sizeof name, "%s %s %s", p->impl ? p->impl : "", p->c.name, what);
    tu_check_err(name, err, bound);
}

/* ---- the four runs of a case ---- */
static void run_fwd(const Ops *g, Prob *p, int gated) {
    const Case *c = &p->c;
    uint16_t *y[2];
    for (int rep = 0; rep < 2; rep++) {
        poison(p->d_y, (size_t)p->ny * 2);
        g->fftconv_fwd(p->d_y, p->d_u, gated ? p->d_w : NULL, gated ? p->d_v : NULL, p->bs, p->d_k, c->Lk,
                       gated ? p->d_D : NULL, c->B, c->H, c->L);
        CK_CUDA(cudaDeviceSynchronize());
        y[rep] = get_bf16(p->d_y, p->ny);
    }
    check(p, gated ? "gated y" : "y", err_rows(y[0], gated ? p->y_g : p->y_p, (int64_t)c->H * c->L, c),
          bound_bf16(c->L));
    ck_assert_msg(memcmp(y[0], y[1], (size_t)p->ny * 2) == 0, "%s: forward not deterministic", c->name);
    free(y[0]), free(y[1]);
}

static void run_bwd(const Ops *g, Prob *p, int gated) {
    const Case *c = &p->c;
    const double *du_ref = gated ? p->du_g : p->du_p, *dk_ref = gated ? p->dk_g : p->dk_p;
    const double *dD_ref = gated ? p->dD_g : p->dD_p;
    const int want_rest = !c->nulls;   /* dv, dk, dD requested */
    float *dD0 = malloc(sizeof(float) * (size_t)c->H);
    double *dD2 = dalloc(c->H);
    for (int h = 0; h < c->H; h++) dD0[h] = (float)dD_ref[h], dD2[h] = (double)dD0[h] + dD_ref[h];
    uint16_t *du[2], *dw[2], *dv[2];
    float *dk[2], *dD[2];
    for (int rep = 0; rep < 2; rep++) {
        poison(p->d_du, (size_t)p->nin * 2), poison(p->d_dw, (size_t)p->nin * 2), poison(p->d_dv, (size_t)p->nin * 2);
        poison(p->d_dk, (size_t)p->nk * 4);
        CK_CUDA(cudaMemcpy(p->d_dD, dD0, sizeof(float) * (size_t)c->H, cudaMemcpyHostToDevice));
        /* plain: dw and dv are passed but must be ignored (w, v NULL) */
        g->fftconv_bwd(p->d_du, p->d_dw, want_rest ? p->d_dv : NULL, want_rest ? p->d_dk : NULL,
                       want_rest ? p->d_dD : NULL, p->d_dy, p->d_u, gated ? p->d_w : NULL, gated ? p->d_v : NULL,
                       p->bs, p->d_k, c->Lk, gated ? p->d_D : NULL, c->B, c->H, c->L);
        CK_CUDA(cudaDeviceSynchronize());
        du[rep] = get_bf16(p->d_du, p->nin), dw[rep] = get_bf16(p->d_dw, p->nin), dv[rep] = get_bf16(p->d_dv, p->nin);
        dk[rep] = get_f32(p->d_dk, p->nk), dD[rep] = get_f32(p->d_dD, c->H);
    }
    const double tol = bound_bf16(c->L);
    check(p, gated ? "gated du" : "du", err_rows(du[0], du_ref, p->bs, c), tol);
    ck_assert_msg(unpoisoned(du[0], p, 0) == 0, "%s: du written in the row gaps", c->name);
    if (gated) {
        check(p, "gated dw", err_rows(dw[0], p->dw_g, p->bs, c), tol);
        ck_assert_msg(unpoisoned(dw[0], p, 0) == 0, "%s: dw written in the row gaps", c->name);
    } else {
        ck_assert_msg(unpoisoned(dw[0], p, 1) == 0, "%s: dw written although w is NULL", c->name);
    }
    if (gated && want_rest) {
        check(p, "gated dv", err_rows(dv[0], p->dv_g, p->bs, c), tol);
        ck_assert_msg(unpoisoned(dv[0], p, 0) == 0, "%s: dv written in the row gaps", c->name);
    } else {
        ck_assert_msg(unpoisoned(dv[0], p, 1) == 0, "%s: dv written although v or dv is NULL", c->name);
    }
    if (want_rest) {
        check(p, gated ? "gated dk" : "dk", err_f32(dk[0], dk_ref, p->nk), p->tc ? TOL_TC : TOL32);
        check(p, gated ? "gated dD (+=, 2x)" : "dD (+=, 2x)", err_f32(dD[0], dD2, c->H), TOL32);
    }
    ck_assert_msg(memcmp(du[0], du[1], (size_t)p->nin * 2) == 0 && memcmp(dw[0], dw[1], (size_t)p->nin * 2) == 0 &&
                      memcmp(dv[0], dv[1], (size_t)p->nin * 2) == 0 && memcmp(dk[0], dk[1], (size_t)p->nk * 4) == 0 &&
                      memcmp(dD[0], dD[1], sizeof(float) * (size_t)c->H) == 0,
                  "%s: backward not deterministic", c->name);
    for (int rep = 0; rep < 2; rep++) free(du[rep]), free(dw[rep]), free(dv[rep]), free(dk[rep]), free(dD[rep]);
    free(dD0), free(dD2);
}

START_TEST(test_case) {
    const Case *c = &cases[_i];
    const Ops *table = cuda_ops_partial();   /* makes the backend's stream: ops run as in training */
    ck_assert_msg(table && table->fftconv_fwd && table->fftconv_bwd, "CUDA backend has no fftconv");
    if (c->chunk_rows > 0) cufftconv_set_chunk_bytes((size_t)c->chunk_rows * (2 * (size_t)c->L + 2) * sizeof(float));
    fprintf(stderr, "case %s: B=%d H=%d L=%d Lk=%d in_bstride=H*L+%d %s filter\n", c->name, c->B, c->H, c->L, c->Lk,
            c->gap, c->decay ? "decaying" : "white");
    double t0 = now_s();
    Prob p = prob_make(c);
    prob_reference(&p);
    double t_ref = now_s() - t0;
    if ((int64_t)c->B * c->H * c->L * c->Lk <= 100000000) {
        double *yd = dalloc(p.ny);
        direct_gated_fwd(yd, &p);
        check(&p, "cpu64 gated y vs direct sum", tu_rel_l2_d(p.y_g, yd, p.ny), DIRECT_TOL);
        free(yd);
    }
    t0 = now_s();
    for (int i = 0; i < fftconv_impl_count(); i++) {   /* every implementation, not only the default */
        Ops g = *table;
        g.fftconv_fwd = fftconv_impl(i)->fwd;
        g.fftconv_bwd = fftconv_impl(i)->bwd;
        const char *ran = fftconv_impl_which(fftconv_impl(i), c->L);
        char label[64];
        if (strcmp(ran, fftconv_impl(i)->name) != 0) snprintf(label, sizeof label, "%s>%s", fftconv_impl(i)->name, ran);
        else snprintf(label, sizeof label, "%s", ran);
        p.impl = label;
        p.tc = strcmp(ran, "flashfft") == 0;
        run_fwd(&g, &p, 0);
        run_fwd(&g, &p, 1);
        if (!c->nulls) run_bwd(&g, &p, 0);
        run_bwd(&g, &p, 1);
    }
    fprintf(stderr, "  (fp64 reference %.2f s, gpu runs and checks %.2f s)\n", t_ref, now_s() - t0);
    cufftconv_set_chunk_bytes(0);
    prob_free(&p);
}
END_TEST

int main(void) {
    if (cuda_device_count() == 0) {
        printf("SKIP: no CUDA device on this machine\n");
        return 77;
    }
    /* Check forks per test by default; a child of a process that touched CUDA cannot use it. */
    setenv("CK_FORK", "no", 1);
    rng = tu_seed();
    Suite *s = suite_create("fftconv_gpu");
    TCase *tc = tcase_create("vs_cpu64");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_case, 0, NCASES);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
#else
int main(void) {
    printf("SKIP: built without CUDA\n");
    return 77;
}
#endif
