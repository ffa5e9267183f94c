/*
 * One fetch in progress, shared by storage.c and the remote backends (storage_s3.c,
 * storage_gcs.c): the HTTP client, the staging directory every object is first written to, and
 * the list of files that will be moved into the destination once all of them are complete.
 * Internal to storage/; storage.h is the public face.
 */
#ifndef KINFER_STORAGE_JOB_H
#define KINFER_STORAGE_JOB_H

#include <stddef.h>

#include "../common/status.h"
#include "storage_http.h"
#include "storage_list.h"
#include "storage_uri.h"

typedef struct storage_job {
    storage_http *http;
    char *staging;      /* dest_dir/.kinfer-fetch-XXXXXX */
    size_t max_objects; /* cap on a listing (KINFER_STORAGE_MAX_OBJECTS) */
    size_t page_size;   /* objects per list request (KINFER_STORAGE_PAGE_SIZE) */
    size_t list_max_bytes;
    const char *endpoint; /* storage_options.endpoint or NULL */
    char **files;         /* relative paths written under staging */
    size_t n_files, cap_files;
    long long total_bytes;
    char last_sha256[65]; /* of the most recent download */
} storage_job;

/* Downloads url to staging/rel (parents created) and records rel. */
kinfer_status *storage__job_download(storage_job *job, const char *url, storage_http_headers_fn fn,
                                     void *ctx, const char *rel)
    __attribute__((warn_unused_result));

/* Local name of a listed key under a requested prefix: for key == prefix (a single object) its
 * last component; otherwise the part after "prefix/". Sets *rel = NULL (skip) for directory
 * markers (keys ending in '/') and for keys not under prefix/ ("models/ab" for "models/a").
 * EINVAL for keys that would escape the destination. *rel points into key. */
kinfer_status *storage__job_relpath(const char *prefix, const char *key, const char **rel)
    __attribute__((warn_unused_result));

/* A remote backend as storage__remote_fetch sees it (storage_remote.c). Everything it points to
 * is the backend's and outlives the fetch. */
typedef struct storage_remote {
    const char *scheme;             /* "s3", "gs": for messages */
    const char *repeated_token_msg; /* error when a listing hands back the token it was given */
    void *ctx;                      /* the backend's configuration, passed to the calls below */
    /* GETs the list page after etoken (NULL for the first) of the keys under eprefix (both
     * URL-encoded) into *body (the caller's to free). */
    kinfer_status *(*list_get)(storage_job *job, void *ctx, const char *eprefix, const char *etoken,
                               char **body, size_t *len);
    /* storage_list_parse_s3 or storage_list_parse_gcs. */
    kinfer_status *(*list_parse)(const char *body, size_t len, size_t max_keys,
                                 storage_list_page *out);
    /* Downloads key to staging/rel (storage__job_download). */
    kinfer_status *(*get)(storage_job *job, void *ctx, const char *key, const char *rel);
} storage_remote;

/* Fetches u as an object or, when the object is not found, as every object under "key/". */
kinfer_status *storage__remote_fetch(storage_job *job, const storage_remote *r,
                                     const storage_uri *u) __attribute__((warn_unused_result));

kinfer_status *storage__s3_fetch(storage_job *job, const storage_uri *u)
    __attribute__((warn_unused_result));
kinfer_status *storage__gcs_fetch(storage_job *job, const storage_uri *u)
    __attribute__((warn_unused_result));

/* Environment flag: 1 for 1/true/yes/on, 0 for 0/false/no/off, dflt when unset or empty. */
int storage__env_flag(const char *name, int dflt);

#endif
