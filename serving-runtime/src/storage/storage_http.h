/*
 * HTTP GETs for model storage on libcurl: into a capped memory buffer (listings) or into a file
 * (objects), with retries and exponential backoff on transient failures (5xx, 408, 429,
 * connection refused/reset, stalls, short bodies) and none on other 4xx. HTTP errors map to
 * kinfer codes: 401/403 -> EAUTH, 404 -> ENOTFOUND, other -> EHTTP, with S3's <Code>/<Message>
 * or a sanitized excerpt of the body in the message. No resume of partial transfers: a retry
 * starts the object over.
 */
#ifndef KINFER_STORAGE_HTTP_H
#define KINFER_STORAGE_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "../common/status.h"

typedef struct storage_http storage_http;

typedef struct storage_http_config {
    int retries;        /* extra attempts after the first */
    long timeout_s;     /* connect timeout, and abort when under 1 byte/s for this long */
    long backoff_ms;    /* first retry delay; doubles per attempt, capped at 30 s */
    int insecure;       /* skip TLS verification (S3_VERIFY_SSL=0) */
    const char *cainfo; /* CA bundle file, or NULL for the system store */
} storage_http_config;

/* Called before every attempt for that attempt's extra headers (SigV4 signs with the current
 * time); the list is freed by storage_http after the attempt. */
typedef kinfer_status *(*storage_http_headers_fn)(void *ctx, struct curl_slist **headers);

/* NULL on allocation or libcurl failure. Owned by the caller: storage_http_destroy. */
storage_http *storage_http_create(const storage_http_config *cfg);
void storage_http_destroy(storage_http *h);

/* GET url into a new NUL-terminated buffer of at most cap bytes (ETOOBIG beyond). *body is the
 * caller's to free. headers_fn may be NULL. */
kinfer_status *storage_http_get_mem(storage_http *h, const char *url,
                                    storage_http_headers_fn headers_fn, void *ctx, size_t cap,
                                    char **body, size_t *len) __attribute__((warn_unused_result));

/* GET url into path (created 0644 or truncated; fsync'd before return). sha256_hex receives
 * the body's SHA-256 and *bytes its size. On error path is removed. */
kinfer_status *storage_http_get_file(storage_http *h, const char *url,
                                     storage_http_headers_fn headers_fn, void *ctx,
                                     const char *path, char sha256_hex[65], long long *bytes)
    __attribute__((warn_unused_result));

#endif
