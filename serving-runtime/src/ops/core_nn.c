/*
 * core_nn: normalization kernels: Softmax/LogSoftmax (opset < 13 flattens at axis; >= 13 works
 * along one axis), BatchNormalization (inference), LayerNormalization. Float only.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core_tables.h"
#include "core_util.h"

static kinfer_status *float_like_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    if (!core_is_float(x->dtype) || (x->dtype != ONNX_DTYPE_FLOAT))
        return op_error(c, KINFER_EUNSUPPORTED, "type %s (float only)", onnx_dtype_name(x->dtype));
    for (int i = 1; i < op_num_inputs(c); i++)
        if (op_input(c, i) && op_input(c, i)->dtype != x->dtype)
            return op_error(c, KINFER_EMODEL, "input %d is %s, X is %s", i,
                            onnx_dtype_name(op_input(c, i)->dtype), onnx_dtype_name(x->dtype));
    return op_infer_like(c, 0, 0);
}

typedef struct sm_job {
    const float *x;
    float *y;
    int64_t outer, n, inner;
    int log;
} sm_job;

/* exp of v in [-88, 0] (the softmax argument x - max, clamped), Cephes' expf polynomial after a
 * Cody-Waite reduction: within about 1 ulp of expf (measured max relative error 1.2e-7 over
 * [-100, 0]), branch-free so gcc vectorizes it, where glibc's expf is a call per element. At -88
 * the exponent field comes out 0, so the result is exactly 0, as expf's underflow is. */
static inline float sm_exp_clamped(float v)
{
    int32_t ni = (int32_t)(v * 1.44269504088896341f - 0.5f); /* round(v / ln 2), v <= 0 */
    float n = (float)ni;
    float r = v - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (ni + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* y = exp(x - mx) for a row; returns nonzero when some x - mx is NaN (a NaN or +inf input, or an
 * all -inf row), where expf's NaN would have made the whole row NaN. The clamp is a separate
 * loop: with the select and the float-to-int conversion in one loop, gcc will not vectorize. */
static inline int sm_exp_row(const float *restrict x, float *restrict y, int64_t n, float mx)
{
    int nan = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] - mx;
        nan |= v != v;
        y[i] = v > -88.0f ? v : -88.0f;
    }
    for (int64_t i = 0; i < n; i++) y[i] = sm_exp_clamped(y[i]);
    return nan;
}

/* Softmax over contiguous rows (inner == 1: attention scores, classifier logits). Max and sum
 * keep 16 partial lanes so the loops vectorize without -ffast-math. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
softmax_contig(const float *x, float *y, int64_t n, int log)
{
    enum { L = 16 };
    float m[L], a[L];
    for (int l = 0; l < L; l++) m[l] = -INFINITY, a[l] = 0.0f;
    int64_t i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; l++) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
    float mx = -INFINITY;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int l = 0; l < L; l++) mx = m[l] > mx ? m[l] : mx;
    if (sm_exp_row(x, y, n, mx)) {
        for (i = 0; i < n; i++) y[i] = NAN;
        return;
    }
    for (i = 0; i + L <= n; i += L)
        for (int l = 0; l < L; l++) a[l] += y[i + l];
    float sum = 0.0f;
    for (; i < n; i++) sum += y[i];
    for (int l = 0; l < L; l++) sum += a[l];
    if (log) {
        float ls = logf(sum);
        for (i = 0; i < n; i++) y[i] = x[i] - mx - ls;
    } else {
        float inv = 1.0f / sum;
        for (i = 0; i < n; i++) y[i] *= inv;
    }
}

static void softmax_rows(void *arg, int ith, int nth)
{
    const sm_job *j = arg;
    int64_t b, e;
    op_split(j->outer * j->inner, ith, nth, &b, &e);
    if (j->inner == 1) {
        for (int64_t r = b; r < e; r++)
            softmax_contig(j->x + r * j->n, j->y + r * j->n, j->n, j->log);
        return;
    }
    for (int64_t r = b; r < e; r++) {
        int64_t o = r / j->inner, in = r % j->inner;
        const float *x = j->x + o * j->n * j->inner + in;
        float *y = j->y + o * j->n * j->inner + in;
        int64_t s = j->inner;
        float mx = -INFINITY;
        for (int64_t i = 0; i < j->n; i++) mx = x[i * s] > mx ? x[i * s] : mx;
        float sum = 0;
        for (int64_t i = 0; i < j->n; i++) {
            float v = expf(x[i * s] - mx);
            y[i * s] = v;
            sum += v;
        }
        if (j->log) {
            float ls = logf(sum);
            for (int64_t i = 0; i < j->n; i++) y[i * s] = x[i * s] - mx - ls;
        } else {
            float inv = 1.0f / sum;
            for (int64_t i = 0; i < j->n; i++) y[i * s] *= inv;
        }
    }
}

static kinfer_status *softmax_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    const op_node *n = op_ctx_node(c);
    int old = op_node_opset(n) < 13;
    int axis = core_axis(op_attr_int(n, "axis", old ? 1 : -1), x->rank, 0);
    if (axis < 0 && x->rank > 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    if (x->rank == 0) axis = 0;
    sm_job j = {x->data,
                op_output(c, 0)->data,
                core_prod(x->dims, 0, axis),
                0,
                1,
                !strcmp(op_node_op_type(n), "LogSoftmax")};
    if (old)
        j.n = core_prod(x->dims, axis, x->rank);
    else {
        j.n = x->rank ? x->dims[axis] : 1;
        j.inner = core_prod(x->dims, axis + 1, x->rank);
    }
    if (op_tensor_numel(x) >= CORE_PAR_MIN)
        op_parallel(c, softmax_rows, &j);
    else
        softmax_rows(&j, 0, 1);
    return NULL;
}

static kinfer_status *bn_infer(op_ctx *c)
{
    if (op_num_outputs(c) > 1) return op_error(c, KINFER_EUNSUPPORTED, "training-mode outputs");
    if (op_attr_int(op_ctx_node(c), "training_mode", 0))
        return op_error(c, KINFER_EUNSUPPORTED, "training_mode=1");
    if (op_node_opset(op_ctx_node(c)) < 9 && !op_attr_int(op_ctx_node(c), "spatial", 1))
        return op_error(c, KINFER_EUNSUPPORTED, "spatial=0");
    return float_like_infer(c);
}

static kinfer_status *bn_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    const float *sc = op_input(c, 1)->data, *bi = op_input(c, 2)->data,
                *mean = op_input(c, 3)->data, *var = op_input(c, 4)->data;
    float eps = op_attr_float(op_ctx_node(c), "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->rank > 1 ? x->dims[1] : 1, S = core_prod(x->dims, 2, x->rank);
    for (int i = 1; i <= 4; i++)
        if (op_tensor_numel(op_input(c, i)) != C)
            return op_error(c, KINFER_ESHAPE, "input %d must have %lld values", i, (long long)C);
    const float *xd = x->data;
    float *y = op_output(c, 0)->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            float a = sc[ch] / sqrtf(var[ch] + eps), b = bi[ch] - mean[ch] * a;
            const float *xp = xd + (n * C + ch) * S;
            float *yp = y + (n * C + ch) * S;
            for (int64_t i = 0; i < S; i++) yp[i] = xp[i] * a + b;
        }
    return NULL;
}

static kinfer_status *ln_infer(op_ctx *c)
{
    kinfer_status *st = float_like_infer(c);
    if (st) return st;
    const op_tensor *x = op_input(c, 0);
    for (int o = 1; o < op_num_outputs(c); o++) {
        if (!op_output(c, o)) continue;
        if (x->rank < 0) {
            op_set_output(c, o, ONNX_DTYPE_FLOAT, -1, NULL);
            continue;
        }
        int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", -1), x->rank, 0);
        int64_t d[ONNX_MAX_RANK];
        for (int i = 0; i < x->rank; i++) d[i] = i < axis ? x->dims[i] : 1;
        op_set_output(c, o, ONNX_DTYPE_FLOAT, x->rank, d);
    }
    return NULL;
}

typedef struct ln_job {
    const float *x, *scale, *bias;
    float *y, *mean, *rstd;
    int64_t rows, n, sn, bn;
    float eps;
} ln_job;

static void ln_rows(void *arg, int ith, int nth)
{
    const ln_job *j = arg;
    int64_t b, e;
    op_split(j->rows, ith, nth, &b, &e);
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + r * j->n;
        float *y = j->y + r * j->n;
        float m = 0, v = 0;
        for (int64_t i = 0; i < j->n; i++) m += x[i];
        m /= (float)j->n;
        for (int64_t i = 0; i < j->n; i++) v += (x[i] - m) * (x[i] - m);
        float rs = 1.0f / sqrtf(v / (float)j->n + j->eps);
        for (int64_t i = 0; i < j->n; i++)
            y[i] = (x[i] - m) * rs * j->scale[i % j->sn] + (j->bias ? j->bias[i % j->bn] : 0.0f);
        if (j->mean) j->mean[r] = m;
        if (j->rstd) j->rstd[r] = rs;
    }
}

static kinfer_status *ln_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *s = op_input(c, 1), *b = op_input(c, 2);
    int axis = core_axis(op_attr_int(op_ctx_node(c), "axis", -1), x->rank, 0);
    if (axis < 0) return op_error(c, KINFER_EMODEL, "axis out of range");
    ln_job j = {x->data,
                s->data,
                b ? b->data : NULL,
                op_output(c, 0)->data,
                NULL,
                NULL,
                core_prod(x->dims, 0, axis),
                core_prod(x->dims, axis, x->rank),
                op_tensor_numel(s),
                b ? op_tensor_numel(b) : 1,
                op_attr_float(op_ctx_node(c), "epsilon", 1e-5f)};
    if (j.sn < 1 || j.n % j.sn || (b && (j.bn < 1 || j.n % j.bn)) || j.sn != j.n)
        return op_error(c, KINFER_EUNSUPPORTED, "Scale/B that do not cover the normalized shape");
    if (op_output(c, 1)) j.mean = op_output(c, 1)->data;
    if (op_output(c, 2)) j.rstd = op_output(c, 2)->data;
    if (op_tensor_numel(x) >= CORE_PAR_MIN)
        op_parallel(c, ln_rows, &j);
    else
        ln_rows(&j, 0, 1);
    return NULL;
}

const op_def core_nn_ops[] = {
    {"", "Softmax", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, float_like_infer, softmax_compute},
    {"", "LogSoftmax", 1, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, float_like_infer, softmax_compute},
    {"", "BatchNormalization", 7, OP_OPSET_MAX, 5, 5, 1, 5, NULL, NULL, bn_infer, bn_compute},
    {"", "LayerNormalization", 17, OP_OPSET_MAX, 2, 3, 1, 3, NULL, NULL, ln_infer, ln_compute},
};
const size_t core_nn_count = sizeof(core_nn_ops) / sizeof(core_nn_ops[0]);
