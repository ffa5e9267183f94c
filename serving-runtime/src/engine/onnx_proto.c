/* onnx_proto: checked TensorProto decoding (see onnx_proto.h). */
#include "onnx_proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int dtype_supported(int dt)
{
    switch (dt) {
    case ONNX_DTYPE_FLOAT:
    case ONNX_DTYPE_UINT8:
    case ONNX_DTYPE_INT8:
    case ONNX_DTYPE_UINT16:
    case ONNX_DTYPE_INT16:
    case ONNX_DTYPE_INT32:
    case ONNX_DTYPE_INT64:
    case ONNX_DTYPE_STRING:
    case ONNX_DTYPE_BOOL:
    case ONNX_DTYPE_FLOAT16:
    case ONNX_DTYPE_DOUBLE:
    case ONNX_DTYPE_UINT32:
    case ONNX_DTYPE_UINT64:
        return 1;
    default:
        return 0;
    }
}

/* A relative path without "..": external data must stay inside the model's directory. */
static int path_is_safe(const char *p)
{
    if (!*p || p[0] == '/') return 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.') return 0;
        if (!e) break;
        s = e + 1;
    }
    return 1;
}

static kinfer_status *external_path(const Onnx__TensorProto *tp, const char *ext_dir, size_t bytes,
                                    const char *what, char *path, size_t plen, long long *offp)
{
    const char *loc = NULL;
    long long off = 0, len = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key || !e->value) continue;
        char *end;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            off = strtoll(e->value, &end, 10);
        else if (!strcmp(e->key, "length"))
            len = strtoll(e->value, &end, 10);
    }
    if (!loc)
        return kinfer_status_new(KINFER_EMODEL, "tensor '%s': external data without location",
                                 what);
    if (!path_is_safe(loc))
        return kinfer_status_new(KINFER_EMODEL,
                                 "tensor '%s': external data path '%s' leaves the model directory",
                                 what, loc);
    if (!ext_dir)
        return kinfer_status_new(
            KINFER_EMODEL, "tensor '%s': external data '%s' but no model directory", what, loc);
    if (off < 0 || (len >= 0 && (size_t)len != bytes))
        return kinfer_status_new(KINFER_EMODEL,
                                 "tensor '%s': external data length %lld, expected %zu", what, len,
                                 bytes);
    if (snprintf(path, plen, "%s/%s", ext_dir, loc) >= (int)plen)
        return kinfer_status_new(KINFER_EMODEL, "tensor '%s': external data path too long", what);
    *offp = off;
    return NULL;
}

static kinfer_status *check_external(const Onnx__TensorProto *tp, const char *ext_dir, size_t bytes,
                                     const char *what)
{
    char path[4096];
    long long off;
    kinfer_status *st = external_path(tp, ext_dir, bytes, what, path, sizeof path, &off);
    if (st) return st;
    struct stat sb;
    if (stat(path, &sb))
        return kinfer_status_new(KINFER_EIO, "tensor '%s': %s: %s", what, path, strerror(errno));
    if (!S_ISREG(sb.st_mode) || (unsigned long long)sb.st_size < (unsigned long long)off + bytes)
        return kinfer_status_new(KINFER_EMODEL,
                                 "tensor '%s': %s is shorter than offset %lld + %zu bytes", what,
                                 path, off, bytes);
    return NULL;
}

static kinfer_status *read_external(const Onnx__TensorProto *tp, const char *ext_dir, void *dst,
                                    size_t bytes, const char *what)
{
    char path[4096];
    long long off;
    kinfer_status *st = external_path(tp, ext_dir, bytes, what, path, sizeof path, &off);
    if (st) return st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return kinfer_status_new(KINFER_EIO, "tensor '%s': open %s: %s", what, path,
                                 strerror(errno));
    if (fseeko(f, (off_t)off, SEEK_SET) || fread(dst, 1, bytes, f) != bytes)
        st = kinfer_status_new(KINFER_EMODEL,
                               "tensor '%s': %s is shorter than offset %lld + %zu bytes", what,
                               path, off, bytes);
    fclose(f);
    return st;
}

kinfer_status *onnx_proto__tensor(const Onnx__TensorProto *tp, const char *ext_dir, region *rg,
                                  const char *what, op_tensor *out)
{
    memset(out, 0, sizeof(*out));
    if (!dtype_supported(tp->data_type))
        return kinfer_status_new(KINFER_EUNSUPPORTED, "tensor '%s': data type %d", what,
                                 tp->data_type);
    if (tp->n_dims > ONNX_MAX_RANK)
        return kinfer_status_new(KINFER_EUNSUPPORTED, "tensor '%s': rank %zu > %d", what,
                                 tp->n_dims, ONNX_MAX_RANK);
    onnx_dtype dt = (onnx_dtype)tp->data_type;
    size_t es = onnx_dtype_size(dt);
    int64_t n = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return kinfer_status_new(KINFER_EMODEL, "tensor '%s': negative dim %lld", what,
                                     (long long)tp->dims[i]);
        if (tp->dims[i] && n > ONNX_PROTO_MAX_TENSOR_BYTES / tp->dims[i])
            return kinfer_status_new(KINFER_ETOOBIG, "tensor '%s': too many elements", what);
        n *= tp->dims[i];
        out->dims[i] = tp->dims[i];
    }
    if (n > ONNX_PROTO_MAX_TENSOR_BYTES / (int64_t)es)
        return kinfer_status_new(KINFER_ETOOBIG, "tensor '%s': %lld elements is too large", what,
                                 (long long)n);
    out->dtype = dt;
    out->rank = (int)tp->n_dims;
    size_t bytes = (size_t)n * es;
    /* Data that is not in the file is checked before anything of its claimed size is allocated. */
    int external =
        tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (!external && tp->has_raw_data && dt != ONNX_DTYPE_STRING && tp->raw_data.len != bytes)
        return kinfer_status_new(KINFER_EMODEL,
                                 "tensor '%s': raw_data has %zu bytes, dims need %zu", what,
                                 tp->raw_data.len, bytes);
    if (external) {
        kinfer_status *st = check_external(tp, ext_dir, bytes, what);
        if (st) return st;
    } else if (!tp->has_raw_data || dt == ONNX_DTYPE_STRING) {
        size_t have;
        switch (dt) {
        case ONNX_DTYPE_FLOAT:
            have = tp->n_float_data;
            break;
        case ONNX_DTYPE_DOUBLE:
            have = tp->n_double_data;
            break;
        case ONNX_DTYPE_INT64:
            have = tp->n_int64_data;
            break;
        case ONNX_DTYPE_UINT32:
        case ONNX_DTYPE_UINT64:
            have = tp->n_uint64_data;
            break;
        case ONNX_DTYPE_STRING:
            have = tp->n_string_data;
            break;
        default:
            have = tp->n_int32_data;
            break;
        }
        if (have != (size_t)n)
            return kinfer_status_new(KINFER_EMODEL, "tensor '%s': %zu values, dims need %lld", what,
                                     have, (long long)n);
    }
    void *d = region_alloc(rg, bytes);
    if (!d) return kinfer_status_new(KINFER_ENOMEM, "tensor '%s': %zu bytes", what, bytes);
    out->data = d;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (dt == ONNX_DTYPE_STRING)
            return kinfer_status_new(KINFER_EMODEL, "tensor '%s': external string data", what);
        return read_external(tp, ext_dir, d, bytes, what);
    }
    if (tp->has_raw_data) {
        if (dt == ONNX_DTYPE_STRING)
            return kinfer_status_new(KINFER_EMODEL, "tensor '%s': raw_data for a string tensor",
                                     what);
        if (tp->raw_data.len != bytes)
            return kinfer_status_new(KINFER_EMODEL,
                                     "tensor '%s': raw_data has %zu bytes, dims need %zu", what,
                                     tp->raw_data.len, bytes);
        if (bytes) memcpy(d, tp->raw_data.data, bytes);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case ONNX_DTYPE_FLOAT:
            ((float *)d)[i] = tp->float_data[i];
            break;
        case ONNX_DTYPE_DOUBLE:
            ((double *)d)[i] = tp->double_data[i];
            break;
        case ONNX_DTYPE_INT64:
            ((int64_t *)d)[i] = tp->int64_data[i];
            break;
        case ONNX_DTYPE_UINT32:
            ((uint32_t *)d)[i] = (uint32_t)tp->uint64_data[i];
            break;
        case ONNX_DTYPE_UINT64:
            ((uint64_t *)d)[i] = tp->uint64_data[i];
            break;
        case ONNX_DTYPE_INT32:
            ((int32_t *)d)[i] = tp->int32_data[i];
            break;
        case ONNX_DTYPE_INT16:
            ((int16_t *)d)[i] = (int16_t)tp->int32_data[i];
            break;
        case ONNX_DTYPE_UINT16:
        case ONNX_DTYPE_FLOAT16:
            ((uint16_t *)d)[i] = (uint16_t)tp->int32_data[i];
            break;
        case ONNX_DTYPE_INT8:
            ((int8_t *)d)[i] = (int8_t)tp->int32_data[i];
            break;
        case ONNX_DTYPE_UINT8:
            ((uint8_t *)d)[i] = (uint8_t)tp->int32_data[i];
            break;
        case ONNX_DTYPE_BOOL:
            ((uint8_t *)d)[i] = tp->int32_data[i] != 0;
            break;
        case ONNX_DTYPE_STRING: {
            char *s =
                region_strndup(rg, (const char *)tp->string_data[i].data, tp->string_data[i].len);
            if (!s) return kinfer_status_new(KINFER_ENOMEM, "tensor '%s'", what);
            ((char **)d)[i] = s;
            break;
        }
        default:
            break;
        }
    }
    return NULL;
}

void *onnx_proto__copy_data(onnx_dtype dt, const void *src, int64_t n)
{
    size_t es = onnx_dtype_size(dt);
    if (dt != ONNX_DTYPE_STRING) {
        void *d = malloc(n ? (size_t)n * es : 1);
        if (d && n) memcpy(d, src, (size_t)n * es);
        return d;
    }
    const char *const *s = src;
    size_t total = (size_t)n * sizeof(char *);
    for (int64_t i = 0; i < n; i++) total += strlen(s[i] ? s[i] : "") + 1;
    char **d = malloc(total ? total : 1);
    if (!d) return NULL;
    char *p = (char *)(d + n);
    for (int64_t i = 0; i < n; i++) {
        const char *v = s[i] ? s[i] : "";
        size_t len = strlen(v) + 1;
        memcpy(p, v, len);
        d[i] = p;
        p += len;
    }
    return d;
}

/* ---- wire-format framing (onnx_proto__split_model) ---- */

#define WIRE_MODEL_GRAPH       7 /* ModelProto.graph */
#define WIRE_GRAPH_INITIALIZER 5 /* GraphProto.initializer */

static int wire_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p == end) return -1;
        unsigned char b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* One field at *p: its number, wire type, payload (for length-delimited fields) and end. */
typedef struct wire_field {
    uint64_t num;
    int type;
    const unsigned char *start, *payload, *end;
    size_t payload_len;
} wire_field;

static kinfer_status *wire_next(const unsigned char **p, const unsigned char *end, const char *what,
                                wire_field *f)
{
    uint64_t tag, v;
    f->start = *p;
    if (wire_varint(p, end, &tag) || !(tag >> 3))
        return kinfer_status_new(KINFER_EMODEL, "not a valid ONNX model: bad field tag in %s",
                                 what);
    f->num = tag >> 3;
    f->type = (int)(tag & 7);
    f->payload = NULL;
    f->payload_len = 0;
    size_t left;
    switch (f->type) {
    case 0:
        if (wire_varint(p, end, &v)) goto truncated;
        break;
    case 1:
    case 5:
        left = (size_t)(end - *p);
        if (left < (f->type == 1 ? 8u : 4u)) goto truncated;
        *p += f->type == 1 ? 8 : 4;
        break;
    case 2:
        if (wire_varint(p, end, &v) || v > (uint64_t)(end - *p)) goto truncated;
        f->payload = *p;
        f->payload_len = (size_t)v;
        *p += v;
        break;
    default:
        return kinfer_status_new(KINFER_EMODEL,
                                 "not a valid ONNX model: field %llu of %s has wire type %d",
                                 (unsigned long long)f->num, what, f->type);
    }
    f->end = *p;
    return NULL;
truncated:
    return kinfer_status_new(KINFER_EMODEL, "not a valid ONNX model: field %llu of %s is truncated",
                             (unsigned long long)f->num, what);
}

static size_t wire_put_varint(unsigned char *d, uint64_t v)
{
    size_t n = 0;
    do {
        d[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

kinfer_status *onnx_proto__split_model(const void *buf, size_t len, size_t max_inits,
                                       onnx_proto_split *out)
{
    memset(out, 0, sizeof(*out));
    const unsigned char *b = buf, *end = b + len;
    /* Pass 1: the graph fields' total kept size and the initializer count. */
    size_t kept_top = 0, kept_graph = 0, n_inits = 0;
    int has_graph = 0;
    wire_field f, g;
    kinfer_status *st;
    for (const unsigned char *p = b; p < end;) {
        if ((st = wire_next(&p, end, "ModelProto", &f))) return st;
        if (f.num != WIRE_MODEL_GRAPH || f.type != 2) {
            kept_top += (size_t)(f.end - f.start);
            continue;
        }
        has_graph = 1;
        for (const unsigned char *q = f.payload, *ge = f.payload + f.payload_len; q < ge;) {
            if ((st = wire_next(&q, ge, "GraphProto", &g))) return st;
            if (g.num == WIRE_GRAPH_INITIALIZER && g.type == 2)
                n_inits++;
            else
                kept_graph += (size_t)(g.end - g.start);
        }
    }
    if (n_inits > max_inits)
        return kinfer_status_new(KINFER_ETOOBIG, "graph has %zu initializers (at most %zu)",
                                 n_inits, max_inits);
    /* Pass 2: copy what is kept, note where the initializers are. */
    out->model = malloc(kept_top + kept_graph + 16);
    out->inits = calloc(n_inits + 1, sizeof(onnx_proto_span));
    if (!out->model || !out->inits) return kinfer_status_new(KINFER_ENOMEM, "model split");
    unsigned char *d = out->model;
    for (const unsigned char *p = b; p < end;) {
        if ((st = wire_next(&p, end, "ModelProto", &f))) return st;
        if (f.num != WIRE_MODEL_GRAPH || f.type != 2) {
            memcpy(d, f.start, (size_t)(f.end - f.start));
            d += f.end - f.start;
        }
    }
    if (has_graph) {
        *d++ = (WIRE_MODEL_GRAPH << 3) | 2;
        d += wire_put_varint(d, kept_graph);
        for (const unsigned char *p = b; p < end;) {
            if ((st = wire_next(&p, end, "ModelProto", &f))) return st;
            if (f.num != WIRE_MODEL_GRAPH || f.type != 2) continue;
            for (const unsigned char *q = f.payload, *ge = f.payload + f.payload_len; q < ge;) {
                if ((st = wire_next(&q, ge, "GraphProto", &g))) return st;
                if (g.num == WIRE_GRAPH_INITIALIZER && g.type == 2) {
                    out->inits[out->n_inits++] = (onnx_proto_span){g.payload, g.payload_len};
                    continue;
                }
                memcpy(d, g.start, (size_t)(g.end - g.start));
                d += g.end - g.start;
            }
        }
    }
    out->model_len = (size_t)(d - out->model);
    return NULL;
}

void onnx_proto__split_free(onnx_proto_split *s)
{
    free(s->model);
    free(s->inits);
    memset(s, 0, sizeof(*s));
}

kinfer_status *onnx_proto_tensor_load(const void *buf, size_t len, onnx_tensor *out)
{
    memset(out, 0, sizeof(*out));
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) return kinfer_status_new(KINFER_EMODEL, "not a valid TensorProto (%zu bytes)", len);
    region *rg = region_create();
    op_tensor t;
    kinfer_status *st = rg ? onnx_proto__tensor(tp, NULL, rg, tp->name ? tp->name : "", &t)
                           : kinfer_status_new(KINFER_ENOMEM, "region");
    if (st) goto out;
    out->kind = ONNX_VALUE_TENSOR;
    out->dtype = t.dtype;
    out->rank = t.rank;
    memcpy(out->dims, t.dims, sizeof(out->dims));
    out->data = onnx_proto__copy_data(t.dtype, t.data, onnx_tensor_numel(out));
    if (!out->data) st = kinfer_status_new(KINFER_ENOMEM, "tensor copy");
out:
    region_free(rg);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}
