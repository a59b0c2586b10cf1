/* The long-convolution implementations of the CUDA backend, by name, for the backend table and
 * for `longconv bench conv`. The first one is the default:
 *   flashfft  fused Monarch kernels on tensor cores (monarch.h) for every L <= 4096; longer rows
 *             it hands to cufft, explicitly: which(L) says "cufft" there
 *   cufft     the cuFFT baseline (cufft_conv.h), every length */
#pragma once
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;
    void (*fwd)(act_t *y, const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);
    void (*bwd)(act_t *du, act_t *dw, act_t *dv, acc_t *dk, acc_t *dD, const act_t *dy, const act_t *u,
                const act_t *w, const act_t *v, int64_t in_bstride, const acc_t *k, int Lk, const acc_t *D,
                int B, int H, int L);
    /* The implementation that actually runs for length L (fwd and bwd), or NULL: always `name`. */
    const char *(*which)(int L);
} FftconvImpl;

int fftconv_impl_count(void);
const FftconvImpl *fftconv_impl(int i);            /* 0 <= i < fftconv_impl_count() */
const FftconvImpl *fftconv_impl_find(const char *name);   /* NULL when unknown */
const char *fftconv_impl_which(const FftconvImpl *impl, int L);   /* what runs for L */

/* Installs the implementation named by $LONGCONV_FFTCONV, else the default. */
void cuda_register_fftconv(Ops *o);
/* The CUDA table with the long convolution of implementation `name` (model.conv_impl); dies
 * naming the known implementations when it is unknown. */
const Ops *cuda_ops_with_fftconv(const char *name);

#ifdef __cplusplus
}
#endif
