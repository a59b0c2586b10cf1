/* The CPU backend is written once over `real` and compiled twice: fp32 (backend "cpu") and,
 * with LC_CPU_F64, fp64 (backend "cpu64", for finite-difference gradient checks). */
#pragma once
#include <cblas.h>
#include <fftw3.h>

#include "kernels/ops.h"

#ifdef LC_CPU_F64
typedef double real;
#define CPU_NAME(x) cpu64_##x
#define FFTW(x) fftw_##x
#define cblas_gemm cblas_dgemm
#else
typedef float real;
#define CPU_NAME(x) cpu32_##x
#define FFTW(x) fftwf_##x
#define cblas_gemm cblas_sgemm
#endif

/* One registration function per op family file; backend.c calls them all. */
void CPU_NAME(register_memory)(Ops *o);
void CPU_NAME(register_elementwise)(Ops *o);
void CPU_NAME(register_embedding)(Ops *o);
void CPU_NAME(register_layernorm)(Ops *o);
void CPU_NAME(register_linear)(Ops *o);
void CPU_NAME(register_layout)(Ops *o);
void CPU_NAME(register_shortconv)(Ops *o);
void CPU_NAME(register_fftconv)(Ops *o);
void CPU_NAME(register_filter)(Ops *o);
void CPU_NAME(register_xent)(Ops *o);
void CPU_NAME(register_optim)(Ops *o);
