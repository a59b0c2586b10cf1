/* CUDA device discovery. Safe to call on machines without a driver (returns 0 devices). */
#pragma once
#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no driver or no GPU. */
int cuda_device_count(void);
/* One line: name, compute capability, memory, SMs. Dies if device is out of range. */
void cuda_device_describe(int device, char *out, int n);
/* Dense bf16 tensor-core peak in FLOP/s of this device, from a table keyed by name (H100 SXM/PCIe,
 * H200, A100, ...); 0 when the device is not in the table (MFU is then reported as n/a). */
double cuda_peak_bf16_flops(int device);
/* Run a small kernel on the device and verify its result on the host (0 on success). */
int cuda_selftest(int device);

#ifdef __cplusplus
}
#endif
