#include "kernels/cpu/real.h"

void CPU_NAME(register_layernorm)(Ops *o) { (void)o; }
