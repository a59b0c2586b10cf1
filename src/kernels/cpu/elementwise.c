#include "kernels/cpu/real.h"

void CPU_NAME(register_elementwise)(Ops *o) { (void)o; }
