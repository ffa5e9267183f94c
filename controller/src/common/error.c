/* ctl_status: error code, message and API details; NULL for success. See error.h. */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_status {
    ctl_err code;
    int http;
    char *reason;
    char *msg;
};

static ctl_status oom_status = {CTL_ENOMEM, 0, "", "out of memory"};

const char *ctl_strerror(ctl_err code)
{
    switch (code) {
    case CTL_OK:
        return "ok";
    case CTL_ENOMEM:
        return "out of memory";
    case CTL_EINVAL:
        return "invalid argument";
    case CTL_ECONFIG:
        return "bad configuration";
    case CTL_EIO:
        return "I/O error";
    case CTL_ETRANSPORT:
        return "API server unreachable";
    case CTL_EAPI:
        return "API error";
    case CTL_EPARSE:
        return "parse error";
    case CTL_ETOOBIG:
        return "too large";
    case CTL_EGONE:
        return "resource version expired";
    case CTL_ECANCELED:
        return "canceled";
    case CTL_ETIMEOUT:
        return "timed out";
    case CTL_EINTERNAL:
        return "internal error";
    }
    return "unknown error";
}

static ctl_status *new_statusv(ctl_err code, int http, const char *reason, const char *fmt,
                               va_list ap)
{
    if (code == CTL_OK) return NULL;
    ctl_status *st = calloc(1, sizeof(*st));
    if (!st) return &oom_status;
    st->code = code;
    st->http = http;
    st->reason = strdup(reason ? reason : "");
    if (!st->reason || vasprintf(&st->msg, fmt, ap) < 0) {
        free(st->reason);
        free(st);
        return &oom_status;
    }
    return st;
}

ctl_status *ctl_status_new(ctl_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctl_status *st = new_statusv(code, 0, NULL, fmt, ap);
    va_end(ap);
    return st;
}

ctl_status *ctl_status_api(int http_code, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctl_err code = http_code == 410 ? CTL_EGONE : CTL_EAPI;
    ctl_status *st = new_statusv(code, http_code, reason, fmt, ap);
    va_end(ap);
    return st;
}

ctl_status *ctl_status_wrap(ctl_status *st, const char *fmt, ...)
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

ctl_err ctl_status_code(const ctl_status *st)
{
    return st ? st->code : CTL_OK;
}

int ctl_status_http(const ctl_status *st)
{
    return st ? st->http : 0;
}

const char *ctl_status_reason(const ctl_status *st)
{
    return st ? st->reason : "";
}

const char *ctl_status_msg(const ctl_status *st)
{
    return st ? st->msg : "";
}

void ctl_status_free(ctl_status *st)
{
    if (!st || st == &oom_status) return;
    free(st->reason);
    free(st->msg);
    free(st);
}

ctl_status *ctl_status_ignore_http(ctl_status *st, int http)
{
    if (!st || ctl_status_http(st) != http) return st;
    ctl_status_free(st);
    return NULL;
}
