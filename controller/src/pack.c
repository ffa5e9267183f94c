/* LZ77 coder for cached objects; see pack.h.
 *
 * Format: varint(raw length), then tokens until the end:
 *   0x00..0x7f          literal run: (byte + 1) bytes follow
 *   0x80 | (len - 4)    copy: len 4..130, or 131 + varint(more) when the low bits are all set,
 *                       then varint(distance): back from the current position in dict ++ output
 * Varints are LEB128. The encoder is greedy: at each position it takes the longer of the last
 * dictionary and the last earlier position with the same four bytes. */
#include "pack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MATCH 4
#define LIT_MAX   128
#define HASH_BITS 11
#define RAW_MAX   (1u << 30) /* no cached object comes near; bounds a corrupt length's allocation */

static uint32_t hash4(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static size_t put_varint(unsigned char *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (unsigned char)v;
    return n;
}

/* 0 and *v, or -1 when the varint runs off the end or overflows 2^63. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 63; shift += 7) {
        if (*p >= end) return -1;
        unsigned char b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static size_t common(const unsigned char *a, const unsigned char *b, size_t max)
{
    size_t n = 0;
    while (n < max && a[n] == b[n]) n++;
    return n;
}

static size_t put_literals(unsigned char *o, const unsigned char *s, size_t n)
{
    size_t w = 0;
    while (n) {
        size_t k = n < LIT_MAX ? n : LIT_MAX;
        o[w++] = (unsigned char)(k - 1);
        memcpy(o + w, s, k);
        w += k;
        s += k;
        n -= k;
    }
    return w;
}

int pack_encode(const char *dict, size_t dlen, const char *src, size_t n, char **out,
                size_t *out_len)
{
    const unsigned char *d = (const unsigned char *)dict, *s = (const unsigned char *)src;
    if (dlen > PACK_DICT_MAX) dlen = PACK_DICT_MAX;
    if (!d) dlen = 0;
    *out = NULL;
    *out_len = 0;
    /* Worst case: every byte a literal, one header per LIT_MAX, plus the length. */
    unsigned char *o = malloc(10 + n + n / LIT_MAX + 1);
    if (!o) return PACK_ENOMEM;
    uint32_t dtab[1u << HASH_BITS] = {0}, stab[1u << HASH_BITS] = {0}; /* position + 1, 0: none */
    for (size_t i = 0; i + MIN_MATCH <= dlen; i++) dtab[hash4(d + i)] = (uint32_t)i + 1;
    size_t w = put_varint(o, n), i = 0, lit = 0;
    while (i + MIN_MATCH <= n) {
        uint32_t h = hash4(s + i);
        size_t best = 0, dist = 0;
        if (dtab[h]) {
            size_t q = dtab[h] - 1, max = dlen - q < n - i ? dlen - q : n - i;
            size_t l = common(d + q, s + i, max);
            if (l >= MIN_MATCH) best = l, dist = dlen - q + i;
        }
        if (stab[h]) {
            size_t q = stab[h] - 1,
                   l = common(s + q, s + i, n - i); /* may overlap: decoded in order */
            if (l >= MIN_MATCH && l > best) best = l, dist = i - q;
        }
        stab[h] = (uint32_t)i + 1;
        /* A copy must be shorter than the bytes it replaces plus the literal header it may add,
         * which keeps the output within the buffer's worst case (all literals). */
        if (best && 1 + (best - MIN_MATCH >= 127 ? varint_len(best - MIN_MATCH - 127) : 0) +
                            varint_len(dist) + 2 >
                        best)
            best = 0;
        if (!best) {
            i++;
            continue;
        }
        w += put_literals(o + w, s + lit, i - lit);
        size_t extra = best - MIN_MATCH;
        if (extra < 127) {
            o[w++] = (unsigned char)(0x80 | extra);
        } else {
            o[w++] = 0xff;
            w += put_varint(o + w, extra - 127);
        }
        w += put_varint(o + w, dist);
        for (size_t k = i + 1; k < i + best && k + MIN_MATCH <= n; k++)
            stab[hash4(s + k)] = (uint32_t)k + 1;
        i += best;
        lit = i;
    }
    w += put_literals(o + w, s + lit, n - lit);
    *out = (char *)o;
    *out_len = w;
    return PACK_OK;
}

int pack_decode(const char *dict, size_t dlen, const char *p, size_t n, char **out, size_t *out_len)
{
    const unsigned char *d = (const unsigned char *)dict, *in = (const unsigned char *)p,
                        *end = in + n;
    if (dlen > PACK_DICT_MAX) dlen = PACK_DICT_MAX;
    if (!d) dlen = 0;
    *out = NULL;
    *out_len = 0;
    uint64_t raw;
    if (!p || get_varint(&in, end, &raw) || raw > RAW_MAX) return PACK_EMALFORMED;
    unsigned char *o = malloc((size_t)raw + 1);
    if (!o) return PACK_ENOMEM;
    size_t w = 0;
    while (in < end) {
        unsigned char b = *in++;
        if (b < 0x80) {
            size_t k = (size_t)b + 1;
            if ((size_t)(end - in) < k || raw - w < k) goto bad;
            memcpy(o + w, in, k);
            in += k;
            w += k;
            continue;
        }
        uint64_t len = (uint64_t)(b & 0x7f) + MIN_MATCH, more = 0, dist;
        if ((b & 0x7f) == 0x7f && get_varint(&in, end, &more)) goto bad;
        if (more > raw || get_varint(&in, end, &dist)) goto bad;
        len += more;
        if (len > raw - w || dist == 0 || dist > dlen + w) goto bad;
        size_t from = dlen + w - (size_t)dist; /* in dict ++ output */
        while (len && from < dlen) {           /* the dictionary part */
            size_t k = dlen - from < len ? dlen - from : (size_t)len;
            memcpy(o + w, d + from, k);
            w += k;
            from += k;
            len -= k;
        }
        for (size_t q = from - dlen; len; len--) o[w++] = o[q++]; /* may overlap what it writes */
    }
    if (w != raw) goto bad;
    o[w] = 0;
    *out = (char *)o;
    *out_len = w;
    return PACK_OK;
bad:
    free(o);
    return PACK_EMALFORMED;
}
