/*
 * A bump allocator for everything one HTTP request owns (parsed tensors, names, strings), freed
 * all at once when the request ends (nginx's request pool). It has a hard cap so a hostile body
 * cannot make the server allocate without bound. Not thread-safe: one request, one owner.
 */
#ifndef KINFER_REQ_ARENA_H
#define KINFER_REQ_ARENA_H

#include <stddef.h>

typedef struct req_arena req_arena;

/* cap: most bytes the arena may hold in all; NULL on ENOMEM. Owned by the caller. */
req_arena *req_arena_create(size_t cap);
/* 16-byte aligned, uninitialized; NULL when over the cap or out of memory. */
void *req_arena_alloc(req_arena *a, size_t n);
void *req_arena_calloc(req_arena *a, size_t n);
/* Copy of [s, s+n) with a NUL; NULL as above. */
char *req_arena_strndup(req_arena *a, const char *s, size_t n);
/* Frees every block but the first, so a keep-alive connection reuses its memory. */
void req_arena_reset(req_arena *a);
/* NULL is a no-op. */
void req_arena_destroy(req_arena *a);

#endif
