/*
 * The informer cache's storage: objects as JSON text keyed by "namespace/name", each with an
 * index value and resourceVersion, all packed in one mmap'd region with an open-addressing hash
 * table of offsets beside it. Nothing per object lives on the malloc heap, so the long-lived
 * cache never interleaves with the short-lived json-c trees the controller builds all the time
 * (on a shared heap a single small survivor pins a whole page, and 1000 objects pinned ~8 MB).
 * The region is compacted in place once an eighth of it is dead, and the freed tail's pages are
 * given back. Not thread-safe: the informer locks.
 */
#ifndef KINFER_CTL_OBJSTORE_H
#define KINFER_CTL_OBJSTORE_H

#include <stddef.h>

typedef struct objstore objstore;

/* A stored object; the pointers stay valid until the next put/remove on the store. */
typedef struct objstore_entry {
    const char *key, *json, *index, *rv;
    size_t len; /* of json */
} objstore_entry;

objstore *objstore_create(void); /* NULL on ENOMEM */
void objstore_free(objstore *s); /* NULL is a no-op */
/* Inserts or replaces key. *replaced (if given) is 1 when key was present. 0, or -1 on ENOMEM
 * (the store is unchanged then). */
int objstore_put(objstore *s, const char *key, const char *json, size_t len, const char *index,
                 const char *rv, int *replaced) __attribute__((warn_unused_result));
/* Removes key: 1 if it was there (then *old_index, if given, is a malloc'd copy of its index
 * value, or NULL on ENOMEM), else 0. */
int objstore_remove(objstore *s, const char *key, char **old_index);
/* 1 and *e filled when key is present, else 0. */
int objstore_get(const objstore *s, const char *key, objstore_entry *e);
/* Calls fn for each object until it returns nonzero; fn must not modify the store. */
void objstore_each(const objstore *s, int (*fn)(void *ud, const objstore_entry *e), void *ud);
size_t objstore_count(const objstore *s);
size_t objstore_bytes(const objstore *s); /* live bytes in the region */
/* For tests: bytes of the region in use, live and dead (the resident part of it). */
size_t objstore__used(const objstore *s);

#endif
