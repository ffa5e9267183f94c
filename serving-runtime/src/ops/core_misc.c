/*
 * core_misc: less common default-domain kernels that real exports and the node suite contain:
 * Split, CastLike, Hardmax, CumSum, DepthToSpace, SpaceToDepth, TopK, OneHot, IsInf, IsNaN, PRelu,
 * Shrink, Trilu, EyeLike, NonZero, Compress, BitShift. Simple loops; none is on a hot path of the
 * models kinfer is tuned for.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core_tables.h"
#include "core_util.h"

/* ---- Split ---- */
static int split_sizes(op_ctx *c, const op_tensor *x, int axis, int64_t *sz)
{
    const op_node *n = op_ctx_node(c);
    int nout = op_num_outputs(c);
    int64_t dim = x->dims[axis];
    const op_tensor *s = op_input(c, 1);
    int cnt = -1;
    if (op_node_opset(n) < 13) {
        const int64_t *a;
        size_t k = op_attr_ints(n, "split", &a);
        if (k) {
            if ((int)k != nout) return -1;
            memcpy(sz, a, k * 8);
            cnt = (int)k;
        }
    } else if (s) {
        if (!s->data) return 1;
        cnt = core_read_ints(s, sz, 4096);
        if (cnt != nout) return -1;
    }
    if (cnt < 0) {
        /* Equal parts; opset 18 allows a smaller last part. */
        int64_t per = (dim + nout - 1) / nout;
        if (op_node_opset(n) < 18 && dim % nout) return -1;
        for (int i = 0; i < nout; i++) sz[i] = i < nout - 1 ? per : dim - per * (nout - 1);
    }
    int64_t tot = 0;
    for (int i = 0; i < nout; i++) {
        if (sz[i] < 0) return -1;
        tot += sz[i];
    }
    return tot == dim ? 0 : -1;
}

static kinfer_status *split_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int nout = op_num_outputs(c);
    if (nout > 4096) return op_error(c, KINFER_EUNSUPPORTED, "too many outputs");
    int unknown = !op_shapes_known(c);
    int axis = x->rank >= 0 ? core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0) : 0;
    if (x->rank >= 0 && axis < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    int64_t *sz = unknown ? NULL : op_scratch(c, sizeof(int64_t) * 4096);
    int rc = 1;
    if (!unknown && !sz) return op_error(c, KINFER_ENOMEM, "split");
    if (!unknown && (rc = split_sizes(c, x, axis, sz)) < 0)
        return op_error(c, KINFER_ESHAPE, "split sizes do not add up");
    for (int o = 0; o < nout; o++) {
        if (rc) {
            op_set_output(c, o, x->dtype, x->rank, NULL);
            continue;
        }
        int64_t d[ONNX_MAX_RANK];
        memcpy(d, x->dims, sizeof(d));
        d[axis] = sz[o];
        op_set_output(c, o, x->dtype, x->rank, d);
    }
    return NULL;
}

static kinfer_status *split_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0);
    size_t es = onnx_dtype_size(x->dtype);
    int64_t outer = core_prod(x->dims, 0, axis),
            xrow = core_prod(x->dims, axis, x->rank) * (int64_t)es, off = 0;
    for (int o = 0; o < op_num_outputs(c); o++) {
        op_tensor *y = op_output(c, o);
        int64_t row = core_prod(y->dims, axis, y->rank) * (int64_t)es;
        if (y->data)
            for (int64_t i = 0; i < outer; i++)
                memcpy((char *)y->data + i * row, (const char *)x->data + i * xrow + off,
                       (size_t)row);
        off += row;
    }
    return NULL;
}

/* ---- CastLike: Cast to the second input's type, by way of a temporary Cast node view ---- */
static kinfer_status *castlike_infer(op_ctx *c)
{
    onnx_dtype to = op_input(c, 1)->dtype, from = op_input(c, 0)->dtype;
    if (to == ONNX_DTYPE_FLOAT16 || from == ONNX_DTYPE_FLOAT16)
        return op_error(c, KINFER_EUNSUPPORTED, "cast %s to %s", onnx_dtype_name(from),
                        onnx_dtype_name(to));
    op_infer_like(c, 0, 0);
    op_output(c, 0)->dtype = to;
    return NULL;
}

static kinfer_status *castlike_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int64_t n = op_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        if (x->dtype == ONNX_DTYPE_STRING) {
            const char *s = ((char **)x->data)[i];
            core_store_double(y, i, strtod(s, NULL));
        } else if (y->dtype == ONNX_DTYPE_STRING) {
            char buf[64];
            double v = op_tensor_get_double(x, i);
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof buf, "%.*g", prec, v);
                if (x->dtype == ONNX_DTYPE_FLOAT ? strtof(buf, NULL) == (float)v
                                                 : strtod(buf, NULL) == v)
                    break;
            }
            if (!(((char **)y->data)[i] = op_strdup(c, buf)))
                return op_error(c, KINFER_ENOMEM, "castlike");
        } else {
            core_store_double(y, i, op_tensor_get_double(x, i));
        }
    }
    return NULL;
}

/* ---- Hardmax, CumSum ---- */
static kinfer_status *float_infer(op_ctx *c)
{
    if (!core_is_numeric(op_input(c, 0)->dtype)) return op_error(c, KINFER_EUNSUPPORTED, "type");
    return op_infer_like(c, 0, 0);
}

static kinfer_status *hardmax_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int old = op_node_opset(op_ctx_node(c)) < 13;
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", old ? 1 : -1), x->rank, 0);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis");
    int64_t outer = core_prod(x->dims, 0, axis),
            n = old ? core_prod(x->dims, axis, x->rank) : x->dims[axis];
    int64_t inner = old ? 1 : core_prod(x->dims, axis + 1, x->rank);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t best = 0, base = o * n * inner + in;
            for (int64_t i = 0; i < n; i++) {
                if (op_tensor_get_double(x, base + i * inner) >
                    op_tensor_get_double(x, base + best * inner))
                    best = i;
            }
            for (int64_t i = 0; i < n; i++) core_store_double(y, base + i * inner, i == best);
        }
    return NULL;
}

static kinfer_status *cumsum_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *ax = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int axis = core_axis(op_tensor_get_int(ax, 0), x->rank, 0);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis");
    int excl = (int)op_attr_int(op_ctx_node(c), "exclusive", 0),
        rev = (int)op_attr_int(op_ctx_node(c), "reverse", 0);
    int64_t outer = core_prod(x->dims, 0, axis), n = x->dims[axis],
            inner = core_prod(x->dims, axis + 1, x->rank);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            double acc = 0;
            for (int64_t k = 0; k < n; k++) {
                int64_t i = rev ? n - 1 - k : k, idx = (o * n + i) * inner + in;
                double v = op_tensor_get_double(x, idx);
                if (excl)
                    core_store_double(y, idx, acc), acc += v;
                else
                    acc += v, core_store_double(y, idx, acc);
            }
        }
    return NULL;
}

/* ---- DepthToSpace / SpaceToDepth ---- */
static kinfer_status *d2s_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int d2s = !strcmp(op_node_op_type(op_ctx_node(c)), "DepthToSpace");
    int64_t b = op_attr_int(op_ctx_node(c), "blocksize", 0);
    if (x->rank < 0) return op_set_output(c, 0, x->dtype, 4, NULL), NULL;
    if (x->rank != 4 || b < 1)
        return op_error(c, KINFER_EMODEL, "needs 4-D input and blocksize >= 1");
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, 4, NULL), NULL;
    int64_t d[4] = {x->dims[0], d2s ? x->dims[1] / (b * b) : x->dims[1] * b * b,
                    d2s ? x->dims[2] * b : x->dims[2] / b, d2s ? x->dims[3] * b : x->dims[3] / b};
    if (d2s ? x->dims[1] % (b * b) : (x->dims[2] % b || x->dims[3] % b))
        return op_error(c, KINFER_ESHAPE, "dims not divisible by blocksize");
    op_set_output(c, 0, x->dtype, 4, d);
    return NULL;
}

static kinfer_status *d2s_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    int d2s = !strcmp(op_node_op_type(op_ctx_node(c)), "DepthToSpace");
    int crd = !strcmp(op_attr_string(op_ctx_node(c), "mode", "DCR"), "CRD");
    int64_t b = op_attr_int(op_ctx_node(c), "blocksize", 1);
    size_t es = onnx_dtype_size(x->dtype);
    /* Iterate over the space-side tensor (N, C, H*b, W*b) and map to the depth side. */
    const op_tensor *sp = d2s ? y : x, *dp = d2s ? x : y;
    int64_t N = sp->dims[0], C = sp->dims[1], H = sp->dims[2], W = sp->dims[3], DC = dp->dims[1];
    int64_t DH = dp->dims[2], DW = dp->dims[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t bh = h % b, bw = w % b;
                    int64_t dc = (d2s && crd) ? ch * b * b + bh * b + bw : (bh * b + bw) * C + ch;
                    int64_t si = ((n * C + ch) * H + h) * W + w,
                            di = ((n * DC + dc) * DH + h / b) * DW + w / b;
                    if (d2s)
                        memcpy((char *)y->data + si * es, (const char *)x->data + di * es, es);
                    else
                        memcpy((char *)y->data + di * es, (const char *)x->data + si * es, es);
                }
    return NULL;
}

/* ---- TopK ---- */
typedef struct topk_item {
    double v;
    int64_t i;
} topk_item;
static int topk_largest;
static int topk_cmp(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v) return (topk_largest ? x->v < y->v : x->v > y->v) ? 1 : -1;
    return x->i < y->i ? -1 : 1; /* ties: lower index first */
}

static kinfer_status *topk_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *k = op_input(c, 1);
    if (op_node_opset(op_ctx_node(c)) < 10)
        return op_error(c, KINFER_EUNSUPPORTED, "TopK-1 (k attribute)");
    if (!core_is_numeric(x->dtype)) return op_error(c, KINFER_EUNSUPPORTED, "type");
    if (!k->data || !op_shapes_known(c)) {
        op_set_output(c, 0, x->dtype, x->rank, NULL);
        op_set_output(c, 1, ONNX_DTYPE_INT64, x->rank, NULL);
        return NULL;
    }
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", -1), x->rank, 0);
    int64_t kv = op_tensor_get_int(k, 0), d[ONNX_MAX_RANK];
    if (axis < 0 || kv < 0 || kv > x->dims[axis])
        return op_error(c, KINFER_EMODEL, "k/axis out of range");
    memcpy(d, x->dims, sizeof(d));
    d[axis] = kv;
    op_set_output(c, 0, x->dtype, x->rank, d);
    op_set_output(c, 1, ONNX_DTYPE_INT64, x->rank, d);
    return NULL;
}

static kinfer_status *topk_compute(op_ctx *c)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* qsort has no context argument */
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0), *yi = op_output(c, 1);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", -1), x->rank, 0);
    int64_t k = y->dims[axis], outer = core_prod(x->dims, 0, axis), n = x->dims[axis];
    int64_t inner = core_prod(x->dims, axis + 1, x->rank);
    topk_item *it = op_scratch(c, sizeof(topk_item) * (size_t)(n ? n : 1));
    if (!it) return op_error(c, KINFER_ENOMEM, "topk");
    pthread_mutex_lock(&mu);
    topk_largest = (int)op_attr_int(op_ctx_node(c), "largest", 1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            for (int64_t i = 0; i < n; i++)
                it[i].v = op_tensor_get_double(x, (o * n + i) * inner + in), it[i].i = i;
            qsort(it, (size_t)n, sizeof(*it), topk_cmp);
            for (int64_t i = 0; i < k; i++) {
                int64_t dst = (o * k + i) * inner + in;
                memcpy((char *)y->data + dst * onnx_dtype_size(x->dtype),
                       (const char *)x->data +
                           ((o * n + it[i].i) * inner + in) * onnx_dtype_size(x->dtype),
                       onnx_dtype_size(x->dtype));
                if (yi) ((int64_t *)yi->data)[dst] = it[i].i;
            }
        }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* ---- OneHot ---- */
static kinfer_status *onehot_infer(op_ctx *c)
{
    const op_tensor *ix = op_input(c, 0), *depth = op_input(c, 1), *vals = op_input(c, 2);
    if (!depth->data || !op_shapes_known(c))
        return op_set_output(c, 0, vals->dtype, ix->rank < 0 ? -1 : ix->rank + 1, NULL), NULL;
    int64_t dp = (int64_t)op_tensor_get_double(depth, 0), d[ONNX_MAX_RANK];
    int r = ix->rank + 1;
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", -1), r, 0);
    if (axis < 0 || r > ONNX_MAX_RANK || dp < 1) return op_error(c, KINFER_EMODEL, "axis/depth");
    for (int i = 0, k = 0; i < r; i++) d[i] = i == axis ? dp : ix->dims[k++];
    op_set_output(c, 0, vals->dtype, r, d);
    return NULL;
}

static kinfer_status *onehot_compute(op_ctx *c)
{
    const op_tensor *ix = op_input(c, 0), *vals = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", -1), y->rank, 0);
    int64_t dp = y->dims[axis], outer = core_prod(y->dims, 0, axis),
            inner = core_prod(y->dims, axis + 1, y->rank);
    size_t es = onnx_dtype_size(y->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t d = 0; d < dp; d++)
            for (int64_t in = 0; in < inner; in++) {
                int64_t k = (int64_t)op_tensor_get_double(ix, o * inner + in);
                if (k < 0) k += dp;
                memcpy((char *)y->data + ((o * dp + d) * inner + in) * es,
                       (const char *)vals->data + (k == d ? es : 0), es);
            }
    return NULL;
}

/* ---- IsInf, IsNaN, PRelu, Shrink ---- */
static kinfer_status *bool_like_infer(op_ctx *c)
{
    if (!core_is_float(op_input(c, 0)->dtype)) return op_error(c, KINFER_EUNSUPPORTED, "type");
    op_infer_like(c, 0, 0);
    op_output(c, 0)->dtype = ONNX_DTYPE_BOOL;
    return NULL;
}

static kinfer_status *isinfnan_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    uint8_t *y = op_output(c, 0)->data;
    int nan = !strcmp(op_node_op_type(op_ctx_node(c)), "IsNaN");
    int pos = (int)op_attr_int(op_ctx_node(c), "detect_positive", 1),
        neg = (int)op_attr_int(op_ctx_node(c), "detect_negative", 1);
    for (int64_t i = 0; i < op_tensor_numel(x); i++) {
        double v = op_tensor_get_double(x, i);
        y[i] = nan ? isnan(v) : (isinf(v) && ((v > 0 && pos) || (v < 0 && neg)));
    }
    return NULL;
}

static kinfer_status *prelu_infer(op_ctx *c)
{
    if (!core_is_numeric(op_input(c, 0)->dtype) || op_input(c, 1)->dtype != op_input(c, 0)->dtype)
        return op_error(c, KINFER_EMODEL, "types");
    return op_infer_broadcast(c, 2, op_input(c, 0)->dtype);
}

static kinfer_status *prelu_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *s = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int64_t sx[ONNX_MAX_RANK], ss[ONNX_MAX_RANK], n = op_tensor_numel(y);
    core_bcast_strides(x, y, sx);
    core_bcast_strides(s, y, ss);
    for (int64_t i = 0; i < n; i++) {
        int64_t ox = 0, os = 0, rem = i;
        for (int d = y->rank - 1; d >= 0; d--) {
            int64_t idx = rem % y->dims[d];
            rem /= y->dims[d];
            ox += idx * sx[d], os += idx * ss[d];
        }
        double v = op_tensor_get_double(x, ox);
        core_store_double(y, i, v < 0 ? v * op_tensor_get_double(s, os) : v);
    }
    return NULL;
}

static kinfer_status *shrink_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    op_tensor *y = op_output(c, 0);
    double l = op_attr_float(op_ctx_node(c), "lambd", 0.5f),
           b = op_attr_float(op_ctx_node(c), "bias", 0.0f);
    for (int64_t i = 0; i < op_tensor_numel(x); i++) {
        double v = op_tensor_get_double(x, i);
        core_store_double(y, i, v < -l ? v + b : v > l ? v - b : 0);
    }
    return NULL;
}

/* ---- Trilu, EyeLike ---- */
static kinfer_status *op_infer_like_0(op_ctx *c)
{
    return op_infer_like(c, 0, 0);
}

static kinfer_status *trilu_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *kt = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    if (x->rank < 2) return op_error(c, KINFER_ESHAPE, "rank < 2");
    int64_t k = kt ? op_tensor_get_int(kt, 0) : 0, R = x->dims[x->rank - 2],
            C = x->dims[x->rank - 1];
    int upper = (int)op_attr_int(op_ctx_node(c), "upper", 1);
    size_t es = onnx_dtype_size(x->dtype);
    int64_t mats = (R > 0 && C > 0) ? op_tensor_numel(x) / (R * C) : 0;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                int64_t idx = (m * R + i) * C + j;
                int keep = upper ? j - i >= k : j - i <= k;
                if (keep)
                    memcpy((char *)y->data + idx * es, (const char *)x->data + idx * es, es);
                else
                    memset((char *)y->data + idx * es, 0, es);
            }
    return NULL;
}

static kinfer_status *eyelike_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    onnx_dtype dt = (onnx_dtype)op_attr_int(op_ctx_node(c), "dtype", x->dtype);
    if (!onnx_dtype_size(dt) || dt == ONNX_DTYPE_STRING)
        return op_error(c, KINFER_EUNSUPPORTED, "dtype");
    if (x->rank >= 0 && x->rank != 2) return op_error(c, KINFER_ESHAPE, "rank must be 2");
    op_infer_like(c, 0, 0);
    op_output(c, 0)->dtype = dt;
    return NULL;
}

static kinfer_status *eyelike_compute(op_ctx *c)
{
    op_tensor *y = op_output(c, 0);
    int64_t k = op_attr_int(op_ctx_node(c), "k", 0);
    for (int64_t i = 0; i < y->dims[0]; i++)
        for (int64_t j = 0; j < y->dims[1]; j++)
            core_store_double(y, i * y->dims[1] + j, j - i == k);
    return NULL;
}

/* ---- NonZero, Compress (data-dependent shapes: inferred per run) ---- */
static kinfer_status *nonzero_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (!x->data || x->rank < 0) return op_set_output(c, 0, ONNX_DTYPE_INT64, 2, NULL), NULL;
    int64_t cnt = 0, n = op_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) cnt += op_tensor_get_double(x, i) != 0;
    int64_t d[2] = {x->rank, cnt};
    op_set_output(c, 0, ONNX_DTYPE_INT64, 2, d);
    return NULL;
}

static kinfer_status *nonzero_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int64_t *y = op_output(c, 0)->data, cnt = op_output(c, 0)->dims[1], k = 0,
            n = op_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        if (op_tensor_get_double(x, i) == 0) continue;
        for (int d = x->rank - 1, rem = 0; d >= 0; d--) {
            (void)rem;
            int64_t s = core_prod(x->dims, d + 1, x->rank);
            y[d * cnt + k] = (i / s) % x->dims[d];
        }
        k++;
    }
    return NULL;
}

static kinfer_status *compress_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *cond = op_input(c, 1);
    if (cond->dtype != ONNX_DTYPE_BOOL) return op_error(c, KINFER_EMODEL, "condition must be bool");
    int has_axis = op_attr_has(op_ctx_node(c), "axis");
    if (!cond->data || !op_shapes_known(c))
        return op_set_output(c, 0, x->dtype, has_axis ? x->rank : 1, NULL), NULL;
    int64_t nc = op_tensor_numel(cond), kept = 0;
    int axis = has_axis ? core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0) : -1;
    if (has_axis && axis < 0) return op_error(c, KINFER_EMODEL, "axis");
    int64_t lim = has_axis ? x->dims[axis] : op_tensor_numel(x);
    for (int64_t i = 0; i < nc && i < lim; i++) kept += ((const uint8_t *)cond->data)[i] != 0;
    int64_t d[ONNX_MAX_RANK];
    if (!has_axis) return op_set_output(c, 0, x->dtype, 1, &kept), NULL;
    memcpy(d, x->dims, sizeof(d));
    d[axis] = kept;
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

static kinfer_status *compress_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *cond = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    const uint8_t *cd = cond->data;
    int64_t nc = op_tensor_numel(cond);
    size_t es = onnx_dtype_size(x->dtype);
    if (!op_attr_has(op_ctx_node(c), "axis")) {
        int64_t k = 0, n = op_tensor_numel(x);
        for (int64_t i = 0; i < n && i < nc; i++)
            if (cd[i]) memcpy((char *)y->data + (k++) * es, (const char *)x->data + i * es, es);
        return NULL;
    }
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", 0), x->rank, 0);
    int64_t outer = core_prod(x->dims, 0, axis), n = x->dims[axis],
            inner = core_prod(x->dims, axis + 1, x->rank) * (int64_t)es;
    int64_t kept = y->dims[axis];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0, k = 0; i < n && i < nc; i++)
            if (cd[i])
                memcpy((char *)y->data + (o * kept + k++) * inner,
                       (const char *)x->data + (o * n + i) * inner, (size_t)inner);
    return NULL;
}

/* ---- BitShift ---- */
static kinfer_status *bitshift_infer(op_ctx *c)
{
    onnx_dtype dt = op_input(c, 0)->dtype;
    if (dt != ONNX_DTYPE_UINT8 && dt != ONNX_DTYPE_UINT16 && dt != ONNX_DTYPE_UINT32 &&
        dt != ONNX_DTYPE_UINT64)
        return op_error(c, KINFER_EMODEL, "type %s", onnx_dtype_name(dt));
    if (op_input(c, 1)->dtype != dt) return op_error(c, KINFER_EMODEL, "types differ");
    return op_infer_broadcast(c, 2, dt);
}

static uint64_t get_u(const op_tensor *t, int64_t i)
{
    return t->dtype == ONNX_DTYPE_UINT64 ? ((const uint64_t *)t->data)[i]
                                         : (uint64_t)op_tensor_get_int(t, i);
}

static kinfer_status *bitshift_compute(op_ctx *c)
{
    const op_tensor *a = op_input(c, 0), *b = op_input(c, 1);
    op_tensor *y = op_output(c, 0);
    int left = !strcmp(op_attr_string(op_ctx_node(c), "direction", ""), "LEFT");
    int64_t sa[ONNX_MAX_RANK], sb[ONNX_MAX_RANK], n = op_tensor_numel(y);
    core_bcast_strides(a, y, sa);
    core_bcast_strides(b, y, sb);
    unsigned bits = (unsigned)onnx_dtype_size(y->dtype) * 8;
    for (int64_t i = 0; i < n; i++) {
        int64_t oa = 0, ob = 0, rem = i;
        for (int d = y->rank - 1; d >= 0; d--) {
            int64_t idx = rem % y->dims[d];
            rem /= y->dims[d];
            oa += idx * sa[d], ob += idx * sb[d];
        }
        uint64_t v = get_u(a, oa), s = get_u(b, ob), r = s >= bits ? 0 : left ? v << s : v >> s;
        switch (y->dtype) {
        case ONNX_DTYPE_UINT8:
            ((uint8_t *)y->data)[i] = (uint8_t)r;
            break;
        case ONNX_DTYPE_UINT16:
            ((uint16_t *)y->data)[i] = (uint16_t)r;
            break;
        case ONNX_DTYPE_UINT32:
            ((uint32_t *)y->data)[i] = (uint32_t)r;
            break;
        default:
            ((uint64_t *)y->data)[i] = r;
            break;
        }
    }
    return NULL;
}

const op_def core_misc_ops[] = {
    {"", "Split", 2, OP_OPSET_MAX, 1, 2, 1, 4096, NULL, NULL, split_infer, split_compute},
    {"", "CastLike", 15, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, castlike_infer, castlike_compute},
    {"", "Hardmax", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, float_infer, hardmax_compute},
    {"", "CumSum", 11, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, float_infer, cumsum_compute},
    {"", "DepthToSpace", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, d2s_infer, d2s_compute},
    {"", "SpaceToDepth", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, d2s_infer, d2s_compute},
    {"", "TopK", 1, OP_OPSET_MAX, 2, 2, 2, 2, NULL, NULL, topk_infer, topk_compute},
    {"", "OneHot", 9, OP_OPSET_MAX, 3, 3, 1, 1, NULL, NULL, onehot_infer, onehot_compute},
    {"", "IsInf", 10, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, bool_like_infer, isinfnan_compute},
    {"", "IsNaN", 9, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, bool_like_infer, isinfnan_compute},
    {"", "PRelu", 7, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, prelu_infer, prelu_compute},
    {"", "Shrink", 9, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, float_infer, shrink_compute},
    {"", "Trilu", 14, OP_OPSET_MAX, 1, 2, 1, 1, NULL, NULL, op_infer_like_0, trilu_compute},
    {"", "EyeLike", 9, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, eyelike_infer, eyelike_compute},
    {"", "NonZero", 9, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, nonzero_infer, nonzero_compute},
    {"", "Compress", 9, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, compress_infer, compress_compute},
    {"", "BitShift", 11, OP_OPSET_MAX, 2, 2, 1, 1, NULL, NULL, bitshift_infer, bitshift_compute},
};
const size_t core_misc_count = sizeof(core_misc_ops) / sizeof(core_misc_ops[0]);
