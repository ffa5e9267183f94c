/*
 * The controller's one string hash: 64-bit FNV-1a, for hash tables (strmap, objstore, the
 * informer's dictionary) and change stamps (applied). Not for anything an adversary picks
 * collisions in, and not the revision hash (that is SHA-256 of the pod template, revision.h).
 */
#ifndef KINFER_CTL_HASH_H
#define KINFER_CTL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_INIT 1469598103934665603ull

/* Continues hash h over n bytes of s (NULL: h unchanged); start with HASH_FNV1A_INIT. */
static inline uint64_t hash_fnv1a(uint64_t h, const void *s, size_t n)
{
    const unsigned char *p = s;
    for (size_t i = 0; p && i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* FNV-1a of a NUL-terminated string. */
static inline uint64_t hash_fnv1a_str(const char *s)
{
    uint64_t h = HASH_FNV1A_INIT;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

#endif
