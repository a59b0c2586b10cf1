/* Long-convolution ops of the CUDA backend (see ops.h fftconv_fwd/fftconv_bwd): the table of
 * implementations and the registration. The Monarch (FlashFFTConv-style) kernels come first and
 * are the default; for lengths they do not handle they call the cuFFT baseline, which `which`
 * reports (the bench and the tests print it). The bench compares all entries in one run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cuda/fftconv/cufft_conv.h"
#include "kernels/cuda/fftconv/fftconv.h"
#include "kernels/cuda/fftconv/monarch.h"

static const FftconvImpl fftconv_impls[] = {
    {"flashfft", monarch_fwd, monarch_bwd, monarch_which},
    {"cufft", cufftconv_fwd, cufftconv_bwd, NULL},
};

extern "C" int fftconv_impl_count(void) { return (int)(sizeof fftconv_impls / sizeof fftconv_impls[0]); }

extern "C" const FftconvImpl *fftconv_impl(int i) {
    LC_ASSERT(i >= 0 && i < fftconv_impl_count(), "fftconv: no implementation %d", i);
    return &fftconv_impls[i];
}

extern "C" const FftconvImpl *fftconv_impl_find(const char *name) {
    for (int i = 0; i < fftconv_impl_count(); i++)
        if (strcmp(fftconv_impls[i].name, name) == 0) return &fftconv_impls[i];
    return NULL;
}

extern "C" const char *fftconv_impl_which(const FftconvImpl *impl, int L) {
    return impl->which ? impl->which(L) : impl->name;
}

static void die_unknown(const char *what, const char *name) {
    char have[256] = "";
    for (int i = 0; i < fftconv_impl_count(); i++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", fftconv_impls[i].name);
    lc_die("%s=%s: unknown long-convolution implementation (have: %s)", what, name, have);
}

extern "C" const Ops *cuda_ops_with_fftconv(const char *name) {
    static Ops table;
    const Ops *base = ops_cuda();
    if (!base) return NULL;
    const FftconvImpl *impl = fftconv_impl_find(name);
    if (!impl) die_unknown("model.conv_impl", name);
    table = *base;
    table.fftconv_fwd = impl->fwd;
    table.fftconv_bwd = impl->bwd;
    return &table;
}

extern "C" void cuda_register_fftconv(Ops *o) {
    const char *name = getenv("LONGCONV_FFTCONV");
    const FftconvImpl *impl = fftconv_impl(0);
    if (name && *name) {
        impl = fftconv_impl_find(name);
        if (!impl) die_unknown("LONGCONV_FFTCONV", name);
    }
    o->fftconv_fwd = impl->fwd;
    o->fftconv_bwd = impl->bwd;
}
