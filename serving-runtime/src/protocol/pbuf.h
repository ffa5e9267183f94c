/*
 * pbuf: a growable byte buffer with a hard cap (curl's dynbuf) that response encoders write into.
 * It can reserve headroom in front of the data so the HTTP layer sends it in place (libwebsockets
 * needs LWS_PRE bytes before what it writes). Errors are sticky: once an append fails, later
 * appends are no-ops and pbuf_failed() says so, which keeps encoders free of per-call checks.
 */
#ifndef KINFER_PBUF_H
#define KINFER_PBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct pbuf {
    char *mem;       /* headroom + data; owned */
    size_t headroom; /* bytes reserved before data */
    size_t len, alloc, cap;
    int failed; /* 1: ENOMEM, 2: over cap */
} pbuf;

/* An empty buffer; no allocation until the first append. */
void pbuf_init(pbuf *b, size_t headroom, size_t cap);
/* Keeps the memory, drops the content and the error. */
void pbuf_reset(pbuf *b);
void pbuf_free(pbuf *b);
/* Start of the data (NULL when nothing was allocated yet). */
static inline char *pbuf_data(const pbuf *b)
{
    return b->mem ? b->mem + b->headroom : NULL;
}
static inline int pbuf_failed(const pbuf *b)
{
    return b->failed;
}

void pbuf_add(pbuf *b, const void *data, size_t n);
void pbuf_addc(pbuf *b, char c);
void pbuf_adds(pbuf *b, const char *s);
void pbuf_printf(pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with quotes and escapes (n bytes of s, which may hold NULs). */
void pbuf_add_json_str(pbuf *b, const char *s, size_t n);
/* n bytes of space at the end, uninitialized; NULL on failure. */
void *pbuf_extend(pbuf *b, size_t n);

#endif
