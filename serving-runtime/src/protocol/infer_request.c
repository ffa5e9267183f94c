/* V2 / binary-extension / V1 request parsing; see infer_request.h. */
#include "infer_request.h"

#include <float.h>
#include <json.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dtype.h"

#define JSON_MAX_DEPTH   24
#define MAX_TENSOR_BYTES ((int64_t)1 << 40)

static kinfer_status *arena_full(void)
{
    return kinfer_status_new(KINFER_ETOOBIG, "request needs more memory than the request limit");
}

/* Parses exactly [body, body+len) as one JSON value. */
static kinfer_status *json_parse_exact(const char *body, size_t len, json_object **out)
{
    *out = NULL;
    if (len > INT32_MAX) return kinfer_status_new(KINFER_ETOOBIG, "JSON body too large");
    json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (!tok) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    kinfer_status *st = NULL;
    json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    if (err == json_tokener_continue) {
        /* A bare number at the end needs a terminator to be complete. */
        obj = json_tokener_parse_ex(tok, "", 1);
        err = json_tokener_get_error(tok);
    }
    if (!obj || err != json_tokener_success) {
        st = kinfer_status_new(KINFER_EINVAL, "malformed JSON: %s",
                               err == json_tokener_success ? "empty body"
                                                           : json_tokener_error_desc(err));
        goto out;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t' && body[i]) {
            st = kinfer_status_new(KINFER_EINVAL, "malformed JSON: trailing data at byte %zu", i);
            json_object_put(obj);
            goto out;
        }
    }
    *out = obj;
out:
    json_tokener_free(tok);
    return st;
}

/* What storing one leaf can run into; leaf_store turns it into the message. */
enum { LEAF_OK, LEAF_BAD_TYPE, LEAF_RANGE, LEAF_UNSUPPORTED };

/* A JSON number, or one of the strings JSON needs for NaN and the infinities, as a double. */
static int leaf_double(json_object *v, double *d)
{
    enum json_type jt = json_object_get_type(v);
    if (jt == json_type_double || jt == json_type_int) {
        *d = json_object_get_double(v);
        return LEAF_OK;
    }
    if (jt != json_type_string) return LEAF_BAD_TYPE; /* JSON has no NaN/Infinity literals */
    const char *s = json_object_get_string(v);
    if (!strcmp(s, "NaN") || !strcmp(s, "nan"))
        *d = NAN;
    else if (!strcmp(s, "Infinity") || !strcmp(s, "inf"))
        *d = INFINITY;
    else if (!strcmp(s, "-Infinity") || !strcmp(s, "-inf"))
        *d = -INFINITY;
    else
        return LEAF_BAD_TYPE;
    return LEAF_OK;
}

/* FLOAT, DOUBLE or FLOAT16 element idx of data. */
static int leaf_float(json_object *v, onnx_dtype dt, void *data, int64_t idx)
{
    double d;
    int rc = leaf_double(v, &d);
    if (rc) return rc;
    /* Out of float range is infinity, as IEEE rounding would give (the C cast is undefined). */
    float f = isfinite(d) && fabs(d) > FLT_MAX ? (float)copysign(INFINITY, d) : (float)d;
    if (dt == ONNX_DTYPE_FLOAT)
        ((float *)data)[idx] = f;
    else if (dt == ONNX_DTYPE_DOUBLE)
        ((double *)data)[idx] = d;
    else
        ((uint16_t *)data)[idx] = proto_half_from_float(f);
    return LEAF_OK;
}

/* The range of a signed or unsigned integer type up to 64 bits (UINT64 aside); 0 for others. */
static int int_range(onnx_dtype dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case ONNX_DTYPE_INT8:
        *lo = INT8_MIN, *hi = INT8_MAX;
        return 1;
    case ONNX_DTYPE_INT16:
        *lo = INT16_MIN, *hi = INT16_MAX;
        return 1;
    case ONNX_DTYPE_INT32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        return 1;
    case ONNX_DTYPE_UINT8:
        *lo = 0, *hi = UINT8_MAX;
        return 1;
    case ONNX_DTYPE_UINT16:
        *lo = 0, *hi = UINT16_MAX;
        return 1;
    case ONNX_DTYPE_UINT32:
        *lo = 0, *hi = UINT32_MAX;
        return 1;
    case ONNX_DTYPE_INT64:
        *lo = INT64_MIN, *hi = INT64_MAX;
        return 1;
    default:
        return 0;
    }
}

/* An integer element idx of data (x already in dt's range). */
static void int_put(onnx_dtype dt, void *data, int64_t idx, int64_t x)
{
    switch (dt) {
    case ONNX_DTYPE_INT8:
        ((int8_t *)data)[idx] = (int8_t)x;
        break;
    case ONNX_DTYPE_INT16:
        ((int16_t *)data)[idx] = (int16_t)x;
        break;
    case ONNX_DTYPE_INT32:
        ((int32_t *)data)[idx] = (int32_t)x;
        break;
    case ONNX_DTYPE_UINT8:
        ((uint8_t *)data)[idx] = (uint8_t)x;
        break;
    case ONNX_DTYPE_UINT16:
        ((uint16_t *)data)[idx] = (uint16_t)x;
        break;
    case ONNX_DTYPE_UINT32:
        ((uint32_t *)data)[idx] = (uint32_t)x;
        break;
    default:
        ((int64_t *)data)[idx] = x;
        break;
    }
}

/* An integer element: a JSON integer within dt's range. */
static int leaf_int(json_object *v, onnx_dtype dt, void *data, int64_t idx)
{
    if (json_object_get_type(v) != json_type_int) return LEAF_BAD_TYPE;
    if (dt == ONNX_DTYPE_UINT64) {
        if (json_object_get_int64(v) < 0) return LEAF_RANGE;
        ((uint64_t *)data)[idx] = json_object_get_uint64(v);
        return LEAF_OK;
    }
    int64_t x = json_object_get_int64(v), lo, hi;
    if (!int_range(dt, &lo, &hi)) return LEAF_UNSUPPORTED;
    if (x < lo || x > hi) return LEAF_RANGE;
    int_put(dt, data, idx, x);
    return LEAF_OK;
}

/* Stores one JSON leaf as element idx of data. */
static kinfer_status *leaf_store(json_object *v, const char *name, onnx_dtype dt, void *data,
                                 int64_t idx, req_arena *a)
{
    enum json_type jt = json_object_get_type(v);
    int rc;
    if (dt == ONNX_DTYPE_STRING) {
        if (jt != json_type_string) goto bad_type;
        char *s =
            req_arena_strndup(a, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        if (!s) return arena_full();
        ((char **)data)[idx] = s;
        return NULL;
    }
    if (dt == ONNX_DTYPE_BOOL) {
        if (jt != json_type_boolean) goto bad_type;
        ((uint8_t *)data)[idx] = (uint8_t)json_object_get_boolean(v);
        return NULL;
    }
    if (dt == ONNX_DTYPE_FLOAT || dt == ONNX_DTYPE_DOUBLE || dt == ONNX_DTYPE_FLOAT16)
        rc = leaf_float(v, dt, data, idx);
    else
        rc = leaf_int(v, dt, data, idx);
    switch (rc) {
    case LEAF_OK:
        return NULL;
    case LEAF_UNSUPPORTED:
        return kinfer_status_new(KINFER_EUNSUPPORTED, "input \"%s\": datatype not supported", name);
    case LEAF_RANGE:
        return kinfer_status_new(KINFER_EINVAL, "input \"%s\": element %lld is out of range for %s",
                                 name, (long long)idx, proto_dtype_name(dt));
    }
bad_type:
    return kinfer_status_new(KINFER_EINVAL,
                             "input \"%s\": element %lld is a JSON %s, not a %s value", name,
                             (long long)idx, json_type_to_name(jt), proto_dtype_name(dt));
}

/* Walks nested arrays in row-major order, storing up to n leaves; *count gets how many there were.
 */
static kinfer_status *flatten(json_object *v, const char *name, onnx_dtype dt, void *data,
                              int64_t n, int64_t *count, req_arena *a, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return kinfer_status_new(KINFER_EINVAL, "input \"%s\": data nested too deeply", name);
    if (json_object_get_type(v) != json_type_array) {
        if (*count >= n) {
            (*count)++;
            return NULL; /* keep counting for the error message */
        }
        kinfer_status *st = leaf_store(v, name, dt, data, *count, a);
        (*count)++;
        return st;
    }
    size_t len = json_object_array_length(v);
    for (size_t i = 0; i < len; i++) {
        kinfer_status *st =
            flatten(json_object_array_get_idx(v, i), name, dt, data, n, count, a, depth + 1);
        if (st) return st;
    }
    return NULL;
}

static const onnx_value_info *sig_find(const onnx_value_info *v, size_t n, const char *name,
                                       size_t *idx)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].name && !strcmp(v[i].name, name)) {
            if (idx) *idx = i;
            return &v[i];
        }
    return NULL;
}

/* Checks a tensor's dtype and shape against the declaration. */
static kinfer_status *check_against_sig(const onnx_tensor *t, const onnx_value_info *vi)
{
    if (vi->dtype != ONNX_DTYPE_UNDEFINED && t->dtype != vi->dtype) {
        const char *want = proto_dtype_name(vi->dtype);
        return kinfer_status_new(
            KINFER_EDTYPE, "input \"%s\": datatype %s, but the model expects %s", t->name,
            proto_dtype_name(t->dtype), want ? want : "a type the protocol lacks");
    }
    if (vi->rank >= 0 && t->rank != vi->rank)
        return kinfer_status_new(KINFER_ESHAPE,
                                 "input \"%s\": rank %d, but the model expects rank %d", t->name,
                                 t->rank, vi->rank);
    for (int d = 0; vi->rank >= 0 && d < vi->rank; d++)
        if (vi->dims[d] >= 0 && t->dims[d] != vi->dims[d])
            return kinfer_status_new(
                KINFER_ESHAPE, "input \"%s\": dimension %d is %lld, but the model expects %lld",
                t->name, d, (long long)t->dims[d], (long long)vi->dims[d]);
    return NULL;
}

/* Reads "shape": a JSON array of non-negative ints, with an overflow-safe element count. */
static kinfer_status *parse_shape(json_object *js, onnx_tensor *t)
{
    if (!js || json_object_get_type(js) != json_type_array)
        return kinfer_status_new(KINFER_EINVAL, "input \"%s\": \"shape\" must be an array",
                                 t->name);
    size_t rank = json_object_array_length(js);
    if (rank > ONNX_MAX_RANK)
        return kinfer_status_new(KINFER_ESHAPE, "input \"%s\": rank %zu exceeds %d", t->name, rank,
                                 ONNX_MAX_RANK);
    t->rank = (int)rank;
    int64_t n = 1;
    for (size_t d = 0; d < rank; d++) {
        json_object *jd = json_object_array_get_idx(js, d);
        if (json_object_get_type(jd) != json_type_int || json_object_get_int64(jd) < 0)
            return kinfer_status_new(KINFER_ESHAPE,
                                     "input \"%s\": shape[%zu] must be a non-negative integer",
                                     t->name, d);
        t->dims[d] = json_object_get_int64(jd);
        if (t->dims[d] && n > MAX_TENSOR_BYTES / t->dims[d])
            return kinfer_status_new(KINFER_ETOOBIG, "input \"%s\": shape too large", t->name);
        n *= t->dims[d];
    }
    return NULL;
}

/* Binary BYTES: each element a 4-byte little-endian length and that many bytes. */
static kinfer_status *decode_binary_strings(onnx_tensor *t, const unsigned char *p, size_t size,
                                            int64_t n, req_arena *a)
{
    char **strs = req_arena_alloc(a, (size_t)n * sizeof(char *));
    if (!strs && n) return arena_full();
    size_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        if (size - off < 4)
            return kinfer_status_new(KINFER_EINVAL,
                                     "input \"%s\": binary BYTES data ends inside element %lld",
                                     t->name, (long long)i);
        uint32_t l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 24;
        off += 4;
        if (l > size - off)
            return kinfer_status_new(KINFER_EINVAL,
                                     "input \"%s\": binary BYTES element %lld overruns the data",
                                     t->name, (long long)i);
        if (!(strs[i] = req_arena_strndup(a, (const char *)p + off, l))) return arena_full();
        off += l;
    }
    if (off != size)
        return kinfer_status_new(
            KINFER_EINVAL, "input \"%s\": binary_data_size %zu, but %lld elements use %zu bytes",
            t->name, size, (long long)n, off);
    t->data = strs;
    return NULL;
}

/* One element of "inputs"; *bin_off advances over its binary data. */
static kinfer_status *parse_v2_input(json_object *ji, const infer_model_sig *sig, const char *bin,
                                     size_t bin_len, size_t *bin_off, req_arena *a,
                                     infer_request *out, unsigned char *seen)
{
    json_object *jn, *jdt, *jdata = NULL, *jparams = NULL, *jsize = NULL;
    if (json_object_get_type(ji) != json_type_object)
        return kinfer_status_new(KINFER_EINVAL, "each element of \"inputs\" must be an object");
    if (!json_object_object_get_ex(ji, "name", &jn) || json_object_get_type(jn) != json_type_string)
        return kinfer_status_new(KINFER_EINVAL, "an input has no \"name\" string");
    const char *name = json_object_get_string(jn);
    size_t idx;
    const onnx_value_info *vi = sig_find(sig->inputs, sig->n_inputs, name, &idx);
    if (!vi) return kinfer_status_new(KINFER_EINVAL, "unknown input \"%s\"", name);
    if (seen[idx]) return kinfer_status_new(KINFER_EINVAL, "input \"%s\" given twice", name);
    seen[idx] = 1;
    onnx_tensor *t = &out->inputs[idx];
    t->name = vi->name;
    if (!json_object_object_get_ex(ji, "datatype", &jdt) ||
        json_object_get_type(jdt) != json_type_string)
        return kinfer_status_new(KINFER_EINVAL, "input \"%s\": no \"datatype\" string", name);
    t->dtype =
        proto_dtype_from_name(json_object_get_string(jdt), (size_t)json_object_get_string_len(jdt));
    if (t->dtype == ONNX_DTYPE_UNDEFINED)
        return kinfer_status_new(KINFER_EDTYPE, "input \"%s\": unknown datatype \"%s\"", name,
                                 json_object_get_string(jdt));
    json_object *jshape = NULL;
    json_object_object_get_ex(ji, "shape", &jshape);
    kinfer_status *st = parse_shape(jshape, t);
    if (st) return st;
    if ((st = check_against_sig(t, vi))) return st;
    int64_t n = proto_tensor_numel(t);
    size_t esize = proto_dtype_size(t->dtype);
    if (n > MAX_TENSOR_BYTES / (int64_t)esize)
        return kinfer_status_new(KINFER_ETOOBIG, "input \"%s\": too large", name);
    json_object_object_get_ex(ji, "data", &jdata);
    if (json_object_object_get_ex(ji, "parameters", &jparams) &&
        json_object_get_type(jparams) == json_type_object)
        json_object_object_get_ex(jparams, "binary_data_size", &jsize);
    if (jsize) {
        if (jdata)
            return kinfer_status_new(KINFER_EINVAL,
                                     "input \"%s\": both \"data\" and binary_data_size", name);
        if (!bin)
            return kinfer_status_new(KINFER_EINVAL,
                                     "input \"%s\": binary_data_size without the "
                                     "Inference-Header-Content-Length header",
                                     name);
        if (json_object_get_type(jsize) != json_type_int || json_object_get_int64(jsize) < 0)
            return kinfer_status_new(
                KINFER_EINVAL, "input \"%s\": binary_data_size must be a non-negative integer",
                name);
        uint64_t size = (uint64_t)json_object_get_int64(jsize);
        if (size > bin_len - *bin_off)
            return kinfer_status_new(
                KINFER_EINVAL,
                "input \"%s\": binary_data_size %llu runs past the body (%zu bytes left)", name,
                (unsigned long long)size, bin_len - *bin_off);
        const char *p = bin + *bin_off;
        *bin_off += size;
        if (t->dtype == ONNX_DTYPE_STRING)
            return decode_binary_strings(t, (const unsigned char *)p, size, n, a);
        if (size != (uint64_t)n * esize)
            return kinfer_status_new(
                KINFER_ESHAPE,
                "input \"%s\": binary_data_size %llu, but shape and datatype need %llu bytes", name,
                (unsigned long long)size, (unsigned long long)((uint64_t)n * esize));
        if (!(t->data = req_arena_alloc(a, size ? size : 1))) return arena_full();
        memcpy(t->data, p, size); /* aligned copy: the body offset can be anything */
        return NULL;
    }
    if (!jdata)
        return kinfer_status_new(KINFER_EINVAL, "input \"%s\": no \"data\" and no binary_data_size",
                                 name);
    if (!(t->data = req_arena_alloc(a, ((size_t)n * esize) | !n))) return arena_full();
    int64_t count = 0;
    if ((st = flatten(jdata, name, t->dtype, t->data, n, &count, a, 0))) return st;
    if (count != n)
        return kinfer_status_new(KINFER_ESHAPE,
                                 "input \"%s\": shape has %lld elements, but \"data\" has %lld",
                                 name, (long long)n, (long long)count);
    return NULL;
}

static kinfer_status *parse_v2_outputs(json_object *jouts, const infer_model_sig *sig, req_arena *a,
                                       infer_request *out)
{
    if (json_object_get_type(jouts) != json_type_array)
        return kinfer_status_new(KINFER_EINVAL, "\"outputs\" must be an array");
    size_t n = json_object_array_length(jouts);
    if (!n) return NULL;
    if (n > sig->n_outputs)
        return kinfer_status_new(KINFER_EINVAL, "more outputs requested than the model has");
    out->output_names = req_arena_calloc(a, n * sizeof(char *));
    out->output_binary = req_arena_calloc(a, n * sizeof(int));
    if (!out->output_names || !out->output_binary) return arena_full();
    for (size_t i = 0; i < n; i++) {
        json_object *jo = json_object_array_get_idx(jouts, i), *jn, *jp, *jb;
        if (json_object_get_type(jo) != json_type_object ||
            !json_object_object_get_ex(jo, "name", &jn) ||
            json_object_get_type(jn) != json_type_string)
            return kinfer_status_new(KINFER_EINVAL,
                                     "each requested output needs a \"name\" string");
        const onnx_value_info *vo =
            sig_find(sig->outputs, sig->n_outputs, json_object_get_string(jn), NULL);
        if (!vo)
            return kinfer_status_new(KINFER_EINVAL, "unknown output \"%s\"",
                                     json_object_get_string(jn));
        for (size_t j = 0; j < i; j++)
            if (out->output_names[j] == vo->name)
                return kinfer_status_new(KINFER_EINVAL, "output \"%s\" requested twice", vo->name);
        out->output_names[i] = vo->name;
        out->output_binary[i] = out->binary_output;
        if (json_object_object_get_ex(jo, "parameters", &jp) &&
            json_object_get_type(jp) == json_type_object) {
            if (json_object_object_get_ex(jp, "classification", NULL))
                return kinfer_status_new(
                    KINFER_EUNSUPPORTED,
                    "output \"%s\": the classification extension is not supported", vo->name);
            if (json_object_object_get_ex(jp, "binary_data", &jb)) {
                if (json_object_get_type(jb) != json_type_boolean)
                    return kinfer_status_new(
                        KINFER_EINVAL, "output \"%s\": binary_data must be a boolean", vo->name);
                out->output_binary[i] = json_object_get_boolean(jb);
            }
        }
    }
    out->n_outputs = n;
    return NULL;
}

kinfer_status *infer_request_parse_v2(const char *body, size_t len, int64_t header_len,
                                      const infer_model_sig *sig, req_arena *a, infer_request *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = NULL, *j;
    kinfer_status *st = NULL;
    const char *bin = NULL;
    size_t json_len = len, bin_len = 0, bin_off = 0;
    if (header_len >= 0) {
        if ((uint64_t)header_len > len) {
            st = kinfer_status_new(
                KINFER_EINVAL, "Inference-Header-Content-Length %lld exceeds the body (%zu bytes)",
                (long long)header_len, len);
            goto out;
        }
        json_len = (size_t)header_len;
        bin = body + json_len;
        bin_len = len - json_len;
    }
    if ((st = json_parse_exact(body, json_len, &root))) goto out;
    if (json_object_get_type(root) != json_type_object) {
        st = kinfer_status_new(KINFER_EINVAL, "the request must be a JSON object");
        goto out;
    }
    if (json_object_object_get_ex(root, "id", &j)) {
        if (json_object_get_type(j) != json_type_string) {
            st = kinfer_status_new(KINFER_EINVAL, "\"id\" must be a string");
            goto out;
        }
        if (!(out->id = req_arena_strndup(a, json_object_get_string(j),
                                          (size_t)json_object_get_string_len(j)))) {
            st = arena_full();
            goto out;
        }
    }
    if (json_object_object_get_ex(root, "parameters", &j)) {
        json_object *jp;
        if (json_object_get_type(j) != json_type_object) {
            st = kinfer_status_new(KINFER_EINVAL, "\"parameters\" must be an object");
            goto out;
        }
        if (json_object_object_get_ex(j, "binary_data_output", &jp)) {
            if (json_object_get_type(jp) != json_type_boolean) {
                st = kinfer_status_new(KINFER_EINVAL, "binary_data_output must be a boolean");
                goto out;
            }
            out->binary_output = json_object_get_boolean(jp);
        }
        if (json_object_object_get_ex(j, "timeout", &jp)) {
            if (json_object_get_type(jp) != json_type_int || json_object_get_int64(jp) < 0) {
                st = kinfer_status_new(KINFER_EINVAL,
                                       "timeout must be a non-negative integer (microseconds)");
                goto out;
            }
            out->timeout_us = json_object_get_int64(jp);
        }
    }
    if (!json_object_object_get_ex(root, "inputs", &j) ||
        json_object_get_type(j) != json_type_array) {
        st = kinfer_status_new(KINFER_EINVAL, "the request has no \"inputs\" array");
        goto out;
    }
    out->n_inputs = sig->n_inputs;
    out->inputs = req_arena_calloc(a, (sig->n_inputs ? sig->n_inputs : 1) * sizeof(onnx_tensor));
    unsigned char *seen = req_arena_calloc(a, sig->n_inputs + 1);
    if (!out->inputs || !seen) {
        st = arena_full();
        goto out;
    }
    size_t n = json_object_array_length(j);
    for (size_t i = 0; i < n; i++)
        if ((st = parse_v2_input(json_object_array_get_idx(j, i), sig, bin, bin_len, &bin_off, a,
                                 out, seen)))
            goto out;
    for (size_t i = 0; i < sig->n_inputs; i++)
        if (!seen[i]) {
            st = kinfer_status_new(KINFER_EINVAL, "missing input \"%s\"", sig->inputs[i].name);
            goto out;
        }
    if (bin && bin_off != bin_len) {
        st = kinfer_status_new(KINFER_EINVAL,
                               "%zu bytes of binary data follow the header, but inputs use %zu",
                               bin_len, bin_off);
        goto out;
    }
    if (json_object_object_get_ex(root, "outputs", &j) && (st = parse_v2_outputs(j, sig, a, out)))
        goto out;
out:
    json_object_put(root);
    if (st) memset(out, 0, sizeof(*out));
    return st;
}

/* V1: the shape of one row, read from the first element at each level. */
static kinfer_status *row_shape(json_object *v, const char *name, int64_t *dims, int *rank)
{
    *rank = 0;
    while (json_object_get_type(v) == json_type_array) {
        if (*rank + 1 >= ONNX_MAX_RANK)
            return kinfer_status_new(KINFER_ESHAPE, "input \"%s\": instance nested too deeply",
                                     name);
        size_t len = json_object_array_length(v);
        dims[(*rank)++] = (int64_t)len;
        if (!len) break;
        v = json_object_array_get_idx(v, 0);
    }
    return NULL;
}

/* V1: stores one row that must have exactly dims[level..rank). */
static kinfer_status *flatten_shaped(json_object *v, const char *name, onnx_dtype dt,
                                     const int64_t *dims, int rank, int level, void *data,
                                     int64_t *idx, req_arena *a)
{
    if (level == rank) {
        if (json_object_get_type(v) == json_type_array)
            return kinfer_status_new(KINFER_ESHAPE, "input \"%s\": instances have different shapes",
                                     name);
        kinfer_status *st = leaf_store(v, name, dt, data, *idx, a);
        (*idx)++;
        return st;
    }
    if (json_object_get_type(v) != json_type_array ||
        (int64_t)json_object_array_length(v) != dims[level])
        return kinfer_status_new(KINFER_ESHAPE, "input \"%s\": instances have different shapes",
                                 name);
    for (int64_t i = 0; i < dims[level]; i++) {
        kinfer_status *st = flatten_shaped(json_object_array_get_idx(v, (size_t)i), name, dt, dims,
                                           rank, level + 1, data, idx, a);
        if (st) return st;
    }
    return NULL;
}

/* Stacks instance[i] (or instance[i][name] when named) into input idx. */
static kinfer_status *stack_v1_input(json_object *inst, int named, size_t idx,
                                     const infer_model_sig *sig, req_arena *a, infer_request *out)
{
    const onnx_value_info *vi = &sig->inputs[idx];
    onnx_tensor *t = &out->inputs[idx];
    size_t n = json_object_array_length(inst);
    t->name = vi->name;
    t->dtype = vi->dtype;
    size_t esize = proto_dtype_size(t->dtype);
    if (!esize)
        return kinfer_status_new(KINFER_EUNSUPPORTED, "input \"%s\": datatype not supported by V1",
                                 vi->name);
    json_object *first = json_object_array_get_idx(inst, 0), *v;
    if (named && !json_object_object_get_ex(first, vi->name, &first))
        return kinfer_status_new(KINFER_EINVAL, "instance 0 has no input \"%s\"", vi->name);
    int64_t row[ONNX_MAX_RANK];
    int rrank;
    kinfer_status *st = row_shape(first, vi->name, row, &rrank);
    if (st) return st;
    t->rank = rrank + 1;
    t->dims[0] = (int64_t)n;
    int64_t numel = (int64_t)n;
    for (int d = 0; d < rrank; d++) {
        t->dims[d + 1] = row[d];
        if (row[d] && numel > MAX_TENSOR_BYTES / row[d])
            return kinfer_status_new(KINFER_ETOOBIG, "input too large");
        numel *= row[d];
    }
    if ((st = check_against_sig(t, vi))) return st;
    if (!(t->data = req_arena_alloc(a, ((size_t)numel * esize) | !numel))) return arena_full();
    int64_t k = 0;
    for (size_t i = 0; i < n; i++) {
        v = json_object_array_get_idx(inst, i);
        if (named) {
            if (json_object_get_type(v) != json_type_object)
                return kinfer_status_new(KINFER_EINVAL,
                                         "instance %zu is not an object like instance 0", i);
            if (!json_object_object_get_ex(v, vi->name, &v))
                return kinfer_status_new(KINFER_EINVAL, "instance %zu has no input \"%s\"", i,
                                         vi->name);
        }
        if ((st = flatten_shaped(v, vi->name, t->dtype, row, rrank, 0, t->data, &k, a))) return st;
    }
    return NULL;
}

kinfer_status *infer_request_parse_v1(const char *body, size_t len, const infer_model_sig *sig,
                                      req_arena *a, infer_request *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = NULL, *inst;
    kinfer_status *st = json_parse_exact(body, len, &root);
    if (st) goto out;
    if (json_object_get_type(root) != json_type_object ||
        !json_object_object_get_ex(root, "instances", &inst) ||
        json_object_get_type(inst) != json_type_array) {
        st = kinfer_status_new(KINFER_EINVAL,
                               "the request must be an object with an \"instances\" array");
        goto out;
    }
    if (!json_object_array_length(inst)) {
        st = kinfer_status_new(KINFER_EINVAL, "\"instances\" is empty");
        goto out;
    }
    int named = json_object_get_type(json_object_array_get_idx(inst, 0)) == json_type_object;
    if (!named && sig->n_inputs != 1) {
        st = kinfer_status_new(
            KINFER_EINVAL, "the model has %zu inputs: each instance must be an object naming them",
            sig->n_inputs);
        goto out;
    }
    if (named) { /* every key must be an input */
        json_object_object_foreach(json_object_array_get_idx(inst, 0), key, val)
        {
            (void)val;
            if (!sig_find(sig->inputs, sig->n_inputs, key, NULL)) {
                st = kinfer_status_new(KINFER_EINVAL, "unknown input \"%s\"", key);
                goto out;
            }
        }
    }
    out->n_inputs = sig->n_inputs;
    if (!(out->inputs =
              req_arena_calloc(a, (sig->n_inputs ? sig->n_inputs : 1) * sizeof(onnx_tensor)))) {
        st = arena_full();
        goto out;
    }
    for (size_t i = 0; i < sig->n_inputs; i++)
        if ((st = stack_v1_input(inst, named, i, sig, a, out))) goto out;
out:
    json_object_put(root);
    if (st) memset(out, 0, sizeof(*out));
    return st;
}
