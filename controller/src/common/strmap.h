/*
 * A string-keyed hash map (keys copied, values opaque) for caches and the workqueue's sets.
 * Not thread-safe: callers hold their own lock. It never frees values; the owner does that
 * when it removes or iterates.
 */
#ifndef KINFER_CTL_STRMAP_H
#define KINFER_CTL_STRMAP_H

#include <stddef.h>

typedef struct strmap strmap;

strmap *strmap_create(void); /* NULL on allocation failure */
void strmap_free(strmap *m); /* frees keys only; NULL is a no-op */
/* Inserts or replaces. *old (if old != NULL) gets the replaced value or NULL. 0 or -1 (ENOMEM). */
int strmap_put(strmap *m, const char *key, void *val, void **old)
    __attribute__((warn_unused_result));
void *strmap_get(const strmap *m, const char *key); /* NULL when absent */
int strmap_has(const strmap *m, const char *key);
void *strmap_remove(strmap *m, const char *key); /* the removed value, or NULL */
size_t strmap_size(const strmap *m);
/* Calls fn for each entry; fn must not modify the map. Stops when fn returns nonzero. */
void strmap_each(const strmap *m, int (*fn)(void *ud, const char *key, void *val), void *ud);

#endif
