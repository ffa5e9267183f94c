/*
 * Model URIs and the local names objects get. storage_uri_parse splits s3://, gs://, pvc://,
 * http(s)://, file:// and plain paths; storage_relpath_check decides whether an object key (made
 * relative to the requested prefix) may become a path under the destination directory. Both run
 * on untrusted text (InferenceService specs, bucket listings) and are fuzzed.
 */
#ifndef KINFER_STORAGE_URI_H
#define KINFER_STORAGE_URI_H

#include "../common/status.h"

typedef enum storage_scheme {
    STORAGE_SCHEME_LOCAL, /* file:// or a plain path: path holds the local path */
    STORAGE_SCHEME_S3,    /* bucket + key (key may be "" or end in '/': a prefix) */
    STORAGE_SCHEME_GS,    /* bucket + key */
    STORAGE_SCHEME_HTTP,  /* url holds the whole http(s) URL */
    STORAGE_SCHEME_PVC,   /* bucket holds the claim name, key the path inside it */
} storage_scheme;

typedef struct storage_uri {
    storage_scheme scheme;
    char *bucket; /* S3/GS bucket, PVC claim; NULL otherwise */
    char *key;    /* object key or prefix without the leading '/'; "" for a whole bucket */
    char *path;   /* LOCAL: the filesystem path */
    char *url;    /* HTTP: the URL */
} storage_uri;

#define STORAGE_URI_MAX 8192
#define STORAGE_KEY_MAX 1024 /* S3's own limit on a key, in bytes */

/* Parses text into out (fields owned by out: storage_uri_clear). EINVAL with the reason for an
 * empty or over-long URI, an unknown scheme, a bad bucket name, control characters. */
kinfer_status *storage_uri_parse(const char *text, storage_uri *out)
    __attribute__((warn_unused_result));
void storage_uri_clear(storage_uri *u);

/* 0 when rel is safe to create under a destination directory: relative, non-empty, at most
 * 4095 bytes, no empty, "." or ".." component, no component over 255 bytes, no control
 * characters. Otherwise -1 and *why (static) says which rule failed. */
int storage_relpath_check(const char *rel, const char **why);

#endif
