/* kinfer_status: an error code plus a message, NULL for success. See status.h. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kinfer_status {
    kinfer_err code;
    char *msg;
};

/* Returned when even the status cannot be allocated; never freed. */
static kinfer_status oom_status = {KINFER_ENOMEM, "out of memory"};

const char *kinfer_strerror(kinfer_err code)
{
    switch (code) {
    case KINFER_OK:
        return "ok";
    case KINFER_ENOMEM:
        return "out of memory";
    case KINFER_EINVAL:
        return "invalid argument";
    case KINFER_EMODEL:
        return "invalid model";
    case KINFER_EUNSUPPORTED:
        return "unsupported";
    case KINFER_ESHAPE:
        return "shape mismatch";
    case KINFER_EDTYPE:
        return "datatype mismatch";
    case KINFER_EIO:
        return "I/O error";
    case KINFER_ENOTFOUND:
        return "not found";
    case KINFER_EFULL:
        return "queue full";
    case KINFER_ETIMEOUT:
        return "timed out";
    case KINFER_EUNAVAIL:
        return "unavailable";
    case KINFER_ETOOBIG:
        return "too large";
    case KINFER_EAUTH:
        return "authentication failed";
    case KINFER_ECHECKSUM:
        return "checksum mismatch";
    case KINFER_EHTTP:
        return "HTTP error";
    case KINFER_EINTERNAL:
        return "internal error";
    }
    return "unknown error";
}

kinfer_status *kinfer_status_newv(kinfer_err code, const char *fmt, va_list ap)
{
    if (code == KINFER_OK) return NULL;
    kinfer_status *st = malloc(sizeof(*st));
    if (!st) return &oom_status;
    st->code = code;
    if (vasprintf(&st->msg, fmt, ap) < 0) {
        free(st);
        return &oom_status;
    }
    return st;
}

kinfer_status *kinfer_status_new(kinfer_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kinfer_status *st = kinfer_status_newv(code, fmt, ap);
    va_end(ap);
    return st;
}

kinfer_status *kinfer_status_wrap(kinfer_status *st, const char *fmt, ...)
{
    if (!st || st == &oom_status) return st;
    char *prefix = NULL, *joined = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&prefix, fmt, ap);
    va_end(ap);
    if (n >= 0 && asprintf(&joined, "%s: %s", prefix, st->msg) >= 0) {
        free(st->msg);
        st->msg = joined;
    }
    free(prefix);
    return st;
}

kinfer_err kinfer_status_code(const kinfer_status *st)
{
    return st ? st->code : KINFER_OK;
}

const char *kinfer_status_msg(const kinfer_status *st)
{
    return st ? st->msg : "";
}

void kinfer_status_free(kinfer_status *st)
{
    if (!st || st == &oom_status) return;
    free(st->msg);
    free(st);
}
