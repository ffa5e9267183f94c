/* region: model-lifetime bump allocator (see region.h). */
#include "region.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REGION_CHUNK (1u << 16)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(64) unsigned char data[];
} chunk;

struct region {
    chunk *head;
    size_t bytes;
};

region *region_create(void)
{
    return calloc(1, sizeof(region));
}

void *region_alloc(region *r, size_t size)
{
    size = (size + 63) & ~(size_t)63;
    if (size == 0) size = 64;
    if (size > SIZE_MAX / 2) return NULL;
    chunk *c = r->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > REGION_CHUNK ? size : REGION_CHUNK;
        chunk *n = aligned_alloc(64, (sizeof(chunk) + cap + 63) & ~(size_t)63);
        if (!n) return NULL;
        n->used = 0;
        n->cap = cap;
        /* A big one-off block goes behind the current chunk so its free space stays usable. */
        if (c && cap == size) {
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            r->head = n;
        }
        c = n;
    }
    void *p = c->data + c->used;
    c->used += size;
    r->bytes += size;
    memset(p, 0, size);
    return p;
}

char *region_strndup(region *r, const char *s, size_t len)
{
    if (len == SIZE_MAX) return NULL;
    char *p = region_alloc(r, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

size_t region_bytes(const region *r)
{
    return r ? r->bytes : 0;
}

void region_free(region *r)
{
    if (!r) return;
    for (chunk *c = r->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(r);
}
