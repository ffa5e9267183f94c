/* Request arena: a chain of blocks, the first kept across resets. See req_arena.h. */
#include "req_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_BLOCK 16384

typedef struct block {
    struct block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} block;

struct req_arena {
    block *head; /* newest block first; the last in the chain is the kept one */
    size_t cap, total, used;
};

static block *block_new(size_t size)
{
    block *b = malloc(sizeof(block) + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

req_arena *req_arena_create(size_t cap)
{
    req_arena *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->head = block_new(ARENA_FIRST_BLOCK);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->cap = cap;
    a->total = ARENA_FIRST_BLOCK;
    return a;
}

void *req_arena_alloc(req_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n || need > a->cap - a->used || a->used > a->cap) return NULL;
    block *b = a->head;
    if (b->size - b->used < need) {
        size_t size = b->size * 2;
        if (size < need) size = need;
        b = block_new(size);
        if (!b) return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *req_arena_calloc(req_arena *a, size_t n)
{
    void *p = req_arena_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *req_arena_strndup(req_arena *a, const char *s, size_t n)
{
    char *p = req_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void req_arena_reset(req_arena *a)
{
    while (a->head->next) {
        block *b = a->head;
        a->head = b->next;
        free(b);
    }
    a->head->used = 0;
    a->used = 0;
}

void req_arena_destroy(req_arena *a)
{
    if (!a) return;
    while (a->head) {
        block *b = a->head;
        a->head = b->next;
        free(b);
    }
    free(a);
}
