/*
 * region: a bump allocator for everything that lives exactly as long as a loaded model (names,
 * attributes, initializer data, node state). One free releases it all, so the loader's error
 * paths need no per-object cleanup. Not thread-safe: only the loader and optimizer allocate.
 */
#ifndef KINFER_REGION_H
#define KINFER_REGION_H

#include <stddef.h>

typedef struct region region;

region *region_create(void);
/* 64-byte aligned, zeroed; NULL on out-of-memory or size overflow. */
void *region_alloc(region *r, size_t size);
/* Copies len bytes and a terminating NUL. */
char *region_strndup(region *r, const char *s, size_t len);
size_t region_bytes(const region *r);
void region_free(region *r);

#endif
