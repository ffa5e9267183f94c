/*
 * core_loss: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (reduction none/sum/mean,
 * weights, ignore_index). Exporters leave them in graphs that compute a loss next to the
 * prediction; computed in double, stored as the input's float type.
 */
#include <math.h>

#include "core_tables.h"
#include "core_util.h"

static int red_kind(op_ctx *c)
{
    const char *r = op_attr_string(op_ctx_node(c), "reduction", "mean");
    return !strcmp(r, "none") ? 0 : !strcmp(r, "sum") ? 1 : !strcmp(r, "mean") ? 2 : -1;
}

static kinfer_status *loss_infer(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0), *t = op_input(c, 1), *w = op_input(c, 2);
    if (!core_is_float(x->dtype) ||
        (t->dtype != ONNX_DTYPE_INT64 && t->dtype != ONNX_DTYPE_INT32) ||
        (w && w->dtype != x->dtype))
        return op_error(c, KINFER_EMODEL, "types");
    int rk = red_kind(c);
    if (rk < 0) return op_error(c, KINFER_EMODEL, "reduction");
    if (op_output(c, 1)) op_infer_like(c, 0, 1);
    if (rk) return op_set_output(c, 0, x->dtype, 0, NULL), NULL;
    if (t->rank < 0) return op_set_output(c, 0, x->dtype, -1, NULL), NULL;
    op_set_output(c, 0, x->dtype, t->rank, t->dims);
    return NULL;
}

/* loss over log-probabilities lp laid out like the input [N, C, D...]. */
static kinfer_status *nll(op_ctx *c, const op_tensor *lp, const double *lpd)
{
    const op_tensor *t = op_input(c, 1), *w = op_input(c, 2);
    op_tensor *y = op_output(c, 0);
    int64_t N = lp->dims[0], C = lp->rank > 1 ? lp->dims[1] : 1,
            D = core_prod(lp->dims, 2, lp->rank);
    int64_t ign = op_attr_int(op_ctx_node(c), "ignore_index", INT64_MIN);
    int has_ign = op_attr_has(op_ctx_node(c), "ignore_index");
    if (op_tensor_numel(t) != N * D) return op_error(c, KINFER_ESHAPE, "target shape");
    double sum = 0, wsum = 0;
    int rk = red_kind(c);
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t k = op_tensor_get_int(t, n * D + d);
            double l = 0, wt = 0;
            if (!(has_ign && k == ign)) {
                if (k < 0 || k >= C)
                    return op_error(c, KINFER_EINVAL, "target %lld out of range", (long long)k);
                wt = w ? op_tensor_get_double(w, k) : 1.0;
                int64_t idx = (n * C + k) * D + d;
                l = -(lpd ? lpd[idx] : op_tensor_get_double(lp, idx)) * wt;
            }
            if (!rk) core_store_double(y, n * D + d, l);
            sum += l;
            wsum += wt;
        }
    if (rk == 1) core_store_double(y, 0, sum);
    if (rk == 2) core_store_double(y, 0, wsum != 0 ? sum / wsum : 0);
    return NULL;
}

static kinfer_status *nll_compute(op_ctx *c)
{
    return nll(c, op_input(c, 0), NULL);
}

static kinfer_status *sce_compute(op_ctx *c)
{
    const op_tensor *x = op_input(c, 0);
    int64_t N = x->dims[0], C = x->rank > 1 ? x->dims[1] : 1, D = core_prod(x->dims, 2, x->rank),
            n_all = op_tensor_numel(x);
    double *lp = op_scratch(c, sizeof(double) * (size_t)(n_all ? n_all : 1));
    if (!lp) return op_error(c, KINFER_ENOMEM, "loss");
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            double mx = -INFINITY, s = 0;
            for (int64_t k = 0; k < C; k++)
                mx = fmax(mx, op_tensor_get_double(x, (n * C + k) * D + d));
            for (int64_t k = 0; k < C; k++)
                s += exp(op_tensor_get_double(x, (n * C + k) * D + d) - mx);
            for (int64_t k = 0; k < C; k++) {
                int64_t i = (n * C + k) * D + d;
                lp[i] = op_tensor_get_double(x, i) - mx - log(s);
            }
        }
    op_tensor *lpo = op_output(c, 1);
    if (lpo)
        for (int64_t i = 0; i < n_all; i++) core_store_double(lpo, i, lp[i]);
    return nll(c, x, lp);
}

const op_def core_loss_ops[] = {
    {"", "NegativeLogLikelihoodLoss", 12, OP_OPSET_MAX, 2, 3, 1, 1, NULL, NULL, loss_infer,
     nll_compute},
    {"", "SoftmaxCrossEntropyLoss", 12, OP_OPSET_MAX, 2, 3, 1, 2, NULL, NULL, loss_infer,
     sce_compute},
};
const size_t core_loss_count = sizeof(core_loss_ops) / sizeof(core_loss_ops[0]);
