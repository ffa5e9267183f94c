/* The capped growable buffer with sticky errors; see pbuf.h. */
#include "pbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pbuf_init(pbuf *b, size_t headroom, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->headroom = headroom;
    b->cap = cap;
}

void pbuf_reset(pbuf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->mem) b->mem[b->headroom] = '\0';
}

void pbuf_free(pbuf *b)
{
    free(b->mem);
    pbuf_init(b, b->headroom, b->cap);
}

static int pbuf_grow(pbuf *b, size_t n)
{
    if (b->failed) return -1;
    if (n > b->cap || b->len > b->cap - n) {
        b->failed = PBUF_OVER_CAP;
        return -1;
    }
    size_t need = b->headroom + b->len + n + 1; /* + the NUL */
    if (need <= b->alloc) return 0;
    size_t alloc = b->alloc ? b->alloc : 1024;
    while (alloc < need) alloc *= 2;
    char *m = realloc(b->mem, alloc);
    if (!m) {
        b->failed = PBUF_ENOMEM;
        return -1;
    }
    b->mem = m;
    b->alloc = alloc;
    return 0;
}

void *pbuf_extend(pbuf *b, size_t n)
{
    if (pbuf_grow(b, n)) return NULL;
    char *p = b->mem + b->headroom + b->len;
    b->len += n;
    p[n] = '\0';
    return p;
}

int pbuf_add(pbuf *b, const void *data, size_t n)
{
    void *p = pbuf_extend(b, n);
    if (p && n) memcpy(p, data, n);
    return p ? 0 : -1;
}

int pbuf_addc(pbuf *b, char c)
{
    if (!b->failed && b->headroom + b->len + 1 < b->alloc && b->len < b->cap) {
        b->mem[b->headroom + b->len++] = c;
        b->mem[b->headroom + b->len] = '\0';
        return 0;
    }
    return pbuf_add(b, &c, 1);
}

int pbuf_adds(pbuf *b, const char *s)
{
    return pbuf_add(b, s, strlen(s));
}

int pbuf_printf(pbuf *b, const char *fmt, ...)
{
    if (b->failed) return -1;
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = PBUF_ENOMEM;
        return -1;
    }
    if ((size_t)n < sizeof(small)) return pbuf_add(b, small, (size_t)n);
    char *p = pbuf_extend(b, (size_t)n); /* keeps room for the NUL vsnprintf writes */
    if (!p) return -1;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return 0;
}

void pbuf_add_json_str(pbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    pbuf_addc(b, '"');
    size_t run = 0; /* bytes that need no escape, copied in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        pbuf_add(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            pbuf_add(b, "\\\"", 2);
            break;
        case '\\':
            pbuf_add(b, "\\\\", 2);
            break;
        case '\n':
            pbuf_add(b, "\\n", 2);
            break;
        case '\r':
            pbuf_add(b, "\\r", 2);
            break;
        case '\t':
            pbuf_add(b, "\\t", 2);
            break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            pbuf_add(b, e, 6);
        }
        }
    }
    pbuf_add(b, s + run, n - run);
    pbuf_addc(b, '"');
}

char *pbuf_take(pbuf *b)
{
    char *out;
    if (!b->mem) {
        out = strdup("");
    } else {
        if (b->headroom) memmove(b->mem, b->mem + b->headroom, b->len + 1);
        out = b->mem;
    }
    b->mem = NULL;
    b->len = b->alloc = 0;
    b->failed = 0;
    return out;
}
