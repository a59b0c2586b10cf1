#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/device.h"
#include "kernels/ops.h"

extern "C" int cuda_device_count(void) {
    int n = 0;
    /* No driver (error 35) or no device: report zero rather than failing. */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" void cuda_device_describe(int device, char *out, int n) {
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    snprintf(out, (size_t)n, "%s (sm_%d%d, %.1f GiB, %d SMs, %zu KiB shared memory per block opt-in)", p.name,
             p.major, p.minor, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.multiProcessorCount,
             p.sharedMemPerBlockOptin / 1024);
}

extern "C" double cuda_peak_bf16_flops(int device) {
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    /* Vendor datasheet numbers, dense (no sparsity). Order matters: more specific names first. */
    static const struct { const char *name; double flops; } table[] = {
        {"H100 PCIe", 756e12}, {"H100 NVL", 835e12}, {"H100", 989e12}, {"H200", 989e12}, {"GH200", 989e12},
        {"A100", 312e12},      {"L40S", 362e12},     {"A10", 125e12},  {"L4", 121e12},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strstr(p.name, table[i].name)) return table[i].flops;
    return 0.0;
}

__global__ void axpb_kernel(float *x, int64_t n, float a, float b) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = a * x[i] + b;
}

extern "C" int cuda_selftest(int device) {
    CUDA_CHECK(cudaSetDevice(device));
    const int64_t n = 1 << 20;
    float *h = (float *)xmalloc((size_t)n * sizeof(float)), *d = NULL;
    for (int64_t i = 0; i < n; i++) h[i] = (float)(i % 1000);
    CUDA_CHECK(cudaMalloc(&d, (size_t)n * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d, h, (size_t)n * sizeof(float), cudaMemcpyHostToDevice));
    axpb_kernel<<<(unsigned)CEIL_DIV(n, 256), 256>>>(d, n, 2.0f, 1.0f);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaMemcpy(h, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaFree(d));
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += h[i] != 2.0f * (float)(i % 1000) + 1.0f;
    free(h);
    return bad;
}

/* The op table itself (ops_cuda) lives in backend.cu. */
