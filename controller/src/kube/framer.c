/* Watch-stream framing and event parsing; see framer.h. */
#include "framer.h"

#include <stdlib.h>
#include <string.h>

#define FRAMER_MIN_BUF 4096
/* After an event bigger than this the buffer is released, so one huge object does not pin
 * its memory for the life of the watch. */
#define FRAMER_KEEP_BUF (256 * 1024)

struct framer {
    framer_fn fn;
    void *ud;
    size_t cap;
    char *buf;
    size_t len, alloc;
    size_t depth;   /* nesting depth of {} and [] inside the current event; 0 = between events */
    size_t skipped; /* bytes of an oversized event seen so far (0 when not skipping) */
    int in_string, escape, garbage;
};

framer *framer_create(size_t cap, framer_fn fn, void *ud)
{
    if (cap < 2 || !fn) return NULL;
    framer *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->cap = cap;
    f->fn = fn;
    f->ud = ud;
    return f;
}

void framer_free(framer *f)
{
    if (!f) return;
    free(f->buf);
    free(f);
}

void framer_reset(framer *f)
{
    f->len = f->depth = f->skipped = 0;
    f->in_string = f->escape = f->garbage = 0;
    if (f->alloc > FRAMER_KEEP_BUF) {
        free(f->buf);
        f->buf = NULL;
        f->alloc = 0;
    }
}

/* Appends one byte, switching to skip mode past the cap. -1 on ENOMEM. */
static int push(framer *f, char c)
{
    if (f->skipped) {
        f->skipped++;
        return 0;
    }
    if (f->len == f->cap) {
        f->skipped = f->len + 1;
        f->len = 0;
        return 0;
    }
    if (f->len == f->alloc) {
        size_t n = f->alloc ? f->alloc * 2 : FRAMER_MIN_BUF;
        if (n > f->cap) n = f->cap;
        char *b = realloc(f->buf, n);
        if (!b) return -1;
        f->buf = b;
        f->alloc = n;
    }
    f->buf[f->len++] = c;
    return 0;
}

/* The current event ended: deliver it (or its TOOBIG report) and start the next. */
static int complete(framer *f)
{
    int rc;
    if (f->skipped)
        rc = f->fn(f->ud, FRAMER_TOOBIG, NULL, f->skipped);
    else
        rc = f->fn(f->ud, FRAMER_FRAME, f->buf, f->len);
    framer_reset(f);
    return rc;
}

int framer_feed(framer *f, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (f->garbage) {
            if (c == '\n') f->garbage = 0;
            continue;
        }
        if (f->depth == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
            if (c != '{') {
                /* Not an event: report once, then resynchronise at the next line. */
                f->garbage = c != '\n';
                size_t n = len - i < 64 ? len - i : 64;
                int rc = f->fn(f->ud, FRAMER_GARBAGE, data + i, n);
                if (rc) return rc;
                continue;
            }
            f->depth = 1;
            if (push(f, c)) return -1;
            continue;
        }
        if (push(f, c)) return -1;
        if (f->in_string) {
            if (f->escape)
                f->escape = 0;
            else if (c == '\\')
                f->escape = 1;
            else if (c == '"')
                f->in_string = 0;
        } else if (c == '"') {
            f->in_string = 1;
        } else if (c == '{' || c == '[') {
            f->depth++;
        } else if (c == '}' || c == ']') {
            if (--f->depth == 0) {
                int rc = complete(f);
                if (rc) return rc;
            }
        }
    }
    return 0;
}

int framer_finish(framer *f)
{
    int rc = 0;
    if (f->depth) {
        size_t n = f->skipped ? f->skipped : f->len;
        rc = f->fn(f->ud, FRAMER_TRUNCATED, f->skipped ? NULL : f->buf, n);
    }
    framer_reset(f);
    return rc;
}

static const char *const type_names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

const char *framer_watch_type_name(watch_type t)
{
    return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

ctl_status *framer_parse_event(const char *data, size_t len, watch_type *type, json_object **object)
{
    ctl_status *st = NULL;
    json_object *root = NULL, *t = NULL, *o = NULL;
    *object = NULL;
    /* Kubernetes objects nest well under 64 levels; json-c's default of 32 is too tight for
     * some CRD schemas. */
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return ctl_status_new(CTL_ENOMEM, "json tokener");
    root = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!root || jerr != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
        st = ctl_status_new(CTL_EPARSE, "watch event is not one JSON value: %s",
                            jerr == json_tokener_success ? "trailing data"
                                                         : json_tokener_error_desc(jerr));
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        st = ctl_status_new(CTL_EPARSE, "watch event is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(root, "type", &t) || !json_object_is_type(t, json_type_string)) {
        st = ctl_status_new(CTL_EPARSE, "watch event has no string \"type\"");
        goto out;
    }
    const char *ts = json_object_get_string(t);
    size_t i;
    for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (!strcmp(ts, type_names[i])) break;
    if (i == sizeof(type_names) / sizeof(type_names[0])) {
        st = ctl_status_new(CTL_EPARSE, "watch event has unknown type \"%.32s\"", ts);
        goto out;
    }
    if (!json_object_object_get_ex(root, "object", &o) ||
        !json_object_is_type(o, json_type_object)) {
        st = ctl_status_new(CTL_EPARSE, "%s watch event has no \"object\" object", type_names[i]);
        goto out;
    }
    *type = (watch_type)i;
    *object = json_object_get(o);
out:
    json_object_put(root);
    json_tokener_free(tok);
    return st;
}

static const char *str_field(json_object *o, const char *k)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

ctl_status *framer_event_error(json_object *status_obj)
{
    json_object *c = NULL;
    int code = 0;
    if (status_obj && json_object_object_get_ex(status_obj, "code", &c) &&
        json_object_is_type(c, json_type_int))
        code = json_object_get_int(c);
    const char *reason = str_field(status_obj, "reason");
    const char *msg = str_field(status_obj, "message");
    if (code == 410 || (reason && (!strcmp(reason, "Expired") || !strcmp(reason, "Gone"))))
        return ctl_status_api(410, reason ? reason : "Expired", "watch: %s",
                              msg ? msg : "resource version expired");
    return ctl_status_api(code ? code : 500, reason, "watch error event: %s",
                          msg ? msg : "(no message)");
}
