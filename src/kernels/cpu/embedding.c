#include "kernels/cpu/real.h"

void CPU_NAME(register_embedding)(Ops *o) { (void)o; }
