/* The "flashfft" Monarch kernels (src/kernels/cuda/fftconv/monarch_kernel.h, monarch_bwd.h) run on
 * the CPU by their thread-level emulator (monarch_emu_fwd / monarch_emu_bwd), against the fp64 CPU
 * backend (ops_cpu64): the kernel's index math, synchronization (threads run in ascending and in
 * descending order between barriers: a race changes the bits), masking of short and odd rows, batch
 * tiling and the fixed-order dk / dD reductions, without a GPU. One case per outer radix R1 (row
 * lengths 1 ... 4096, odd strides, bidirectional and short filters). Outputs start poisoned (NaN
 * bits); row gaps must stay poisoned; dD must accumulate (+=).
 * Bounds (relative L2 against fp64; same argument as tests/test_fftconv_gpu.c): bf16 outputs carry
 * one final bf16 rounding (unit roundoff 2^-8 = 3.9e-3, RMS ~1.7e-3) plus the fp16 tensor-core
 * transforms (2^-11 per rounding, ~5e-4 RMS per spectrum): bound 5e-3. dk (fp32 output of a product
 * of two fp16-rounded spectra, ~7e-4): bound 5e-3. dD (time-domain fp32 sums): bound 1e-4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/fftconv/monarch.h"

typedef struct {
    const char *name;
    int B, H, L, Lk, gap;
} Case;

static const Case cases[] = {
    {"R1=1 L=37 Lk=74 odd stride", 3, 2, 37, 74, 3},   {"R1=1 L=256 B=20 Lk=100", 20, 1, 256, 100, 0},
    {"R1=2 L=300 Lk=17", 9, 1, 300, 17, 0},            {"R1=4 L=1000 Lk=1500 strided", 3, 2, 1000, 1500, 6},
    {"R1=8 L=2048 Lk=4096", 5, 1, 2048, 4096, 2},      {"R1=16 L=4096 Lk=2000 odd stride", 2, 1, 4096, 2000, 1},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static uint64_t rng;

static uint16_t bf16_bits(double x) {
    float f = (float)x;
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}
static double bf16_val(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* bf16 tensor of n values: bits and the exact values */
static uint16_t *make_bf16(double *x, int64_t n) {
    uint16_t *h = malloc((size_t)n * 2);
    tu_fill_normal(x, n, 1.0, &rng);
    for (int64_t i = 0; i < n; i++) h[i] = bf16_bits(x[i]), x[i] = bf16_val(h[i]);
    return h;
}

/* relative L2 error of the row bodies (rows of L at b*bs + h*L) and the count of written gap values */
static double err_rows(const uint16_t *got, const double *ref, const Case *c, int64_t bs, int64_t *gap_writes) {
    double num = 0, den = 0;
    *gap_writes = 0;
    for (int b = 0; b < c->B; b++) {
        for (int64_t i = b * bs; i < b * bs + (int64_t)c->H * c->L; i++) {
            const double d = bf16_val(got[i]) - ref[i];
            num += d * d, den += ref[i] * ref[i];
        }
        for (int64_t i = b * bs + (int64_t)c->H * c->L; i < (b + 1) * bs; i++) *gap_writes += got[i] != 0xFFFF;
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

static void check(const Case *c, const char *what, int rev, double err, double bound) {
    char name[128];
    snprintf(name, sizeof name, "%s %s%s", c->name, what, rev ? " (reverse)" : "");
    tu_check_err(name, err, bound);
}

START_TEST(test_case) {
    const Case *c = &cases[_i];
    const int64_t bs = (int64_t)c->H * c->L + c->gap, nin = c->B * bs, ny = (int64_t)c->B * c->H * c->L;
    const int64_t nk = (int64_t)c->H * c->Lk;
    double *u = malloc(8 * nin), *w = malloc(8 * nin), *v = malloc(8 * nin), *dy = malloc(8 * ny);
    double *k = malloc(8 * nk), *D = malloc(8 * c->H);
    uint16_t *hu = make_bf16(u, nin), *hw = make_bf16(w, nin), *hv = make_bf16(v, nin), *hdy = make_bf16(dy, ny);
    float *fk = malloc(4 * nk), *fD = malloc(4 * c->H);
    tu_fill_normal(k, nk, 1.0 / sqrt((double)c->Lk), &rng);
    tu_fill_normal(D, c->H, 1.0, &rng);
    for (int64_t i = 0; i < nk; i++) fk[i] = (float)k[i], k[i] = fk[i];
    for (int h = 0; h < c->H; h++) fD[h] = (float)D[h], D[h] = fD[h];
    const Ops *cpu = ops_cpu64();
    double *y = calloc(ny, 8), *du = calloc(nin, 8), *dw = calloc(nin, 8), *dv = calloc(nin, 8);
    double *dk = calloc(nk, 8), *dD = calloc(c->H, 8);
    cpu->fftconv_fwd(y, u, w, v, bs, k, c->Lk, D, c->B, c->H, c->L);
    cpu->fftconv_bwd(du, dw, dv, dk, dD, dy, u, w, v, bs, k, c->Lk, D, c->B, c->H, c->L);
    uint16_t *gy = malloc(2 * ny), *gdu = malloc(2 * nin), *gdw = malloc(2 * nin), *gdv = malloc(2 * nin);
    float *gdk = malloc(4 * nk), *gdD = malloc(4 * c->H);
    uint16_t *first[4] = {0};
    for (int rev = 0; rev < 2; rev++) {
        memset(gy, 0xFF, 2 * ny), memset(gdu, 0xFF, 2 * nin), memset(gdw, 0xFF, 2 * nin), memset(gdv, 0xFF, 2 * nin);
        memset(gdk, 0xFF, 4 * nk);
        for (int h = 0; h < c->H; h++) gdD[h] = (float)dD[h];   /* += : must end at twice the reference */
        monarch_emu_fwd(gy, hu, hw, hv, bs, fk, c->Lk, fD, c->B, c->H, c->L, rev);
        monarch_emu_bwd(gdu, gdw, gdv, gdk, gdD, hdy, hu, hw, hv, bs, fk, c->Lk, fD, c->B, c->H, c->L, rev);
        int64_t gaps;
        double num = 0, den = 0;
        for (int64_t i = 0; i < ny; i++) {
            const double d = bf16_val(gy[i]) - y[i];
            num += d * d, den += y[i] * y[i];
        }
        check(c, "y", rev, sqrt(num) / sqrt(den), 5e-3);
        check(c, "du", rev, err_rows(gdu, du, c, bs, &gaps), 5e-3);
        ck_assert_msg(gaps == 0, "%s: du written in the row gaps", c->name);
        check(c, "dw", rev, err_rows(gdw, dw, c, bs, &gaps), 5e-3);
        ck_assert_msg(gaps == 0, "%s: dw written in the row gaps", c->name);
        check(c, "dv", rev, err_rows(gdv, dv, c, bs, &gaps), 5e-3);
        ck_assert_msg(gaps == 0, "%s: dv written in the row gaps", c->name);
        check(c, "dk", rev, tu_rel_l2_fd(gdk, dk, nk), 5e-3);
        double *dD2 = malloc(8 * c->H);
        for (int h = 0; h < c->H; h++) dD2[h] = (double)(float)dD[h] + dD[h];
        check(c, "dD (+=, 2x)", rev, tu_rel_l2_fd(gdD, dD2, c->H), 1e-4);
        free(dD2);
        uint16_t *outs[4] = {gy, gdu, gdw, gdv};
        const int64_t sz[4] = {ny, nin, nin, nin};
        for (int q = 0; q < 4; q++) {
            if (!rev) {
                first[q] = malloc(2 * sz[q]);
                memcpy(first[q], outs[q], 2 * sz[q]);
            } else {
                ck_assert_msg(memcmp(first[q], outs[q], 2 * sz[q]) == 0, "%s: thread order changes output %d", c->name, q);
                free(first[q]);
            }
        }
    }
    free(u), free(w), free(v), free(dy), free(k), free(D), free(hu), free(hw), free(hv), free(hdy), free(fk), free(fD);
    free(y), free(du), free(dw), free(dv), free(dk), free(dD), free(gy), free(gdu), free(gdw), free(gdv), free(gdk), free(gdD);
}
END_TEST

int main(void) {
    rng = tu_seed();
    Suite *s = suite_create("monarch_emu");
    TCase *tc = tcase_create("vs_cpu64");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_case, 0, NCASES);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
#else
int main(void) {
    printf("SKIP: built without CUDA (the emulator is compiled by nvcc)\n");
    return 77;
}
#endif
