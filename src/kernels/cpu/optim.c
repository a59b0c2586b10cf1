#include "kernels/cpu/real.h"

void CPU_NAME(register_optim)(Ops *o) { (void)o; }
