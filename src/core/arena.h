/* A bump allocator over one device allocation. Models bind their buffers twice: once with a
 * counting arena (base == NULL: only sizes are summed, pointers stay NULL) to print the memory
 * plan and size the block, then with the real block. */
#pragma once
#include <stddef.h>

#include "kernels/ops.h"

typedef struct Arena {
    char *base;   /* NULL while counting */
    size_t used, cap;
} Arena;

#define ARENA_ALIGN 256

static inline void *arena_take(Arena *a, size_t bytes) {
    size_t at = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    a->used = at + bytes;
    if (!a->base) return NULL;
    if (a->used > a->cap) return NULL; /* caller's sizing bug: checked by arena_finish */
    return a->base + at;
}

/* Allocate the block measured by a counting pass. */
static inline Arena arena_create(const Ops *ops, size_t bytes) {
    Arena a = {ops->alloc(bytes ? bytes : 1), 0, bytes};
    return a;
}
