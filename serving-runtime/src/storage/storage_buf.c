/* Capped growable buffer; see storage_buf.h. */
#include "storage_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void storage_buf_init(storage_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

int storage_buf_add(storage_buf *b, const void *p, size_t n)
{
    if (b->overflow || n > b->max - b->len) {
        b->overflow = 1;
        return -1;
    }
    if (b->len + n + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc : 256;
        while (want < b->len + n + 1) want *= 2;
        if (want > b->max + 1) want = b->max + 1;
        char *q = realloc(b->data, want);
        if (!q) return -1;
        b->data = q;
        b->alloc = want;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int storage_buf_adds(storage_buf *b, const char *s)
{
    return storage_buf_add(b, s, strlen(s));
}

int storage_buf_printf(storage_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof(small)) return storage_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = storage_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

char *storage_buf_take(storage_buf *b)
{
    char *out = b->data ? b->data : strdup("");
    b->data = NULL;
    b->len = b->alloc = 0;
    b->overflow = 0;
    return out;
}

void storage_buf_free(storage_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}
