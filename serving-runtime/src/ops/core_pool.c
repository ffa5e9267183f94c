/*
 * core_pool: MaxPool, AveragePool (pads, ceil_mode, count_include_pad, dilations), and the global
 * pools, float, 1-D and 2-D windows. Channels are split across threads.
 */
#include <float.h>
#include <math.h>

#include "core_tables.h"
#include "core_util.h"
#include "core_window.h"

static kinfer_status *pool_window(op_ctx *c, const op_tensor *x, core_window *w)
{
    const op_node *n = op_ctx_node(c);
    const int64_t *ks;
    size_t nk = op_attr_ints(n, "kernel_shape", &ks);
    if (x->rank != 3 && x->rank != 4)
        return op_error(c, KINFER_EUNSUPPORTED, "%d-D pooling", x->rank - 2);
    if ((int)nk != x->rank - 2) return op_error(c, KINFER_EMODEL, "kernel_shape length");
    if (op_attr_int(n, "storage_order", 0))
        return op_error(c, KINFER_EUNSUPPORTED, "storage_order=1");
    return core_window_init(c, x->rank - 2, x->dims + 2, ks, (int)op_attr_int(n, "ceil_mode", 0),
                            w);
}

static kinfer_status *pool_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (x->dtype != ONNX_DTYPE_FLOAT)
        return op_error(c, KINFER_EUNSUPPORTED, "type %s", onnx_dtype_name(x->dtype));
    if (op_num_outputs(c) > 1 && op_output(c, 1))
        return op_error(c, KINFER_EUNSUPPORTED, "MaxPool Indices output");
    if (!op_shapes_known(c)) return op_set_output(c, 0, x->dtype, x->rank, NULL), NULL;
    core_window w;
    kinfer_status *st = pool_window(c, x, &w);
    if (st) return st;
    int64_t d[4] = {x->dims[0], x->dims[1], w.out[0], w.out[1]};
    if (x->rank == 3) d[2] = w.out[1];
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

typedef struct pool_job {
    const float *x;
    float *y;
    int64_t planes;
    core_window w;
    int is_max, include_pad;
} pool_job;

static void pool_rows(void *arg, int ith, int nth)
{
    const pool_job *j = arg;
    const core_window *w = &j->w;
    int64_t b, e, H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1];
    op_split(j->planes, ith, nth, &b, &e);
    if (j->is_max && w->d[0] == 1 && w->d[1] == 1) {
        /* MaxPool without dilation (ResNet's stem): clip each window to the input once instead of
         * testing every tap; the taps are visited in the same order, so NaN and empty windows
         * (-inf) come out as in the general loop below. */
        for (int64_t p = b; p < e; p++) {
            const float *x = j->x + p * H * W;
            float *y = j->y + p * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t ih0 = oh * w->s[0] - w->pb[0];
                int64_t kh0 = ih0 < 0 ? -ih0 : 0, kh1 = H - ih0 < w->k[0] ? H - ih0 : w->k[0];
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t iw0 = ow * w->s[1] - w->pb[1];
                    int64_t kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < w->k[1] ? W - iw0 : w->k[1];
                    float acc = -INFINITY;
                    for (int64_t kh = kh0; kh < kh1; kh++) {
                        int64_t r = (ih0 + kh) * W + iw0;
                        for (int64_t kw = kw0; kw < kw1; kw++)
                            acc = x[r + kw] > acc ? x[r + kw] : acc;
                    }
                    y[oh * OW + ow] = acc;
                }
            }
        }
        return;
    }
    for (int64_t p = b; p < e; p++) {
        const float *x = j->x + p * H * W;
        float *y = j->y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                float acc = j->is_max ? -INFINITY : 0.0f;
                int64_t cnt = 0, padded = 0;
                for (int64_t kh = 0; kh < w->k[0]; kh++) {
                    int64_t ih = oh * w->s[0] - w->pb[0] + kh * w->d[0];
                    for (int64_t kw = 0; kw < w->k[1]; kw++) {
                        int64_t iw = ow * w->s[1] - w->pb[1] + kw * w->d[1];
                        /* Positions in the explicit pads count for count_include_pad; those past
                         * the end that only ceil_mode created do not. */
                        if (ih < H + w->pe[0] && iw < W + w->pe[1]) padded++;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        float v = x[ih * W + iw];
                        if (j->is_max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                        cnt++;
                    }
                }
                y[oh * OW + ow] =
                    j->is_max ? acc : acc / (float)(j->include_pad ? padded : (cnt ? cnt : 1));
            }
    }
}

static kinfer_status *pool_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    pool_job j = {x->data, op_output(c, 0)->data, x->dims[0] * x->dims[1], {0}, 0, 0};
    kinfer_status *st = pool_window(c, x, &j.w);
    if (st) return st;
    j.is_max = !strcmp(op_node_op_type(op_ctx_node(c)), "MaxPool");
    j.include_pad = (int)op_attr_int(op_ctx_node(c), "count_include_pad", 0);
    op_parallel(c, pool_rows, &j);
    return NULL;
}

static kinfer_status *gpool_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (x->dtype != ONNX_DTYPE_FLOAT)
        return op_error(c, KINFER_EUNSUPPORTED, "type %s", onnx_dtype_name(x->dtype));
    if (x->rank < 0) return op_set_output(c, 0, x->dtype, -1, NULL), NULL;
    if (x->rank < 2) return op_error(c, KINFER_ESHAPE, "rank %d", x->rank);
    int64_t d[ONNX_MAX_RANK];
    for (int i = 0; i < x->rank; i++) d[i] = i < 2 ? x->dims[i] : 1;
    op_set_output(c, 0, x->dtype, x->rank, d);
    return NULL;
}

typedef struct gpool_job {
    const float *x;
    float *y;
    int64_t planes, sz;
    int is_max;
} gpool_job;

/* Each plane is reduced in 16 independent lanes (a loop gcc vectorizes, where one running sum
 * would be a chain of dependent adds), then the lanes and the tail are combined. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
gpool_rows(void *arg, int ith, int nth)
{
    const gpool_job *j = arg;
    int64_t b, e, sz = j->sz, body = sz / 16 * 16;
    op_split(j->planes, ith, nth, &b, &e);
    for (int64_t p = b; p < e; p++) {
        const float *v = j->x + p * sz;
        float lane[16], acc;
        if (j->is_max) {
            for (int l = 0; l < 16; l++) lane[l] = -INFINITY;
            for (int64_t i = 0; i < body; i += 16)
                for (int l = 0; l < 16; l++) lane[l] = v[i + l] > lane[l] ? v[i + l] : lane[l];
            acc = -INFINITY;
            for (int l = 0; l < 16; l++) acc = lane[l] > acc ? lane[l] : acc;
            for (int64_t i = body; i < sz; i++) acc = v[i] > acc ? v[i] : acc;
            j->y[p] = acc;
        } else {
            for (int l = 0; l < 16; l++) lane[l] = 0.0f;
            for (int64_t i = 0; i < body; i += 16)
                for (int l = 0; l < 16; l++) lane[l] += v[i + l];
            acc = 0.0f;
            for (int l = 0; l < 16; l++) acc += lane[l];
            for (int64_t i = body; i < sz; i++) acc += v[i];
            j->y[p] = acc / (float)(sz ? sz : 1);
        }
    }
}

static kinfer_status *gpool_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    gpool_job j = {x->data, op_output(c, 0)->data, x->dims[0] * x->dims[1],
                   core_prod(x->dims, 2, x->rank),
                   !strcmp(op_node_op_type(op_ctx_node(c)), "GlobalMaxPool")};
    if (j.planes * j.sz >= CORE_PAR_MIN)
        op_parallel(c, gpool_rows, &j);
    else
        gpool_rows(&j, 0, 1);
    return NULL;
}

const op_def core_pool_ops[] = {
    {"", "MaxPool", 1, OP_OPSET_MAX, 1, 1, 1, 2, NULL, NULL, pool_infer, pool_compute},
    {"", "AveragePool", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, pool_infer, pool_compute},
    {"", "GlobalAveragePool", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, gpool_infer, gpool_compute},
    {"", "GlobalMaxPool", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, gpool_infer, gpool_compute},
};
const size_t core_pool_count = sizeof(core_pool_ops) / sizeof(core_pool_ops[0]);
