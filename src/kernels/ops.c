#include "kernels/ops.h"

#include <string.h>

#include "core/error.h"

const Ops *cpu32_ops(void);
const Ops *cpu64_ops(void);

const Ops *ops_cpu(void) { return cpu32_ops(); }
const Ops *ops_cpu64(void) { return cpu64_ops(); }

#ifdef LONGCONV_CUDA
#include "kernels/cuda/device.h"
#include "kernels/cuda/fftconv/fftconv.h"
#else
const Ops *ops_cuda(void) { return NULL; }
static int cuda_device_count(void) { return 0; }
#endif

const Ops *ops_get(const char *name) {
    if (strcmp(name, "cpu") == 0) return ops_cpu();
    if (strcmp(name, "cpu64") == 0) return ops_cpu64();
    if (strcmp(name, "cuda") == 0) {
        const Ops *o = ops_cuda();
        if (!o && cuda_device_count() == 0)
            lc_die("train.device is 'cuda' but no CUDA device is available (build with nvcc, run on a GPU machine)");
        if (!o) lc_die("train.device 'cuda': this build has no CUDA op table yet; use train.device=cpu");
        return o;
    }
    lc_die("unknown device '%s' (expected cpu or cuda)", name);
}

const Ops *ops_with_conv_impl(const Ops *base, const char *impl, int L, const char **which) {
#ifdef LONGCONV_CUDA
    if (strcmp(base->name, "cuda") == 0) {
        const Ops *o = cuda_ops_with_fftconv(impl);
        *which = fftconv_impl_which(fftconv_impl_find(impl), L);
        return o;
    }
#endif
    (void)impl;
    (void)L;
    *which = "fftw";
    return base;
}
