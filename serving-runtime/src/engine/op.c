/*
 * op: the accessors and helpers behind op.h (node attributes, the invocation context, errors,
 * broadcasting). Kernels live in src/ops; this file only gives them a stable view of the graph.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "threadpool.h"

const char *op_node_name(const op_node *n)
{
    return n->name ? n->name : "";
}
const char *op_node_op_type(const op_node *n)
{
    return n->op_type;
}
int op_node_opset(const op_node *n)
{
    return n->opset;
}
int op_node_num_inputs(const op_node *n)
{
    return n->n_in;
}
int op_node_num_outputs(const op_node *n)
{
    return n->n_out;
}

const op_tensor *op_node_const_input(const op_node *n, int i)
{
    if (i < 0 || i >= n->n_in || n->in[i] < 0) return NULL;
    return &n->g->vals[n->in[i]].t;
}

op_act op_node_act(const op_node *n, float *lo, float *hi)
{
    if (lo) *lo = n->act_lo;
    if (hi) *hi = n->act_hi;
    return n->act;
}

op_act op_node_in_act(const op_node *n, float *lo, float *hi)
{
    if (lo) *lo = n->in_act == OP_ACT_CLIP ? n->in_lo : 0.0f;
    if (hi) *hi = n->in_act == OP_ACT_CLIP ? n->in_hi : INFINITY;
    return n->in_act;
}

static const graph_attr *attr_find(const op_node *n, const char *name, attr_type type)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].type == type && !strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int op_attr_has(const op_node *n, const char *name)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return 1;
    return 0;
}

int64_t op_attr_int(const op_node *n, const char *name, int64_t def)
{
    const graph_attr *a = attr_find(n, name, ATTR_INT);
    return a ? a->i : def;
}

float op_attr_float(const op_node *n, const char *name, float def)
{
    const graph_attr *a = attr_find(n, name, ATTR_FLOAT);
    return a ? a->f : def;
}

const char *op_attr_string(const op_node *n, const char *name, const char *def)
{
    const graph_attr *a = attr_find(n, name, ATTR_STRING);
    return a ? a->s : def;
}

size_t op_attr_ints(const op_node *n, const char *name, const int64_t **out)
{
    const graph_attr *a = attr_find(n, name, ATTR_INTS);
    *out = a ? a->ints : NULL;
    return a ? a->n : 0;
}

size_t op_attr_floats(const op_node *n, const char *name, const float **out)
{
    const graph_attr *a = attr_find(n, name, ATTR_FLOATS);
    *out = a ? a->floats : NULL;
    return a ? a->n : 0;
}

size_t op_attr_strings(const op_node *n, const char *name, const char *const **out)
{
    const graph_attr *a = attr_find(n, name, ATTR_STRINGS);
    *out = a ? (const char *const *)a->strings : NULL;
    return a ? a->n : 0;
}

const op_tensor *op_attr_tensor(const op_node *n, const char *name)
{
    const graph_attr *a = attr_find(n, name, ATTR_TENSOR);
    return a ? a->t : NULL;
}

const op_node *op_ctx_node(const op_ctx *c)
{
    return c->node;
}
void *op_ctx_state(const op_ctx *c)
{
    return c->node->state;
}
int op_num_inputs(const op_ctx *c)
{
    return c->node->n_in;
}
int op_num_outputs(const op_ctx *c)
{
    return c->node->n_out;
}
int op_is_run(const op_ctx *c)
{
    return c->run;
}

const op_tensor *op_input(const op_ctx *c, int i)
{
    return i >= 0 && i < c->node->n_in ? c->in[i] : NULL;
}

op_tensor *op_output(op_ctx *c, int i)
{
    return i >= 0 && i < c->node->n_out ? c->out[i] : NULL;
}

int op_shapes_known(const op_ctx *c)
{
    for (int i = 0; i < c->node->n_in; i++) {
        const op_tensor *t = c->in[i];
        if (!t) continue;
        if (t->rank < 0) return 0;
        for (int d = 0; d < t->rank; d++)
            if (t->dims[d] < 0) return 0;
    }
    return 1;
}

static kinfer_status *node_errorv(const op_node *n, kinfer_err code, const char *fmt, va_list ap)
{
    kinfer_status *st = kinfer_status_newv(code, fmt, ap);
    return kinfer_status_wrap(st, "node %s (%s)", op_node_name(n), n->op_type);
}

kinfer_status *op_error(const op_ctx *c, kinfer_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kinfer_status *st = node_errorv(c->node, code, fmt, ap);
    va_end(ap);
    return st;
}

kinfer_status *op_node_error(const op_node *n, kinfer_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kinfer_status *st = node_errorv(n, code, fmt, ap);
    va_end(ap);
    return st;
}

void *op_scratch(op_ctx *c, size_t bytes)
{
    if (c->scratch_fn) return c->scratch_fn(c->env, bytes);
    return region_alloc(c->node->g->rg, bytes); /* load time (constant folding) */
}

char *op_strdup(op_ctx *c, const char *s)
{
    size_t len = strlen(s);
    char *p = c->keep_fn ? c->keep_fn(c->env, len + 1) : region_alloc(c->node->g->rg, len + 1);
    if (p) memcpy(p, s, len + 1);
    return p;
}

void op_parallel(op_ctx *c, void (*fn)(void *arg, int ith, int nth), void *arg)
{
    threadpool_run(c->pool, fn, arg);
}

void op_split(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    int64_t per = n / nth, rem = n % nth;
    *begin = ith * per + (ith < rem ? ith : rem);
    *end = *begin + per + (ith < rem);
}

int op_num_threads(const op_ctx *c)
{
    return threadpool_size(c->pool);
}

int64_t op_tensor_numel(const op_tensor *t)
{
    if (t->rank < 0) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        n *= t->dims[i];
    }
    return n;
}

void op_set_output(op_ctx *c, int o, onnx_dtype dt, int rank, const int64_t *dims)
{
    op_tensor *y = op_output(c, o);
    if (!y) return;
    y->dtype = dt;
    y->rank = rank;
    for (int i = 0; i < rank && i < ONNX_MAX_RANK; i++) y->dims[i] = dims ? dims[i] : -1;
}

kinfer_status *op_infer_like(op_ctx *c, int i, int o)
{
    const op_tensor *x = op_input(c, i);
    op_tensor *y = op_output(c, o);
    if (!x || !y) return NULL;
    y->dtype = x->dtype;
    y->rank = x->rank;
    memcpy(y->dims, x->dims, sizeof(y->dims));
    return NULL;
}

kinfer_status *op_infer_broadcast(op_ctx *c, int n, onnx_dtype dt)
{
    op_tensor *y = op_output(c, 0);
    int rank = 0;
    for (int i = 0; i < n; i++) {
        const op_tensor *t = op_input(c, i);
        if (!t) continue;
        if (t->rank < 0) {
            op_set_output(c, 0, dt, -1, NULL);
            return NULL;
        }
        if (t->rank > rank) rank = t->rank;
    }
    int64_t dims[ONNX_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = 1;
    for (int i = 0; i < n; i++) {
        const op_tensor *t = op_input(c, i);
        if (!t) continue;
        for (int d = 0; d < t->rank; d++) {
            int od = rank - t->rank + d;
            int64_t a = dims[od], b = t->dims[d];
            if (b == 1) continue;
            if (a == 1 || a == b)
                dims[od] = b;
            else if (a < 0 || b < 0)
                dims[od] = -1;
            else
                return op_error(c, KINFER_ESHAPE, "inputs cannot broadcast: dim %d is %lld vs %lld",
                                od, (long long)a, (long long)b);
        }
    }
    (void)y;
    op_set_output(c, 0, dt, rank, dims);
    return NULL;
}

int64_t op_tensor_get_int(const op_tensor *t, int64_t k)
{
    switch (t->dtype) {
    case ONNX_DTYPE_INT64:
        return ((const int64_t *)t->data)[k];
    case ONNX_DTYPE_INT32:
        return ((const int32_t *)t->data)[k];
    case ONNX_DTYPE_UINT8:
    case ONNX_DTYPE_BOOL:
        return ((const uint8_t *)t->data)[k];
    case ONNX_DTYPE_INT8:
        return ((const int8_t *)t->data)[k];
    case ONNX_DTYPE_INT16:
        return ((const int16_t *)t->data)[k];
    case ONNX_DTYPE_UINT16:
        return ((const uint16_t *)t->data)[k];
    case ONNX_DTYPE_UINT32:
        return ((const uint32_t *)t->data)[k];
    case ONNX_DTYPE_UINT64:
        return (int64_t)((const uint64_t *)t->data)[k];
    default:
        return 0;
    }
}

double op_tensor_get_double(const op_tensor *t, int64_t k)
{
    switch (t->dtype) {
    case ONNX_DTYPE_FLOAT:
        return ((const float *)t->data)[k];
    case ONNX_DTYPE_DOUBLE:
        return ((const double *)t->data)[k];
    default:
        return (double)op_tensor_get_int(t, k);
    }
}

kinfer_status *graph__node_infer(op_node *n, op_tensor **in, op_tensor **out, int run)
{
    op_ctx c = {.node = n, .in = in, .out = out, .run = run};
    return n->def->infer(&c);
}
