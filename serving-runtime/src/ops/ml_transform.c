/*
 * ml_transform: the element-wise and reshaping ai.onnx.ml operators of scikit-learn pipelines:
 * Scaler, Normalizer, Imputer, Binarizer, ArrayFeatureExtractor and ZipMap. ZipMap's sequence of
 * maps is returned as ONNX_VALUE_SEQ_MAP ([N, K] values plus a keys tensor held in node state),
 * as onnx_model.h describes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml_common.h"
#include "ml_kernels.h"

/* ---------------------------------------------------------------- shared */

static kinfer_status *xf_check_feature(op_ctx *c, const op_tensor *x)
{
    if (!ml__is_feature_type(x->dtype))
        return op_error(c, KINFER_EDTYPE,
                        "input X has type %s; float, double, int64 or int32 "
                        "expected",
                        onnx_dtype_name(x->dtype));
    return NULL;
}

/* Length of the last axis (1 for a scalar), -1 if unknown. */
static int64_t xf_last_dim(const op_tensor *x)
{
    if (x->rank < 0) return -1;
    return x->rank == 0 ? 1 : x->dims[x->rank - 1];
}

/* A per-feature list of length 1 (broadcast) or C. */
static kinfer_status *xf_check_len(op_ctx *c, const char *what, size_t n, int64_t cols)
{
    if (n > 1 && cols >= 0 && (int64_t)n != cols)
        return op_error(c, KINFER_ESHAPE, "%s has %zu values but X has %lld features", what, n,
                        (long long)cols);
    return NULL;
}

/* ---------------------------------------------------------------- Scaler */

static kinfer_status *scaler_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    const float *v;
    kinfer_status *st;
    if ((st = xf_check_feature(c, x))) return st;
    int64_t cols = xf_last_dim(x);
    if ((st = xf_check_len(c, "offset", op_attr_floats(op_ctx_node(c), "offset", &v), cols)) ||
        (st = xf_check_len(c, "scale", op_attr_floats(op_ctx_node(c), "scale", &v), cols)))
        return st;
    op_set_output(c, 0, ONNX_DTYPE_FLOAT, op_shapes_known(c) ? x->rank : -1, x->dims);
    return NULL;
}

static kinfer_status *scaler_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    float *y = op_output(c, 0)->data;
    const float *off, *sc;
    size_t no = op_attr_floats(op_ctx_node(c), "offset", &off);
    size_t ns = op_attr_floats(op_ctx_node(c), "scale", &sc);
    int64_t n = op_tensor_numel(x), cols = xf_last_dim(x);
    ml__read_float(x, 0, n, y);
    for (int64_t i = 0; i < n; i++) {
        int64_t f = cols > 0 ? i % cols : 0;
        float o = no ? off[no == 1 ? 0 : f] : 0.0f, s = ns ? sc[ns == 1 ? 0 : f] : 1.0f;
        y[i] = (y[i] - o) * s;
    }
    return NULL;
}

/* ---------------------------------------------------------------- Normalizer */

static kinfer_status *norm_init(const op_node *n, void **state)
{
    const char *s = op_attr_string(n, "norm", "MAX");
    (void)state;
    if (strcmp(s, "MAX") && strcmp(s, "L1") && strcmp(s, "L2"))
        return op_node_error(n, KINFER_EMODEL, "unknown norm '%s'", s);
    return NULL;
}

static kinfer_status *norm_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    kinfer_status *st;
    int64_t rows, cols;
    if ((st = xf_check_feature(c, x)) || (st = ml__rows_cols(c, x, &rows, &cols))) return st;
    op_set_output(c, 0, ONNX_DTYPE_FLOAT, op_shapes_known(c) ? x->rank : -1, x->dims);
    return NULL;
}

static kinfer_status *norm_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    float *y = op_output(c, 0)->data;
    const char *norm = op_attr_string(op_ctx_node(c), "norm", "MAX");
    int64_t rows, cols;
    kinfer_status *st = ml__rows_cols(c, x, &rows, &cols);
    if (st) return st;
    ml__read_float(x, 0, rows * cols, y);
    for (int64_t r = 0; r < rows; r++) {
        float *v = y + r * cols, d;
        if (!strcmp(norm, "MAX")) {
            d = -INFINITY;
            for (int64_t i = 0; i < cols; i++) d = v[i] > d ? v[i] : d;
        } else if (!strcmp(norm, "L1")) {
            d = 0;
            for (int64_t i = 0; i < cols; i++) d += fabsf(v[i]);
        } else {
            d = 0;
            for (int64_t i = 0; i < cols; i++) d += v[i] * v[i];
            d = sqrtf(d);
        }
        if (d != 0 && cols > 0)
            for (int64_t i = 0; i < cols; i++) v[i] /= d;
    }
    return NULL;
}

/* ---------------------------------------------------------------- Imputer */

static kinfer_status *imputer_infer(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *x = op_input(c, 0);
    const float *f;
    const int64_t *i;
    size_t nf = op_attr_floats(n, "imputed_value_floats", &f);
    size_t ni = op_attr_ints(n, "imputed_value_int64s", &i);
    kinfer_status *st;
    if (x->dtype == ONNX_DTYPE_FLOAT || x->dtype == ONNX_DTYPE_DOUBLE) {
        if (!nf) return op_error(c, KINFER_EMODEL, "float input needs imputed_value_floats");
        if ((st = xf_check_len(c, "imputed_value_floats", nf, xf_last_dim(x)))) return st;
    } else if (x->dtype == ONNX_DTYPE_INT64 || x->dtype == ONNX_DTYPE_INT32) {
        if (!ni) return op_error(c, KINFER_EMODEL, "integer input needs imputed_value_int64s");
        if ((st = xf_check_len(c, "imputed_value_int64s", ni, xf_last_dim(x)))) return st;
    } else {
        return xf_check_feature(c, x);
    }
    return op_infer_like(c, 0, 0);
}

static kinfer_status *imputer_compute(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t total = op_tensor_numel(x), cols = xf_last_dim(x);
    if (x->dtype == ONNX_DTYPE_FLOAT || x->dtype == ONNX_DTYPE_DOUBLE) {
        const float *f;
        size_t nf = op_attr_floats(n, "imputed_value_floats", &f);
        float rep = op_attr_float(n, "replaced_value_float", 0.0f);
        for (int64_t i = 0; i < total; i++) {
            double v = x->dtype == ONNX_DTYPE_FLOAT ? ((const float *)x->data)[i]
                                                    : ((const double *)x->data)[i];
            if (isnan(rep) ? isnan(v) : v == rep) v = f[nf == 1 ? 0 : i % cols];
            if (x->dtype == ONNX_DTYPE_FLOAT)
                ((float *)y->data)[i] = (float)v;
            else
                ((double *)y->data)[i] = v;
        }
    } else {
        const int64_t *iv;
        size_t ni = op_attr_ints(n, "imputed_value_int64s", &iv);
        int64_t rep = op_attr_int(n, "replaced_value_int64", 0);
        for (int64_t i = 0; i < total; i++) {
            int64_t v = op_tensor_get_int(x, i);
            if (v == rep) v = iv[ni == 1 ? 0 : i % cols];
            if (x->dtype == ONNX_DTYPE_INT64)
                ((int64_t *)y->data)[i] = v;
            else
                ((int32_t *)y->data)[i] = (int32_t)v;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- Binarizer */

static kinfer_status *binarizer_infer(op_ctx *c)
{
    kinfer_status *st = xf_check_feature(c, op_input(c, 0));
    return st ? st : op_infer_like(c, 0, 0);
}

static kinfer_status *binarizer_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    float thr = op_attr_float(op_ctx_node(c), "threshold", 0.0f);
    int64_t n = op_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        switch (x->dtype) {
        case ONNX_DTYPE_FLOAT: {
            float v = ((const float *)x->data)[i];
            ((float *)y->data)[i] = v > thr ? 1.0f : 0.0f;
            break;
        }
        case ONNX_DTYPE_DOUBLE: {
            double v = ((const double *)x->data)[i];
            ((double *)y->data)[i] = v > thr ? 1.0 : 0.0;
            break;
        }
        case ONNX_DTYPE_INT64:
            ((int64_t *)y->data)[i] = ((const int64_t *)x->data)[i] > thr;
            break;
        default:
            ((int32_t *)y->data)[i] = ((const int32_t *)x->data)[i] > thr;
            break;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- ArrayFeatureExtractor */

static kinfer_status *afe_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *idx = op_input(c, 1);
    if (!ml__is_feature_type(x->dtype) && x->dtype != ONNX_DTYPE_STRING)
        return op_error(c, KINFER_EDTYPE, "input X has type %s", onnx_dtype_name(x->dtype));
    if (idx->dtype != ONNX_DTYPE_INT64)
        return op_error(c, KINFER_EDTYPE, "input Y must be int64, got %s",
                        onnx_dtype_name(idx->dtype));
    if (!op_shapes_known(c)) {
        op_set_output(c, 0, x->dtype, -1, x->dims);
        return NULL;
    }
    if (x->rank < 1) return op_error(c, KINFER_ESHAPE, "input X must have rank >= 1");
    int64_t k = op_tensor_numel(idx), last = x->dims[x->rank - 1], dims[ONNX_MAX_RANK];
    if (op_is_run(c))
        for (int64_t i = 0; i < k; i++) {
            int64_t v = ((const int64_t *)idx->data)[i];
            if (v < 0 || v >= last)
                return op_error(c, KINFER_EINVAL, "index %lld outside [0, %lld)", (long long)v,
                                (long long)last);
        }
    if (x->rank == 1) {
        dims[0] = 1, dims[1] = k;
        op_set_output(c, 0, x->dtype, 2, dims);
    } else {
        memcpy(dims, x->dims, sizeof(dims));
        dims[x->rank - 1] = k;
        op_set_output(c, 0, x->dtype, x->rank, dims);
    }
    return NULL;
}

static kinfer_status *afe_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *idx = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int64_t k = op_tensor_numel(idx), last = x->dims[x->rank - 1];
    int64_t rows = last ? op_tensor_numel(x) / last : 0;
    size_t es = onnx_dtype_size(x->dtype);
    const int64_t *ix = idx->data;
    const char *src = x->data;
    char *dst = y->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++)
            memcpy(dst + (size_t)(r * k + i) * es, src + (size_t)(r * last + ix[i]) * es, es);
    return NULL;
}

/* ---------------------------------------------------------------- ZipMap */

typedef struct zipmap_state {
    op_tensor keys;
} zipmap_state;

static void zipmap_fini(void *p)
{
    free(p);
}

static kinfer_status *zipmap_init(const op_node *n, void **state)
{
    const int64_t *li;
    const char *const *ls;
    size_t ni = op_attr_ints(n, "classlabels_int64s", &li);
    size_t ns = op_attr_strings(n, "classlabels_strings", &ls);
    if ((ni == 0) == (ns == 0))
        return op_node_error(n, KINFER_EMODEL,
                             "exactly one of classlabels_int64s and classlabels_strings is needed");
    zipmap_state *s = calloc(1, sizeof(*s));
    if (!s) return op_node_error(n, KINFER_ENOMEM, "zipmap state");
    s->keys.dtype = ni ? ONNX_DTYPE_INT64 : ONNX_DTYPE_STRING;
    s->keys.rank = 1;
    s->keys.dims[0] = (int64_t)(ni ? ni : ns);
    /* The attribute arrays live as long as the model; the engine copies keys into outputs. */
    s->keys.data = ni ? (void *)(uintptr_t)li : (void *)(uintptr_t)ls;
    s->keys.kind = ONNX_VALUE_TENSOR;
    *state = s;
    return NULL;
}

static kinfer_status *zipmap_infer(op_ctx *c)
{
    const zipmap_state *s = op_ctx_state(c);
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t rows, cols;
    kinfer_status *st;
    if (x->dtype != ONNX_DTYPE_FLOAT)
        return op_error(c, KINFER_EDTYPE, "input X must be float, got %s",
                        onnx_dtype_name(x->dtype));
    if ((st = ml__rows_cols(c, x, &rows, &cols))) return st;
    if (cols >= 0 && cols != s->keys.dims[0])
        return op_error(c, KINFER_ESHAPE, "input X has %lld columns for %lld labels",
                        (long long)cols, (long long)s->keys.dims[0]);
    int64_t dims[2] = {rows, s->keys.dims[0]};
    op_set_output(c, 0, ONNX_DTYPE_FLOAT, op_shapes_known(c) ? 2 : -1, dims);
    if (y) {
        y->kind = ONNX_VALUE_SEQ_MAP;
        y->keys = &s->keys;
    }
    return NULL;
}

static kinfer_status *zipmap_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    memcpy(y->data, x->data, (size_t)op_tensor_numel(x) * sizeof(float));
    return NULL;
}

const op_def ml__transform_defs[ML_TRANSFORM_DEFS] = {
    {"ai.onnx.ml", "Scaler", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, scaler_infer, scaler_compute},
    {"ai.onnx.ml", "Normalizer", 1, OP_OPSET_MAX, 1, 1, 1, 1, norm_init, NULL, norm_infer,
     norm_compute},
    {"ai.onnx.ml", "Imputer", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, imputer_infer,
     imputer_compute},
    {"ai.onnx.ml", "Binarizer", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, binarizer_infer,
     binarizer_compute},
    {"ai.onnx.ml", "ArrayFeatureExtractor", 1, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, afe_infer,
     afe_compute},
    {"ai.onnx.ml", "ZipMap", 1, OP_OPSET_MAX, 1, 1, 1, 1, zipmap_init, zipmap_fini, zipmap_infer,
     zipmap_compute},
};
