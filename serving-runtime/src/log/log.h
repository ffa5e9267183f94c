/*
 * The log of kinfer-server and kinfer-fetch: one JSON object per line on stderr, so a log
 * pipeline needs no parser rules:
 *   {"ts":"2026-01-01T00:00:00.000Z","level":"info","event":"listening","msg":"..."}
 *   {"ts":...,"level":"info","component":"storage","event":"fetch.done",<fields>}
 * Each line goes out in a single write(2), so threads never interleave within a line. It lives
 * outside src/common because it needs json-c, which the engine-only binaries do not link.
 */
#ifndef KINFER_LOG_H
#define KINFER_LOG_H

#include <json.h>

/* Non-zero silences every later line (storage_options.quiet). */
void kinfer_log_set_quiet(int quiet);

/* Writes {"ts", "level", "component" (omitted when NULL), "event", <fields>}. level: "info",
 * "warn", "error". Takes ownership of fields (may be NULL). */
void kinfer_log_fields(const char *level, const char *component, const char *event,
                       json_object *fields);

/* Writes {"ts", "level", "event", "msg"}; msg is a printf format, truncated at 1023 bytes. */
void kinfer_log_event(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
