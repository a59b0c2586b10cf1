/* GPU smoke test: the CUDA build finds the device and runs a kernel (skips without a GPU). */
#include <stdio.h>

#include "testutil.h"
#ifdef LONGCONV_CUDA
#include "kernels/cuda/device.h"
#endif

int main(void) {
#ifdef LONGCONV_CUDA
    int n = cuda_device_count();
    if (n == 0) {
        printf("SKIP: no CUDA device on this machine\n");
        return 77;
    }
    char desc[256];
    cuda_device_describe(0, desc, sizeof desc);
    printf("device 0: %s\n", desc);
    int bad = cuda_selftest(0);
    printf("selftest: %d wrong elements\n", bad);
    return bad == 0 ? 0 : 1;
#else
    printf("SKIP: built without CUDA\n");
    return 77;
#endif
}
