/*
 * core_unary: elementwise one-input kernels (activations, math functions), Clip, Cast, Identity
 * and Dropout (inference: identity plus an all-true mask). Float and double; Neg/Abs/Sign also on
 * integers. Loops are simple enough for gcc to vectorize; large tensors split across threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core_util.h"
#include "core_tables.h"

typedef struct unary_job {
    const op_tensor *x;
    op_tensor *y;
    int code;
    float a, b; /* alpha/beta/min/max per op */
} unary_job;

enum {
    U_RELU,
    U_TANH,
    U_SIGMOID,
    U_SQRT,
    U_ERF,
    U_NEG,
    U_ABS,
    U_EXP,
    U_LOG,
    U_RECIP,
    U_FLOOR,
    U_CEIL,
    U_LEAKY,
    U_HSIGMOID,
    U_HSWISH,
    U_GELU,
    U_ELU,
    U_SELU,
    U_SOFTPLUS,
    U_SOFTSIGN,
    U_SIN,
    U_COS,
    U_SIGN,
    U_CLIP,
    U_ROUND,
    U_TAN,
    U_ASIN,
    U_ACOS,
    U_ATAN,
    U_SINH,
    U_COSH,
    U_ASINH,
    U_ACOSH,
    U_ATANH,
    U_MISH,
    U_THRESHRELU,
    U_CELU,
    U_GELU_TANH,
};

static const struct {
    const char *name;
    int code;
} unary_names[] = {
    {"Relu", U_RELU},         {"Tanh", U_TANH},
    {"Sigmoid", U_SIGMOID},   {"Sqrt", U_SQRT},
    {"Erf", U_ERF},           {"Neg", U_NEG},
    {"Abs", U_ABS},           {"Exp", U_EXP},
    {"Log", U_LOG},           {"Reciprocal", U_RECIP},
    {"Floor", U_FLOOR},       {"Ceil", U_CEIL},
    {"LeakyRelu", U_LEAKY},   {"HardSigmoid", U_HSIGMOID},
    {"HardSwish", U_HSWISH},  {"Gelu", U_GELU},
    {"Elu", U_ELU},           {"Selu", U_SELU},
    {"Softplus", U_SOFTPLUS}, {"Softsign", U_SOFTSIGN},
    {"Sin", U_SIN},           {"Cos", U_COS},
    {"Sign", U_SIGN},         {"Clip", U_CLIP},
    {"Round", U_ROUND},       {"Tan", U_TAN},
    {"Asin", U_ASIN},         {"Acos", U_ACOS},
    {"Atan", U_ATAN},         {"Sinh", U_SINH},
    {"Cosh", U_COSH},         {"Asinh", U_ASINH},
    {"Acosh", U_ACOSH},       {"Atanh", U_ATANH},
    {"Mish", U_MISH},         {"ThresholdedRelu", U_THRESHRELU},
    {"Celu", U_CELU},
};

static int unary_code(const op_node *n)
{
    const char *t = op_node_op_type(n);
    for (size_t i = 0; i < sizeof(unary_names) / sizeof(unary_names[0]); i++)
        if (!strcmp(unary_names[i].name, t)) return unary_names[i].code;
    return -1;
}

static double apply(int code, double x, double a, double b)
{
    switch (code) {
    case U_RELU:
        return x > 0 ? x : 0;
    case U_TANH:
        return tanh(x);
    case U_SIGMOID:
        return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case U_SQRT:
        return sqrt(x);
    case U_ERF:
        return erf(x);
    case U_NEG:
        return -x;
    case U_ABS:
        return fabs(x);
    case U_EXP:
        return exp(x);
    case U_LOG:
        return log(x);
    case U_RECIP:
        return 1 / x;
    case U_FLOOR:
        return floor(x);
    case U_CEIL:
        return ceil(x);
    case U_LEAKY:
        return x >= 0 ? x : a * x;
    case U_HSIGMOID:
        return fmax(0, fmin(1, a * x + b));
    case U_HSWISH:
        return x * fmax(0, fmin(1, x / 6 + 0.5));
    case U_GELU:
        return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case U_GELU_TANH:
        return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case U_ELU:
        return x >= 0 ? x : a * (exp(x) - 1);
    case U_SELU:
        return x > 0 ? b * x : b * (a * exp(x) - a);
    case U_SOFTPLUS:
        return x > 20 ? x : log1p(exp(x));
    case U_SOFTSIGN:
        return x / (1 + fabs(x));
    case U_SIN:
        return sin(x);
    case U_COS:
        return cos(x);
    case U_TAN:
        return tan(x);
    case U_ASIN:
        return asin(x);
    case U_ACOS:
        return acos(x);
    case U_ATAN:
        return atan(x);
    case U_SINH:
        return sinh(x);
    case U_COSH:
        return cosh(x);
    case U_ASINH:
        return asinh(x);
    case U_ACOSH:
        return acosh(x);
    case U_ATANH:
        return atanh(x);
    case U_SIGN:
        return x > 0 ? 1 : x < 0 ? -1 : 0;
    case U_CLIP:
        return x < a ? a : x > b ? b : x;
    case U_ROUND:
        return nearbyint(x);
    case U_MISH:
        return x * tanh(log1p(exp(x)));
    case U_THRESHRELU:
        return x > a ? x : 0;
    case U_CELU:
        return fmax(0, x) + fmin(0, a * (exp(x / a) - 1));
    }
    return x;
}

/* erf as a rational polynomial on [-4, 4] (the Eigen/TensorFlow float approximation; max error
 * 4e-7 against libm's erf): no libm call, so the Erf and Gelu loops vectorize. */
static inline float fast_erf(float x)
{
    x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return p / q;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
unary_rows(void *arg, int ith, int nth)
{
    unary_job *j = arg;
    int64_t b, e;
    op_split(op_tensor_numel(j->x), ith, nth, &b, &e);
    if (j->x->dtype == ONNX_DTYPE_FLOAT) {
        const float *x = j->x->data;
        float *y = j->y->data;
        /* The hot activations get their own float loops (vectorizable, no libm double calls). */
        switch (j->code) {
        case U_RELU:
            for (int64_t i = b; i < e; i++) y[i] = x[i] > 0 ? x[i] : 0;
            return;
        case U_CLIP:
            for (int64_t i = b; i < e; i++) y[i] = x[i] < j->a ? j->a : x[i] > j->b ? j->b : x[i];
            return;
        case U_SIGMOID:
            for (int64_t i = b; i < e; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
            return;
        case U_TANH:
            for (int64_t i = b; i < e; i++) y[i] = tanhf(x[i]);
            return;
        case U_EXP:
            for (int64_t i = b; i < e; i++) y[i] = expf(x[i]);
            return;
        case U_SQRT:
            for (int64_t i = b; i < e; i++) y[i] = sqrtf(x[i]);
            return;
        case U_ERF:
            for (int64_t i = b; i < e; i++) y[i] = isnan(x[i]) ? x[i] : fast_erf(x[i]);
            return;
        case U_GELU:
            for (int64_t i = b; i < e; i++)
                y[i] = 0.5f * x[i] * (1.0f + fast_erf(x[i] * 0.70710678f));
            return;
        default:
            for (int64_t i = b; i < e; i++) y[i] = (float)apply(j->code, x[i], j->a, j->b);
            return;
        }
    }
    if (j->x->dtype == ONNX_DTYPE_DOUBLE) {
        const double *x = j->x->data;
        double *y = j->y->data;
        for (int64_t i = b; i < e; i++) y[i] = apply(j->code, x[i], j->a, j->b);
        return;
    }
    /* Integers: Neg, Abs, Sign, Clip, Relu (checked in infer). */
    for (int64_t i = b; i < e; i++) {
        int64_t v = op_tensor_get_int(j->x, i), r;
        switch (j->code) {
        case U_NEG:
            r = -v;
            break;
        case U_ABS:
            r = v < 0 ? -v : v;
            break;
        case U_SIGN:
            r = v > 0 ? 1 : v < 0 ? -1 : 0;
            break;
        case U_RELU:
            r = v > 0 ? v : 0;
            break;
        case U_CLIP:
            r = v < (int64_t)j->a ? (int64_t)j->a : v > (int64_t)j->b ? (int64_t)j->b : v;
            break;
        default:
            r = v;
        }
        switch (j->x->dtype) {
        case ONNX_DTYPE_INT64:
            ((int64_t *)j->y->data)[i] = r;
            break;
        case ONNX_DTYPE_INT32:
            ((int32_t *)j->y->data)[i] = (int32_t)r;
            break;
        case ONNX_DTYPE_INT8:
            ((int8_t *)j->y->data)[i] = (int8_t)r;
            break;
        case ONNX_DTYPE_UINT8:
            ((uint8_t *)j->y->data)[i] = (uint8_t)r;
            break;
        case ONNX_DTYPE_INT16:
            ((int16_t *)j->y->data)[i] = (int16_t)r;
            break;
        case ONNX_DTYPE_UINT16:
            ((uint16_t *)j->y->data)[i] = (uint16_t)r;
            break;
        case ONNX_DTYPE_UINT32:
            ((uint32_t *)j->y->data)[i] = (uint32_t)r;
            break;
        case ONNX_DTYPE_UINT64:
            ((uint64_t *)j->y->data)[i] = (uint64_t)r;
            break;
        default:
            break;
        }
    }
}

static kinfer_status *unary_infer(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    int code = unary_code(n);
    onnx_dtype dt = op_input(c, 0)->dtype;
    int int_ok =
        code == U_NEG || code == U_ABS || code == U_SIGN || code == U_CLIP || code == U_RELU;
    if (!core_is_float(dt) && !(int_ok && core_is_numeric(dt)))
        return op_error(c, KINFER_EUNSUPPORTED, "input type %s", onnx_dtype_name(dt));
    if (code == U_GELU && strcmp(op_attr_string(n, "approximate", "none"), "none") &&
        strcmp(op_attr_string(n, "approximate", "none"), "tanh"))
        return op_error(c, KINFER_EUNSUPPORTED, "approximate='%s'",
                        op_attr_string(n, "approximate", ""));
    if (code == U_CLIP)
        for (int i = 1; i < op_num_inputs(c); i++)
            if (op_input(c, i) && op_input(c, i)->dtype != dt)
                return op_error(c, KINFER_EMODEL, "min/max type differs from input");
    return op_infer_like(c, 0, 0);
}

static kinfer_status *unary_compute(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    unary_job j = {op_input(c, 0), op_output(c, 0), unary_code(n), 0, 0};
    switch (j.code) {
    case U_LEAKY:
        j.a = op_attr_float(n, "alpha", 0.01f);
        break;
    case U_HSIGMOID:
        j.a = op_attr_float(n, "alpha", 0.2f);
        j.b = op_attr_float(n, "beta", 0.5f);
        break;
    case U_ELU:
        j.a = op_attr_float(n, "alpha", 1.0f);
        break;
    case U_CELU:
        j.a = op_attr_float(n, "alpha", 1.0f);
        break;
    case U_THRESHRELU:
        j.a = op_attr_float(n, "alpha", 1.0f);
        break;
    case U_SELU:
        j.a = op_attr_float(n, "alpha", 1.67326319217681884765625f);
        j.b = op_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case U_GELU:
        if (!strcmp(op_attr_string(n, "approximate", "none"), "tanh")) j.code = U_GELU_TANH;
        break;
    case U_CLIP: {
        int int_t = !core_is_float(j.x->dtype);
        j.a = int_t ? -2147483648.0f : -INFINITY;
        j.b = int_t ? 2147483647.0f : INFINITY;
        if (op_node_opset(n) < 11) {
            j.a = op_attr_float(n, "min", -INFINITY);
            j.b = op_attr_float(n, "max", INFINITY);
        } else {
            const op_tensor *lo = op_input(c, 1), *hi = op_input(c, 2);
            if (lo && op_tensor_numel(lo) >= 1) j.a = (float)op_tensor_get_double(lo, 0);
            if (hi && op_tensor_numel(hi) >= 1) j.b = (float)op_tensor_get_double(hi, 0);
        }
        break;
    }
    }
    if (op_tensor_numel(j.x) >= CORE_PAR_MIN)
        op_parallel(c, unary_rows, &j);
    else
        unary_rows(&j, 0, 1);
    return NULL;
}

/* ---- Not ---- */
static kinfer_status *not_infer(op_ctx *c)
{
    if (op_input(c, 0)->dtype != ONNX_DTYPE_BOOL)
        return op_error(c, KINFER_EMODEL, "input must be bool");
    return op_infer_like(c, 0, 0);
}

static kinfer_status *not_compute(op_ctx *c)
{
    const uint8_t *x = op_input(c, 0)->data;
    uint8_t *y = op_output(c, 0)->data;
    for (int64_t i = 0, n = op_tensor_numel(op_input(c, 0)); i < n; i++) y[i] = !x[i];
    return NULL;
}

/* ---- Identity, Dropout ---- */

static kinfer_status *identity_infer(op_ctx *c)
{
    const op_tensor *train = op_input(c, 2);
    if (train && train->data && op_tensor_get_int(train, 0))
        return op_error(c, KINFER_EUNSUPPORTED, "training_mode=1 (inference only)");
    if (!strcmp(op_node_op_type(op_ctx_node(c)), "Dropout") && op_node_opset(op_ctx_node(c)) < 7 &&
        op_attr_int(op_ctx_node(c), "is_test", 0) == 0)
        return op_error(c, KINFER_EUNSUPPORTED, "is_test=0 (inference only)");
    op_infer_like(c, 0, 0);
    op_tensor *mask = op_output(c, 1);
    if (mask) op_set_output(c, 1, ONNX_DTYPE_BOOL, op_input(c, 0)->rank, op_input(c, 0)->dims);
    return NULL;
}

static kinfer_status *identity_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t n = op_tensor_numel(x);
    memcpy(y->data, x->data, (size_t)n * onnx_dtype_size(x->dtype));
    op_tensor *mask = op_output(c, 1);
    if (mask) memset(mask->data, 1, (size_t)n);
    return NULL;
}

/* ---- Cast ---- */

static kinfer_status *cast_infer(op_ctx *c)
{
    onnx_dtype to = (onnx_dtype)op_attr_int(op_ctx_node(c), "to", 0);
    onnx_dtype from = op_input(c, 0)->dtype;
    if (to == ONNX_DTYPE_FLOAT16 || from == ONNX_DTYPE_FLOAT16 || !onnx_dtype_size(to))
        return op_error(c, KINFER_EUNSUPPORTED, "cast %s to %s", onnx_dtype_name(from),
                        onnx_dtype_name(to));
    op_infer_like(c, 0, 0);
    op_output(c, 0)->dtype = to;
    return NULL;
}

static kinfer_status *cast_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t n = op_tensor_numel(x);
    if (x->dtype == y->dtype) return identity_compute(c);
    if (x->dtype == ONNX_DTYPE_STRING) {
        for (int64_t i = 0; i < n; i++) {
            const char *s = ((char **)x->data)[i];
            double v = strtod(s, NULL);
            if (!strcasecmp(s, "nan")) v = NAN;
            core_store_double(y, i, v);
        }
        return NULL;
    }
    if (y->dtype == ONNX_DTYPE_STRING) {
        for (int64_t i = 0; i < n; i++) {
            char buf[64];
            if (core_is_float(x->dtype)) {
                double v = op_tensor_get_double(x, i);
                if (isnan(v))
                    snprintf(buf, sizeof buf, "NaN");
                else if (isinf(v))
                    snprintf(buf, sizeof buf, v > 0 ? "INF" : "-INF");
                else if (x->dtype == ONNX_DTYPE_FLOAT) { /* shortest text that reads back */
                    for (int prec = 1; prec <= 9; prec++) {
                        snprintf(buf, sizeof buf, "%.*g", prec, v);
                        if (strtof(buf, NULL) == (float)v) break;
                    }
                } else {
                    for (int prec = 1; prec <= 17; prec++) {
                        snprintf(buf, sizeof buf, "%.*g", prec, v);
                        if (strtod(buf, NULL) == v) break;
                    }
                }
            } else {
                snprintf(buf, sizeof buf, "%lld", (long long)op_tensor_get_int(x, i));
            }
            if (!(((char **)y->data)[i] = op_strdup(c, buf)))
                return op_error(c, KINFER_ENOMEM, "cast");
        }
        return NULL;
    }
    if (core_is_float(x->dtype))
        for (int64_t i = 0; i < n; i++) core_store_double(y, i, op_tensor_get_double(x, i));
    else if (x->dtype == ONNX_DTYPE_UINT64)
        for (int64_t i = 0; i < n; i++) core_store_double(y, i, (double)((uint64_t *)x->data)[i]);
    else if (core_is_float(y->dtype))
        for (int64_t i = 0; i < n; i++) core_store_double(y, i, (double)op_tensor_get_int(x, i));
    else
        for (int64_t i = 0; i < n; i++) {
            int64_t v = op_tensor_get_int(x, i);
            switch (y->dtype) {
            case ONNX_DTYPE_INT64:
                ((int64_t *)y->data)[i] = v;
                break;
            case ONNX_DTYPE_UINT64:
                ((uint64_t *)y->data)[i] = (uint64_t)v;
                break;
            default:
                core_store_double(y, i, (double)v);
            }
        }
    return NULL;
}

const op_def core_unary_ops[] = {
#define UNARY(name, since)                                                                         \
    {                                                                                              \
        "", name, since, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, unary_infer, unary_compute          \
    }
    UNARY("Relu", 1),
    UNARY("Tanh", 1),
    UNARY("Sigmoid", 1),
    UNARY("Sqrt", 1),
    UNARY("Erf", 9),
    UNARY("Neg", 1),
    UNARY("Abs", 1),
    UNARY("Exp", 1),
    UNARY("Log", 1),
    UNARY("Reciprocal", 1),
    UNARY("Floor", 1),
    UNARY("Ceil", 1),
    UNARY("LeakyRelu", 1),
    UNARY("HardSigmoid", 1),
    UNARY("HardSwish", 14),
    UNARY("Gelu", 20),
    UNARY("Elu", 1),
    UNARY("Selu", 1),
    UNARY("Softplus", 1),
    UNARY("Softsign", 1),
    UNARY("Sin", 7),
    UNARY("Cos", 7),
    UNARY("Tan", 7),
    UNARY("Asin", 7),
    UNARY("Acos", 7),
    UNARY("Atan", 7),
    UNARY("Sinh", 9),
    UNARY("Cosh", 9),
    UNARY("Asinh", 9),
    UNARY("Acosh", 9),
    UNARY("Atanh", 9),
    UNARY("Sign", 9),
    UNARY("Round", 11),
    UNARY("Mish", 18),
    UNARY("ThresholdedRelu", 10),
    UNARY("Celu", 12),
#undef UNARY
    {"", "Clip", 1, OP_OPSET_MAX, 1, 3, 1, 1, NULL, NULL, unary_infer, unary_compute},
    {"", "Not", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, not_infer, not_compute},
    {"", "Identity", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, identity_infer, identity_compute},
    {"", "Dropout", 1, OP_OPSET_MAX, 1, 3, 1, 2, NULL, NULL, identity_infer, identity_compute},
    {"", "Cast", 6, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, cast_infer, cast_compute},
};
const size_t core_unary_count = sizeof(core_unary_ops) / sizeof(core_unary_ops[0]);
