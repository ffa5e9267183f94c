/*
 * core_scatter: GatherND (batch_dims), ScatterND and ScatterElements/Scatter (reduction none, add,
 * mul, max, min). Every index is checked against the data it addresses.
 */
#include "core_tables.h"
#include "core_util.h"

static int is_index_type(onnx_dtype dt)
{
    return dt == ONNX_DTYPE_INT64 || dt == ONNX_DTYPE_INT32;
}

/* ---- GatherND ---- */
static kinfer_status *gnd_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1);
    if (!is_index_type(ix->dtype)) return op_error(c, KINFER_EMODEL, "indices type");
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, -1, NULL), NULL;
    int b = (int)op_attr_int(op_ctx_node(c), "batch_dims", 0);
    int64_t k = ix->rank ? ix->dims[ix->rank - 1] : 0;
    if (ix->rank < 1 || b < 0 || b >= ix->rank || b + k > x->rank)
        return op_error(c, KINFER_ESHAPE, "indices shape");
    int64_t d[ONNX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < ix->rank - 1; i++) d[r++] = ix->dims[i];
    for (int i = b + (int)k; i < x->rank; i++) {
        if (r >= ONNX_MAX_RANK) return op_error(c, KINFER_EUNSUPPORTED, "rank");
        d[r++] = x->dims[i];
    }
    op_set_output(c, 0, x->dtype, r, d);
    return NULL;
}

static kinfer_status *gnd_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int b = (int)op_attr_int(op_ctx_node(c), "batch_dims", 0);
    int64_t k = ix->dims[ix->rank - 1], nb = core_prod(x->dims, 0, b);
    int64_t per_batch = core_prod(ix->dims, b, ix->rank - 1),
            slice = core_prod(x->dims, b + (int)k, x->rank);
    int64_t xbatch = core_prod(x->dims, b, x->rank);
    size_t es = onnx_dtype_size(x->dtype);
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t q = 0; q < per_batch; q++) {
            int64_t row = bi * per_batch + q, off = 0;
            for (int64_t j = 0; j < k; j++) {
                int64_t dim = x->dims[b + j], v = op_tensor_get_int(ix, row * k + j);
                if (v < 0) v += dim;
                if (v < 0 || v >= dim) return op_error(c, KINFER_EINVAL, "index out of range");
                off = off * dim + v;
            }
            memcpy((char *)y->data + row * slice * (int64_t)es,
                   (const char *)x->data + (bi * xbatch + off * slice) * (int64_t)es,
                   (size_t)(slice * (int64_t)es));
        }
    return NULL;
}

/* ---- reductions shared by the scatters ---- */
static int red_mode(op_ctx *c)
{
    const char *r = op_attr_string(op_ctx_node(c), "reduction", "none");
    return !strcmp(r, "none")  ? 0
           : !strcmp(r, "add") ? 1
           : !strcmp(r, "mul") ? 2
           : !strcmp(r, "max") ? 3
           : !strcmp(r, "min") ? 4
                               : -1;
}

static void put(op_tensor *y, int64_t i, const op_tensor *u, int64_t j, int mode, size_t es)
{
    if (!mode) {
        memcpy((char *)y->data + i * (int64_t)es, (const char *)u->data + j * (int64_t)es, es);
        return;
    }
    double a = op_tensor_get_double(y, i), b = op_tensor_get_double(u, j);
    core_store_double(y, i,
                      mode == 1   ? a + b
                      : mode == 2 ? a * b
                      : mode == 3 ? (a > b ? a : b)
                                  : (a < b ? a : b));
}

static kinfer_status *scatter_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1), *u = op_input(c, 2);
    if (!is_index_type(ix->dtype) || u->dtype != x->dtype)
        return op_error(c, KINFER_EMODEL, "types");
    int m = red_mode(c);
    if (m < 0) return op_error(c, KINFER_EUNSUPPORTED, "reduction");
    if (m && (!core_is_numeric(x->dtype)))
        return op_error(c, KINFER_EUNSUPPORTED, "reduction on %s", onnx_dtype_name(x->dtype));
    return op_infer_like(c, 0, 0);
}

static kinfer_status *snd_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1), *u = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    size_t es = onnx_dtype_size(x->dtype);
    memcpy(y->data, x->data, (size_t)op_tensor_numel(x) * es);
    if (ix->rank < 1) return op_error(c, KINFER_ESHAPE, "indices rank");
    int64_t k = ix->dims[ix->rank - 1], rows = core_prod(ix->dims, 0, ix->rank - 1);
    if (k > x->rank) return op_error(c, KINFER_ESHAPE, "index depth");
    int64_t slice = core_prod(x->dims, (int)k, x->rank);
    if (op_tensor_numel(u) != rows * slice) return op_error(c, KINFER_ESHAPE, "updates shape");
    int mode = red_mode(c);
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t dim = x->dims[j], v = op_tensor_get_int(ix, r * k + j);
            if (v < 0) v += dim;
            if (v < 0 || v >= dim) return op_error(c, KINFER_EINVAL, "index out of range");
            off = off * dim + v;
        }
        for (int64_t s = 0; s < slice; s++) put(y, off * slice + s, u, r * slice + s, mode, es);
    }
    return NULL;
}

static kinfer_status *sel_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ix = op_input(c, 1), *u = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    size_t es = onnx_dtype_size(x->dtype);
    memcpy(y->data, x->data, (size_t)op_tensor_numel(x) * es);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0);
    if (axis < 0 || ix->rank != x->rank || u->rank != ix->rank)
        return op_error(c, KINFER_ESHAPE, "axis/ranks");
    for (int d = 0; d < ix->rank; d++)
        if (u->dims[d] != ix->dims[d]) return op_error(c, KINFER_ESHAPE, "updates shape");
    int mode = red_mode(c);
    int64_t xs[ONNX_MAX_RANK], s = 1, n = op_tensor_numel(ix);
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
        put(y, off, u, i, mode, es);
    }
    return NULL;
}

const op_def core_scatter_ops[] = {
    {"", "GatherND", 11, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, gnd_infer, gnd_compute},
    {"", "ScatterND", 11, OP_OPSET_MAX, 3, 3, 1, 1, NULL, NULL, scatter_infer, snd_compute},
    {"", "ScatterElements", 11, OP_OPSET_MAX, 3, 3, 1, 1, NULL, NULL, scatter_infer, sel_compute},
    {"", "Scatter", 9, 10, 3, 3, 1, 1, NULL, NULL, scatter_infer, sel_compute},
};
const size_t core_scatter_count = sizeof(core_scatter_ops) / sizeof(core_scatter_ops[0]);
