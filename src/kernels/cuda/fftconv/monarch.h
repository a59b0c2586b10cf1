/* "flashfft": FlashFFTConv-style fused long convolution (ops.h fftconv_fwd / fftconv_bwd) on
 * tensor cores, for every row length L <= 4096 (FFT size 2M, M the power of two >= max(L, 256):
 * 512 ... 8192). Longer rows are handed to the cuFFT baseline (cufft_conv.h): monarch_which(L)
 * names what runs, and `longconv bench conv` prints it. Pointers are device pointers: act_t = bf16, acc_t = fp32.
 * Design, data layout and precision: docs/fftconv.md. */
#pragma once
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the fused kernels handle sequence length L */
int monarch_supported(int L);
/* "flashfft" when the fused kernels run for L, else "cufft" (the explicit fallback) */
const char *monarch_which(int L);

/* Same contract as cufftconv_fwd / cufftconv_bwd (ops.h). */
void monarch_fwd(act_t *y, const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                 const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);
void monarch_bwd(act_t *du, act_t *dw, act_t *dv, acc_t *dk, acc_t *dD, const act_t *dy,
                 const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                 const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);
/* Free the cached cuFFT plans of the filter transforms. */
void monarch_release(void);

/* The same kernel code executed on the CPU by a thread-level emulator of the block (the warp
 * collectives mma.sync, ldmatrix and shuffles are emulated from their documented fragment
 * layouts), for tests without a GPU. Host pointers; bf16 tensors as uint16 bit patterns; the
 * filter spectrum and the final dk transform are computed in double. Threads of a block run in
 * ascending order between barriers, or descending with reverse = 1 (races show as differences).
 * Only L with monarch_supported(L). Slow: for small problems. */
void monarch_emu_fwd(void *y, const void *u, const void *w, const void *v, int64_t in_bstride, const float *k,
                     int Lk, const float *D, int B, int H, int L, int reverse);
void monarch_emu_bwd(void *du, void *dw, void *dv, float *dk, float *dD, const void *dy, const void *u,
                     const void *w, const void *v, int64_t in_bstride, const float *k, int Lk, const float *D,
                     int B, int H, int L, int reverse);

#ifdef __cplusplus
}
#endif
