#include "kernels/cpu/real.h"

void CPU_NAME(register_shortconv)(Ops *o) { (void)o; }
