/*
 * core_shape: kernels that move data without arithmetic: Reshape, Flatten, Squeeze, Unsqueeze
 * (a copy with a new shape), Shape, Size, Concat, Transpose, Slice, Expand, Pad, Tile, Constant,
 * ConstantOfShape and Range. At load time their inputs' data is often unknown: infer then sets
 * only the dtype (and rank where it is fixed).
 */
#include <math.h>

#include "core_tables.h"
#include "core_util.h"

static kinfer_status *unknown_shape(op_ctx *c, onnx_dtype dt)
{
    op_set_output(c, 0, dt, -1, NULL);
    return NULL;
}

static kinfer_status *copy_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    memcpy(op_output(c, 0)->data, x->data, (size_t)op_tensor_numel(x) * onnx_dtype_size(x->dtype));
    return NULL;
}

/* ---- Reshape ---- */
static kinfer_status *reshape_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *s = op_input(c, 1);
    int64_t shape[ONNX_MAX_RANK];
    int n;
    if (op_node_opset(op_ctx_node(c)) < 5) {
        const int64_t *a;
        n = (int)op_attr_ints(op_ctx_node(c), "shape", &a);
        if (n > ONNX_MAX_RANK) return op_error(c, KINFER_EUNSUPPORTED, "rank %d", n);
        if (a) memcpy(shape, a, (size_t)n * sizeof(int64_t));
    } else {
        if (!s || !s->data || !op_shapes_known(c)) return unknown_shape(c, x->dtype);
        if (s->dtype != ONNX_DTYPE_INT64) return op_error(c, KINFER_EMODEL, "shape must be int64");
        if ((n = core_read_ints(s, shape, ONNX_MAX_RANK)) < 0)
            return op_error(c, KINFER_EUNSUPPORTED, "shape rank");
    }
    if (!op_shapes_known(c)) return unknown_shape(c, x->dtype);
    int allowzero = (int)op_attr_int(op_ctx_node(c), "allowzero", 0);
    int64_t total = op_tensor_numel(x), known = 1;
    int infer_at = -1;
    for (int i = 0; i < n; i++) {
        if (shape[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return op_error(c, KINFER_ESHAPE, "shape[%d]=0 but input rank is %d", i, x->rank);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            if (infer_at >= 0) return op_error(c, KINFER_ESHAPE, "more than one -1 in shape");
            infer_at = i;
        } else if (shape[i] < 0)
            return op_error(c, KINFER_ESHAPE, "shape[%d]=%lld", i, (long long)shape[i]);
        else
            known *= shape[i];
    }
    if (infer_at >= 0) {
        if (!known || total % known)
            return op_error(c, KINFER_ESHAPE, "cannot reshape %lld elements", (long long)total);
        shape[infer_at] = total / known;
    } else if (known != total)
        return op_error(c, KINFER_ESHAPE, "cannot reshape %lld elements into %lld",
                        (long long)total, (long long)known);
    op_set_output(c, 0, x->dtype, n, shape);
    return NULL;
}

/* ---- Flatten ---- */
static kinfer_status *flatten_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, 2, NULL), NULL;
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 1), x->rank, 1);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    int64_t d[2] = {core_prod(x->dims, 0, axis), core_prod(x->dims, axis, x->rank)};
    op_set_output(c, 0, x->dtype, 2, d);
    return NULL;
}

/* ---- Squeeze / Unsqueeze (axes attribute before opset 13, input after) ---- */
static int read_axes(op_ctx *c, int64_t *axes, int max)
{
    if (op_node_opset(op_ctx_node(c)) < 13) {
        const int64_t *a;
        int n = (int)op_attr_ints(op_ctx_node(c), "axes", &a);
        if (n > max) return -2;
        if (a) memcpy(axes, a, (size_t)n * sizeof(int64_t));
        return n;
    }
    const op_tensor *t = op_input(c, 1);
    if (!t) return 0;
    if (!t->data) return -1;
    int n = core_read_ints(t, axes, max);
    return n < 0 ? -2 : n;
}

static kinfer_status *squeeze_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int64_t axes[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
    int na = read_axes(c, axes, ONNX_MAX_RANK);
    if (na == -2) return op_error(c, KINFER_EMODEL, "bad axes");
    if (na < 0 || !op_shapes_known(c)) return unknown_shape(c, x->dtype);
    int drop[ONNX_MAX_RANK] = {0}, r = 0;
    for (int i = 0; i < na; i++) {
        int a = core_axis(axes[i], x->rank, 0);
        if (a < 0 || x->dims[a] != 1)
            return op_error(c, KINFER_ESHAPE, "cannot squeeze axis %lld", (long long)axes[i]);
        drop[a] = 1;
    }
    for (int i = 0; i < x->rank; i++)
        if (!(na ? drop[i] : x->dims[i] == 1)) d[r++] = x->dims[i];
    op_set_output(c, 0, x->dtype, r, d);
    return NULL;
}

static kinfer_status *unsqueeze_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int64_t axes[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
    int na = read_axes(c, axes, ONNX_MAX_RANK);
    if (na == -2) return op_error(c, KINFER_EMODEL, "bad axes");
    if (na < 0 || !op_shapes_known(c)) return unknown_shape(c, x->dtype);
    int r = x->rank + na, ins[ONNX_MAX_RANK] = {0};
    if (r > ONNX_MAX_RANK) return op_error(c, KINFER_EUNSUPPORTED, "rank %d", r);
    for (int i = 0; i < na; i++) {
        int a = core_axis(axes[i], r, 0);
        if (a < 0 || ins[a]) return op_error(c, KINFER_EMODEL, "bad axis %lld", (long long)axes[i]);
        ins[a] = 1;
    }
    for (int i = 0, k = 0; i < r; i++) d[i] = ins[i] ? 1 : x->dims[k++];
    op_set_output(c, 0, x->dtype, r, d);
    return NULL;
}

/* ---- Shape, Size ---- */
static void shape_range(op_ctx *c, int rank, int *b, int *e)
{
    const op_node *n = op_ctx_node(c);
    int64_t s = op_attr_int(n, "start", 0), t = op_attr_int(n, "end", rank);
    if (s < 0) s += rank;
    if (t < 0) t += rank;
    *b = (int)(s < 0 ? 0 : s > rank ? rank : s);
    *e = (int)(t < 0 ? 0 : t > rank ? rank : t);
    if (*e < *b) *e = *b;
}

static kinfer_status *shape_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (x->rank < 0) return op_set_output(c, 0, ONNX_DTYPE_INT64, 1, NULL), NULL;
    int b, e;
    shape_range(c, x->rank, &b, &e);
    int64_t d = e - b;
    op_set_output(c, 0, ONNX_DTYPE_INT64, 1, &d);
    return NULL;
}

static kinfer_status *shape_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int b, e;
    shape_range(c, x->rank, &b, &e);
    for (int i = b; i < e; i++) ((int64_t *)op_output(c, 0)->data)[i - b] = x->dims[i];
    return NULL;
}

static kinfer_status *size_infer(op_ctx *c)
{
    op_set_output(c, 0, ONNX_DTYPE_INT64, 0, NULL);
    return NULL;
}

static kinfer_status *size_compute(op_ctx *c)
{
    *(int64_t *)op_output(c, 0)->data = op_tensor_numel(op_input(c, 0));
    return NULL;
}

/* ---- Concat ---- */
static kinfer_status *concat_infer(op_ctx *c)
{
    const op_tensor *x0 = op_input(c, 0);
    for (int i = 1; i < op_num_inputs(c); i++)
        if (op_input(c, i) && op_input(c, i)->dtype != x0->dtype)
            return op_error(c, KINFER_EMODEL, "input types differ");
    if (!op_shapes_known(c)) return unknown_shape(c, x0->dtype);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x0->rank, 0);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    int64_t d[ONNX_MAX_RANK];
    memcpy(d, x0->dims, sizeof(d));
    d[axis] = 0;
    for (int i = 0; i < op_num_inputs(c); i++) {
        const op_tensor *t = op_input(c, i);
        if (t->rank != x0->rank)
            return op_error(c, KINFER_ESHAPE, "input %d has rank %d, expected %d", i, t->rank,
                            x0->rank);
        for (int k = 0; k < t->rank; k++)
            if (k != axis && t->dims[k] != x0->dims[k])
                return op_error(c, KINFER_ESHAPE, "input %d dim %d differs", i, k);
        d[axis] += t->dims[axis];
    }
    op_set_output(c, 0, x0->dtype, x0->rank, d);
    return NULL;
}

static kinfer_status *concat_compute(op_ctx *c)
{
    op_tensor *y = op_output(c, 0);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), y->rank, 0);
    size_t es = onnx_dtype_size(y->dtype);
    int64_t outer = core_prod(y->dims, 0, axis),
            yrow = core_prod(y->dims, axis, y->rank) * (int64_t)es;
    int64_t off = 0;
    for (int i = 0; i < op_num_inputs(c); i++) {
        const op_tensor *t = op_input(c, i);
        int64_t row = core_prod(t->dims, axis, t->rank) * (int64_t)es;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)y->data + o * yrow + off, (const char *)t->data + o * row, (size_t)row);
        off += row;
    }
    return NULL;
}

/* ---- Transpose ---- */
static int transpose_perm(op_ctx *c, int rank, int *perm)
{
    const int64_t *p;
    size_t n = op_attr_ints(op_ctx_node(c), "perm", &p);
    if (!n) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return 0;
    }
    if ((int)n != rank) return -1;
    int seen[ONNX_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]]) return -1;
        seen[p[i]] = 1;
        perm[i] = (int)p[i];
    }
    return 0;
}

static kinfer_status *transpose_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (x->rank < 0) return unknown_shape(c, x->dtype);
    int perm[ONNX_MAX_RANK];
    if (transpose_perm(c, x->rank, perm)) return op_error(c, KINFER_EMODEL, "bad perm");
    int64_t d[ONNX_MAX_RANK];
    for (int i = 0; i < x->rank; i++) d[i] = x->dims[perm[i]];
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

static kinfer_status *transpose_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int perm[ONNX_MAX_RANK], r = x->rank;
    if (transpose_perm(c, r, perm)) return op_error(c, KINFER_EMODEL, "bad perm");
    int64_t xs[ONNX_MAX_RANK], st[ONNX_MAX_RANK], idx[ONNX_MAX_RANK] = {0};
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) xs[i] = s, s *= x->dims[i];
    for (int i = 0; i < r; i++) st[i] = xs[perm[i]];
    size_t es = onnx_dtype_size(x->dtype);
    int64_t n = op_tensor_numel(y);
    if (!n) return NULL;
    if (r == 0) return copy_compute(c);
    int64_t inner = y->dims[r - 1], is = st[r - 1];
    for (int64_t o = 0; o < n; o += inner) {
        int64_t off = 0;
        for (int d = 0; d < r - 1; d++) off += idx[d] * st[d];
        if (es == 4) {
            const uint32_t *xp = (const uint32_t *)x->data + off;
            uint32_t *yp = (uint32_t *)y->data + o;
            for (int64_t i = 0; i < inner; i++) yp[i] = xp[i * is];
        } else {
            for (int64_t i = 0; i < inner; i++)
                memcpy((char *)y->data + (o + i) * es, (const char *)x->data + (off + i * is) * es,
                       es);
        }
        for (int d = r - 2; d >= 0; d--) {
            if (++idx[d] < y->dims[d]) break;
            idx[d] = 0;
        }
    }
    return NULL;
}

/* ---- Slice (attributes before opset 10, inputs after) ---- */
typedef struct slice_spec {
    int64_t start[ONNX_MAX_RANK], step[ONNX_MAX_RANK], len[ONNX_MAX_RANK];
} slice_spec;

static kinfer_status *slice_plan(op_ctx *c, const op_tensor *x, slice_spec *sp, int *unknown)
{
    int64_t st[ONNX_MAX_RANK], en[ONNX_MAX_RANK], ax[ONNX_MAX_RANK], stp[ONNX_MAX_RANK];
    int ns, ne, na = -1, np = -1;
    *unknown = 0;
    if (op_node_opset(op_ctx_node(c)) < 10) {
        const int64_t *a;
        ns = (int)op_attr_ints(op_ctx_node(c), "starts", &a);
        if (ns > ONNX_MAX_RANK) return op_error(c, KINFER_EMODEL, "starts");
        if (a) memcpy(st, a, (size_t)ns * 8);
        ne = (int)op_attr_ints(op_ctx_node(c), "ends", &a);
        if (ne > ONNX_MAX_RANK) return op_error(c, KINFER_EMODEL, "ends");
        if (a) memcpy(en, a, (size_t)ne * 8);
        if (op_attr_has(op_ctx_node(c), "axes")) {
            na = (int)op_attr_ints(op_ctx_node(c), "axes", &a);
            if (na > ONNX_MAX_RANK) return op_error(c, KINFER_EMODEL, "axes");
            if (a) memcpy(ax, a, (size_t)na * 8);
        }
    } else {
        for (int i = 1; i < op_num_inputs(c); i++)
            if (op_input(c, i) && !op_input(c, i)->data) return *unknown = 1, NULL;
        ns = core_read_ints(op_input(c, 1), st, ONNX_MAX_RANK);
        ne = core_read_ints(op_input(c, 2), en, ONNX_MAX_RANK);
        if (op_input(c, 3)) na = core_read_ints(op_input(c, 3), ax, ONNX_MAX_RANK);
        if (op_input(c, 4)) np = core_read_ints(op_input(c, 4), stp, ONNX_MAX_RANK);
        if (ns < 0 || ne < 0 || (op_input(c, 3) && na < 0) || (op_input(c, 4) && np < 0))
            return op_error(c, KINFER_EMODEL, "starts/ends/axes/steps must be int32/int64 lists");
    }
    if (!op_shapes_known(c)) return *unknown = 1, NULL;
    if (ns != ne || (na >= 0 && na != ns) || (np >= 0 && np != ns))
        return op_error(c, KINFER_EMODEL, "starts/ends/axes/steps lengths differ");
    for (int d = 0; d < x->rank; d++) sp->start[d] = 0, sp->step[d] = 1, sp->len[d] = x->dims[d];
    for (int i = 0; i < ns; i++) {
        int a = core_axis(na >= 0 ? ax[i] : i, x->rank, 0);
        if (a < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
        int64_t dim = x->dims[a], s = st[i], e = en[i], step = np >= 0 ? stp[i] : 1;
        if (step == 0) return op_error(c, KINFER_EMODEL, "step 0");
        if (s < 0) s += dim;
        if (e < 0 && e > INT64_MIN / 2) e += dim;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            sp->len[a] = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            sp->len[a] = s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
        sp->start[a] = s;
        sp->step[a] = step;
    }
    return NULL;
}

static kinfer_status *slice_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    slice_spec sp;
    int unknown;
    kinfer_status *st = slice_plan(c, x, &sp, &unknown);
    if (st) return st;
    if (unknown) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    op_set_output(c, 0, x->dtype, x->rank, sp.len);
    return NULL;
}

static kinfer_status *slice_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    slice_spec sp;
    int unknown;
    kinfer_status *st = slice_plan(c, x, &sp, &unknown);
    if (st) return st;
    int r = x->rank;
    size_t es = onnx_dtype_size(x->dtype);
    int64_t xs[ONNX_MAX_RANK], s = 1, n = op_tensor_numel(y), idx[ONNX_MAX_RANK] = {0};
    for (int i = r - 1; i >= 0; i--) xs[i] = s, s *= x->dims[i];
    for (int64_t o = 0; o < n; o++) {
        int64_t off = 0;
        for (int d = 0; d < r; d++) off += (sp.start[d] + idx[d] * sp.step[d]) * xs[d];
        memcpy((char *)y->data + o * es, (const char *)x->data + off * es, es);
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < y->dims[d]) break;
            idx[d] = 0;
        }
    }
    return NULL;
}

/* ---- Expand ---- */
static kinfer_status *expand_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *s = op_input(c, 1);
    int64_t shape[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
    if (!s->data || !op_shapes_known(c)) return unknown_shape(c, x->dtype);
    int n = core_read_ints(s, shape, ONNX_MAX_RANK);
    if (n < 0) return op_error(c, KINFER_EUNSUPPORTED, "shape");
    int r = n > x->rank ? n : x->rank;
    for (int i = 0; i < r; i++) {
        int xi = i - (r - x->rank), si = i - (r - n);
        int64_t a = xi >= 0 ? x->dims[xi] : 1, b = si >= 0 ? shape[si] : 1;
        if (a != b && a != 1 && b != 1)
            return op_error(c, KINFER_ESHAPE, "cannot expand dim %d (%lld to %lld)", i,
                            (long long)a, (long long)b);
        d[i] = a == 1 ? b : a;
    }
    op_set_output(c, 0, x->dtype, r, d);
    return NULL;
}

static kinfer_status *expand_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t sx[ONNX_MAX_RANK], n = op_tensor_numel(y);
    size_t es = onnx_dtype_size(y->dtype);
    core_bcast_strides(x, y, sx);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0, rem = i;
        for (int d = y->rank - 1; d >= 0; d--) {
            off += (rem % y->dims[d]) * sx[d];
            rem /= y->dims[d];
        }
        memcpy((char *)y->data + i * es, (const char *)x->data + off * es, es);
    }
    return NULL;
}

/* ---- Tile ---- */
static kinfer_status *tile_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *r = op_input(c, 1);
    int64_t rep[ONNX_MAX_RANK], d[ONNX_MAX_RANK];
    if (!r->data || !op_shapes_known(c)) return unknown_shape(c, x->dtype);
    if (core_read_ints(r, rep, ONNX_MAX_RANK) != x->rank)
        return op_error(c, KINFER_EMODEL, "repeats length");
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0) return op_error(c, KINFER_EMODEL, "negative repeat");
        d[i] = x->dims[i] * rep[i];
    }
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

static kinfer_status *tile_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t xs[ONNX_MAX_RANK], s = 1, n = op_tensor_numel(y);
    size_t es = onnx_dtype_size(y->dtype);
    for (int i = x->rank - 1; i >= 0; i--) xs[i] = s, s *= x->dims[i];
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0, rem = i;
        for (int d = y->rank - 1; d >= 0; d--) {
            off += ((rem % y->dims[d]) % x->dims[d]) * xs[d];
            rem /= y->dims[d];
        }
        memcpy((char *)y->data + i * es, (const char *)x->data + off * es, es);
    }
    return NULL;
}

/* ---- Constant, ConstantOfShape, Range ---- */
static kinfer_status *constant_infer(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    const op_tensor *t = op_attr_tensor(n, "value");
    if (t) return op_set_output(c, 0, t->dtype, t->rank, t->dims), NULL;
    const int64_t *iv;
    const float *fv;
    int64_t cnt;
    if (op_attr_has(n, "value_float") || op_attr_has(n, "value_int"))
        return op_set_output(c, 0,
                             op_attr_has(n, "value_float") ? ONNX_DTYPE_FLOAT : ONNX_DTYPE_INT64, 0,
                             NULL),
               NULL;
    if ((cnt = (int64_t)op_attr_floats(n, "value_floats", &fv)) || op_attr_has(n, "value_floats"))
        return op_set_output(c, 0, ONNX_DTYPE_FLOAT, 1, &cnt), NULL;
    if ((cnt = (int64_t)op_attr_ints(n, "value_ints", &iv)) || op_attr_has(n, "value_ints"))
        return op_set_output(c, 0, ONNX_DTYPE_INT64, 1, &cnt), NULL;
    return op_error(c, KINFER_EUNSUPPORTED,
                    "Constant without value/value_float(s)/value_int(s) (sparse or string)");
}

static kinfer_status *constant_compute(op_ctx *c)
{
    const op_node *n = op_ctx_node(c);
    op_tensor *y = op_output(c, 0);
    const op_tensor *t = op_attr_tensor(n, "value");
    int64_t cnt = op_tensor_numel(y);
    const int64_t *iv;
    const float *fv;
    if (t)
        memcpy(y->data, t->data, (size_t)cnt * onnx_dtype_size(t->dtype));
    else if (op_attr_has(n, "value_float"))
        *(float *)y->data = op_attr_float(n, "value_float", 0);
    else if (op_attr_has(n, "value_int"))
        *(int64_t *)y->data = op_attr_int(n, "value_int", 0);
    else if (op_attr_floats(n, "value_floats", &fv))
        memcpy(y->data, fv, (size_t)cnt * 4);
    else if (op_attr_ints(n, "value_ints", &iv))
        memcpy(y->data, iv, (size_t)cnt * 8);
    return NULL;
}

static kinfer_status *cos_infer(op_ctx *c)
{
    const op_tensor *v = op_attr_tensor(op_ctx_node(c), "value"), *s = op_input(c, 0);
    onnx_dtype dt = v ? v->dtype : ONNX_DTYPE_FLOAT;
    if (v && op_tensor_numel(v) != 1)
        return op_error(c, KINFER_EMODEL, "value must have one element");
    if (dt == ONNX_DTYPE_STRING) return op_error(c, KINFER_EUNSUPPORTED, "string value");
    int64_t d[ONNX_MAX_RANK];
    if (!s->data)
        return op_set_output(c, 0, dt, s->rank == 1 && s->dims[0] >= 0 ? (int)s->dims[0] : -1,
                             NULL),
               NULL;
    int n = core_read_ints(s, d, ONNX_MAX_RANK);
    if (n < 0) return op_error(c, KINFER_EUNSUPPORTED, "shape");
    for (int i = 0; i < n; i++)
        if (d[i] < 0) return op_error(c, KINFER_ESHAPE, "negative dim");
    op_set_output(c, 0, dt, n, d);
    return NULL;
}

static kinfer_status *cos_compute(op_ctx *c)
{
    const op_tensor *v = op_attr_tensor(op_ctx_node(c), "value");
    op_tensor *y = op_output(c, 0);
    size_t es = onnx_dtype_size(y->dtype);
    int64_t n = op_tensor_numel(y);
    for (int64_t i = 0; i < n; i++) {
        if (v)
            memcpy((char *)y->data + i * es, v->data, es);
        else
            ((float *)y->data)[i] = 0;
    }
    return NULL;
}

static kinfer_status *range_infer(op_ctx *c)
{
    const op_tensor *s = op_input(c, 0), *l = op_input(c, 1), *d = op_input(c, 2);
    if (s->dtype != l->dtype || s->dtype != d->dtype || !core_is_numeric(s->dtype))
        return op_error(c, KINFER_EMODEL, "start/limit/delta types");
    if (!s->data || !l->data || !d->data) return op_set_output(c, 0, s->dtype, 1, NULL), NULL;
    double a = op_tensor_get_double(s, 0), b = op_tensor_get_double(l, 0),
           e = op_tensor_get_double(d, 0);
    if (e == 0) return op_error(c, KINFER_EMODEL, "delta 0");
    double cnt = ceil((b - a) / e);
    int64_t n = cnt > 0 ? (int64_t)cnt : 0;
    if (n > ((int64_t)1 << 32)) return op_error(c, KINFER_ETOOBIG, "range of %lld", (long long)n);
    op_set_output(c, 0, s->dtype, 1, &n);
    return NULL;
}

static kinfer_status *range_compute(op_ctx *c)
{
    const op_tensor *s = op_input(c, 0), *d = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    int64_t n = op_tensor_numel(y);
    if (core_is_float(s->dtype)) {
        double a = op_tensor_get_double(s, 0), e = op_tensor_get_double(d, 0);
        for (int64_t i = 0; i < n; i++) core_store_double(y, i, a + (double)i * e);
    } else {
        int64_t a = op_tensor_get_int(s, 0), e = op_tensor_get_int(d, 0);
        for (int64_t i = 0; i < n; i++) core_store_double(y, i, (double)(a + i * e));
    }
    return NULL;
}

const op_def core_shape_ops[] = {
    {"", "Reshape", 1, OP_OPSET_MAX, 1, 2, 1, 1, NULL, NULL, reshape_infer, copy_compute},
    {"", "Flatten", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, flatten_infer, copy_compute},
    {"", "Squeeze", 1, OP_OPSET_MAX, 1, 2, 1, 1, NULL, NULL, squeeze_infer, copy_compute},
    {"", "Unsqueeze", 1, OP_OPSET_MAX, 1, 2, 1, 1, NULL, NULL, unsqueeze_infer, copy_compute},
    {"", "Shape", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, shape_infer, shape_compute},
    {"", "Size", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, size_infer, size_compute},
    {"", "Concat", 4, OP_OPSET_MAX, 1, 4096, 1, 1, NULL, NULL, concat_infer, concat_compute},
    {"", "Transpose", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, transpose_infer, transpose_compute},
    {"", "Slice", 1, OP_OPSET_MAX, 1, 5, 1, 1, NULL, NULL, slice_infer, slice_compute},
    {"", "Expand", 8, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, expand_infer, expand_compute},
    {"", "Tile", 6, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, tile_infer, tile_compute},
    {"", "Constant", 1, OP_OPSET_MAX, 0, 0, 1, 1, NULL, NULL, constant_infer, constant_compute},
    {"", "ConstantOfShape", 9, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, cos_infer, cos_compute},
    {"", "Range", 11, OP_OPSET_MAX, 3, 3, 1, 1, NULL, NULL, range_infer, range_compute},
};
const size_t core_shape_count = sizeof(core_shape_ops) / sizeof(core_shape_ops[0]);
