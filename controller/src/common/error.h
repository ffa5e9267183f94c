/*
 * kinfer-controller's one error type. ctl_err only grows: new codes go at the end, and
 * ctl_strerror() names every one. Functions whose failure needs words return a ctl_status *:
 * NULL means success; otherwise it carries the code, a message and, for Kubernetes API errors,
 * the HTTP code and the API Status reason ("NotFound", "Conflict", "Expired", ...), so that no
 * API error is ever reduced to "failed". The caller owns it and frees it with ctl_status_free().
 */
#ifndef KINFER_CTL_ERROR_H
#define KINFER_CTL_ERROR_H

#include <stdarg.h>

typedef enum ctl_err {
    CTL_OK = 0,
    CTL_ENOMEM,     /* allocation failed */
    CTL_EINVAL,     /* bad argument, flag or object */
    CTL_ECONFIG,    /* kubeconfig / in-cluster config unusable */
    CTL_EIO,        /* file or socket I/O */
    CTL_ETRANSPORT, /* could not talk to the API server (connect, TLS, reset) */
    CTL_EAPI,       /* the API server answered an error; see http code and reason */
    CTL_EPARSE,     /* malformed JSON or YAML */
    CTL_ETOOBIG,    /* over a size cap */
    CTL_EGONE,      /* resourceVersion too old (410 Expired): relist */
    CTL_ECANCELED,  /* stopped on purpose (shutdown) */
    CTL_ETIMEOUT,   /* deadline passed */
    CTL_EINTERNAL,  /* a bug or an impossible state */
} ctl_err;

typedef struct ctl_status ctl_status;

/* Static string naming the code; never NULL. */
const char *ctl_strerror(ctl_err code);

/* New status with a printf-formatted message; NULL for CTL_OK. Never NULL otherwise: on
 * allocation failure it returns a static ENOMEM status that ctl_status_free() ignores. */
ctl_status *ctl_status_new(ctl_err code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An API error: HTTP code, the Status reason (may be NULL) and message. */
ctl_status *ctl_status_api(int http_code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to the message. Returns st. */
ctl_status *ctl_status_wrap(ctl_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

ctl_err ctl_status_code(const ctl_status *st); /* CTL_OK for NULL */
int ctl_status_http(const ctl_status *st);     /* 0 unless CTL_EAPI/CTL_EGONE */
/* NULL (st freed) when st carries HTTP code http, else st itself: "a 404 is fine" in one call,
 * st = ctl_status_ignore_http(st, 404). */
ctl_status *ctl_status_ignore_http(ctl_status *st, int http) __attribute__((warn_unused_result));
const char *ctl_status_reason(const ctl_status *st); /* "" when none; owned by st */
const char *ctl_status_msg(const ctl_status *st);    /* "" for NULL; owned by st */
void ctl_status_free(ctl_status *st);                /* NULL is a no-op */

#endif
