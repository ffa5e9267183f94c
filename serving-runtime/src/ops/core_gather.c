/*
 * core_gather: index-driven kernels: Gather, GatherElements and Pad (constant/reflect/edge).
 * Every index is bounds-checked against the data it reads: a bad index is a KINFER_EINVAL status.
 */
#include "core_tables.h"
#include "core_util.h"

static kinfer_status *gather_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1);
    if (ix->dtype != ONNX_DTYPE_INT64 && ix->dtype != ONNX_DTYPE_INT32)
        return op_error(c, KINFER_EMODEL, "indices type");
    if (x->rank < 0 || ix->rank < 0) return op_set_output(c, 0, x->dtype, -1, NULL), NULL;
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    int r = x->rank - 1 + ix->rank;
    if (r > ONNX_MAX_RANK) return op_error(c, KINFER_EUNSUPPORTED, "rank %d", r);
    int64_t d[ONNX_MAX_RANK];
    int k = 0;
    for (int i = 0; i < axis; i++) d[k++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++) d[k++] = ix->dims[i];
    for (int i = axis + 1; i < x->rank; i++) d[k++] = x->dims[i];
    op_set_output(c, 0, x->dtype, r, d);
    return NULL;
}

static kinfer_status *gather_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0);
    int64_t outer = core_prod(x->dims, 0, axis), n = x->dims[axis],
            inner = core_prod(x->dims, axis + 1, x->rank);
    int64_t ni = op_tensor_numel(ix);
    size_t es = onnx_dtype_size(x->dtype), row = (size_t)inner * es;
    for (int64_t i = 0; i < ni; i++) {
        int64_t k = op_tensor_get_int(ix, i);
        if (k < -n || k >= n)
            return op_error(c, KINFER_EINVAL, "index %lld out of range [%lld, %lld)", (long long)k,
                            (long long)-n, (long long)n);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < ni; i++) {
            int64_t k = op_tensor_get_int(ix, i);
            if (k < 0) k += n;
            memcpy((char *)y->data + (o * ni + i) * row, (const char *)x->data + (o * n + k) * row,
                   row);
        }
    return NULL;
}

static kinfer_status *gel_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1);
    if (ix->dtype != ONNX_DTYPE_INT64 && ix->dtype != ONNX_DTYPE_INT32)
        return op_error(c, KINFER_EMODEL, "indices type");
    if (x->rank >= 0 && ix->rank >= 0 && x->rank != ix->rank)
        return op_error(c, KINFER_ESHAPE, "ranks differ");
    op_set_output(c, 0, x->dtype, ix->rank, ix->dims);
    return NULL;
}

static kinfer_status *gel_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    int64_t xs[ONNX_MAX_RANK], s = 1, n = op_tensor_numel(ix);
    size_t es = onnx_dtype_size(x->dtype);
    for (int d = x->rank - 1; d >= 0; d--) xs[d] = s, s *= x->dims[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0, rem = i;
        for (int d = ix->rank - 1; d >= 0; d--) {
            int64_t idx = rem % ix->dims[d];
            rem /= ix->dims[d];
            if (d == axis) {
                idx = op_tensor_get_int(ix, i);
                if (idx < 0) idx += x->dims[d];
            }
            if (idx < 0 || idx >= x->dims[d])
                return op_error(c, KINFER_EINVAL, "index out of range");
            off += idx * xs[d];
        }
        memcpy((char *)y->data + i * es, (const char *)x->data + off * es, es);
    }
    return NULL;
}

/* ---- Pad ---- */
static int pad_amounts(op_ctx *c, int rank, int64_t *pads, int *unknown)
{
    *unknown = 0;
    const op_node *n = op_ctx_node(c);
    if (op_node_opset(n) < 11) {
        const int64_t *p;
        size_t cnt = op_attr_ints(n, "pads", &p);
        if ((int)cnt != 2 * rank) return -1;
        if (p) memcpy(pads, p, cnt * 8);
        return 0;
    }
    const op_tensor *p = op_input(c, 1);
    if (!p) return -1;
    if (!p->data) return *unknown = 1, 0;
    int64_t raw[2 * ONNX_MAX_RANK];
    int cnt = core_read_ints(p, raw, 2 * ONNX_MAX_RANK);
    const op_tensor *ax = op_input(c, 3);
    if (ax) {
        int64_t axes[ONNX_MAX_RANK];
        if (!ax->data) return *unknown = 1, 0;
        int na = core_read_ints(ax, axes, ONNX_MAX_RANK);
        if (na < 0 || cnt != 2 * na) return -1;
        memset(pads, 0, sizeof(int64_t) * 2 * (size_t)rank);
        for (int i = 0; i < na; i++) {
            int a = core_axis(axes[i], rank, 0);
            if (a < 0) return -1;
            pads[a] = raw[i], pads[a + rank] = raw[i + na];
        }
        return 0;
    }
    if (cnt != 2 * rank) return -1;
    memcpy(pads, raw, (size_t)cnt * 8);
    return 0;
}

static kinfer_status *pad_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    const char *mode = op_attr_string(op_ctx_node(c), "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge"))
        return op_error(c, KINFER_EUNSUPPORTED, "mode '%s'", mode);
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    int64_t pads[2 * ONNX_MAX_RANK], d[ONNX_MAX_RANK];
    int unknown;
    if (pad_amounts(c, x->rank, pads, &unknown)) return op_error(c, KINFER_EMODEL, "pads");
    if (unknown) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    for (int i = 0; i < x->rank; i++) {
        d[i] = x->dims[i] + pads[i] + pads[i + x->rank];
        if (d[i] < 0) return op_error(c, KINFER_ESHAPE, "negative output dim");
        if (strcmp(mode, "constant") && (pads[i] > 0 || pads[i + x->rank] > 0) && x->dims[i] == 0)
            return op_error(c, KINFER_ESHAPE, "cannot %s-pad an empty axis", mode);
    }
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

static kinfer_status *pad_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *cv = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    const char *mode = op_attr_string(op_ctx_node(c), "mode", "constant");
    int64_t pads[2 * ONNX_MAX_RANK], xs[ONNX_MAX_RANK], s = 1, n = op_tensor_numel(y);
    int unknown, r = x->rank, m = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : 2;
    if (pad_amounts(c, r, pads, &unknown)) return op_error(c, KINFER_EMODEL, "pads");
    size_t es = onnx_dtype_size(x->dtype);
    for (int d = r - 1; d >= 0; d--) xs[d] = s, s *= x->dims[d];
    char fill[16] = {0};
    if (op_node_opset(op_ctx_node(c)) < 11) {
        double v = op_attr_float(op_ctx_node(c), "value", 0);
        op_tensor tmp = {.dtype = x->dtype, .data = fill};
        core_store_double(&tmp, 0, v);
    } else if (cv && op_tensor_numel(cv) >= 1 && cv->dtype == x->dtype && es <= sizeof fill) {
        memcpy(fill, cv->data, es);
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0, rem = i;
        int outside = 0;
        for (int d = r - 1; d >= 0; d--) {
            int64_t idx = rem % y->dims[d] - pads[d], dim = x->dims[d];
            rem /= y->dims[d];
            if (idx < 0 || idx >= dim) {
                if (m == 0)
                    outside = 1;
                else if (m == 2)
                    idx = idx < 0 ? 0 : dim - 1;
                else {
                    int64_t period = dim > 1 ? 2 * (dim - 1) : 1;
                    idx = ((idx % period) + period) % period;
                    if (idx >= dim) idx = period - idx;
                }
            }
            off += idx * xs[d];
        }
        memcpy((char *)y->data + i * es, outside ? fill : (const char *)x->data + off * es, es);
    }
    return NULL;
}

const op_def core_gather_ops[] = {
    {"", "Gather", 1, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, gather_infer, gather_compute},
    {"", "GatherElements", 11, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, gel_infer, gel_compute},
    {"", "Pad", 2, OP_OPSET_MAX, 1, 4, 1, 1, NULL, NULL, pad_infer, pad_compute},
};
const size_t core_gather_count = sizeof(core_gather_ops) / sizeof(core_gather_ops[0]);
