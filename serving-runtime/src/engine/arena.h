/*
 * arena: the per-run memory of one run context. Intermediate tensors are placed at offsets in
 * one block by a first-fit allocator over a virtual address range, and released as soon as their
 * last consumer has run (liveness), so peak memory is the largest set of simultaneously live
 * tensors, not their sum. When a run needs more than the block, the overflow is malloc'd and the
 * block grows to the high-water mark at arena_reset(): from the second run of a given shape on,
 * a run does no malloc at all.
 */
#ifndef KINFER_ARENA_H
#define KINFER_ARENA_H

#include <stddef.h>

typedef struct arena arena;

arena *arena_create(void);
void arena_free(arena *a);
/* 64-byte aligned; NULL on OOM or over the cap. */
void *arena_alloc(arena *a, size_t size);
/* p from arena_alloc of this arena; NULL is a no-op. */
void arena_release(arena *a, void *p);
/* Ends a run: drops every allocation, grows the block to the high-water mark if needed. */
void arena_reset(arena *a);
/* High-water mark (bytes) since the last reset; block capacity. */
size_t arena_high_water(const arena *a);
size_t arena_capacity(const arena *a);
/* Bytes malloc'd because the block was too small, since the last reset. */
size_t arena_overflow(const arena *a);

#endif
