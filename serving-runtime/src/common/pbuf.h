/*
 * pbuf: kinfer-server's one growable byte buffer with a hard cap (curl's dynbuf). Response
 * encoders and /metrics write into it, and storage/ builds every response body, listing and
 * canonical string in it, so a hostile client or server cannot make kinfer-server allocate
 * without bound. It can reserve headroom in front of the data so the HTTP layer sends it in
 * place (libwebsockets needs LWS_PRE bytes before what it writes). The data is always
 * NUL-terminated once allocated. Errors are sticky: once an append fails, later appends are
 * no-ops that fail too and pbuf_failed() says why, which keeps encoders free of per-call
 * checks; callers that want to stop at once test the 0 / -1 the appends return. Not a general
 * string library: append, take, free.
 */
#ifndef KINFER_COMMON_PBUF_H
#define KINFER_COMMON_PBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct pbuf {
    char *mem;       /* headroom + data; owned */
    size_t headroom; /* bytes reserved before data */
    size_t len, alloc, cap;
    int failed; /* PBUF_ENOMEM or PBUF_OVER_CAP */
} pbuf;

enum { PBUF_ENOMEM = 1, PBUF_OVER_CAP = 2 };

/* An empty buffer; no allocation until the first append. cap: the largest len it may reach. */
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

/* Appends: 0, or -1 once the buffer has failed (now or before). */
int pbuf_add(pbuf *b, const void *data, size_t n);
int pbuf_addc(pbuf *b, char c);
int pbuf_adds(pbuf *b, const char *s);
int pbuf_printf(pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with quotes and escapes (n bytes of s, which may hold NULs). */
void pbuf_add_json_str(pbuf *b, const char *s, size_t n);
/* n bytes of space at the end, uninitialized; NULL on failure. */
void *pbuf_extend(pbuf *b, size_t n);
/* Hands the NUL-terminated data to the caller (free()); "" for an empty buffer; NULL on
 * allocation failure. The buffer is left empty and keeps its headroom and cap. */
char *pbuf_take(pbuf *b);

#endif
