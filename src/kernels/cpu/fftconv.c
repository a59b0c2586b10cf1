#include "kernels/cpu/real.h"

void CPU_NAME(register_fftconv)(Ops *o) { (void)o; }
