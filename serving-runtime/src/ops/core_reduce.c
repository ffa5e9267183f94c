/*
 * core_reduce: ReduceMean/Sum/Max/Min/Prod/SumSquare/L1/L2/LogSum/LogSumExp (axes as attribute,
 * or as input from opset 13 for ReduceSum and opset 18 for the rest; keepdims,
 * noop_with_empty_axes) and ArgMax/ArgMin (keepdims, select_last_index). Float, double, int32/64.
 */
#include <math.h>

#include "core_tables.h"
#include "core_util.h"

enum {
    R_MEAN,
    R_SUM,
    R_MAX,
    R_MIN,
    R_PROD,
    R_SUMSQ,
    R_L1,
    R_L2,
    R_LOGSUM,
    R_LOGSUMEXP,
    R_ARGMAX,
    R_ARGMIN
};
static const char *const red_names[] = {"ReduceMean",   "ReduceSum",       "ReduceMax", "ReduceMin",
                                        "ReduceProd",   "ReduceSumSquare", "ReduceL1",  "ReduceL2",
                                        "ReduceLogSum", "ReduceLogSumExp", "ArgMax",    "ArgMin"};

static int red_code(const op_node *n)
{
    for (int i = 0; i < (int)(sizeof(red_names) / sizeof(red_names[0])); i++)
        if (!strcmp(red_names[i], op_node_op_type(n))) return i;
    return -1;
}

/* Fills mask[d] = 1 for reduced axes. Returns 0, 1 if axes are not known yet, -1 if invalid. */
static int red_axes(op_ctx *c, int rank, int *mask, int *noop)
{
    const op_node *n = op_ctx_node(c);
    int code = red_code(n);
    int64_t axes[ONNX_MAX_RANK];
    int na;
    *noop = 0;
    memset(mask, 0, sizeof(int) * ONNX_MAX_RANK);
    if (code >= R_ARGMAX) {
        int a = core_axis(op_attr_int(n, "axis", 0), rank, 0);
        if (a < 0) return -1;
        mask[a] = 1;
        return 0;
    }
    int from_input = op_node_opset(n) >= (code == R_SUM ? 13 : 18);
    if (from_input) {
        const op_tensor *t = op_input(c, 1);
        if (t && !t->data) return 1;
        na = t ? core_read_ints(t, axes, ONNX_MAX_RANK) : 0;
        if (na < 0) return -1;
    } else {
        const int64_t *a;
        size_t cnt = op_attr_ints(n, "axes", &a);
        if (cnt > ONNX_MAX_RANK) return -1;
        na = (int)cnt;
        if (a) memcpy(axes, a, cnt * 8);
    }
    if (!na) {
        if (from_input && op_attr_int(n, "noop_with_empty_axes", 0))
            *noop = 1;
        else
            for (int d = 0; d < rank; d++) mask[d] = 1;
        return 0;
    }
    for (int i = 0; i < na; i++) {
        int a = core_axis(axes[i], rank, 0);
        if (a < 0) return -1;
        mask[a] = 1;
    }
    return 0;
}

static kinfer_status *red_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int code = red_code(op_ctx_node(c));
    if (!core_is_numeric(x->dtype))
        return op_error(c, KINFER_EUNSUPPORTED, "type %s", onnx_dtype_name(x->dtype));
    onnx_dtype dt = code >= R_ARGMAX ? ONNX_DTYPE_INT64 : x->dtype;
    if (!op_shapes_known(c)) return op_set_output(c, 0, dt, -1, NULL), NULL;
    int mask[ONNX_MAX_RANK], noop;
    int rc = red_axes(c, x->rank, mask, &noop);
    if (rc < 0) return op_error(c, KINFER_EMODEL, "axes out of range");
    if (rc > 0) return op_set_output(c, 0, dt, -1, NULL), NULL;
    int keep = (int)op_attr_int(op_ctx_node(c), "keepdims", 1), r = 0;
    int64_t d[ONNX_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        if (!mask[i] || noop)
            d[r++] = x->dims[i];
        else if (keep)
            d[r++] = 1;
        else if (x->dims[i] == 0 && code >= R_ARGMAX)
            return op_error(c, KINFER_ESHAPE, "arg of an empty axis");
    }
    op_set_output(c, 0, dt, r, d);
    return NULL;
}

static double red_init(int code)
{
    switch (code) {
    case R_MAX:
        return -INFINITY;
    case R_MIN:
        return INFINITY;
    case R_PROD:
        return 1;
    default:
        return 0;
    }
}

/* Float reductions over one contiguous run of axes [a, b): outer x red x inner blocks, which
 * covers LayerNorm-style last-axis means and spatial means without per-element index math. */
static int red_fast(op_ctx *c, int code, const op_tensor *x, op_tensor *y, const int *mask)
{
    int a = -1, b = -1, r = x->rank;
    for (int d = 0; d < r; d++)
        if (mask[d]) {
            if (a < 0)
                a = d;
            else if (b >= 0)
                return 0; /* a second run: not contiguous */
        } else if (a >= 0 && b < 0)
            b = d;
    if (a < 0 || x->dtype != ONNX_DTYPE_FLOAT || code >= R_ARGMAX || code == R_PROD ||
        code == R_L1 || code == R_LOGSUM || code == R_LOGSUMEXP)
        return 0;
    if (b < 0) b = r;
    int64_t outer = core_prod(x->dims, 0, a), red = core_prod(x->dims, a, b),
            inner = core_prod(x->dims, b, r);
    const float *xd = x->data;
    float *yd = y->data;
    float *acc = op_scratch(c, sizeof(float) * (size_t)(inner ? inner : 1));
    if (!acc || !red) return 0;
    for (int64_t o = 0; o < outer; o++) {
        const float *xo = xd + o * red * inner;
        if (inner == 1) {
            float v = code == R_MAX ? -INFINITY : code == R_MIN ? INFINITY : 0.0f;
            switch (code) {
            case R_MAX:
                for (int64_t i = 0; i < red; i++) v = xo[i] > v ? xo[i] : v;
                break;
            case R_MIN:
                for (int64_t i = 0; i < red; i++) v = xo[i] < v ? xo[i] : v;
                break;
            case R_SUMSQ:
            case R_L2:
                for (int64_t i = 0; i < red; i++) v += xo[i] * xo[i];
                break;
            default:
                for (int64_t i = 0; i < red; i++) v += xo[i];
                break;
            }
            yd[o] = code == R_MEAN ? v / (float)red : code == R_L2 ? sqrtf(v) : v;
            continue;
        }
        for (int64_t j = 0; j < inner; j++)
            acc[j] = code == R_MAX ? -INFINITY : code == R_MIN ? INFINITY : 0.0f;
        for (int64_t i = 0; i < red; i++) {
            const float *row = xo + i * inner;
            switch (code) {
            case R_MAX:
                for (int64_t j = 0; j < inner; j++) acc[j] = row[j] > acc[j] ? row[j] : acc[j];
                break;
            case R_MIN:
                for (int64_t j = 0; j < inner; j++) acc[j] = row[j] < acc[j] ? row[j] : acc[j];
                break;
            case R_SUMSQ:
            case R_L2:
                for (int64_t j = 0; j < inner; j++) acc[j] += row[j] * row[j];
                break;
            default:
                for (int64_t j = 0; j < inner; j++) acc[j] += row[j];
                break;
            }
        }
        for (int64_t j = 0; j < inner; j++)
            yd[o * inner + j] = code == R_MEAN ? acc[j] / (float)red
                                : code == R_L2 ? sqrtf(acc[j])
                                               : acc[j];
    }
    return 1;
}

static kinfer_status *red_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int code = red_code(op_ctx_node(c)), mask[ONNX_MAX_RANK], noop;
    if (red_axes(c, x->rank, mask, &noop) < 0)
        return op_error(c, KINFER_EMODEL, "axes out of range");
    int64_t ny = op_tensor_numel(y), nx = op_tensor_numel(x);
    if (noop) {
        memcpy(y->data, x->data, (size_t)nx * onnx_dtype_size(x->dtype));
        return NULL;
    }
    if (ny && red_fast(c, code, x, y, mask)) return NULL;
    double *acc = op_scratch(c, (size_t)(ny ? ny : 1) * sizeof(double));
    int64_t *cnt = op_scratch(c, (size_t)(ny ? ny : 1) * sizeof(int64_t));
    if (!acc || !cnt) return op_error(c, KINFER_ENOMEM, "reduce");
    for (int64_t i = 0; i < ny; i++) acc[i] = red_init(code), cnt[i] = 0;
    int last = (int)op_attr_int(op_ctx_node(c), "select_last_index", 0);
    /* Output strides over x's dims (0 on reduced axes). */
    int64_t os[ONNX_MAX_RANK], s = 1, red_n = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        if (mask[d])
            os[d] = 0, red_n *= x->dims[d];
        else
            os[d] = s, s *= x->dims[d];
    }
    /* Position along the reduced axes (for Arg*). */
    int64_t rs[ONNX_MAX_RANK];
    s = 1;
    for (int d = x->rank - 1; d >= 0; d--) rs[d] = mask[d] ? s : 0, s *= mask[d] ? x->dims[d] : 1;
    for (int64_t i = 0; i < nx; i++) {
        int64_t o = 0, ri = 0, rem = i;
        for (int d = x->rank - 1; d >= 0; d--) {
            int64_t idx = rem % x->dims[d];
            rem /= x->dims[d];
            o += idx * os[d];
            ri += idx * rs[d];
        }
        double v = op_tensor_get_double(x, i);
        switch (code) {
        case R_MEAN:
        case R_SUM:
        case R_LOGSUM:
            acc[o] += v;
            break;
        case R_MAX:
            acc[o] = v > acc[o] ? v : acc[o];
            break;
        case R_MIN:
            acc[o] = v < acc[o] ? v : acc[o];
            break;
        case R_PROD:
            acc[o] *= v;
            break;
        case R_SUMSQ:
        case R_L2:
            acc[o] += v * v;
            break;
        case R_L1:
            acc[o] += fabs(v);
            break;
        case R_LOGSUMEXP:
            acc[o] += exp(v);
            break;
        case R_ARGMAX:
        case R_ARGMIN: {
            int better = !cnt[o] || (code == R_ARGMAX ? (last ? v >= acc[o] : v > acc[o])
                                                      : (last ? v <= acc[o] : v < acc[o]));
            if (better) acc[o] = v, ((int64_t *)y->data)[o] = ri;
            cnt[o] = 1;
            break;
        }
        }
    }
    if (code >= R_ARGMAX) return NULL;
    for (int64_t o = 0; o < ny; o++) {
        double v = acc[o];
        switch (code) {
        case R_MEAN:
            v /= (double)(red_n ? red_n : 1);
            break;
        case R_L2:
            v = sqrt(v);
            break;
        case R_LOGSUM:
        case R_LOGSUMEXP:
            v = log(v);
            break;
        }
        core_store_double(y, o, v);
    }
    return NULL;
}

const op_def core_reduce_ops[] = {
#define RED(name)                                                                                  \
    {                                                                                              \
        "", name, 1, OP_OPSET_MAX, 1, 2, 1, 1, NULL, NULL, red_infer, red_compute                  \
    }
    RED("ReduceMean"),
    RED("ReduceSum"),
    RED("ReduceMax"),
    RED("ReduceMin"),
    RED("ReduceProd"),
    RED("ReduceSumSquare"),
    RED("ReduceL1"),
    RED("ReduceL2"),
    RED("ReduceLogSum"),
    RED("ReduceLogSumExp"),
#undef RED
    {"", "ArgMax", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, red_infer, red_compute},
    {"", "ArgMin", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, red_infer, red_compute},
};
const size_t core_reduce_count = sizeof(core_reduce_ops) / sizeof(core_reduce_ops[0]);
