#include "kernels/cpu/real.h"

void CPU_NAME(register_filter)(Ops *o) { (void)o; }
