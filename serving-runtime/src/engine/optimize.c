/*
 * optimize: load-time graph rewrites after constant folding (graph.c folds):
 *   Conv + BatchNormalization      -> Conv with rescaled weights and bias
 *   MatMul + Add(constant bias)    -> MatMul with a bias input (the GEMM epilogue adds it)
 *   Conv/Gemm/MatMul/Add + Relu/Clip -> the producer with a fused activation (op_node_act)
 *   Conv with an activation -> depthwise Conv: the activation moves to the depthwise Conv's
 *                                  input (op_node_in_act), applied as it copies each plane, so
 *                                  the first Conv writes its output once instead of clamping it
 *                                  in a second pass
 * A rewrite only fires when the intermediate value has exactly one consumer and is not a graph
 * output, so no observable value changes. The removed nodes are marked dead; planning runs again.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* consumer[v]: the only live node reading v, -1 for none, -2 for several (or a graph output). */
static int *consumers_build(const graph *g)
{
    int *cons = malloc((g->n_vals + 1) * sizeof(int));
    if (!cons) return NULL;
    for (size_t v = 0; v < g->n_vals; v++) cons[v] = g->vals[v].is_output ? -2 : -1;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const op_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v < 0) continue;
            cons[v] = cons[v] == -1 ? (int)k : -2;
        }
    }
    return cons;
}

static int is_op(const op_node *n, const char *t)
{
    return !n->dead && !*n->domain && !strcmp(n->op_type, t);
}

static const op_tensor *const_float(const graph *g, int v)
{
    if (v < 0 || !g->vals[v].is_const || g->vals[v].t.dtype != ONNX_DTYPE_FLOAT) return NULL;
    return &g->vals[v].t;
}

/* The producer's single output v feeds only node c; c's output replaces it. */
static void splice(graph *g, op_node *prod, op_node *c)
{
    int newv = c->out[0];
    prod->out[0] = newv;
    g->vals[newv].producer = (int)(prod - g->nodes);
    c->dead = 1;
}

static kinfer_status *add_const(graph *g, const char *base, const char *suffix, int64_t n, int *out)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s", base, suffix);
    for (int i = 0; graph__find_value(g, name) >= 0; i++)
        snprintf(name, sizeof name, "%s/%s.%d", base, suffix, i);
    int v = graph__add_value(g, name);
    if (v < 0) return kinfer_status_new(KINFER_ENOMEM, "optimizer");
    graph_value *gv = &g->vals[v];
    gv->is_const = 1;
    gv->t.dtype = ONNX_DTYPE_FLOAT;
    gv->t.rank = 1;
    gv->t.dims[0] = n;
    gv->t.data = region_alloc(g->rg, (size_t)n * sizeof(float));
    if (!gv->t.data) return kinfer_status_new(KINFER_ENOMEM, "optimizer");
    *out = v;
    return NULL;
}

static kinfer_status *fuse_conv_bn(graph *g, op_node *conv, op_node *bn, int *done)
{
    *done = 0;
    if (bn->n_out != 1 || bn->n_in != 5 || conv->n_out != 1) return NULL;
    const op_tensor *w = const_float(g, conv->in[1]),
                    *b = conv->n_in > 2 ? const_float(g, conv->in[2]) : NULL;
    const op_tensor *sc = const_float(g, bn->in[1]), *bi = const_float(g, bn->in[2]),
                    *mu = const_float(g, bn->in[3]), *var = const_float(g, bn->in[4]);
    if (!w || (conv->n_in > 2 && conv->in[2] >= 0 && !b) || !sc || !bi || !mu || !var ||
        w->rank < 3)
        return NULL;
    int64_t M = w->dims[0], per = 1;
    for (int i = 1; i < w->rank; i++) per *= w->dims[i];
    if (op_tensor_numel(sc) != M || op_tensor_numel(bi) != M || op_tensor_numel(mu) != M ||
        op_tensor_numel(var) != M || (b && op_tensor_numel(b) != M))
        return NULL;
    float eps = op_attr_float(bn, "epsilon", 1e-5f);
    int wv, bv;
    kinfer_status *st = add_const(g, conv->name, "bn_weight", M * per, &wv);
    if (!st) st = add_const(g, conv->name, "bn_bias", M, &bv);
    if (st) return st;
    /* add_const may move g->vals: re-read the tensors. */
    w = &g->vals[conv->in[1]].t;
    b = conv->n_in > 2 && conv->in[2] >= 0 ? &g->vals[conv->in[2]].t : NULL;
    sc = &g->vals[bn->in[1]].t, bi = &g->vals[bn->in[2]].t, mu = &g->vals[bn->in[3]].t,
    var = &g->vals[bn->in[4]].t;
    op_tensor *nw = &g->vals[wv].t, *nb = &g->vals[bv].t;
    nw->rank = w->rank;
    memcpy(nw->dims, w->dims, sizeof(nw->dims));
    for (int64_t m = 0; m < M; m++) {
        float a = ((const float *)sc->data)[m] / sqrtf(((const float *)var->data)[m] + eps);
        for (int64_t i = 0; i < per; i++)
            ((float *)nw->data)[m * per + i] = ((const float *)w->data)[m * per + i] * a;
        float b0 = b ? ((const float *)b->data)[m] : 0.0f;
        ((float *)nb->data)[m] =
            (b0 - ((const float *)mu->data)[m]) * a + ((const float *)bi->data)[m];
    }
    conv->in[1] = wv;
    conv->in[2] = bv;
    conv->n_in = 3;
    splice(g, conv, bn);
    *done = 1;
    return NULL;
}

static int fuse_matmul_add(graph *g, op_node *mm, op_node *add)
{
    if (mm->n_in != 2 || mm->n_out != 1 || add->n_in != 2) return 0;
    int other = add->in[0] == mm->out[0] ? add->in[1] : add->in[0];
    const op_tensor *bias = const_float(g, other), *bw = const_float(g, mm->in[1]);
    const op_tensor *a = &g->vals[mm->in[0]].t;
    if (!bias || !bw || bw->rank != 2 || a->dtype != ONNX_DTYPE_FLOAT || add->in[0] == add->in[1])
        return 0;
    int64_t N = bw->dims[1];
    int ok = (bias->rank == 1 && bias->dims[0] == N) ||
             (bias->rank == 2 && bias->dims[0] == 1 && bias->dims[1] == N && a->rank >= 2);
    if (!ok) return 0;
    mm->in[2] = other;
    mm->n_in = 3;
    splice(g, mm, add);
    return 1;
}

static int fuse_act(graph *g, op_node *prod, op_node *act)
{
    if (prod->act != OP_ACT_NONE || prod->n_out != 1 ||
        g->vals[prod->out[0]].t.dtype != ONNX_DTYPE_FLOAT)
        return 0;
    if (!strcmp(act->op_type, "Relu")) {
        prod->act = OP_ACT_RELU;
    } else {
        float lo = -INFINITY, hi = INFINITY;
        if (act->opset < 11) {
            lo = op_attr_float(act, "min", -INFINITY);
            hi = op_attr_float(act, "max", INFINITY);
        } else {
            for (int i = 1; i < act->n_in; i++) {
                if (act->in[i] < 0) continue;
                const op_tensor *t = const_float(g, act->in[i]);
                if (!t || op_tensor_numel(t) != 1) return 0;
                *(i == 1 ? &lo : &hi) = ((const float *)t->data)[0];
            }
        }
        prod->act = OP_ACT_CLIP;
        prod->act_lo = lo;
        prod->act_hi = hi;
    }
    splice(g, prod, act);
    return 1;
}

/* dw is a depthwise Conv (group = its output channels, one input channel per group, constant
 * weights) reading prod's output as its input 0: take over prod's activation. */
static int move_act(graph *g, op_node *prod, op_node *dw)
{
    if (prod->act == OP_ACT_NONE || dw->in_act != OP_ACT_NONE || dw->n_in < 2 ||
        dw->in[0] != prod->out[0] || dw->in[1] == prod->out[0])
        return 0;
    const op_tensor *w = const_float(g, dw->in[1]);
    if (!w || w->rank != 4 || w->dims[1] != 1 || op_attr_int(dw, "group", 1) != w->dims[0])
        return 0;
    dw->in_act = prod->act;
    dw->in_lo = prod->act_lo;
    dw->in_hi = prod->act_hi;
    prod->act = OP_ACT_NONE;
    return 1;
}

kinfer_status *graph__optimize(graph *g)
{
    kinfer_status *st = NULL;
    int *cons = consumers_build(g);
    if (!cons) return kinfer_status_new(KINFER_ENOMEM, "optimizer");
    /* Passes so MatMul+Add then +Relu, and Conv+BN then +Relu, both fuse, and then the
     * activation can move on into a depthwise Conv. */
    for (int pass = 0; pass < 3 && !st; pass++) {
        for (size_t k = 0; k < g->n_nodes && !st; k++) {
            op_node *n = &g->nodes[k];
            if (n->dead || *n->domain || n->n_out != 1 || n->out[0] < 0) continue;
            int c = cons[n->out[0]];
            if (c < 0) continue;
            op_node *u = &g->nodes[c];
            int changed = 0;
            if (pass == 0 && is_op(n, "Conv") && is_op(u, "BatchNormalization"))
                st = fuse_conv_bn(g, n, u, &changed);
            else if (pass == 0 && is_op(n, "MatMul") && is_op(u, "Add"))
                changed = fuse_matmul_add(g, n, u);
            else if (pass == 1 &&
                     (is_op(n, "Conv") || is_op(n, "Gemm") || is_op(n, "MatMul") ||
                      is_op(n, "Add")) &&
                     (is_op(u, "Relu") || is_op(u, "Clip")))
                changed = fuse_act(g, n, u);
            else if (pass == 2 && is_op(n, "Conv") && is_op(u, "Conv"))
                move_act(g, n, u); /* no node removed: the consumers stay the same */
            if (changed) {
                free(cons);
                if (!(cons = consumers_build(g)))
                    return kinfer_status_new(KINFER_ENOMEM, "optimizer");
            }
        }
    }
    free(cons);
    return st;
}
