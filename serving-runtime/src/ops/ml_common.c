/*
 * ml_common: shared helpers of the ai.onnx.ml kernels (see ml_common.h). The post-transform
 * formulas follow onnxruntime's float arithmetic on purpose: kinfer is checked against it, and a
 * more exact erfinv would disagree with every exported PROBIT model by ~1e-3.
 */
#include "ml_common.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kinfer_status *ml__parse_post(const op_node *n, ml_post *out)
{
    static const char *const names[] = {"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"};
    const char *s = op_attr_string(n, "post_transform", "NONE");
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (ml_post)i;
            return NULL;
        }
    return op_node_error(n, KINFER_EMODEL, "unknown post_transform '%s'", s);
}

float ml__logistic(float v)
{
    float e = 1.0f / (1.0f + expf(-fabsf(v)));
    return v < 0 ? 1.0f - e : e;
}

/* Winitzki's approximation (a = 0.147), as onnxruntime computes it. */
static float ml_erfinv(float x)
{
    float sgn = x < 0 ? -1.0f : 1.0f;
    x = (1 - x) * (1 + x);
    float lg = logf(x);
    float v = 2 / (3.14159f * 0.147f) + 0.5f * lg;
    float v2 = 1 / 0.147f * lg;
    float v3 = -v + sqrtf(v * v - v2);
    return sgn * sqrtf(v3);
}

float ml__probit(float v)
{
    return 1.41421356f * ml_erfinv(2 * v - 1);
}

void ml__post_row(ml_post p, float *s, int64_t n)
{
    float mx = -FLT_MAX, sum = 0;
    switch (p) {
    case ML_POST_NONE:
        break;
    case ML_POST_LOGISTIC:
        for (int64_t i = 0; i < n; i++) s[i] = ml__logistic(s[i]);
        break;
    case ML_POST_PROBIT:
        for (int64_t i = 0; i < n; i++) s[i] = ml__probit(s[i]);
        break;
    case ML_POST_SOFTMAX:
        for (int64_t i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
        for (int64_t i = 0; i < n; i++) sum += s[i] = expf(s[i] - mx);
        for (int64_t i = 0; i < n; i++) s[i] /= sum;
        break;
    case ML_POST_SOFTMAX_ZERO: {
        for (int64_t i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
        float e0 = expf(-mx);
        for (int64_t i = 0; i < n; i++) {
            if (s[i] > 0.0000001f || s[i] < -0.0000001f)
                sum += s[i] = expf(s[i] - mx);
            else
                s[i] *= e0;
        }
        for (int64_t i = 0; i < n; i++) s[i] /= sum;
        break;
    }
    }
}

float ml__to_float(double v)
{
    if (v > FLT_MAX) return INFINITY;
    if (v < -FLT_MAX) return -INFINITY;
    return (float)v;
}

int ml__is_feature_type(onnx_dtype dt)
{
    return dt == ONNX_DTYPE_FLOAT || dt == ONNX_DTYPE_DOUBLE || dt == ONNX_DTYPE_INT64 ||
           dt == ONNX_DTYPE_INT32;
}

kinfer_status *ml__rows_cols(op_ctx *c, const op_tensor *x, int64_t *n, int64_t *cols)
{
    if (x->rank == 1) {
        *n = 1;
        *cols = x->dims[0];
    } else if (x->rank == 2) {
        *n = x->dims[0];
        *cols = x->dims[1];
    } else if (x->rank < 0) {
        *n = *cols = -1;
    } else {
        return op_error(c, KINFER_ESHAPE, "input X must have rank 1 or 2, got rank %d", x->rank);
    }
    return NULL;
}

#define ML_READ(T, out_t)                                                                          \
    do {                                                                                           \
        const T *src = (const T *)x->data + off;                                                   \
        for (int64_t i = 0; i < n; i++) out[i] = (out_t)src[i];                                    \
    } while (0)

void ml__read_double(const op_tensor *x, int64_t off, int64_t n, double *out)
{
    switch (x->dtype) {
    case ONNX_DTYPE_FLOAT:
        ML_READ(float, double);
        break;
    case ONNX_DTYPE_DOUBLE:
        ML_READ(double, double);
        break;
    case ONNX_DTYPE_INT64:
        ML_READ(int64_t, double);
        break;
    case ONNX_DTYPE_INT32:
        ML_READ(int32_t, double);
        break;
    default:
        memset(out, 0, (size_t)n * sizeof(*out));
        break;
    }
}

void ml__read_float(const op_tensor *x, int64_t off, int64_t n, float *out)
{
    if (x->dtype == ONNX_DTYPE_DOUBLE) {
        const double *src = (const double *)x->data + off;
        for (int64_t i = 0; i < n; i++) out[i] = ml__to_float(src[i]);
        return;
    }
    switch (x->dtype) {
    case ONNX_DTYPE_FLOAT:
        ML_READ(float, float);
        break;
    case ONNX_DTYPE_DOUBLE:
        ML_READ(double, float);
        break;
    case ONNX_DTYPE_INT64:
        ML_READ(int64_t, float);
        break;
    case ONNX_DTYPE_INT32:
        ML_READ(int32_t, float);
        break;
    default:
        memset(out, 0, (size_t)n * sizeof(*out));
        break;
    }
}

kinfer_status *ml__attr_doubles(const op_node *n, const char *name, double **out, size_t *len)
{
    char tname[96];
    *out = NULL;
    *len = 0;
    const float *f = NULL;
    size_t nf = op_attr_floats(n, name, &f);
    snprintf(tname, sizeof(tname), "%s_as_tensor", name);
    const op_tensor *t = op_attr_tensor(n, tname);
    if (t && nf) return op_node_error(n, KINFER_EMODEL, "both %s and %s are set", name, tname);
    if (t) {
        if (t->dtype != ONNX_DTYPE_DOUBLE && t->dtype != ONNX_DTYPE_FLOAT)
            return op_node_error(n, KINFER_EMODEL, "%s must be a double or float tensor", tname);
        int64_t k = op_tensor_numel(t);
        if (k < 0) return op_node_error(n, KINFER_EMODEL, "%s has no shape", tname);
        nf = (size_t)k;
    }
    if (!nf) return NULL;
    double *d = malloc(nf * sizeof(double));
    if (!d) return op_node_error(n, KINFER_ENOMEM, "%s: %zu values", name, nf);
    for (size_t i = 0; i < nf; i++)
        d[i] = t ? (t->dtype == ONNX_DTYPE_DOUBLE ? ((const double *)t->data)[i]
                                                  : ((const float *)t->data)[i])
                 : f[i];
    *out = d;
    *len = nf;
    return NULL;
}
