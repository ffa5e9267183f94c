/*
 * AWS Signature Version 4 (HMAC-SHA256, openssl) for S3 requests: canonical request, string to
 * sign, signing key, Authorization header. Pure functions of their inputs (the caller supplies
 * the date) so they are checked against AWS's published examples. It signs headers only, not
 * query-string presigned URLs, and it does not read credentials: s3.c does that.
 */
#ifndef KINFER_SIGV4_H
#define KINFER_SIGV4_H

#include <stddef.h>

#include "../common/status.h"

/* SHA-256 of the empty payload, the x-amz-content-sha256 of every GET kinfer sends. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_MAX_HEADERS  16

typedef struct sigv4_header {
    const char *name; /* any case; lowercased for signing */
    const char *value;
} sigv4_header;

typedef struct sigv4_input {
    const char *method;          /* "GET" */
    const char *canonical_uri;   /* already encoded, e.g. from sigv4_uri_encode(path, 1) */
    const char *canonical_query; /* already encoded and sorted by name; "" for none */
    const sigv4_header *headers; /* every header to sign, host and x-amz-date included */
    size_t n_headers;            /* at most SIGV4_MAX_HEADERS */
    const char *payload_hash;    /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;        /* YYYYMMDDTHHMMSSZ, the x-amz-date value */
    const char *region, *service, *access_key, *secret_key;
} sigv4_input;

typedef struct sigv4_output {
    char *canonical_request; /* owned; freed by sigv4_output_free */
    char *string_to_sign;
    char *authorization; /* the Authorization header's value */
    char signature[65];
} sigv4_output;

/* Fills out (owned by the caller: sigv4_output_free). EINVAL for a malformed date or too many
 * headers, ENOMEM on allocation failure. */
kinfer_status *sigv4_sign(const sigv4_input *in, sigv4_output *out)
    __attribute__((warn_unused_result));
/* NULL and an already-freed output are fine. */
void sigv4_output_free(sigv4_output *out);

/* RFC 3986 encoding the way SigV4 wants it: A-Z a-z 0-9 - _ . ~ kept, everything else %XX
 * (uppercase hex); '/' kept when keep_slash. Returns a malloc'd string, NULL on ENOMEM. */
char *sigv4_uri_encode(const char *s, int keep_slash);

/* Lowercase hex SHA-256 of data into out (65 bytes with the NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
