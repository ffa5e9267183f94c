/* V2 / binary / V1 response encoding; see infer_response.h. */
#include "infer_response.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dtype.h"

static void add_double(pbuf *b, double d, int prec)
{
    if (isnan(d))
        pbuf_adds(b, "NaN");
    else if (isinf(d))
        pbuf_adds(b, d > 0 ? "Infinity" : "-Infinity");
    else if (fabs(d) < 1e15 && d == (double)(int64_t)d)
        pbuf_printf(b, "%" PRId64 ".0", (int64_t)d);
    else if (prec == 9) /* a '*' precision sends glibc's printf down its slow positional path */
        pbuf_printf(b, "%.9g", d);
    else if (prec == 17)
        pbuf_printf(b, "%.17g", d);
    else
        pbuf_printf(b, "%.5g", d);
}

/* Element i of t as a JSON value. */
static void add_elem(pbuf *b, const onnx_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case ONNX_DTYPE_FLOAT:
        add_double(b, ((const float *)d)[i], 9);
        break;
    case ONNX_DTYPE_DOUBLE:
        add_double(b, ((const double *)d)[i], 17);
        break;
    case ONNX_DTYPE_FLOAT16:
        add_double(b, proto_float_from_half(((const uint16_t *)d)[i]), 5);
        break;
    case ONNX_DTYPE_BOOL:
        pbuf_adds(b, ((const uint8_t *)d)[i] ? "true" : "false");
        break;
    case ONNX_DTYPE_INT8:
        pbuf_printf(b, "%d", ((const int8_t *)d)[i]);
        break;
    case ONNX_DTYPE_INT16:
        pbuf_printf(b, "%d", ((const int16_t *)d)[i]);
        break;
    case ONNX_DTYPE_INT32:
        pbuf_printf(b, "%" PRId32, ((const int32_t *)d)[i]);
        break;
    case ONNX_DTYPE_INT64:
        pbuf_printf(b, "%" PRId64, ((const int64_t *)d)[i]);
        break;
    case ONNX_DTYPE_UINT8:
        pbuf_printf(b, "%u", ((const uint8_t *)d)[i]);
        break;
    case ONNX_DTYPE_UINT16:
        pbuf_printf(b, "%u", ((const uint16_t *)d)[i]);
        break;
    case ONNX_DTYPE_UINT32:
        pbuf_printf(b, "%" PRIu32, ((const uint32_t *)d)[i]);
        break;
    case ONNX_DTYPE_UINT64:
        pbuf_printf(b, "%" PRIu64, ((const uint64_t *)d)[i]);
        break;
    case ONNX_DTYPE_STRING: {
        const char *s = ((char *const *)d)[i];
        if (!s) s = "";
        pbuf_add_json_str(b, s, strlen(s));
        break;
    }
    default:
        pbuf_adds(b, "null");
        break;
    }
}

static kinfer_status *check_buf(pbuf *b)
{
    if (!pbuf_failed(b)) return NULL;
    return kinfer_status_new(pbuf_failed(b) == 2 ? KINFER_ETOOBIG : KINFER_ENOMEM,
                             pbuf_failed(b) == 2 ? "response exceeds the size limit"
                                                 : "out of memory encoding the response");
}

/* Binary form: raw for fixed-size types, 4-byte LE length + bytes per BYTES element. */
static size_t binary_size(const onnx_tensor *t)
{
    int64_t n = proto_tensor_numel(t);
    if (t->dtype != ONNX_DTYPE_STRING) return (size_t)n * proto_dtype_size(t->dtype);
    size_t s = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *e = ((char *const *)t->data)[i];
        s += 4 + (e ? strlen(e) : 0);
    }
    return s;
}

static void add_binary(pbuf *b, const onnx_tensor *t)
{
    int64_t n = proto_tensor_numel(t);
    if (t->dtype != ONNX_DTYPE_STRING) {
        pbuf_add(b, t->data, (size_t)n * proto_dtype_size(t->dtype));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const char *e = ((char *const *)t->data)[i];
        uint32_t l = e ? (uint32_t)strlen(e) : 0;
        unsigned char h[4] = {(unsigned char)l, (unsigned char)(l >> 8), (unsigned char)(l >> 16),
                              (unsigned char)(l >> 24)};
        pbuf_add(b, h, 4);
        pbuf_add(b, e, l);
    }
}

kinfer_status *infer_response_encode_v2(pbuf *b, const char *model, const char *version,
                                        const char *id, const onnx_tensor *outs, const int *binary,
                                        size_t n, size_t *json_len)
{
    int any_binary = 0;
    pbuf_adds(b, "{\"model_name\":");
    pbuf_add_json_str(b, model, strlen(model));
    pbuf_adds(b, ",\"model_version\":");
    pbuf_add_json_str(b, version, strlen(version));
    if (id) {
        pbuf_adds(b, ",\"id\":");
        pbuf_add_json_str(b, id, strlen(id));
    }
    pbuf_adds(b, ",\"outputs\":[");
    for (size_t i = 0; i < n; i++) {
        const onnx_tensor *t = &outs[i];
        const char *dt = proto_dtype_name(t->dtype);
        if (!dt)
            return kinfer_status_new(
                KINFER_EUNSUPPORTED,
                "output \"%s\" has a datatype (ONNX %d) the protocol cannot carry", t->name,
                (int)t->dtype);
        if (i) pbuf_addc(b, ',');
        pbuf_adds(b, "{\"name\":");
        pbuf_add_json_str(b, t->name, strlen(t->name));
        pbuf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", dt);
        for (int d = 0; d < t->rank; d++) pbuf_printf(b, d ? ",%" PRId64 : "%" PRId64, t->dims[d]);
        pbuf_addc(b, ']');
        /* One parameters object: a ZipMap's keys (which key each column is) and/or the size of
         * the binary data that follows the JSON. */
        int has_keys = t->kind == ONNX_VALUE_SEQ_MAP && t->keys, is_binary = binary && binary[i];
        if (has_keys || is_binary) pbuf_adds(b, ",\"parameters\":{");
        if (has_keys) {
            pbuf_adds(b, "\"keys\":[");
            for (int64_t k = 0, nk = proto_tensor_numel(t->keys); k < nk; k++) {
                if (k) pbuf_addc(b, ',');
                add_elem(b, t->keys, k);
            }
            pbuf_addc(b, ']');
        }
        if (is_binary) {
            any_binary = 1;
            pbuf_printf(b, "%s\"binary_data_size\":%zu}}", has_keys ? "," : "", binary_size(t));
            continue;
        }
        if (has_keys) pbuf_addc(b, '}');
        pbuf_adds(b, ",\"data\":[");
        int64_t ne = proto_tensor_numel(t);
        for (int64_t k = 0; k < ne; k++) {
            if (k) pbuf_addc(b, ',');
            add_elem(b, t, k);
        }
        pbuf_adds(b, "]}");
    }
    pbuf_adds(b, "]}");
    *json_len = any_binary ? b->len : 0;
    for (size_t i = 0; any_binary && i < n; i++)
        if (binary[i]) add_binary(b, &outs[i]);
    return check_buf(b);
}

/* Row r of t (dims[1..]) as nested arrays, or an object of keys for a ZipMap row. */
static void add_row(pbuf *b, const onnx_tensor *t, int64_t r)
{
    if (t->kind == ONNX_VALUE_SEQ_MAP && t->keys) {
        int64_t k = t->rank > 1 ? t->dims[1] : 1;
        pbuf_addc(b, '{');
        for (int64_t j = 0; j < k; j++) {
            if (j) pbuf_addc(b, ',');
            if (t->keys->dtype == ONNX_DTYPE_STRING)
                add_elem(b, t->keys, j);
            else {
                pbuf_addc(b, '"');
                add_elem(b, t->keys, j);
                pbuf_addc(b, '"');
            }
            pbuf_addc(b, ':');
            add_elem(b, t, r * k + j);
        }
        pbuf_addc(b, '}');
        return;
    }
    int64_t inner = 1;
    for (int d = 1; d < t->rank; d++) inner *= t->dims[d];
    int64_t idx[ONNX_MAX_RANK] = {0};
    int open = t->rank - 1;
    for (int d = 0; d < open; d++) pbuf_addc(b, '[');
    for (int64_t e = 0; e < inner; e++) {
        /* after the first element, close and reopen the dims that rolled over */
        if (e) {
            int d = t->rank - 1, closed = 0;
            while (d > 1 && ++idx[d] == t->dims[d]) {
                idx[d] = 0;
                d--;
                closed++;
            }
            if (d == 1) ++idx[1];
            for (int c = 0; c < closed; c++) pbuf_addc(b, ']');
            pbuf_addc(b, ',');
            for (int c = 0; c < closed; c++) pbuf_addc(b, '[');
        }
        add_elem(b, t, r * inner + e);
    }
    for (int d = 0; d < open; d++) pbuf_addc(b, ']');
}

kinfer_status *infer_response_encode_v1(pbuf *b, const onnx_tensor *outs, size_t n)
{
    int64_t rows = -1;
    for (size_t i = 0; i < n; i++) {
        int64_t r = outs[i].rank ? outs[i].dims[0] : 1;
        if (rows >= 0 && r != rows)
            return kinfer_status_new(
                KINFER_EUNSUPPORTED,
                "outputs disagree on the number of rows: V1 cannot express them");
        rows = r;
    }
    pbuf_adds(b, "{\"predictions\":[");
    for (int64_t r = 0; r < rows; r++) {
        if (r) pbuf_addc(b, ',');
        if (n == 1) {
            add_row(b, &outs[0], r);
            continue;
        }
        pbuf_addc(b, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) pbuf_addc(b, ',');
            pbuf_add_json_str(b, outs[i].name, strlen(outs[i].name));
            pbuf_addc(b, ':');
            add_row(b, &outs[i], r);
        }
        pbuf_addc(b, '}');
    }
    pbuf_adds(b, "]}");
    return check_buf(b);
}

void infer_response_encode_error(pbuf *b, const char *msg)
{
    pbuf_adds(b, "{\"error\":");
    pbuf_add_json_str(b, msg, strlen(msg));
    pbuf_addc(b, '}');
}
