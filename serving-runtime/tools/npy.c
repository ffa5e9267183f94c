/*
 * npy: the .npy reader/writer behind kinfer-run (see npy.h). The header is a Python dict
 * literal; this parses only the three keys NumPy writes ('descr', 'fortran_order', 'shape').
 */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER 65536

static const struct {
    const char *descr;
    onnx_dtype dt;
} npy_types[] = {
    {"<f4", ONNX_DTYPE_FLOAT},  {"<f8", ONNX_DTYPE_DOUBLE}, {"<f2", ONNX_DTYPE_FLOAT16},
    {"<i8", ONNX_DTYPE_INT64},  {"<i4", ONNX_DTYPE_INT32},  {"<i2", ONNX_DTYPE_INT16},
    {"|i1", ONNX_DTYPE_INT8},   {"|u1", ONNX_DTYPE_UINT8},  {"<u2", ONNX_DTYPE_UINT16},
    {"<u4", ONNX_DTYPE_UINT32}, {"<u8", ONNX_DTYPE_UINT64}, {"|b1", ONNX_DTYPE_BOOL},
};

static onnx_dtype npy_dtype_of(const char *descr, size_t len)
{
    for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
        if (strlen(npy_types[i].descr) == len && memcmp(npy_types[i].descr, descr, len) == 0)
            return npy_types[i].dt;
    return ONNX_DTYPE_UNDEFINED;
}

static const char *npy_descr_of(onnx_dtype dt)
{
    for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
        if (npy_types[i].dt == dt) return npy_types[i].descr;
    return NULL;
}

/* Finds the value text after 'key': in the header dict; NULL when absent. */
static const char *npy_find_key(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == ':') p++;
    return p;
}

static kinfer_status *npy_parse_header(const char *path, const char *hdr, onnx_tensor *t,
                                       size_t *width)
{
    const char *d = npy_find_key(hdr, "descr");
    const char *f = npy_find_key(hdr, "fortran_order");
    const char *s = npy_find_key(hdr, "shape");
    if (!d || !f || !s || *d != '\'' || *s != '(')
        return kinfer_status_new(KINFER_EINVAL, "%s: malformed .npy header", path);
    const char *de = strchr(d + 1, '\'');
    if (!de) return kinfer_status_new(KINFER_EINVAL, "%s: malformed descr", path);
    t->dtype = npy_dtype_of(d + 1, (size_t)(de - d - 1));
    if (t->dtype == ONNX_DTYPE_UNDEFINED && !strncmp(d + 1, "<U", 2)) {
        /* Fixed-width UTF-32 strings: *width = code points per element. */
        char *end;
        long w = strtol(d + 3, &end, 10);
        if (end != de || w <= 0 || w > 65536)
            return kinfer_status_new(KINFER_EINVAL, "%s: malformed string dtype", path);
        *width = (size_t)w;
        t->dtype = ONNX_DTYPE_STRING;
    }
    if (t->dtype == ONNX_DTYPE_UNDEFINED)
        return kinfer_status_new(KINFER_EUNSUPPORTED, "%s: unsupported dtype '%.*s'", path,
                                 (int)(de - d - 1), d + 1);
    if (strncmp(f, "False", 5) != 0)
        return kinfer_status_new(KINFER_EUNSUPPORTED, "%s: Fortran order is not supported", path);
    t->rank = 0;
    s++;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 0)
            return kinfer_status_new(KINFER_EINVAL, "%s: malformed shape", path);
        if (t->rank == ONNX_MAX_RANK)
            return kinfer_status_new(KINFER_EUNSUPPORTED, "%s: rank above %d", path, ONNX_MAX_RANK);
        t->dims[t->rank++] = v;
        s = end;
    }
    return NULL;
}

/* Appends code point c as UTF-8 (invalid ones as U+FFFD); returns the bytes written (<= 4). */
static size_t npy_utf8_put(uint32_t c, char *o)
{
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* '<U' arrays become one block: n char pointers, then the NUL-terminated UTF-8 strings they
 * point at, so that free(t->data) releases everything. */
static kinfer_status *npy_read_strings(const char *path, FILE *fp, onnx_tensor *t, int64_t n,
                                       size_t width)
{
    size_t per = width * 4 + 1;
    if (n > 0 && (uint64_t)n > NPY_MAX_BYTES / (per + sizeof(char *) + width * 4))
        return kinfer_status_new(KINFER_ETOOBIG, "%s: %lld strings", path, (long long)n);
    unsigned char *raw = malloc(width * 4);
    t->data = malloc((size_t)n * (sizeof(char *) + per) + 1);
    if (!raw || !t->data) {
        free(raw);
        return kinfer_status_new(KINFER_ENOMEM, "%s: strings", path);
    }
    char **ptrs = t->data;
    char *pool = (char *)(ptrs + n);
    for (int64_t i = 0; i < n; i++) {
        if (fread(raw, 4, width, fp) != width) {
            free(raw);
            return kinfer_status_new(KINFER_EINVAL, "%s: data shorter than its shape", path);
        }
        ptrs[i] = pool;
        for (size_t k = 0; k < width; k++) {
            uint32_t c = raw[4 * k] | (uint32_t)raw[4 * k + 1] << 8 |
                         (uint32_t)raw[4 * k + 2] << 16 | (uint32_t)raw[4 * k + 3] << 24;
            if (!c) break;
            pool += npy_utf8_put(c, pool);
        }
        *pool++ = '\0';
    }
    free(raw);
    return NULL;
}

kinfer_status *npy_read(const char *path, onnx_tensor *t)
{
    kinfer_status *st = NULL;
    char *hdr = NULL;
    memset(t, 0, sizeof(*t));
    FILE *fp = fopen(path, "rb");
    if (!fp) return kinfer_status_new(KINFER_EIO, "%s: %s", path, strerror(errno));
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = kinfer_status_new(KINFER_EINVAL, "%s: not a .npy file", path);
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) {
            st = kinfer_status_new(KINFER_EINVAL, "%s: truncated header", path);
            goto out;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        st = kinfer_status_new(KINFER_EUNSUPPORTED, "%s: .npy version %d", path, pre[6]);
        goto out;
    }
    if (hlen > NPY_MAX_HEADER) {
        st = kinfer_status_new(KINFER_ETOOBIG, "%s: header of %zu bytes", path, hlen);
        goto out;
    }
    hdr = calloc(1, hlen + 1);
    if (!hdr) {
        st = kinfer_status_new(KINFER_ENOMEM, "%s: header", path);
        goto out;
    }
    if (fread(hdr, 1, hlen, fp) != hlen) {
        st = kinfer_status_new(KINFER_EINVAL, "%s: truncated header", path);
        goto out;
    }
    size_t width = 0;
    if ((st = npy_parse_header(path, hdr, t, &width))) goto out;
    int64_t n = onnx_tensor_numel(t);
    if (t->dtype == ONNX_DTYPE_STRING) {
        st = npy_read_strings(path, fp, t, n, width);
        goto out;
    }
    size_t es = onnx_dtype_size(t->dtype);
    if (n > 0 && (uint64_t)n > NPY_MAX_BYTES / es) {
        st = kinfer_status_new(KINFER_ETOOBIG, "%s: %lld elements", path, (long long)n);
        goto out;
    }
    size_t bytes = (size_t)n * es;
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data) {
        st = kinfer_status_new(KINFER_ENOMEM, "%s: %zu bytes", path, bytes);
        goto out;
    }
    if (fread(t->data, 1, bytes, fp) != bytes)
        st = kinfer_status_new(KINFER_EINVAL, "%s: data shorter than its shape", path);
out:
    if (st) {
        free(t->data);
        memset(t, 0, sizeof(*t));
    }
    free(hdr);
    fclose(fp);
    return st;
}

/* Length in code points of a UTF-8 string (invalid bytes count as one each). */
static size_t npy_utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

/* Decodes one UTF-8 code point at *p, advancing it. */
static uint32_t npy_utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = *s++;
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (more) c &= 0x3F >> more;
    while (more-- && (*s & 0xC0) == 0x80) c = c << 6 | (*s++ & 0x3F);
    *p = s;
    return c;
}

kinfer_status *npy_write(const char *path, const onnx_tensor *t)
{
    kinfer_status *st = NULL;
    char descr[32], hdr[512];
    int64_t n = onnx_tensor_numel(t);
    size_t width = 1; /* code points per string element */
    if (t->dtype == ONNX_DTYPE_STRING) {
        for (int64_t i = 0; i < n; i++) {
            const char *s = ((char *const *)t->data)[i];
            size_t l = s ? npy_utf8_len(s) : 0;
            if (l > width) width = l;
        }
        snprintf(descr, sizeof(descr), "<U%zu", width);
    } else {
        const char *d = npy_descr_of(t->dtype);
        if (!d)
            return kinfer_status_new(KINFER_EUNSUPPORTED, "%s: cannot write dtype %s", path,
                                     onnx_dtype_name(t->dtype));
        snprintf(descr, sizeof(descr), "%s", d);
    }
    int len =
        snprintf(hdr, sizeof(hdr), "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        len += snprintf(hdr + len, sizeof(hdr) - (size_t)len, "%lld%s", (long long)t->dims[i],
                        t->rank == 1 || i < t->rank - 1 ? ", " : "");
    len += snprintf(hdr + len, sizeof(hdr) - (size_t)len, "), }");
    /* Pad so that the data starts 64-byte aligned, ending the header with a newline. */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(hdr + len, ' ', pad);
    hdr[len + pad] = '\n';
    size_t hlen = (size_t)len + pad + 1;
    FILE *fp = fopen(path, "wb");
    if (!fp) return kinfer_status_new(KINFER_EIO, "%s: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(hlen & 0xFF),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(hdr, 1, hlen, fp) == hlen;
    if (ok && t->dtype == ONNX_DTYPE_STRING) {
        for (int64_t i = 0; ok && i < n; i++) {
            const unsigned char *s = (const unsigned char *)((char *const *)t->data)[i];
            for (size_t k = 0; ok && k < width; k++) {
                uint32_t c = s && *s ? npy_utf8_next(&s) : 0;
                unsigned char b[4] = {c & 0xFF, (c >> 8) & 0xFF, (c >> 16) & 0xFF, c >> 24};
                ok = fwrite(b, 1, 4, fp) == 4;
            }
        }
    } else if (ok) {
        size_t bytes = (size_t)n * onnx_dtype_size(t->dtype);
        ok = fwrite(t->data, 1, bytes, fp) == bytes;
    }
    if (fclose(fp) != 0) ok = 0;
    if (!ok) st = kinfer_status_new(KINFER_EIO, "%s: write failed", path);
    return st;
}
