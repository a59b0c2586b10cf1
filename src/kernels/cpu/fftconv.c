/* Long convolution by FFT (FFTW; fftwf_ in the fp32 build, fftw_ in fp64), FFT size N = 2L.
 *
 * Per channel h the filter spectrum Kf = rfft(k[h] zero-padded to N) is computed once; per row b:
 *   x = u ⊙ w;  c = irfft(rfft(x zero-padded) ⊙ Kf)[:L] / N + D x;  y = v ⊙ c.
 * A length-N circular convolution of a signal zero-padded past L is the causal linear convolution
 * for taps s < L; taps L <= s < 2L wrap to x[t - s + 2L], the "future" half of the bidirectional
 * (M2-BERT) filter. Backward recomputes the forward FFTs instead of storing them:
 *   dc = dy ⊙ v;  dv = dy ⊙ c;  dx = irfft(rfft(dc) ⊙ conj(Kf))[:L] / N + D dc   (correlation)
 *   dk = irfft(sum_b rfft(dc_b) ⊙ conj(rfft(x_b)))[:Lk] / N                 (batch sum on spectra)
 *   dD += sum dc ⊙ x;  du = dx ⊙ w;  dw = dx ⊙ u.
 * Work is parallel over h with b inside, so every reduction over the batch has a fixed order.
 * Rows of u, w, v, du, dw, dv are at b*in_bstride + h*L; the gaps between rows are never written
 * (they hold other tensors when u, w, v are chunks of one [B, 3H, L] activation). */
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

/* Spectra are kept as interleaved (re, im) pairs of `real`: FFTW guarantees this layout for its
 * complex type, which is a C99 _Complex when <complex.h> was included first (cblas.h may do so). */
typedef FFTW(complex) cplx;

/* ---- plan cache ----
 * FFTW's planner is not thread-safe: plans are made under one named critical section (shared by
 * both builds and by the workspace allocation below) and then only executed, with the new-array
 * execute functions, which are thread-safe. FFTW_ESTIMATE plans quickly and picks the same
 * algorithm on every run, so results are reproducible. Plans are kept for the life of the
 * process; a run sees only a few sequence lengths. */
#define FFTCONV_MAX_PLANS 64

typedef struct {
    int n;             /* FFT size */
    FFTW(plan) r2c;    /* real [n] -> complex [n/2+1] */
    FFTW(plan) c2r;    /* complex [n/2+1] -> real [n]; may destroy its input */
} FftPlans;

static FftPlans fftconv_plan_cache[FFTCONV_MAX_PLANS];
static int fftconv_plan_count;

static const FftPlans *fftconv_plans(int n) {
    const FftPlans *found = NULL;
#pragma omp critical(longconv_fftw)
    {
        for (int i = 0; i < fftconv_plan_count && !found; i++)
            if (fftconv_plan_cache[i].n == n) found = &fftconv_plan_cache[i];
        if (!found) {
            LC_ASSERT(fftconv_plan_count < FFTCONV_MAX_PLANS, "fftconv: more than %d FFT sizes in one run",
                      FFTCONV_MAX_PLANS);
            /* plans are made on fftw_malloc'd arrays, so they match the alignment of the
             * per-thread workspaces they are later executed on */
            real *r = FFTW(malloc)(sizeof(real) * (size_t)n);
            cplx *f = FFTW(malloc)(sizeof(cplx) * (size_t)(n / 2 + 1));
            LC_ASSERT(r && f, "fftconv: fftw_malloc failed for an FFT of size %d", n);
            FftPlans *p = &fftconv_plan_cache[fftconv_plan_count];
            p->n = n;
            p->r2c = FFTW(plan_dft_r2c_1d)(n, r, f, FFTW_ESTIMATE);
            p->c2r = FFTW(plan_dft_c2r_1d)(n, f, r, FFTW_ESTIMATE);
            LC_ASSERT(p->r2c && p->c2r, "fftconv: FFTW could not plan a real FFT of size %d", n);
            FFTW(free)(r);
            FFTW(free)(f);
            fftconv_plan_count++;
            found = p;
        }
    }
    return found;
}

/* ---- per-thread workspace ---- */
typedef struct {
    real *r;      /* [N] zero-padded real signal, FFT input and output */
    real *x;      /* [L] x = u ⊙ w of the current row */
    real *dc;     /* [L] dc = dy ⊙ v of the current row */
    real *kf;     /* [N/2+1][2] filter spectrum */
    real *xf;     /* [N/2+1][2] spectrum of x */
    real *gf;     /* [N/2+1][2] spectrum of dc */
    real *tmp;    /* [N/2+1][2] product fed to c2r (destroyed by it) */
    real *dkf;    /* [N/2+1][2] batch sum of the dk spectra */
} FftWork;

static void *fftconv_malloc(size_t bytes) {
    void *p = FFTW(malloc)(bytes);
    LC_ASSERT(p, "fftconv: fftw_malloc of %zu bytes failed", bytes);
    return p;
}

static void fftwork_alloc(FftWork *wk, int L) {
    size_t nf = (size_t)L + 1;   /* N/2 + 1 with N = 2L */
#pragma omp critical(longconv_fftw)
    {
        wk->r = fftconv_malloc(sizeof(real) * 2 * (size_t)L);
        wk->x = fftconv_malloc(sizeof(real) * (size_t)L);
        wk->dc = fftconv_malloc(sizeof(real) * (size_t)L);
        wk->kf = fftconv_malloc(sizeof(real) * 2 * nf);
        wk->xf = fftconv_malloc(sizeof(real) * 2 * nf);
        wk->gf = fftconv_malloc(sizeof(real) * 2 * nf);
        wk->tmp = fftconv_malloc(sizeof(real) * 2 * nf);
        wk->dkf = fftconv_malloc(sizeof(real) * 2 * nf);
    }
}

static void fftwork_free(FftWork *wk) {
#pragma omp critical(longconv_fftw)
    {
        FFTW(free)(wk->r);
        FFTW(free)(wk->x);
        FFTW(free)(wk->dc);
        FFTW(free)(wk->kf);
        FFTW(free)(wk->xf);
        FFTW(free)(wk->gf);
        FFTW(free)(wk->tmp);
        FFTW(free)(wk->dkf);
    }
}

/* ---- row helpers (N = 2L, nf = L+1 spectrum bins) ---- */

/* out = rfft(sig[0..n) zero-padded to N) */
static void fftconv_rfft(const FftPlans *p, real *r, real *out, const real *sig, int n, int N) {
    memcpy(r, sig, sizeof(real) * (size_t)n);
    memset(r + n, 0, sizeof(real) * (size_t)(N - n));
    FFTW(execute_dft_r2c)(p->r2c, r, (cplx *)out);
}

/* tmp = a ⊙ b (conj_b: a ⊙ conj(b)); then r = N * irfft(tmp) (FFTW does not normalize) */
static void fftconv_product_irfft(const FftPlans *p, real *r, real *tmp, const real *a, const real *b,
                                  int conj_b, int nf) {
    real s = conj_b ? (real)-1 : (real)1;
    for (int f = 0; f < nf; f++) {
        real ar = a[2 * f], ai = a[2 * f + 1], br = b[2 * f], bi = s * b[2 * f + 1];
        tmp[2 * f] = ar * br - ai * bi;
        tmp[2 * f + 1] = ar * bi + ai * br;
    }
    FFTW(execute_dft_c2r)(p->c2r, (cplx *)tmp, r);
}

/* x[t] = u[t] * w[t] (w NULL: x = u) */
static void fftconv_gate(real *x, const real *u, const real *w, int L) {
    if (w)
        for (int t = 0; t < L; t++) x[t] = u[t] * w[t];
    else
        memcpy(x, u, sizeof(real) * (size_t)L);
}

/* Below this many outputs (B*H*L) one thread is faster than starting a parallel region. */
#define FFTCONV_PAR_MIN 4096

/* ---- forward ----
 * y [B,H,L]; u, w, v rows at b*in_bstride + h*L; k [H,Lk]; D [H] (w, v, D may be NULL) */
static void fftconv_fwd(act_t *y_, const act_t *u_, const act_t *w_, const act_t *v_, int64_t in_bstride,
                        const acc_t *k_, int Lk, const acc_t *D_, int B, int H, int L) {
    real *y = y_;
    const real *u = u_, *w = w_, *v = v_, *k = k_, *D = D_;
    LC_ASSERT(L >= 1 && Lk >= 1 && Lk <= 2 * L, "fftconv_fwd: need 1 <= Lk <= 2L (Lk %d, L %d)", Lk, L);
    LC_ASSERT(in_bstride >= (int64_t)H * L, "fftconv_fwd: in_bstride %lld < H*L", (long long)in_bstride);
    const int N = 2 * L, nf = L + 1;
    const real inv_n = (real)1 / (real)N;
    const FftPlans *p = fftconv_plans(N);
#pragma omp parallel if ((int64_t)B * H * L >= FFTCONV_PAR_MIN)
    {
        FftWork wk;
        fftwork_alloc(&wk, L);
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            fftconv_rfft(p, wk.r, wk.kf, k + (int64_t)h * Lk, Lk, N);
            real d = D ? D[h] : (real)0;
            for (int b = 0; b < B; b++) {
                int64_t in_off = (int64_t)b * in_bstride + (int64_t)h * L;
                real *yr = y + ((int64_t)b * H + h) * L;
                fftconv_gate(wk.x, u + in_off, w ? w + in_off : NULL, L);
                fftconv_rfft(p, wk.r, wk.xf, wk.x, L, N);
                fftconv_product_irfft(p, wk.r, wk.tmp, wk.xf, wk.kf, 0, nf);
                for (int t = 0; t < L; t++) {
                    real c = wk.r[t] * inv_n + d * wk.x[t];
                    yr[t] = v ? v[in_off + t] * c : c;
                }
            }
        }
        fftwork_free(&wk);
    }
}

/* ---- backward ----
 * du, dw, dv: layout of u (=); dk [H,Lk] (=); dD [H] (+=); dy [B,H,L]. Any output may be NULL;
 * dw is skipped when w is NULL and dv when v is NULL. */
static void fftconv_bwd(act_t *du_, act_t *dw_, act_t *dv_, acc_t *dk_, acc_t *dD_, const act_t *dy_,
                        const act_t *u_, const act_t *w_, const act_t *v_, int64_t in_bstride, const acc_t *k_,
                        int Lk, const acc_t *D_, int B, int H, int L) {
    real *du = du_, *dw = w_ ? dw_ : NULL, *dv = v_ ? dv_ : NULL, *dk = dk_, *dD = dD_;
    const real *dy = dy_, *u = u_, *w = w_, *v = v_, *k = k_, *D = D_;
    LC_ASSERT(L >= 1 && Lk >= 1 && Lk <= 2 * L, "fftconv_bwd: need 1 <= Lk <= 2L (Lk %d, L %d)", Lk, L);
    LC_ASSERT(in_bstride >= (int64_t)H * L, "fftconv_bwd: in_bstride %lld < H*L", (long long)in_bstride);
    const int N = 2 * L, nf = L + 1;
    const real inv_n = (real)1 / (real)N;
    const int need_dx = du || dw;
    const FftPlans *p = fftconv_plans(N);
#pragma omp parallel if ((int64_t)B * H * L >= FFTCONV_PAR_MIN)
    {
        FftWork wk;
        fftwork_alloc(&wk, L);
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            fftconv_rfft(p, wk.r, wk.kf, k + (int64_t)h * Lk, Lk, N);
            if (dk) memset(wk.dkf, 0, sizeof(real) * 2 * (size_t)nf);
            real d = D ? D[h] : (real)0;
            double dD_sum = 0;
            for (int b = 0; b < B; b++) {
                int64_t in_off = (int64_t)b * in_bstride + (int64_t)h * L;
                const real *dyr = dy + ((int64_t)b * H + h) * L;
                fftconv_gate(wk.x, u + in_off, w ? w + in_off : NULL, L);
                fftconv_rfft(p, wk.r, wk.xf, wk.x, L, N);
                /* dv needs c, the only reason to redo the forward convolution */
                if (dv) {
                    fftconv_product_irfft(p, wk.r, wk.tmp, wk.xf, wk.kf, 0, nf);
                    for (int t = 0; t < L; t++) dv[in_off + t] = dyr[t] * (wk.r[t] * inv_n + d * wk.x[t]);
                }
                fftconv_gate(wk.dc, dyr, v ? v + in_off : NULL, L);
                for (int t = 0; t < L; t++) dD_sum += (double)wk.dc[t] * (double)wk.x[t];
                if (!dk && !need_dx) continue;
                fftconv_rfft(p, wk.r, wk.gf, wk.dc, L, N);
                if (dk)
                    for (int f = 0; f < nf; f++) {   /* dkf += gf ⊙ conj(xf) */
                        const real *g = wk.gf + 2 * f, *x = wk.xf + 2 * f;
                        wk.dkf[2 * f] += g[0] * x[0] + g[1] * x[1];
                        wk.dkf[2 * f + 1] += g[1] * x[0] - g[0] * x[1];
                    }
                if (need_dx) {
                    fftconv_product_irfft(p, wk.r, wk.tmp, wk.gf, wk.kf, 1, nf);
                    for (int t = 0; t < L; t++) {
                        real dx = wk.r[t] * inv_n + d * wk.dc[t];
                        if (du) du[in_off + t] = w ? dx * w[in_off + t] : dx;
                        if (dw) dw[in_off + t] = dx * u[in_off + t];
                    }
                }
            }
            if (dk) {
                FFTW(execute_dft_c2r)(p->c2r, (cplx *)wk.dkf, wk.r);
                for (int s = 0; s < Lk; s++) dk[(int64_t)h * Lk + s] = wk.r[s] * inv_n;
            }
            if (dD) dD[h] += (real)dD_sum;
        }
        fftwork_free(&wk);
    }
}

void CPU_NAME(register_fftconv)(Ops *o) {
    o->fftconv_fwd = fftconv_fwd;
    o->fftconv_bwd = fftconv_bwd;
}
