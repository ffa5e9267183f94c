/*
 * Parsers for bucket listings and error bodies: S3 ListObjectsV2 XML (Contents/Key,
 * IsTruncated, NextContinuationToken), S3's <Error> body (Code, Message) and the GCS JSON API's
 * objects list (items[].name, nextPageToken). The S3 side is a small bounded extractor, not an
 * XML parser: it reads only those elements, decodes the five predefined entities and numeric
 * character references, and rejects anything it does not understand rather than guessing. Every
 * input here comes from the network and is fuzzed (fuzz/fuzz_storage_parse.c).
 */
#ifndef KINFER_STORAGE_LIST_H
#define KINFER_STORAGE_LIST_H

#include <stddef.h>

#include "../common/status.h"

typedef struct storage_list_page {
    char **keys; /* object names in response order; owned */
    size_t n_keys;
    int truncated;    /* more pages follow */
    char *next_token; /* S3 NextContinuationToken / GCS nextPageToken; NULL when none */
} storage_list_page;

/* Parses one ListObjectsV2 response. At most max_keys keys are accepted (ETOOBIG beyond);
 * EHTTP for a well-formed <Error> body; EINVAL for malformed XML or a truncated listing without
 * a continuation token. out is owned by the caller (storage_list_page_clear) and is left empty
 * on error. */
kinfer_status *storage_list_parse_s3(const char *xml, size_t len, size_t max_keys,
                                     storage_list_page *out) __attribute__((warn_unused_result));

/* Parses one GCS JSON API objects.list response, same contract. */
kinfer_status *storage_list_parse_gcs(const char *json, size_t len, size_t max_keys,
                                      storage_list_page *out) __attribute__((warn_unused_result));

void storage_list_page_clear(storage_list_page *p);

/* Extracts Code and Message from an S3 <Error> body into the caller's buffers (NUL-terminated,
 * truncated to fit). Returns 0 when the body had a <Code>, -1 otherwise (buffers set to ""). */
int storage_list_s3_error(const char *xml, size_t len, char *code, size_t code_size, char *msg,
                          size_t msg_size);

#endif
