/*
 * Splits a Kubernetes watch stream (JSON objects back to back, usually one per line) into
 * events, whatever the chunking: an event may arrive in many chunks and a chunk may hold many
 * events. Framing follows JSON structure (braces outside strings), not newlines, so it does not
 * depend on the server's line breaks. Memory is bounded: an event larger than the cap is
 * skipped to its end and reported as FRAMER_TOOBIG (the informer then relists); bytes that
 * cannot start an object are skipped to the next newline and reported once as FRAMER_GARBAGE.
 * It does not parse JSON; framer_parse_event() does that for one framed event.
 */
#ifndef KINFER_CTL_FRAMER_H
#define KINFER_CTL_FRAMER_H

#include <json.h>
#include <stddef.h>

#include "../common/error.h"

typedef struct framer framer;

typedef enum framer_kind {
    FRAMER_FRAME,     /* data/len: one complete top-level JSON object */
    FRAMER_TOOBIG,    /* data NULL, len: the size of the skipped event */
    FRAMER_GARBAGE,   /* data/len: up to 64 bytes of the first skipped bytes */
    FRAMER_TRUNCATED, /* from framer_finish(): data/len what was buffered (len may be capped) */
} framer_kind;

/* Called for each frame or problem; data is valid only during the call. A nonzero return stops
 * framer_feed() at once and is returned by it; the framer must then be reset before reuse. */
typedef int (*framer_fn)(void *ud, framer_kind kind, const char *data, size_t len);

/* cap: the largest event kept, in bytes (>= 2). NULL on allocation failure. */
framer *framer_create(size_t cap, framer_fn fn, void *ud);
void framer_free(framer *f); /* NULL is a no-op */
/* 0 after consuming all of data, the callback's nonzero value if it stopped, -1 on ENOMEM. */
int framer_feed(framer *f, const char *data, size_t len) __attribute__((warn_unused_result));
/* End of stream: reports a partial event as FRAMER_TRUNCATED, then resets. Returns like feed. */
int framer_finish(framer *f) __attribute__((warn_unused_result));
/* Drops any partial event (a new stream starts). */
void framer_reset(framer *f);

typedef enum watch_type {
    WATCH_ADDED,
    WATCH_MODIFIED,
    WATCH_DELETED,
    WATCH_BOOKMARK,
    WATCH_ERROR
} watch_type;

/* Parses one framed event {"type":..., "object":{...}}. On success *object is a new reference
 * owned by the caller (for WATCH_ERROR it is the API Status). Errors: CTL_EPARSE (not JSON, not
 * an object, unknown type, object missing or not an object). */
ctl_status *framer_parse_event(const char *data, size_t len, watch_type *type, json_object **object)
    __attribute__((warn_unused_result));
/* The error an ERROR event's Status stands for: CTL_EGONE for code 410, else CTL_EAPI with the
 * Status code, reason and message. Never NULL. */
ctl_status *framer_event_error(json_object *status_obj);
const char *framer_watch_type_name(watch_type t);

#endif
