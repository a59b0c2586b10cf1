/* cuFFT baseline of the long convolution (ops.h fftconv_fwd / fftconv_bwd): what PyTorch does,
 * batched fp32 real FFTs of size 2L with the gating, skip term and bf16 conversion fused into
 * small pre/post kernels. The second oracle for the Monarch kernels and the "slow kernel" of the
 * benchmark. Pointers are device pointers: act_t = bf16, acc_t = fp32. */
#pragma once
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y [B,H,L]; u, w, v rows at b*in_bstride + h*L; k [H,Lk], 1 <= Lk <= 2L; D [H] (w, v, D may be NULL) */
void cufftconv_fwd(act_t *y, const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                   const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);
/* du, dw, dv (=, layout of u), dk [H,Lk] (=), dD [H] (+=) from dy [B,H,L]; any output may be NULL */
void cufftconv_bwd(act_t *du, act_t *dw, act_t *dv, acc_t *dk, acc_t *dD, const act_t *dy,
                   const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                   const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);
/* Free the cached plans and the workspace (the next call makes them again). */
void cufftconv_release(void);
/* Target bytes of one chunk buffer (rows of 2L+2 floats); 0 restores the default (1 GiB). Tests
 * make it small so that chunking is exercised at small sizes. */
void cufftconv_set_chunk_bytes(size_t bytes);
/* Bytes held now: workspace + cuFFT work area. */
size_t cufftconv_held_bytes(void);

#ifdef __cplusplus
}
#endif
