/*
 * pack: the informer cache's objects, deflated with zlib against a preset dictionary. Cached
 * objects of one kind are near copies of each other (the same keys, labels, status shapes; only
 * names, uids and versions differ), so with the first object the cache held as the dictionary a
 * cached InferenceService or Deployment shrinks about tenfold, and the cache is most of the
 * controller's own resident memory. Binary-safe; the coded form lives only in this process's
 * memory, so it has no version and no checksum, but decoding checks the stream and its length.
 */
#ifndef KINFER_CTL_PACK_H
#define KINFER_CTL_PACK_H

#include <stddef.h>

enum { PACK_OK = 0, PACK_ENOMEM = -1, PACK_EMALFORMED = -2 };

/* zlib's window: only the last PACK_DICT_MAX bytes of a dictionary are used, so a caller need
 * keep no more than that. */
#define PACK_DICT_MAX (8u * 1024)

/* Codes src[0..n) against dict[0..dlen) (dict may be NULL when dlen is 0) into *out (malloc'd,
 * caller frees), *out_len bytes. PACK_OK or PACK_ENOMEM. */
int pack_encode(const char *dict, size_t dlen, const char *src, size_t n, char **out,
                size_t *out_len) __attribute__((warn_unused_result));

/* Decodes p[0..n), coded against the same dict, into *out: malloc'd, NUL-terminated (caller
 * frees), *out_len bytes before the NUL. PACK_OK, PACK_ENOMEM, or PACK_EMALFORMED (then *out is
 * NULL) when p is not a whole coded text for this dictionary. */
int pack_decode(const char *dict, size_t dlen, const char *p, size_t n, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

#endif
