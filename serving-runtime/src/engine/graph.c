/*
 * graph: value table, operator lookup, planning (topological order), liveness and the load-time
 * type pass with constant folding. The loader fills the graph; the runtime only reads it.
 */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "../ops/ops_core.h"
#include "../ops/ops_ml.h"

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int64_t graph__checked_numel(const op_tensor *t, int64_t max_elems)
{
    if (t->rank < 0 || t->rank > ONNX_MAX_RANK) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        if (t->dims[i] && n > max_elems / t->dims[i]) return -1;
        n *= t->dims[i];
    }
    return n;
}

int graph__find_value(const graph *g, const char *name)
{
    if (!g->hash_cap) return -1;
    for (size_t i = name_hash(name) & (g->hash_cap - 1);; i = (i + 1) & (g->hash_cap - 1)) {
        int v = g->hash[i];
        if (v < 0) return -1;
        if (!strcmp(g->vals[v].name, name)) return v;
    }
}

static int hash_grow(graph *g)
{
    size_t cap = g->hash_cap ? g->hash_cap * 2 : 256;
    int *h = malloc(cap * sizeof(int));
    if (!h) return -1;
    memset(h, 0xff, cap * sizeof(int));
    for (size_t v = 0; v < g->n_vals; v++) {
        size_t i = name_hash(g->vals[v].name) & (cap - 1);
        while (h[i] >= 0) i = (i + 1) & (cap - 1);
        h[i] = (int)v;
    }
    free(g->hash);
    g->hash = h;
    g->hash_cap = cap;
    return 0;
}

int graph__add_value(graph *g, const char *name)
{
    if (g->n_vals >= GRAPH_MAX_VALUES) return -1;
    if (g->n_vals == g->cap_vals) {
        size_t cap = g->cap_vals ? g->cap_vals * 2 : 64;
        graph_value *nv = realloc(g->vals, cap * sizeof(*nv));
        if (!nv) return -1;
        g->vals = nv;
        g->cap_vals = cap;
    }
    graph_value *v = &g->vals[g->n_vals];
    memset(v, 0, sizeof(*v));
    v->name = region_strndup(g->rg, name, strlen(name));
    if (!v->name) return -1;
    v->t.rank = -1;
    v->decl.rank = -1;
    v->producer = -1;
    v->last_use = -1;
    g->n_vals++;
    if ((g->n_vals * 2 > g->hash_cap) && hash_grow(g)) {
        g->n_vals--;
        return -1;
    }
    size_t i = name_hash(name) & (g->hash_cap - 1);
    while (g->hash[i] >= 0) i = (i + 1) & (g->hash_cap - 1);
    g->hash[i] = (int)(g->n_vals - 1);
    return (int)(g->n_vals - 1);
}

const op_def *graph__lookup_op(const char *domain, const char *op_type, int opset)
{
    const op_def *tabs[2];
    size_t lens[2];
    tabs[0] = ops_core_table(&lens[0]);
    tabs[1] = ops_ml_table(&lens[1]);
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < lens[t]; i++) {
            const op_def *d = &tabs[t][i];
            if (!strcmp(d->domain, domain) && !strcmp(d->op_type, op_type) && opset >= d->since &&
                opset <= d->until)
                return d;
        }
    return NULL;
}

/* Kahn's algorithm over live nodes; stable (keeps file order among ready nodes). */
kinfer_status *graph__plan(graph *g)
{
    kinfer_status *st = NULL;
    int *pending = calloc(g->n_nodes + 1, sizeof(int));
    int *queue = malloc((g->n_nodes + 1) * sizeof(int));
    int *users_start = calloc(g->n_vals + 1, sizeof(int));
    int *users = NULL;
    if (!pending || !queue || !users_start) goto oom;
    /* CSR of value -> consumer nodes. */
    size_t edges = 0;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const op_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0) users_start[n->in[j] + 1]++, edges++;
    }
    for (size_t v = 0; v < g->n_vals; v++) users_start[v + 1] += users_start[v];
    users = malloc((edges + 1) * sizeof(int));
    int *fill = calloc(g->n_vals + 1, sizeof(int));
    if (!users || !fill) {
        free(fill);
        goto oom;
    }
    for (size_t k = 0; k < g->n_nodes; k++) {
        const op_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v < 0) continue;
            users[users_start[v] + fill[v]++] = (int)k;
            if (g->vals[v].producer >= 0 && !g->nodes[g->vals[v].producer].dead) pending[k]++;
        }
    }
    free(fill);
    for (size_t v = 0; v < g->n_vals; v++)
        g->vals[v].n_consumers = users_start[v + 1] - users_start[v];
    size_t qh = 0, qt = 0, live = 0;
    for (size_t k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead) continue;
        live++;
        if (!pending[k]) queue[qt++] = (int)k;
    }
    if (!g->plan) g->plan = region_alloc(g->rg, (g->n_nodes + 1) * sizeof(int));
    if (!g->plan) goto oom;
    g->n_plan = 0;
    while (qh < qt) {
        int k = queue[qh++];
        g->plan[g->n_plan++] = k;
        const op_node *n = &g->nodes[k];
        for (int o = 0; o < n->n_out; o++) {
            int v = n->out[o];
            if (v < 0) continue;
            for (int u = users_start[v]; u < users_start[v + 1]; u++)
                if (--pending[users[u]] == 0) queue[qt++] = users[u];
        }
    }
    if (g->n_plan != live) {
        for (size_t k = 0; k < g->n_nodes; k++)
            if (!g->nodes[k].dead && pending[k] > 0) {
                st = op_node_error(&g->nodes[k], KINFER_EMODEL, "is part of a cycle in the graph");
                break;
            }
    }
    goto out;
oom:
    st = kinfer_status_new(KINFER_ENOMEM, "planning");
out:
    free(pending);
    free(queue);
    free(users_start);
    free(users);
    return st;
}

/* Ops whose output is their first input's bytes under another shape. */
static int is_alias_op(const op_node *n)
{
    static const char *const ops[] = {"Reshape",   "Flatten",  "Squeeze",
                                      "Unsqueeze", "Identity", "Dropout"};
    if (*n->domain || n->n_out != 1 || n->n_in < 1 || n->in[0] < 0 || n->out[0] < 0) return 0;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(n->op_type, ops[i])) return 1;
    return 0;
}

static int storage_root(const graph *g, int v)
{
    return g->vals[v].alias_of >= 0 ? g->vals[v].alias_of : v;
}

void graph__liveness(graph *g)
{
    for (size_t v = 0; v < g->n_vals; v++) g->vals[v].last_use = -1, g->vals[v].alias_of = -1;
    for (size_t p = 0; p < g->n_plan; p++) {
        op_node *n = &g->nodes[g->plan[p]];
        /* A graph output must own its buffer (it is handed to the caller), so it never aliases. */
        n->alias = is_alias_op(n) && !g->vals[n->out[0]].is_output;
        if (n->alias) g->vals[n->out[0]].alias_of = storage_root(g, n->in[0]);
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0) g->vals[storage_root(g, n->in[j])].last_use = (int)p;
    }
}

kinfer_status *graph__init_nodes(graph *g)
{
    for (size_t p = 0; p < g->n_plan; p++) {
        op_node *n = &g->nodes[g->plan[p]];
        if (!n->def->init || n->state) continue;
        kinfer_status *st = n->def->init(n, &n->state);
        if (st) return st;
    }
    return NULL;
}

static int dtype_is_compatible(onnx_dtype declared, onnx_dtype inferred)
{
    return !declared || !inferred || declared == inferred;
}

/* Outputs bigger than this are computed at run time instead: folding them would only trade
 * compute for resident memory (and let a tiny hostile file demand gigabytes at load). */
#define FOLD_MAX_BYTES       ((int64_t)64 << 20)
#define FOLD_TOTAL_MAX_BYTES ((int64_t)256 << 20)

/* Runs a node whose inputs are all constant at load time; its outputs become constants.
 * *folded = 0 when the node stays in the graph (its outputs are too large to keep). */
static kinfer_status *fold_node(graph *g, op_node *n, op_tensor **in, op_tensor **out, int *folded)
{
    *folded = 0;
    kinfer_status *st = graph__node_infer(n, in, out, 1);
    if (st) return st;
    for (int o = 0; o < n->n_out; o++) {
        if (!out[o]) continue;
        size_t es = onnx_dtype_size(out[o]->dtype);
        int64_t cnt = es ? graph__checked_numel(out[o], FOLD_MAX_BYTES / (int64_t)es + 1) : -1;
        if (cnt < 0 && es && graph__checked_numel(out[o], INT64_MAX) < 0)
            return op_node_error(n, KINFER_ETOOBIG, "output shape overflows");
        if (!es) return op_node_error(n, KINFER_EINTERNAL, "folding gave no type");
        if (cnt < 0) cnt = INT64_MAX; /* too big to fold: left to run time below */
        if (cnt > FOLD_MAX_BYTES / (int64_t)es ||
            g->folded_bytes + cnt * (int64_t)es > FOLD_TOTAL_MAX_BYTES) {
            for (int k = 0; k < n->n_out; k++)
                if (out[k]) out[k]->data = NULL;
            return NULL;
        }
    }
    for (int o = 0; o < n->n_out; o++) {
        if (!out[o]) continue;
        size_t bytes = (size_t)op_tensor_numel(out[o]) * onnx_dtype_size(out[o]->dtype);
        g->folded_bytes += (int64_t)bytes;
        out[o]->data = region_alloc(g->rg, bytes);
        if (!out[o]->data) return kinfer_status_new(KINFER_ENOMEM, "folding");
    }
    op_ctx c = {.node = n, .in = in, .out = out, .run = 1};
    if ((st = n->def->compute(&c))) return st;
    for (int o = 0; o < n->n_out; o++)
        if (n->out[o] >= 0) g->vals[n->out[o]].is_const = 1;
    n->dead = 1;
    *folded = 1;
    return NULL;
}

kinfer_status *graph__infer_types(graph *g, int fold)
{
    op_tensor *inp[GRAPH_MAX_NODE_IO + 1], *outp[GRAPH_MAX_NODE_IO + 1];
    for (size_t p = 0; p < g->n_plan; p++) {
        op_node *n = &g->nodes[g->plan[p]];
        int all_const = 1;
        for (int j = 0; j < n->n_in; j++) {
            inp[j] = n->in[j] >= 0 ? &g->vals[n->in[j]].t : NULL;
            if (n->in[j] >= 0 && !g->vals[n->in[j]].is_const) all_const = 0;
        }
        for (int o = 0; o < n->n_out; o++) outp[o] = n->out[o] >= 0 ? &g->vals[n->out[o]].t : NULL;
        kinfer_status *st = NULL;
        if (fold && all_const) {
            int folded;
            st = fold_node(g, n, inp, outp,
                           &folded); /* a constant subgraph that fails is a bad model */
        } else {
            st = graph__node_infer(n, inp, outp, 0);
        }
        if (st) return st;
        for (int o = 0; o < n->n_out; o++) {
            if (n->out[o] < 0) continue;
            graph_value *v = &g->vals[n->out[o]];
            if (!v->t.dtype)
                return op_node_error(n, KINFER_EINTERNAL, "output '%s' has no inferred type",
                                     v->name);
            if (v->decl.dtype && v->decl.kind != v->t.kind)
                return op_node_error(
                    n, KINFER_EMODEL, "output '%s' is declared a %s but computes a %s", v->name,
                    v->decl.kind == ONNX_VALUE_SEQ_MAP ? "sequence of maps" : "tensor",
                    v->t.kind == ONNX_VALUE_SEQ_MAP ? "sequence of maps" : "tensor");
            if (!dtype_is_compatible(v->decl.dtype, v->t.dtype))
                return op_node_error(n, KINFER_EMODEL, "output '%s' is declared %s but computes %s",
                                     v->name, onnx_dtype_name(v->decl.dtype),
                                     onnx_dtype_name(v->t.dtype));
        }
    }
    return NULL;
}

void graph__free(graph *g)
{
    if (!g) return;
    for (size_t k = 0; k < g->n_nodes; k++) {
        op_node *n = &g->nodes[k];
        if (n->state && n->def && n->def->fini) n->def->fini(n->state);
    }
    free(g->vals);
    free(g->hash);
    region_free(g->rg);
    free(g);
}
