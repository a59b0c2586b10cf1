/* Error checking for CUDA runtime, cuBLAS and cuFFT calls: file:line, the call and the reason. */
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

#define CUDA_CHECK(call)                                                                          \
    do {                                                                                          \
        cudaError_t err_ = (call);                                                                \
        if (err_ != cudaSuccess) lc_die_at(__FILE__, __LINE__, "CUDA: %s failed: %s", #call,      \
                                           cudaGetErrorString(err_));                             \
    } while (0)

/* After every kernel launch. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

/* Same for cuBLAS status codes. */
#define CUBLAS_CHECK(call)                                                                        \
    do {                                                                                          \
        cublasStatus_t st_ = (call);                                                              \
        if (st_ != CUBLAS_STATUS_SUCCESS) lc_die_at(__FILE__, __LINE__, "cuBLAS: %s failed: %s",  \
                                                    #call, cublasGetStatusString(st_));           \
    } while (0)
