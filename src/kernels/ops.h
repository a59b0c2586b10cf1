/* The op table: every numeric operation of every model goes through one of these pointers.
 *
 * Backends: "cpu" (fp32, the reference and the no-GPU path), "cpu64" (the same C sources compiled
 * in fp64, used by the tests for finite-difference gradient checks of single ops and whole
 * models), and "cuda" (bf16 activations, fp32 accumulation).
 *
 * Pointer types document the element type; all are device pointers of the backend:
 *   act_t  activations and the compute copy of parameters: fp32 (cpu), fp64 (cpu64), bf16 (cuda)
 *   acc_t  master parameters, parameter gradients, optimizer moments, statistics, filters k:
 *          fp32 (cpu, cuda), fp64 (cpu64)
 *   tok_t  int32 token ids; a target < 0 is ignored by the loss.
 * Dimensions: N rows (= B*L), C channels, B batch, L sequence length, H conv channels.
 *
 * Accumulation contract (as llm.c): parameter gradients (dw, db, dD, dfreq, ...) are ADDED to
 * (+=), so gradient accumulation needs no extra code; activation gradients are WRITTEN (=),
 * except layernorm_bwd's dinp, which adds into the residual stream. A NULL output is skipped.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void act_t;
typedef void acc_t;
typedef int32_t tok_t;

typedef struct Ops {
    const char *name;
    size_t act_bytes;  /* bytes per act_t element */
    size_t acc_bytes;  /* bytes per acc_t element */
    int act_is_acc;    /* compute copies may alias the master parameters (same dtype) */

    /* ---- memory (bytes) and transfers ---- */
    void *(*alloc)(size_t bytes);          /* zeroed; dies with the size on failure */
    void (*free)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);          /* device -> device */
    void (*to_host)(void *host_dst, const void *src, size_t bytes);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*synchronize)(void);

    /* ---- conversions ---- */
    void (*acc_from_f32)(acc_t *dst, const float *host_src, int64_t n);   /* host fp32 -> device acc */
    void (*acc_to_f32)(float *host_dst, const acc_t *src, int64_t n);     /* device acc -> host fp32 */
    void (*acc_from_f64)(acc_t *dst, const double *host_src, int64_t n);  /* host fp64 -> device acc */
    void (*acc_to_f64)(double *host_dst, const acc_t *src, int64_t n);    /* device acc -> host fp64 */
    void (*act_from_acc)(act_t *dst, const acc_t *src, int64_t n);        /* master -> compute copy */
    void (*act_to_acc)(acc_t *dst, const act_t *src, int64_t n);
    void (*acc_add_act)(acc_t *dst, const act_t *src, int64_t n);         /* dst += src */

    /* ---- elementwise ---- */
    void (*add)(act_t *out, const act_t *a, const act_t *b, int64_t n);   /* out = a + b (out may alias a) */
    void (*accumulate)(act_t *dst, const act_t *src, int64_t n);          /* dst += src */
    void (*gelu_fwd)(act_t *out, const act_t *inp, int64_t n);            /* tanh approximation */
    void (*gelu_bwd)(act_t *dinp, const act_t *inp, const act_t *dout, int64_t n);
    /* Inverted dropout with probability p; the mask is drawn from Philox(seed, stream, index), so
     * the backward recomputes it instead of storing it. p == 0 is a copy. */
    void (*dropout_fwd)(act_t *out, const act_t *inp, float p, uint64_t seed, uint64_t stream, int64_t n);
    void (*dropout_bwd)(act_t *dinp, const act_t *dout, float p, uint64_t seed, uint64_t stream, int64_t n);

    /* ---- embedding: out[N,C] = wte[tokens[n], :] ---- */
    void (*embedding_fwd)(act_t *out, const tok_t *tokens, const act_t *wte, int64_t N, int C);
    void (*embedding_bwd)(acc_t *dwte, const act_t *dout, const tok_t *tokens, int64_t N, int C);

    /* ---- layernorm over C; mean, rstd: acc_t [N] saved for the backward ---- */
    void (*layernorm_fwd)(act_t *out, acc_t *mean, acc_t *rstd, const act_t *inp, const act_t *w,
                          const act_t *b, int64_t N, int C, float eps);
    void (*layernorm_bwd)(act_t *dinp /* += */, acc_t *dw, acc_t *db, const act_t *dout,
                          const act_t *inp, const act_t *w, const acc_t *mean, const acc_t *rstd,
                          int64_t N, int C);

    /* ---- linear: out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC] (b may be NULL) ---- */
    void (*linear_fwd)(act_t *out, const act_t *inp, const act_t *w, const act_t *b, int64_t N, int C, int OC);
    void (*linear_bwd)(act_t *dinp, acc_t *dw, acc_t *db, const act_t *dout, const act_t *inp,
                       const act_t *w, int64_t N, int C, int OC);

    /* ---- layout: [B,L,C] <-> [B,C,L] ---- */
    void (*bcl_from_blc)(act_t *out, const act_t *inp, int B, int L, int C);
    void (*blc_from_bcl)(act_t *out, const act_t *inp, int B, int L, int C);

    /* ---- depthwise causal short conv, fused with the [B,L,C] -> [B,C,L] transpose:
     * out[b,c,t] = bias[c] + sum_{j<K} w[c,j] * inp[b, t-K+1+j, c]   (inp at negative t is 0) ---- */
    void (*shortconv_fwd)(act_t *out, const act_t *inp, const act_t *w, const act_t *bias, int B, int L, int C, int K);
    void (*shortconv_bwd)(act_t *dinp, acc_t *dw, acc_t *dbias, const act_t *dout, const act_t *inp,
                          const act_t *w, int B, int L, int C, int K);

    /* ---- long convolution (FFT size 2L), with optional gates and skip term:
     *   x = u ⊙ w (w NULL: x = u);  c[t] = sum_{s<=t, s<Lk} k[h,s] x[t-s] + D[h] x[t]   (Lk <= L: causal)
     *   for L < Lk <= 2L the taps s >= L wrap to the future: c[t] += k[h,s] x[t-s+2L] (bidirectional)
     *   y = v ⊙ c (v NULL: y = c)
     * u, w, v: rows of L at b*in_bstride + h*L (in_bstride >= H*L); y, dy: [B,H,L] contiguous;
     * du, dw, dv use the layout of u. k: acc_t [H,Lk]; D: acc_t [H] (NULL: no skip term).
     * Backward: du, dw, dv, dk (=), dD (+=). ---- */
    void (*fftconv_fwd)(act_t *y, const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                        const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);
    void (*fftconv_bwd)(act_t *du, act_t *dw, act_t *dv, acc_t *dk, acc_t *dD, const act_t *dy,
                        const act_t *u, const act_t *w, const act_t *v, int64_t in_bstride,
                        const acc_t *k, int Lk, const acc_t *D, int B, int H, int L);

    /* ---- implicit filter pieces ----
     * sin: out[n,c] = sin(freq[c] * inp[n,c]); dfreq +=.
     * expmod: k[c,t] = h[t,c] * (exp(-t_pos[t] * |deltas[c]|) + shift) if modulate else h[t,c];
     *         fused with the [L,C] -> [C,L] transpose; k and its gradient are acc_t. */
    void (*sin_fwd)(act_t *out, const act_t *inp, const acc_t *freq, int64_t N, int C);
    void (*sin_bwd)(act_t *dinp, acc_t *dfreq, const act_t *dout, const act_t *inp, const acc_t *freq, int64_t N, int C);
    void (*expmod_fwd)(acc_t *k, const act_t *h, const acc_t *deltas, const acc_t *t_pos, float shift,
                       int modulate, int L, int C);
    void (*expmod_bwd)(act_t *dh, const acc_t *dk, const acc_t *deltas, const acc_t *t_pos, float shift,
                       int modulate, int L, int C);

    /* ---- loss: softmax cross-entropy over the first V of Vp columns (padding columns ignored).
     * losses[n] = -log softmax(logits[n,:V])[targets[n]] (0 where targets[n] < 0).
     * If dscale != 0 the logits are overwritten by dscale * dloss/dlogits (padding columns 0). ---- */
    void (*xent_fwd_bwd)(acc_t *losses, act_t *logits, const tok_t *targets, int64_t N, int V, int Vp, float dscale);

    /* ---- optimizer and reductions (over acc_t) ---- */
    /* AdamW with decoupled weight decay: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p); t >= 1. */
    void (*adamw)(acc_t *p, const acc_t *g, acc_t *m, acc_t *v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float wd, int t);
    double (*sum)(const acc_t *x, int64_t n);          /* fixed order: deterministic */
    double (*sum_squares)(const acc_t *x, int64_t n);  /* NaN/Inf propagate */
    void (*scale)(acc_t *x, float s, int64_t n);
} Ops;

/* Backends. ops_get("cpu" | "cpu64" | "cuda") dies with the list when the name is unknown or
 * the backend is not available (no GPU). */
const Ops *ops_cpu(void);
const Ops *ops_cpu64(void);
const Ops *ops_cuda(void);   /* NULL when built without CUDA or when no device is present */
const Ops *ops_get(const char *name);
/* The backend with the long-convolution implementation named by model.conv_impl ("flashfft",
 * "cufft"); CPU backends have one (FFTW) and return base unchanged. `which` receives what runs
 * for sequence length L (e.g. "flashfft", or "cufft" where flashfft hands a length over). */
const Ops *ops_with_conv_impl(const Ops *base, const char *impl, int L, const char **which);

#ifdef __cplusplus
}
#endif
