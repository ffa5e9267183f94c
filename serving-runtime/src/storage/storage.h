/*
 * Model storage: fetches a model from s3://, gs://, http(s)://, file:// or a plain path into a
 * local directory before kinfer-server loads it (the `fetch` subcommand is also the predictor's
 * init container). Downloads are atomic: each file is written to a temporary name inside
 * dest_dir and renamed into place only once complete (and verified), so a crash never leaves a
 * partial model that loads. It does not cache across runs, resume transfers, or upload.
 * Environment variables and schemes are documented in docs/storage.md. Not for concurrent use:
 * call it from one thread at a time (kinfer-server fetches once, at startup).
 */
#ifndef KINFER_STORAGE_H
#define KINFER_STORAGE_H

#include "../common/status.h"

typedef struct storage_options {
    const char *sha256; /* optional lowercase/uppercase hex SHA-256 of a single-file model */
    int retries;    /* extra attempts on transient errors (5xx, reset, timeout); <0 = default 3 */
    long timeout_s; /* per-request stall timeout in seconds; 0 = default 30 */
    const char
        *endpoint; /* overrides the scheme's endpoint (S3/GCS), e.g. "http://127.0.0.1:9000" */
    int quiet;     /* non-zero: no JSON log lines on stderr */
} storage_options;

/* Downloads the model at uri into dest_dir (created if missing). Atomic: downloads go to a
 * temporary name in dest_dir and are renamed into place, so a crashed download never leaves a
 * partial model that loads. opts may be NULL (defaults). The returned status belongs to the
 * caller (NULL = success). For a plain path or pvc-mounted file:// directory whose content is
 * already dest_dir nothing is copied. */
kinfer_status *storage_fetch(const char *uri, const char *dest_dir, const storage_options *opts)
    __attribute__((warn_unused_result));

/* The `kinfer-server fetch URI DIR [--sha256 HEX] [--retries N]` subcommand; main() dispatches
 * argv to it when argv[1] is "fetch" (argv[0] is the program, argv[1] "fetch"). Returns the
 * process exit code; prints precise errors and one JSON log line per event. */
int storage_fetch_main(int argc, char **argv);

#endif
