#include "kernels/ops.h"

#include <string.h>

#include "core/error.h"

const Ops *cpu32_ops(void);
const Ops *cpu64_ops(void);

const Ops *ops_cpu(void) { return cpu32_ops(); }
const Ops *ops_cpu64(void) { return cpu64_ops(); }

#ifndef LONGCONV_CUDA
const Ops *ops_cuda(void) { return NULL; }
#endif

const Ops *ops_get(const char *name) {
    if (strcmp(name, "cpu") == 0) return ops_cpu();
    if (strcmp(name, "cpu64") == 0) return ops_cpu64();
    if (strcmp(name, "cuda") == 0) {
        const Ops *o = ops_cuda();
        if (!o) lc_die("device 'cuda' requested but no CUDA device is available (build with nvcc and run on a GPU machine)");
        return o;
    }
    lc_die("unknown device '%s' (expected cpu or cuda)", name);
}
