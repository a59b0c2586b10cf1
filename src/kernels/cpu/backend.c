/* CPU backend table and memory ops (host memory is device memory here). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/real.h"

static void *cpu_alloc(size_t bytes) { return xcalloc(1, bytes); }
static void cpu_free(void *p) { free(p); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
static void cpu_sync(void) {}

static void acc_from_f32(acc_t *dst, const float *src, int64_t n) {
    real *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = (real)src[i];
}
static void acc_to_f32(float *dst, const acc_t *src, int64_t n) {
    const real *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
}
static void acc_from_f64(acc_t *dst, const double *src, int64_t n) {
    real *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = (real)src[i];
}
static void acc_to_f64(double *dst, const acc_t *src, int64_t n) {
    const real *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = (double)s[i];
}
static void act_copy(act_t *dst, const acc_t *src, int64_t n) { memmove(dst, src, (size_t)n * sizeof(real)); }
static void acc_add_act(acc_t *dst, const act_t *src, int64_t n) {
    real *d = dst;
    const real *s = src;
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
}

void CPU_NAME(register_memory)(Ops *o) {
    o->alloc = cpu_alloc;
    o->free = cpu_free;
    o->zero = cpu_zero;
    o->copy = cpu_copy;
    o->to_host = cpu_copy;
    o->to_device = cpu_copy;
    o->synchronize = cpu_sync;
    o->acc_from_f32 = acc_from_f32;
    o->acc_to_f32 = acc_to_f32;
    o->acc_from_f64 = acc_from_f64;
    o->acc_to_f64 = acc_to_f64;
    o->act_from_acc = act_copy;
    o->act_to_acc = act_copy;
    o->acc_add_act = acc_add_act;
}

static Ops table;
static int table_ready;

const Ops *CPU_NAME(ops)(void) {
    if (!table_ready) {
#ifdef LC_CPU_F64
        table.name = "cpu64";
#else
        table.name = "cpu";
#endif
        table.act_bytes = table.acc_bytes = sizeof(real);
        table.act_is_acc = 1;
        CPU_NAME(register_memory)(&table);
        CPU_NAME(register_elementwise)(&table);
        CPU_NAME(register_embedding)(&table);
        CPU_NAME(register_layernorm)(&table);
        CPU_NAME(register_linear)(&table);
        CPU_NAME(register_layout)(&table);
        CPU_NAME(register_shortconv)(&table);
        CPU_NAME(register_fftconv)(&table);
        CPU_NAME(register_filter)(&table);
        CPU_NAME(register_xent)(&table);
        CPU_NAME(register_optim)(&table);
        table_ready = 1;
    }
    return &table;
}
