/* Long-convolution ops of the CUDA backend (see ops.h fftconv_fwd/fftconv_bwd): the table of
 * implementations and the registration. Today there is one, the cuFFT baseline; the Monarch
 * (FlashFFTConv) kernels join the table ahead of it, so the bench compares them in one run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cuda/fftconv/cufft_conv.h"
#include "kernels/cuda/fftconv/fftconv.h"

static const FftconvImpl fftconv_impls[] = {
    {"cufft", cufftconv_fwd, cufftconv_bwd},
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

extern "C" void cuda_register_fftconv(Ops *o) {
    const char *name = getenv("LONGCONV_FFTCONV");
    const FftconvImpl *impl = fftconv_impl(0);
    if (name && *name) {
        impl = fftconv_impl_find(name);
        if (!impl) {
            char have[256] = "";
            for (int i = 0; i < fftconv_impl_count(); i++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", fftconv_impls[i].name);
            lc_die("LONGCONV_FFTCONV=%s: unknown implementation (have: %s)", name, have);
        }
    }
    o->fftconv_fwd = impl->fwd;
    o->fftconv_bwd = impl->bwd;
}
