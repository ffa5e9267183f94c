/*
 * kinfer-server's one error type. kinfer_err only grows: new codes go at the end, and
 * kinfer_strerror() names every one. Where the message matters (a bad model, a bad request,
 * a failed download) functions return a kinfer_status *, the way onnxruntime returns OrtStatus *:
 * NULL means success, anything else carries a code and a formatted message and belongs to the
 * caller, who frees it with kinfer_status_free().
 */
#ifndef KINFER_STATUS_H
#define KINFER_STATUS_H

#include <stdarg.h>

typedef enum kinfer_err {
    KINFER_OK = 0,
    KINFER_ENOMEM,       /* allocation failed */
    KINFER_EINVAL,       /* bad argument or bad request */
    KINFER_EMODEL,       /* model file is malformed or inconsistent */
    KINFER_EUNSUPPORTED, /* valid, but an operator/opset/dtype kinfer does not implement */
    KINFER_ESHAPE,       /* tensor shape or rank mismatch */
    KINFER_EDTYPE,       /* tensor datatype mismatch */
    KINFER_EIO,          /* file or socket I/O */
    KINFER_ENOTFOUND,    /* model, input, object or path not found */
    KINFER_EFULL,        /* queue full: try again later */
    KINFER_ETIMEOUT,     /* deadline passed */
    KINFER_EUNAVAIL,     /* not ready, or shutting down */
    KINFER_ETOOBIG,      /* over a configured size limit */
    KINFER_EAUTH,        /* credentials rejected */
    KINFER_ECHECKSUM,    /* content does not match its checksum */
    KINFER_EHTTP,        /* remote answered with an HTTP error */
    KINFER_EINTERNAL,    /* a bug or an impossible state */
} kinfer_err;

typedef struct kinfer_status kinfer_status;

/* Static string naming the code; never NULL. */
const char *kinfer_strerror(kinfer_err code);

/* New status with a printf-formatted message. Never returns NULL for code != KINFER_OK: on
 * allocation failure it returns a static ENOMEM status that kinfer_status_free() ignores.
 * For code == KINFER_OK it returns NULL. */
kinfer_status *kinfer_status_new(kinfer_err code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
kinfer_status *kinfer_status_newv(kinfer_err code, const char *fmt, va_list ap);

/* Prepends "prefix: " to the message (for context as an error travels up). Returns st. */
kinfer_status *kinfer_status_wrap(kinfer_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* KINFER_OK for NULL. */
kinfer_err kinfer_status_code(const kinfer_status *st);
/* "" for NULL. Owned by st. */
const char *kinfer_status_msg(const kinfer_status *st);
/* NULL is a no-op. */
void kinfer_status_free(kinfer_status *st);

#endif
