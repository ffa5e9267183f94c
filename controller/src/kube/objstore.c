/* Packed, compacting object store with an offset hash table; see objstore.h. */
#include "objstore.h"
#include "../common/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define REGION_MIN (64u * 1024)
#define EMPTY      0
#define TOMB       SIZE_MAX

/* At each offset: this header, then key\0 json\0 index\0 rv\0. */
typedef struct hdr {
    uint32_t klen, len, ilen, rlen;
} hdr;

struct objstore {
    char *base;
    size_t used, cap, garbage;
    size_t *table; /* offset + 1, EMPTY or TOMB */
    size_t nslots, count, tombs;
};

static size_t blob_size(const hdr *h)
{
    return sizeof(hdr) + h->klen + h->len + h->ilen + h->rlen + 4;
}
static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void entry_at(const objstore *s, size_t off, objstore_entry *e)
{
    const hdr *h = (const hdr *)(s->base + off);
    const char *p = (const char *)(h + 1);
    e->key = p;
    e->json = p + h->klen + 1;
    e->len = h->len;
    e->index = e->json + h->len + 1;
    e->rv = e->index + h->ilen + 1;
}

objstore *objstore_create(void)
{
    objstore *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->nslots = 64;
    s->table = calloc(s->nslots, sizeof(size_t));
    if (!s->table) {
        free(s);
        return NULL;
    }
    return s;
}

void objstore_free(objstore *s)
{
    if (!s) return;
    if (s->base) munmap(s->base, s->cap);
    free(s->table);
    free(s);
}

/* The slot holding key, or the slot where it would go (first tombstone or empty). */
static size_t *find(const objstore *s, const char *key, int *found)
{
    size_t mask = s->nslots - 1, i = hash_fnv1a_str(key) & mask;
    size_t *first_tomb = NULL;
    for (;;) {
        size_t *slot = &s->table[i];
        if (*slot == EMPTY) {
            *found = 0;
            return first_tomb ? first_tomb : slot;
        }
        if (*slot == TOMB) {
            if (!first_tomb) first_tomb = slot;
        } else {
            objstore_entry e;
            entry_at(s, *slot - 1, &e);
            if (!strcmp(e.key, key)) {
                *found = 1;
                return slot;
            }
        }
        i = (i + 1) & mask;
    }
}

/* Rebuilds the table at nslots (power of two), dropping tombstones. 0 or -1. */
static int rehash(objstore *s, size_t nslots)
{
    size_t *old = s->table, oldn = s->nslots;
    size_t *t = calloc(nslots, sizeof(size_t));
    if (!t) return -1;
    s->table = t;
    s->nslots = nslots;
    s->tombs = 0;
    for (size_t i = 0; i < oldn; i++) {
        if (old[i] == EMPTY || old[i] == TOMB) continue;
        objstore_entry e;
        entry_at(s, old[i] - 1, &e);
        int found;
        *find(s, e.key, &found) = old[i];
    }
    free(old);
    return 0;
}

/* Slides the live blobs down over the dead ones, in region order, and gives the freed tail's
 * pages back. In place, so compacting never holds two copies of the store (a second region
 * would double the store's resident size for the moment of the copy, and the largest store
 * sets the peak). A blob is live when its key's slot holds its offset; a blob only ever moves
 * down over space already dead or moved, so the ones still ahead are intact. */
static void compact(objstore *s)
{
    size_t from = 0, to = 0;
    while (from < s->used) {
        const hdr *h = (const hdr *)(s->base + from);
        size_t n = align8(blob_size(h));
        int found;
        size_t *slot = find(s, (const char *)(h + 1), &found);
        if (found && *slot - 1 == from) {
            if (to != from) memmove(s->base + to, s->base + from, n);
            *slot = to + 1;
            to += n;
        }
        from += n;
    }
    size_t keep = (to + 4095) & ~(size_t)4095, end = (s->used + 4095) & ~(size_t)4095;
    if (end > keep)
        (void)madvise(s->base + keep, end - keep,
                      MADV_DONTNEED); /* advice only: RSS, not content */
    s->used = to;
    s->garbage = 0;
}

/* Makes room for need more bytes: compacts when enough is dead, then grows if it must. 0 or -1. */
static int reserve(objstore *s, size_t need)
{
    if (s->used + need <= s->cap) return 0;
    if (s->garbage && s->garbage * 4 >= s->used) compact(s);
    if (s->used + need <= s->cap) return 0;
    size_t cap = s->cap ? s->cap * 2 : REGION_MIN;
    while (cap < s->used + need) cap *= 2;
    void *p = s->base ? mremap(s->base, s->cap, cap, MREMAP_MAYMOVE)
                      : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    s->base = p;
    s->cap = cap;
    return 0;
}

/* A dead blob: count it, and compact (or release an empty region) once an eighth of the region
 * is dead: replaced objects are most of the churn, and the dead bytes are resident until then. */
static void retire(objstore *s, size_t off)
{
    s->garbage += align8(blob_size((const hdr *)(s->base + off)));
    if (s->garbage == s->used) {
        munmap(s->base, s->cap);
        s->base = NULL;
        s->used = s->cap = s->garbage = 0;
    } else if (s->garbage >= REGION_MIN / 4 && s->garbage * 8 >= s->used) {
        compact(s);
    }
}

int objstore_put(objstore *s, const char *key, const char *json, size_t len, const char *index,
                 const char *rv, int *replaced)
{
    size_t klen = strlen(key), ilen = strlen(index), rlen = strlen(rv);
    if (klen > UINT32_MAX || len > UINT32_MAX || ilen > UINT32_MAX || rlen > UINT32_MAX) return -1;
    if ((s->count + s->tombs + 1) * 2 > s->nslots &&
        rehash(s, s->count * 4 > s->nslots ? s->nslots * 2 : s->nslots))
        return -1;
    hdr h = {(uint32_t)klen, (uint32_t)len, (uint32_t)ilen, (uint32_t)rlen};
    size_t need = align8(blob_size(&h));
    if (reserve(s, need)) return -1;
    int found;
    size_t *slot = find(s, key, &found); /* after reserve: compaction rewrites offsets */
    char *p = s->base + s->used;
    memcpy(p, &h, sizeof(h));
    p += sizeof(h);
    memcpy(p, key, klen + 1);
    p += klen + 1;
    memcpy(p, json, len);
    p[len] = 0;
    p += len + 1;
    memcpy(p, index, ilen + 1);
    p += ilen + 1;
    memcpy(p, rv, rlen + 1);
    size_t old = found ? *slot - 1 : 0;
    if (!found && *slot == TOMB) s->tombs--;
    *slot = s->used + 1;
    s->used += need;
    if (found)
        retire(s, old);
    else
        s->count++;
    if (replaced) *replaced = found;
    return 0;
}

int objstore_remove(objstore *s, const char *key, char **old_index)
{
    int found;
    if (old_index) *old_index = NULL;
    size_t *slot = find(s, key, &found);
    if (!found) return 0;
    size_t off = *slot - 1;
    if (old_index) {
        objstore_entry e;
        entry_at(s, off, &e);
        *old_index = strdup(e.index);
    }
    *slot = TOMB;
    s->tombs++;
    s->count--;
    retire(s, off);
    return 1;
}

int objstore_get(const objstore *s, const char *key, objstore_entry *e)
{
    int found;
    size_t *slot = find(s, key, &found);
    if (found) entry_at(s, *slot - 1, e);
    return found;
}

void objstore_each(const objstore *s, int (*fn)(void *ud, const objstore_entry *e), void *ud)
{
    for (size_t i = 0; i < s->nslots; i++) {
        if (s->table[i] == EMPTY || s->table[i] == TOMB) continue;
        objstore_entry e;
        entry_at(s, s->table[i] - 1, &e);
        if (fn(ud, &e)) return;
    }
}

size_t objstore_count(const objstore *s)
{
    return s->count;
}
size_t objstore_bytes(const objstore *s)
{
    return s->used - s->garbage;
}
size_t objstore__used(const objstore *s)
{
    return s->used;
}
