/*
 * A growable byte buffer with a hard cap (curl's dynbuf): every response body, listing and
 * canonical string in storage/ is built in one, so a hostile server cannot make kinfer-server
 * allocate without bound. Not a general string library: append, take, free.
 */
#ifndef KINFER_STORAGE_BUF_H
#define KINFER_STORAGE_BUF_H

#include <stddef.h>

typedef struct storage_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len, alloc, max;
    int overflow; /* set once an append would pass max; later appends fail too */
} storage_buf;

/* max is the largest len the buffer may reach. No allocation until the first append. */
void storage_buf_init(storage_buf *b, size_t max);
/* 0 on success, -1 on overflow or allocation failure (b->overflow tells which). */
int storage_buf_add(storage_buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int storage_buf_adds(storage_buf *b, const char *s) __attribute__((warn_unused_result));
int storage_buf_printf(storage_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/* Hands the NUL-terminated contents to the caller (free()); "" for an empty buffer; NULL on
 * allocation failure. The buffer is left empty. */
char *storage_buf_take(storage_buf *b);
void storage_buf_free(storage_buf *b);

#endif
