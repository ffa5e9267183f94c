/*
 * One JSON object per line on stderr for each storage event (fetch.start, object.done,
 * request.retry, fetch.done, fetch.error), so the init container's log is machine-readable.
 * Deliberately tiny: kinfer-server's request logging lives elsewhere.
 */
#ifndef KINFER_STORAGE_LOG_H
#define KINFER_STORAGE_LOG_H

#include <json.h>

/* Non-zero silences every later storage_log_emit (storage_options.quiet). */
void storage_log_set_quiet(int quiet);
/* Writes {"ts":..., "level":..., "component":"storage", "event":..., <fields>} and takes
 * ownership of fields (may be NULL). */
void storage_log_emit(const char *level, const char *event, json_object *fields);

#endif
