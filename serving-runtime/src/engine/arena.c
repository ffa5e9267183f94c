/* arena: first-fit offset allocator with a growable backing block (see arena.h). */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_MAX_BYTES ((size_t)1 << 38)
#define ARENA_MAX_LIVE  (1 << 20)

typedef struct block {
    size_t off, size;
    void *ptr;
    int heap; /* malloc'd overflow */
} block;

struct arena {
    unsigned char *base;
    size_t cap, hw, overflow;
    block *live; /* sorted by off */
    size_t n_live, cap_live;
};

arena *arena_create(void)
{
    return calloc(1, sizeof(arena));
}

void arena_free(arena *a)
{
    if (!a) return;
    arena_reset(a);
    free(a->base);
    free(a->live);
    free(a);
}

void *arena_alloc(arena *a, size_t size)
{
    size = (size + 63) & ~(size_t)63;
    if (!size) size = 64;
    if (size > ARENA_MAX_BYTES) return NULL;
    if (a->n_live == a->cap_live) {
        size_t cap = a->cap_live ? a->cap_live * 2 : 64;
        if (cap > ARENA_MAX_LIVE) return NULL;
        block *nb = realloc(a->live, cap * sizeof(block));
        if (!nb) return NULL;
        a->live = nb;
        a->cap_live = cap;
    }
    /* First gap (in offset order) that fits. */
    size_t off = 0, pos = 0;
    for (; pos < a->n_live; pos++) {
        if (a->live[pos].off - off >= size) break;
        off = a->live[pos].off + a->live[pos].size;
    }
    if (off + size > ARENA_MAX_BYTES) return NULL;
    block b = {off, size, NULL, 0};
    if (off + size <= a->cap) {
        b.ptr = a->base + off;
    } else {
        b.ptr = aligned_alloc(64, size);
        if (!b.ptr) return NULL;
        b.heap = 1;
        a->overflow += size;
    }
    memmove(&a->live[pos + 1], &a->live[pos], (a->n_live - pos) * sizeof(block));
    a->live[pos] = b;
    a->n_live++;
    if (off + size > a->hw) a->hw = off + size;
    return b.ptr;
}

void arena_release(arena *a, void *p)
{
    if (!p) return;
    for (size_t i = 0; i < a->n_live; i++) {
        if (a->live[i].ptr != p) continue;
        if (a->live[i].heap) free(p);
        memmove(&a->live[i], &a->live[i + 1], (a->n_live - i - 1) * sizeof(block));
        a->n_live--;
        return;
    }
}

void arena_reset(arena *a)
{
    for (size_t i = 0; i < a->n_live; i++)
        if (a->live[i].heap) free(a->live[i].ptr);
    a->n_live = 0;
    if (a->hw > a->cap) {
        free(a->base);
        a->base = aligned_alloc(64, a->hw);
        a->cap = a->base ? a->hw : 0;
    }
    a->hw = 0;
    a->overflow = 0;
}

size_t arena_high_water(const arena *a)
{
    return a->hw;
}
size_t arena_capacity(const arena *a)
{
    return a->cap;
}
size_t arena_overflow(const arena *a)
{
    return a->overflow;
}
