/* pack: cached objects deflated against a preset dictionary with zlib; see pack.h.
 *
 * Coded form: varint(raw length), then a raw deflate stream (no zlib header: the text never
 * leaves this process) made with the dictionary preset, then the Adler-32 of the text, 4 bytes
 * little-endian. A raw stream decoded against another dictionary of the same length inflates
 * without error into other text; the checksum is what makes that PACK_EMALFORMED, at 4 bytes an
 * object (zlib's own trailer, without its 6-byte header and dictionary id). The window is 8 KiB
 * (PACK_DICT_MAX), so the dictionary's last 8 KiB count; cached objects are smaller than that.
 * A stream's state is about 50 KiB while it codes and is freed at once: one kept per informer
 * thread would cost more resident memory than the cache it shrinks. */
#include "pack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PACK_WBITS    13         /* 8 KiB window: PACK_DICT_MAX */
#define PACK_MEMLEVEL 5          /* hash chains for an 8 KiB window; deflate state ~48 KiB */
#define RAW_MAX       (1u << 30) /* no cached object comes near; bounds a corrupt length's allocation */
#define CHECK_LEN     4          /* the text's Adler-32 after the stream */

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

_Static_assert((1u << PACK_WBITS) == PACK_DICT_MAX, "the dictionary limit is zlib's window");

/* zlib takes 32-bit lengths; the dictionary's useful part is its last window anyway. */
static const Bytef *dict_tail(const char *dict, size_t *dlen)
{
    if (*dlen > PACK_DICT_MAX) {
        dict += *dlen - PACK_DICT_MAX;
        *dlen = PACK_DICT_MAX;
    }
    return (const Bytef *)dict;
}

int pack_encode(const char *dict, size_t dlen, const char *src, size_t n, char **out,
                size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n > RAW_MAX) return PACK_ENOMEM;
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -PACK_WBITS, PACK_MEMLEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return PACK_ENOMEM;
    int rc = PACK_ENOMEM;
    const Bytef *d = dict_tail(dict, &dlen);
    uLong bound = deflateBound(&z, (uLong)n);
    unsigned char *buf = malloc(10 + bound + CHECK_LEN);
    if (!buf || (dlen && deflateSetDictionary(&z, d, (uInt)dlen) != Z_OK)) goto out;
    size_t head = put_varint(buf, n);
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    z.next_out = buf + head;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) goto out;
    size_t len = head + z.total_out;
    uLong sum = adler32(adler32(0L, Z_NULL, 0), (const Bytef *)src, (uInt)n);
    for (int i = 0; i < CHECK_LEN; i++) buf[len++] = (unsigned char)(sum >> (8 * i));
    char *shrunk = realloc(buf, len); /* the bound is generous; keep only what was written */
    *out = shrunk ? shrunk : (char *)buf;
    *out_len = len;
    buf = NULL;
    rc = PACK_OK;
out:
    deflateEnd(&z);
    free(buf);
    return rc;
}

int pack_decode(const char *dict, size_t dlen, const char *p, size_t n, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    const unsigned char *in = (const unsigned char *)p, *end = in + n;
    uint64_t raw;
    if (!p || get_varint(&in, end, &raw) || raw > RAW_MAX || end - in < CHECK_LEN ||
        (size_t)(end - in) > RAW_MAX)
        return PACK_EMALFORMED;
    end -= CHECK_LEN;
    uLong want = 0;
    for (int i = 0; i < CHECK_LEN; i++) want |= (uLong)end[i] << (8 * i);
    z_stream z = {0};
    if (inflateInit2(&z, -PACK_WBITS) != Z_OK) return PACK_ENOMEM;
    int rc = PACK_ENOMEM;
    const Bytef *d = dict_tail(dict, &dlen);
    char *text = malloc((size_t)raw + 1);
    if (!text || (dlen && inflateSetDictionary(&z, d, (uInt)dlen) != Z_OK)) goto out;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)(end - in);
    z.next_out = (Bytef *)text;
    z.avail_out = (uInt)raw + 1; /* one spare byte: a stream longer than its length is malformed */
    int zr = inflate(&z, Z_FINISH);
    rc = PACK_EMALFORMED;
    if (zr != Z_STREAM_END || z.total_out != raw || z.avail_in ||
        adler32(adler32(0L, Z_NULL, 0), (const Bytef *)text, (uInt)raw) != want)
        goto out;
    text[raw] = 0;
    *out = text;
    *out_len = (size_t)raw;
    text = NULL;
    rc = PACK_OK;
out:
    inflateEnd(&z);
    free(text);
    return rc;
}
