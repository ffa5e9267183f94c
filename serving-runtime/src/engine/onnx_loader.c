/*
 * onnx_loader: ModelProto bytes -> validated graph. Checks opsets, resolves every node to a
 * kernel, converts attributes and initializers (with size checks), and finds undefined inputs,
 * duplicate definitions and cycles. It does not optimize or run anything (optimize.c,
 * onnx_model.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "graph.h"
#include "onnx_proto.h"

#define OPSET_DEFAULT_MIN 1
#define OPSET_DEFAULT_MAX 21
#define OPSET_ML_MIN      1
#define OPSET_ML_MAX      5

static int is_default_domain(const char *d)
{
    return !d || !*d || !strcmp(d, "ai.onnx");
}

static char *bin_str(region *rg, ProtobufCBinaryData b)
{
    return region_strndup(rg, (const char *)b.data, b.len);
}

/* The one non-tensor type kinfer serves: ZipMap's sequence of maps from INT64 or STRING keys to
 * float scores (skl2onnx classifiers export it by default). It is carried as ONNX_VALUE_SEQ_MAP
 * with the float scores as data; ZipMap's inference fills in [N, K] and the keys. */
static kinfer_status *seq_map_type(graph_value *v, const Onnx__TypeProto *tp)
{
    const Onnx__TypeProto__Sequence *sq = tp->sequence_type;
    const Onnx__TypeProto *el = sq ? sq->elem_type : NULL;
    const Onnx__TypeProto__Map *mp =
        el && el->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE ? el->map_type : NULL;
    const Onnx__TypeProto *val = mp ? mp->value_type : NULL;
    if (!mp || !val || val->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !val->tensor_type || val->tensor_type->elem_type != ONNX_DTYPE_FLOAT ||
        (mp->key_type != ONNX_DTYPE_INT64 && mp->key_type != ONNX_DTYPE_STRING))
        return kinfer_status_new(
            KINFER_EUNSUPPORTED,
            "value '%s': the only sequence type supported is seq(map(int64|string, float))",
            v->name);
    v->t.kind = ONNX_VALUE_SEQ_MAP;
    v->t.dtype = ONNX_DTYPE_FLOAT;
    v->t.rank = -1;
    return NULL;
}

static kinfer_status *value_type(graph *g, graph_value *v, const Onnx__ValueInfoProto *vi)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp) return NULL; /* type left to inference */
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE) return seq_map_type(v, tp);
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return kinfer_status_new(KINFER_EUNSUPPORTED, "value '%s': only tensor types are supported",
                                 v->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (!tt) return NULL;
    if (tt->has_elem_type && tt->elem_type) {
        if (!onnx_dtype_size((onnx_dtype)tt->elem_type))
            return kinfer_status_new(KINFER_EUNSUPPORTED, "value '%s': element type %d", v->name,
                                     tt->elem_type);
        v->t.dtype = (onnx_dtype)tt->elem_type;
    }
    if (!tt->shape) return NULL;
    if (tt->shape->n_dim > ONNX_MAX_RANK)
        return kinfer_status_new(KINFER_EUNSUPPORTED, "value '%s': rank %zu > %d", v->name,
                                 tt->shape->n_dim, ONNX_MAX_RANK);
    v->t.rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->t.dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return kinfer_status_new(KINFER_EMODEL, "value '%s': negative dim %lld", v->name,
                                         (long long)d->dim_value);
            v->t.dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM) {
            v->dim_params[i] = region_strndup(g->rg, d->dim_param, strlen(d->dim_param));
        }
    }
    return NULL;
}

static kinfer_status *convert_attr(graph *g, op_node *n, const Onnx__AttributeProto *a,
                                   graph_attr *out)
{
    region *rg = g->rg;
    out->name = region_strndup(rg, a->name ? a->name : "", a->name ? strlen(a->name) : 0);
    int type = a->has_type ? a->type : 0;
    if (!type) { /* IR < 2 files: infer from the populated field */
        if (a->has_f)
            type = ATTR_FLOAT;
        else if (a->has_i)
            type = ATTR_INT;
        else if (a->has_s)
            type = ATTR_STRING;
        else if (a->t)
            type = ATTR_TENSOR;
        else if (a->n_floats)
            type = ATTR_FLOATS;
        else if (a->n_ints)
            type = ATTR_INTS;
        else if (a->n_strings)
            type = ATTR_STRINGS;
    }
    out->type = (attr_type)type;
    switch (type) {
    case ATTR_FLOAT:
        out->f = a->f;
        break;
    case ATTR_INT:
        out->i = a->i;
        break;
    case ATTR_STRING:
        out->s = bin_str(rg, a->s);
        break;
    case ATTR_FLOATS:
        out->n = a->n_floats;
        out->floats = region_alloc(rg, a->n_floats * sizeof(float));
        if (a->n_floats) memcpy(out->floats, a->floats, a->n_floats * sizeof(float));
        break;
    case ATTR_INTS:
        out->n = a->n_ints;
        out->ints = region_alloc(rg, a->n_ints * sizeof(int64_t));
        if (a->n_ints) memcpy(out->ints, a->ints, a->n_ints * sizeof(int64_t));
        break;
    case ATTR_STRINGS:
        out->n = a->n_strings;
        out->strings = region_alloc(rg, a->n_strings * sizeof(char *));
        for (size_t i = 0; out->strings && i < a->n_strings; i++)
            out->strings[i] = bin_str(rg, a->strings[i]);
        break;
    case ATTR_TENSOR:
        if (!a->t)
            return op_node_error(n, KINFER_EMODEL, "attribute '%s' has no tensor", out->name);
        out->t = region_alloc(rg, sizeof(op_tensor));
        if (!out->t) break;
        return onnx_proto__tensor(a->t, NULL, rg, out->name, out->t);
    default:
        return op_node_error(n, KINFER_EUNSUPPORTED,
                             "attribute '%s' of type %d (graphs, sparse tensors)", out->name, type);
    }
    return NULL;
}

/* Looks up or creates the value an edge names; "" is an absent optional input (-1). */
static int edge_value(graph *g, const char *name)
{
    if (!name || !*name) return -1;
    int v = graph__find_value(g, name);
    return v >= 0 ? v : graph__add_value(g, name);
}

static kinfer_status *load_node(graph *g, const Onnx__NodeProto *np, size_t idx, op_node *n)
{
    region *rg = g->rg;
    char fallback[32];
    snprintf(fallback, sizeof(fallback), "#%zu", idx);
    const char *nm = np->name && *np->name ? np->name : fallback;
    n->g = g;
    n->name = region_strndup(rg, nm, strlen(nm));
    n->op_type =
        region_strndup(rg, np->op_type ? np->op_type : "", np->op_type ? strlen(np->op_type) : 0);
    n->domain =
        is_default_domain(np->domain) ? "" : region_strndup(rg, np->domain, strlen(np->domain));
    if (!n->name || !n->op_type || !n->domain) return kinfer_status_new(KINFER_ENOMEM, "node");
    if (!*n->domain)
        n->opset = g->opset_default;
    else if (!strcmp(n->domain, "ai.onnx.ml"))
        n->opset = g->opset_ml;
    else
        return op_node_error(n, KINFER_EUNSUPPORTED, "unsupported operator %s (domain '%s')",
                             n->op_type, n->domain);
    if (n->opset <= 0)
        return op_node_error(n, KINFER_EMODEL, "the model imports no opset for domain '%s'",
                             n->domain);
    n->def = graph__lookup_op(n->domain, n->op_type, n->opset);
    if (!n->def)
        return op_node_error(n, KINFER_EUNSUPPORTED, "unsupported operator %s%s%s (opset %d)",
                             *n->domain ? n->domain : "", *n->domain ? "." : "", n->op_type,
                             n->opset);
    if (np->n_input > GRAPH_MAX_NODE_IO || np->n_output > GRAPH_MAX_NODE_IO)
        return op_node_error(n, KINFER_ETOOBIG, "too many inputs/outputs");
    n->n_in = (int)np->n_input;
    n->n_out = (int)np->n_output;
    const op_def *d = n->def;
    if (n->n_in < d->min_inputs || n->n_in > d->max_inputs)
        return op_node_error(n, KINFER_EMODEL, "%d inputs, expected %d..%d", n->n_in, d->min_inputs,
                             d->max_inputs);
    if (n->n_out < d->min_outputs || n->n_out > d->max_outputs)
        return op_node_error(n, KINFER_EMODEL, "%d outputs, expected %d..%d", n->n_out,
                             d->min_outputs, d->max_outputs);
    /* One spare input slot so the optimizer can attach a fused bias. */
    n->in = region_alloc(rg, (size_t)(n->n_in + 1) * sizeof(int));
    n->out = region_alloc(rg, (size_t)(n->n_out + 1) * sizeof(int));
    n->attrs = region_alloc(rg, (np->n_attribute + 1) * sizeof(graph_attr));
    if (!n->in || !n->out || !n->attrs) return kinfer_status_new(KINFER_ENOMEM, "node");
    for (int i = 0; i < n->n_in; i++) {
        n->in[i] = edge_value(g, np->input[i]);
        if (np->input[i] && *np->input[i] && n->in[i] < 0)
            return kinfer_status_new(KINFER_ENOMEM, "value");
        /* Only optional inputs (past the required count) may be left empty. */
        if (n->in[i] < 0 && i < d->min_inputs)
            return op_node_error(n, KINFER_EMODEL, "required input %d is empty", i);
    }
    for (int i = 0; i < n->n_out; i++) {
        n->out[i] = edge_value(g, np->output[i]);
        if (n->out[i] < 0) {
            /* Only optional outputs (past the required count) may be left unnamed: a kernel
             * writes its required outputs unconditionally. */
            if ((!np->output[i] || !*np->output[i]) && i < d->min_outputs)
                return op_node_error(n, KINFER_EMODEL, "required output %d is empty", i);
            if (!np->output[i] || !*np->output[i]) continue; /* unused optional output */
            return kinfer_status_new(KINFER_ENOMEM, "value");
        }
        graph_value *v = &g->vals[n->out[i]];
        if (v->producer >= 0 || v->is_const || v->is_input)
            return op_node_error(n, KINFER_EMODEL, "output '%s' is defined twice", v->name);
        v->producer = (int)idx;
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        kinfer_status *st = convert_attr(g, n, np->attribute[i], &n->attrs[i]);
        if (st) return st;
    }
    n->n_attrs = np->n_attribute;
    return NULL;
}

static kinfer_status *load_opsets(graph *g, const Onnx__ModelProto *mp)
{
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o->has_version) continue;
        if (is_default_domain(o->domain)) {
            if (o->version < OPSET_DEFAULT_MIN || o->version > OPSET_DEFAULT_MAX)
                return kinfer_status_new(
                    KINFER_EUNSUPPORTED, "opset %lld of the default domain (supported %d..%d)",
                    (long long)o->version, OPSET_DEFAULT_MIN, OPSET_DEFAULT_MAX);
            g->opset_default = (int)o->version;
        } else if (!strcmp(o->domain, "ai.onnx.ml")) {
            if (o->version < OPSET_ML_MIN || o->version > OPSET_ML_MAX)
                return kinfer_status_new(KINFER_EUNSUPPORTED,
                                         "opset %lld of ai.onnx.ml (supported %d..%d)",
                                         (long long)o->version, OPSET_ML_MIN, OPSET_ML_MAX);
            g->opset_ml = (int)o->version;
        }
        /* Other domains only matter if a node uses them (load_node reports it). */
    }
    return NULL;
}

/* Drops the pages wholly inside [p, p + len) of a private file mapping: the bytes were consumed,
 * so the file's pages need not stay resident beside the tensor converted from them. */
static void drop_pages(const void *p, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + page - 1) & ~(page - 1),
              e = ((uintptr_t)p + len) & ~(page - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

/* protobuf-c allocator for initializer unpacks. A payload's copy lives only until it is
 * converted, so big blocks are mapped and unmapped: from malloc they would leave holes in the
 * heap between the region's blocks that stay resident after the load. */
#define PB_MAP_MIN ((size_t)256 << 10)
typedef struct pb_block {
    size_t size, mapped;
} pb_block;

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    if (size > SIZE_MAX - sizeof(pb_block)) return NULL;
    size_t total = size + sizeof(pb_block);
    pb_block *b = total >= PB_MAP_MIN ? mmap(NULL, total, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                      : malloc(total);
    if (!b || b == MAP_FAILED) return NULL;
    b->size = total;
    b->mapped = total >= PB_MAP_MIN;
    return b + 1;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    if (!p) return;
    pb_block *b = (pb_block *)p - 1;
    if (b->mapped)
        munmap(b, b->size);
    else
        free(b);
}

static ProtobufCAllocator pb_mapped = {pb_alloc, pb_free, NULL};

/* One initializer at a time: unpack its TensorProto, convert it into the region, free the
 * unpacked copy. Peak memory is the weights plus the largest one, not three copies of all. */
static kinfer_status *load_initializers(graph *g, const onnx_proto_split *sp, const char *ext_dir,
                                        int droppable)
{
    for (size_t i = 0; i < sp->n_inits; i++) {
        Onnx__TensorProto *tp =
            onnx__tensor_proto__unpack(&pb_mapped, sp->inits[i].len, sp->inits[i].p);
        if (!tp)
            return kinfer_status_new(KINFER_EMODEL,
                                     "initializer %zu is not a valid TensorProto (%zu bytes)", i,
                                     sp->inits[i].len);
        if (droppable) drop_pages(sp->inits[i].p, sp->inits[i].len);
        kinfer_status *st = NULL;
        const char *name = tp->name ? tp->name : "";
        int v = -1;
        if (!*name)
            st = kinfer_status_new(KINFER_EMODEL, "initializer %zu has no name", i);
        else if (graph__find_value(g, name) >= 0)
            st = kinfer_status_new(KINFER_EMODEL, "initializer '%s' is defined twice", name);
        else if ((v = graph__add_value(g, name)) < 0)
            st = kinfer_status_new(KINFER_ENOMEM, "values");
        if (!st) {
            g->vals[v].is_const = 1;
            st = onnx_proto__tensor(tp, ext_dir, g->rg, g->vals[v].name, &g->vals[v].t);
            if (st) st = kinfer_status_wrap(st, "initializer");
        }
        onnx__tensor_proto__free_unpacked(tp, &pb_mapped);
        if (st) return st;
    }
    return NULL;
}

static kinfer_status *load_graph(graph *g, const Onnx__GraphProto *gp, const onnx_proto_split *sp,
                                 const char *ext_dir, int droppable)
{
    kinfer_status *st = NULL;
    region *rg = g->rg;
    if (gp->n_node > GRAPH_MAX_NODES || gp->n_input > GRAPH_MAX_VALUES ||
        gp->n_output > GRAPH_MAX_IO)
        return kinfer_status_new(KINFER_ETOOBIG, "graph has too many nodes, inputs or outputs");
    /* The split moved every initializer out; any left here came in some other encoding. */
    if (gp->n_initializer)
        return kinfer_status_new(KINFER_EMODEL,
                                 "graph has an initializer protobuf-c could not place");
    if ((st = load_initializers(g, sp, ext_dir, droppable))) return st;
    g->inputs = region_alloc(rg, (gp->n_input + 1) * sizeof(int));
    g->outputs = region_alloc(rg, (gp->n_output + 1) * sizeof(int));
    if (!g->inputs || !g->outputs) return kinfer_status_new(KINFER_ENOMEM, "graph io");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi->name ? vi->name : "";
        if (!*name) return kinfer_status_new(KINFER_EMODEL, "graph input %zu has no name", i);
        int v = graph__find_value(g, name);
        if (v >= 0 && g->vals[v].is_const) continue; /* an initializer listed as input (IR < 4) */
        if (v >= 0)
            return kinfer_status_new(KINFER_EMODEL, "graph input '%s' is listed twice", name);
        if (g->n_inputs >= GRAPH_MAX_IO)
            return kinfer_status_new(KINFER_ETOOBIG, "more than %d graph inputs", GRAPH_MAX_IO);
        v = graph__add_value(g, name);
        if (v < 0) return kinfer_status_new(KINFER_ENOMEM, "values");
        g->vals[v].is_input = 1;
        g->vals[v].t.rank = -1;
        if ((st = value_type(g, &g->vals[v], vi))) return st;
        g->vals[v].decl = g->vals[v].t;
        if (!g->vals[v].t.dtype)
            return kinfer_status_new(KINFER_EMODEL, "graph input '%s' has no element type", name);
        g->inputs[g->n_inputs++] = v;
    }
    g->nodes = region_alloc(rg, (gp->n_node + 1) * sizeof(op_node));
    if (!g->nodes) return kinfer_status_new(KINFER_ENOMEM, "nodes");
    for (size_t i = 0; i < gp->n_node; i++) {
        if ((st = load_node(g, gp->node[i], i, &g->nodes[i]))) return st;
        g->n_nodes = i + 1;
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        int v = graph__find_value(g, vi->name ? vi->name : "");
        if (v < 0)
            return kinfer_status_new(KINFER_EMODEL, "graph output '%s' is not produced by any node",
                                     vi->name ? vi->name : "");
        /* Declared output types are checked against inference in graph__infer_types. */
        graph_value tmp = {.name = g->vals[v].name, .t = {.rank = -1}};
        if ((st = value_type(g, &tmp, vi))) return st;
        g->vals[v].decl = tmp.t;
        memcpy(g->vals[v].dim_params, tmp.dim_params, sizeof(tmp.dim_params));
        g->vals[v].is_output = 1;
        g->outputs[g->n_outputs++] = v;
    }
    for (size_t i = 0; i < g->n_vals; i++) {
        graph_value *v = &g->vals[i];
        if (v->is_const || v->is_input || v->producer >= 0) continue;
        for (size_t k = 0; k < g->n_nodes; k++)
            for (int j = 0; j < g->nodes[k].n_in; j++)
                if (g->nodes[k].in[j] == (int)i)
                    return op_node_error(&g->nodes[k], KINFER_EMODEL, "input '%s' is not defined",
                                         v->name);
        return kinfer_status_new(KINFER_EMODEL, "value '%s' is not defined", v->name);
    }
    return NULL;
}

kinfer_status *graph__load(const void *buf, size_t len, const char *ext_dir, int droppable,
                           graph **out)
{
    *out = NULL;
    kinfer_status *st = NULL;
    Onnx__ModelProto *mp = NULL;
    onnx_proto_split sp;
    if ((st = onnx_proto__split_model(buf, len, GRAPH_MAX_VALUES, &sp))) {
        onnx_proto__split_free(&sp);
        return st;
    }
    mp = onnx__model_proto__unpack(NULL, sp.model_len, sp.model);
    if (!mp) {
        onnx_proto__split_free(&sp);
        return kinfer_status_new(
            KINFER_EMODEL, "not a valid ONNX model (protobuf parse of %zu bytes failed)", len);
    }
    graph *g = calloc(1, sizeof(*g));
    if (!g || !(g->rg = region_create())) {
        st = kinfer_status_new(KINFER_ENOMEM, "graph");
        goto out;
    }
    if (!mp->graph) {
        st = kinfer_status_new(KINFER_EMODEL, "model has no graph");
        goto out;
    }
    if ((st = load_opsets(g, mp))) goto out;
    if (!g->opset_default && !g->opset_ml) {
        st = mp->n_opset_import && mp->opset_import[0]->domain
                 ? kinfer_status_new(KINFER_EUNSUPPORTED,
                                     "no supported opset (the model imports domain '%s')",
                                     mp->opset_import[0]->domain)
                 : kinfer_status_new(KINFER_EMODEL, "model imports no opset");
        goto out;
    }
    if ((st = load_graph(g, mp->graph, &sp, ext_dir, droppable))) goto out;
    if ((st = graph__plan(g))) goto out;
out:
    onnx__model_proto__free_unpacked(mp, NULL);
    onnx_proto__split_free(&sp);
    if (st) {
        graph__free(g);
        return st;
    }
    *out = g;
    return NULL;
}
