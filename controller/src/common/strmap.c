/* Chained hash map with power-of-two buckets; see strmap.h. */
#include "strmap.h"
#include "hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next;
    void *val;
    uint64_t hash;
    char key[];
} entry;

struct strmap {
    entry **buckets;
    size_t nbuckets, size;
};

strmap *strmap_create(void)
{
    strmap *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->nbuckets = 16;
    m->buckets = calloc(m->nbuckets, sizeof(entry *));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void strmap_free(strmap *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry *e = m->buckets[i];
        while (e) {
            entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    free(m);
}

static entry **find(const strmap *m, const char *key, uint64_t h)
{
    entry **p = &m->buckets[h & (m->nbuckets - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->key, key))) p = &(*p)->next;
    return p;
}

static void grow(strmap *m)
{
    size_t nb = m->nbuckets * 2;
    entry **b = calloc(nb, sizeof(entry *));
    if (!b) return; /* keep working with longer chains */
    for (size_t i = 0; i < m->nbuckets; i++) {
        entry *e = m->buckets[i];
        while (e) {
            entry *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

int strmap_put(strmap *m, const char *key, void *val, void **old)
{
    uint64_t h = hash_fnv1a_str(key);
    entry **p = find(m, key, h);
    if (old) *old = NULL;
    if (*p) {
        if (old) *old = (*p)->val;
        (*p)->val = val;
        return 0;
    }
    size_t kl = strlen(key);
    entry *e = malloc(sizeof(*e) + kl + 1);
    if (!e) return -1;
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *p = e;
    if (++m->size > m->nbuckets) grow(m);
    return 0;
}

void *strmap_get(const strmap *m, const char *key)
{
    entry **p = find(m, key, hash_fnv1a_str(key));
    return *p ? (*p)->val : NULL;
}

int strmap_has(const strmap *m, const char *key)
{
    return *find(m, key, hash_fnv1a_str(key)) != NULL;
}

void *strmap_remove(strmap *m, const char *key)
{
    entry **p = find(m, key, hash_fnv1a_str(key));
    if (!*p) return NULL;
    entry *e = *p;
    void *v = e->val;
    *p = e->next;
    free(e);
    m->size--;
    return v;
}

size_t strmap_size(const strmap *m)
{
    return m->size;
}

void strmap_each(const strmap *m, int (*fn)(void *ud, const char *key, void *val), void *ud)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (entry *e = m->buckets[i]; e; e = e->next)
            if (fn(ud, e->key, e->val)) return;
}
