#include "kernels/cpu/real.h"

void CPU_NAME(register_linear)(Ops *o) { (void)o; }
