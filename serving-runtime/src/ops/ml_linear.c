/*
 * ml_linear: ai.onnx.ml LinearClassifier and LinearRegressor. Scores are X * W^T + b accumulated
 * in double per row; labels and post transforms follow onnxruntime, including its binary
 * convention (one coefficient row and two class labels: the score column becomes [1 - s, s]
 * with no transform, and the label is the positive class when s > 0).
 */
#include <stdlib.h>
#include <string.h>

#include "ml_common.h"
#include "ml_kernels.h"

typedef struct lin_state {
    int classifier;
    int64_t n_targets, n_coef; /* classes or targets; coefficients = n_targets * features */
    const float *coef, *intercepts;
    size_t n_intercepts;
    ml_post post;
    const int64_t *labels_int;
    const char *const *labels_str;
    size_t n_labels;
    int second_class; /* binary: one score row, two labels -> two output columns */
} lin_state;

static void lin_fini(void *p)
{
    free(p);
}

static kinfer_status *lin_init(const op_node *n, void **state, int cls)
{
    kinfer_status *st = NULL;
    lin_state *s = calloc(1, sizeof(*s));
    if (!s) return op_node_error(n, KINFER_ENOMEM, "linear state");
    s->classifier = cls;
    s->n_coef = (int64_t)op_attr_floats(n, "coefficients", &s->coef);
    s->n_intercepts = op_attr_floats(n, "intercepts", &s->intercepts);
    if ((st = ml__parse_post(n, &s->post))) goto out;
    if (!s->n_coef) {
        st = op_node_error(n, KINFER_EMODEL, "coefficients are missing");
        goto out;
    }
    if (cls) {
        size_t ni = op_attr_ints(n, "classlabels_ints", &s->labels_int);
        size_t ns = op_attr_strings(n, "classlabels_strings", &s->labels_str);
        if (ni && ns) {
            st = op_node_error(n, KINFER_EMODEL, "both classlabels_ints and classlabels_strings");
            goto out;
        }
        if (!ni) s->labels_int = NULL;
        if (!ns) s->labels_str = NULL;
        s->n_labels = ni ? ni : ns;
        /* onnxruntime counts classes by the intercepts; without them, by the labels. */
        s->n_targets = (int64_t)(s->n_intercepts ? s->n_intercepts : s->n_labels);
        if (s->n_targets < 1) {
            st = op_node_error(n, KINFER_EMODEL, "no intercepts and no class labels");
            goto out;
        }
        if (s->n_targets > 1 && (int64_t)s->n_labels < s->n_targets) {
            st = op_node_error(n, KINFER_EMODEL, "%lld classes but %zu labels",
                               (long long)s->n_targets, s->n_labels);
            goto out;
        }
        s->second_class = s->n_targets == 1 && s->n_labels == 2;
    } else {
        s->n_targets = op_attr_int(n, "targets", 1);
        if (s->n_targets < 1) {
            st = op_node_error(n, KINFER_EMODEL, "targets %lld", (long long)s->n_targets);
            goto out;
        }
    }
    if (s->n_coef % s->n_targets) {
        st = op_node_error(n, KINFER_EMODEL, "%lld coefficients for %lld classes/targets",
                           (long long)s->n_coef, (long long)s->n_targets);
        goto out;
    }
    if (s->n_intercepts && (int64_t)s->n_intercepts != s->n_targets) {
        st = op_node_error(n, KINFER_EMODEL, "%zu intercepts for %lld classes/targets",
                           s->n_intercepts, (long long)s->n_targets);
        goto out;
    }
out:
    if (st)
        free(s);
    else
        *state = s;
    return st;
}

static kinfer_status *lin_cls_init(const op_node *n, void **state)
{
    return lin_init(n, state, 1);
}
static kinfer_status *lin_reg_init(const op_node *n, void **state)
{
    return lin_init(n, state, 0);
}

static kinfer_status *lin_infer(op_ctx *c)
{
    const lin_state *s = op_ctx_state(c);
    const op_tensor *x = op_input(c, 0);
    int64_t rows, cols;
    kinfer_status *st;
    if (!ml__is_feature_type(x->dtype))
        return op_error(c, KINFER_EDTYPE,
                        "input X has type %s; float, double, int64 or int32 "
                        "expected",
                        onnx_dtype_name(x->dtype));
    if ((st = ml__rows_cols(c, x, &rows, &cols))) return st;
    int64_t feats = s->n_coef / s->n_targets;
    if (cols >= 0 && cols != feats)
        return op_error(c, KINFER_ESHAPE, "input X has %lld features, the coefficients %lld",
                        (long long)cols, (long long)feats);
    int known = op_shapes_known(c);
    if (s->classifier) {
        int64_t yd[1] = {rows}, zd[2] = {rows, s->second_class ? 2 : s->n_targets};
        op_set_output(c, 0, s->labels_str ? ONNX_DTYPE_STRING : ONNX_DTYPE_INT64, known ? 1 : -1,
                      yd);
        if (op_output(c, 1)) op_set_output(c, 1, ONNX_DTYPE_FLOAT, known ? 2 : -1, zd);
    } else {
        int64_t yd[2] = {rows, s->n_targets};
        op_set_output(c, 0, ONNX_DTYPE_FLOAT, known ? 2 : -1, yd);
    }
    return NULL;
}

typedef struct lin_job {
    const lin_state *s;
    const op_tensor *x;
    op_tensor *y, *z;
    int64_t rows, cols;
    char *scratch;
    size_t stride;
} lin_job;

static void lin_rows(void *arg, int ith, int nth)
{
    lin_job *j = arg;
    const lin_state *s = j->s;
    int64_t b, e, k = s->n_targets, f = j->cols;
    op_split(j->rows, ith, nth, &b, &e);
    float *x = (float *)(j->scratch + (size_t)ith * j->stride);
    float *sc = x + f;
    static const char *const zero_one[2] = {"0", "1"};
    for (int64_t r = b; r < e; r++) {
        ml__read_float(j->x, r * f, f, x);
        for (int64_t t = 0; t < k; t++) {
            const float *w = s->coef + t * f;
            double acc = s->n_intercepts ? s->intercepts[t] : 0;
            for (int64_t i = 0; i < f; i++) acc += (double)x[i] * w[i];
            sc[t] = ml__to_float(acc);
        }
        if (!s->classifier) {
            if (k > 1)
                ml__post_row(s->post, sc, k);
            else if (s->post == ML_POST_PROBIT)
                sc[0] = ml__probit(sc[0]);
            memcpy((float *)j->y->data + r * k, sc, (size_t)k * sizeof(float));
            continue;
        }
        int64_t label;
        if (k == 1) {
            label = sc[0] > 0;
        } else {
            label = 0;
            for (int64_t t = 1; t < k; t++)
                if (sc[t] > sc[label]) label = t;
        }
        if (s->labels_str)
            ((const char **)j->y->data)[r] =
                k == 1 && s->n_labels != 2 ? zero_one[label] : s->labels_str[label];
        else
            ((int64_t *)j->y->data)[r] = k == 1 && s->n_labels != 2 ? label : s->labels_int[label];
        if (!j->z) continue;
        float *z = (float *)j->z->data + r * (s->second_class ? 2 : k);
        if (k > 1) {
            ml__post_row(s->post, sc, k);
            memcpy(z, sc, (size_t)k * sizeof(float));
        } else if (s->post == ML_POST_PROBIT) {
            z[0] = ml__probit(sc[0]);
            if (s->second_class) z[1] = 0;
        } else if (s->second_class) {
            z[0] = 1.0f - sc[0];
            z[1] = sc[0];
        } else {
            z[0] = sc[0];
        }
    }
}

static kinfer_status *lin_compute(op_ctx *c)
{
    const lin_state *s = op_ctx_state(c);
    lin_job j = {
        s, op_input(c, 0), op_output(c, 0), s->classifier ? op_output(c, 1) : NULL, 0, 0, NULL, 0};
    kinfer_status *st = ml__rows_cols(c, j.x, &j.rows, &j.cols);
    if (st) return st;
    j.stride = ((size_t)(j.cols + s->n_targets) * sizeof(float) + 63) & ~(size_t)63;
    int nth = op_num_threads(c);
    j.scratch = op_scratch(c, j.stride * (size_t)(nth > 0 ? nth : 1));
    if (!j.scratch) return op_error(c, KINFER_ENOMEM, "linear scratch");
    if (j.rows * s->n_coef < 65536)
        lin_rows(&j, 0, 1);
    else
        op_parallel(c, lin_rows, &j);
    return NULL;
}

const op_def ml__linear_defs[ML_LINEAR_DEFS] = {
    {"ai.onnx.ml", "LinearClassifier", 1, OP_OPSET_MAX, 1, 1, 1, 2, lin_cls_init, lin_fini,
     lin_infer, lin_compute},
    {"ai.onnx.ml", "LinearRegressor", 1, OP_OPSET_MAX, 1, 1, 1, 1, lin_reg_init, lin_fini,
     lin_infer, lin_compute},
};
