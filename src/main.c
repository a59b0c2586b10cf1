#include <stdio.h>
int main(void) { puts("longconv"); return 0; }
