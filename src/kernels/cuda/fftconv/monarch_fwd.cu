/* The forward kernels of "flashfft" (monarch_kernel.h), one per outer radix R1 and register budget
 * (MINB blocks per SM, __launch_bounds__), and their launcher. */
#include "kernels/cuda/backend.h"
#include "kernels/cuda/fftconv/monarch_kernel.h"

template <int R1, int MINB>
__global__ void __launch_bounds__(MN_THREADS, MINB) mn_fwd_kernel(MnArgs a) {
    extern __shared__ __align__(16) char mn_smem[];
    mn_fwd_body<R1>(a, (int)blockIdx.x, (int)blockIdx.y, mn_smem);
}

template <int R1, int MINB>
static void mn_fwd_go(const MnArgs &a, int nbt) {
    const size_t smem = mn_smem_bytes(256 * R1, 1);
    static int ready;   /* per instantiation: opt in to the shared memory; for two blocks per SM
                         * also ask for the largest carveout (else the driver picks one that fits
                         * one block). With one block the driver's choice leaves more L1, which the
                         * re-read inputs of the backward use (measured: docs/benchmarks.md). */
    if (!ready) {
        CUDA_CHECK(cudaFuncSetAttribute(mn_fwd_kernel<R1, MINB>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        if (MINB >= 2)
            CUDA_CHECK(cudaFuncSetAttribute(mn_fwd_kernel<R1, MINB>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                            (int)cudaSharedmemCarveoutMaxShared));
        ready = 1;
    }
    mn_fwd_kernel<R1, MINB><<<dim3((unsigned)nbt, (unsigned)a.H), MN_THREADS, smem, cuda_stream()>>>(a);
    CUDA_CHECK_LAUNCH();
}

void mn_launch_fwd(int R1, int minb, const MnArgs &a, int nbt) {
#define MN_FWD_CASE(r)                                  \
    case r:                                             \
        if (minb >= 2) mn_fwd_go<r, 2>(a, nbt);         \
        else mn_fwd_go<r, 1>(a, nbt);                   \
        break;
    switch (R1) {
        MN_FWD_CASE(1)
        MN_FWD_CASE(2)
        MN_FWD_CASE(4)
        MN_FWD_CASE(8)
        MN_FWD_CASE(16)
    default: lc_die("monarch: no forward kernel for R1 = %d", R1);
    }
#undef MN_FWD_CASE
}
