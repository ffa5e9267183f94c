/*
 * onnx_model: the public engine API (onnx_model.h). Load = parse + validate (onnx_loader.c),
 * kernel init, type pass with constant folding (graph.c), fusions (optimize.c), planning.
 * Run = for each planned node: infer shapes from the actual inputs, allocate outputs from the run
 * context's arena, compute, and release inputs after their last use. Run contexts (arena, value
 * table) are pooled per model, so concurrent runs never share mutable state and a warm run does
 * not call malloc except for the outputs it hands back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "graph.h"
#include "onnx_debug.h"
#include "onnx_proto.h"
#include "threadpool.h"

#define MODEL_MAX_FILE_BYTES ((size_t)4 << 30)
#define RUN_MAX_SCRATCH      16

typedef struct run_ctx {
    struct run_ctx *next;
    arena *ar;
    op_tensor *vals;                /* run-time values, indexed like g->vals */
    unsigned char *heap;            /* per value: 1 if its data is malloc'd (a graph output) */
    void *scratch[RUN_MAX_SCRATCH]; /* op_scratch blocks of the current compute */
    int n_scratch;
} run_ctx;

struct onnx_model {
    graph *g;
    threadpool *pool;
    onnx_value_info *in_info, *out_info;
    size_t removed;
    pthread_mutex_t mu;
    run_ctx *free_ctx;
    onnx_run_stats last;
};

static kinfer_status *onnx_model__load(const void *buf, size_t len, const onnx_options *opts,
                                       const char *ext_dir, int droppable, onnx_model **out);

size_t onnx_dtype_size(onnx_dtype dt)
{
    switch (dt) {
    case ONNX_DTYPE_FLOAT:
    case ONNX_DTYPE_INT32:
    case ONNX_DTYPE_UINT32:
        return 4;
    case ONNX_DTYPE_UINT8:
    case ONNX_DTYPE_INT8:
    case ONNX_DTYPE_BOOL:
        return 1;
    case ONNX_DTYPE_UINT16:
    case ONNX_DTYPE_INT16:
    case ONNX_DTYPE_FLOAT16:
        return 2;
    case ONNX_DTYPE_INT64:
    case ONNX_DTYPE_DOUBLE:
    case ONNX_DTYPE_UINT64:
        return 8;
    case ONNX_DTYPE_STRING:
        return sizeof(char *);
    default:
        return 0;
    }
}

const char *onnx_dtype_name(onnx_dtype dt)
{
    switch (dt) {
    case ONNX_DTYPE_FLOAT:
        return "float";
    case ONNX_DTYPE_UINT8:
        return "uint8";
    case ONNX_DTYPE_INT8:
        return "int8";
    case ONNX_DTYPE_UINT16:
        return "uint16";
    case ONNX_DTYPE_INT16:
        return "int16";
    case ONNX_DTYPE_INT32:
        return "int32";
    case ONNX_DTYPE_INT64:
        return "int64";
    case ONNX_DTYPE_STRING:
        return "string";
    case ONNX_DTYPE_BOOL:
        return "bool";
    case ONNX_DTYPE_FLOAT16:
        return "float16";
    case ONNX_DTYPE_DOUBLE:
        return "double";
    case ONNX_DTYPE_UINT32:
        return "uint32";
    case ONNX_DTYPE_UINT64:
        return "uint64";
    default:
        return "undefined";
    }
}

int64_t onnx_tensor_numel(const onnx_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

void onnx_tensor_release(onnx_tensor *t)
{
    if (!t) return;
    free(t->data);
    if (t->keys) {
        onnx_tensor_release(t->keys);
        free(t->keys);
    }
    memset(t, 0, sizeof(*t));
}

static void fill_info(const graph *g, int v, onnx_value_info *info)
{
    const graph_value *gv = &g->vals[v];
    const op_tensor *t = gv->decl.dtype ? &gv->decl : &gv->t;
    info->name = gv->name;
    info->kind = gv->t.kind;
    info->dtype = gv->t.dtype ? gv->t.dtype : t->dtype;
    info->rank = t->rank;
    for (int i = 0; i < ONNX_MAX_RANK; i++) {
        info->dims[i] = i < t->rank ? t->dims[i] : -1;
        info->dim_params[i] = i < t->rank ? gv->dim_params[i] : NULL;
    }
}

static void run_ctx_free(run_ctx *rc)
{
    if (!rc) return;
    arena_free(rc->ar);
    free(rc->vals);
    free(rc->heap);
    free(rc);
}

void onnx_model_free(onnx_model *m)
{
    if (!m) return;
    for (run_ctx *rc = m->free_ctx, *n; rc; rc = n) {
        n = rc->next;
        run_ctx_free(rc);
    }
    threadpool_free(m->pool);
    graph__free(m->g);
    free(m->in_info);
    free(m->out_info);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

kinfer_status *onnx_model_load_mem(const void *buf, size_t len, const onnx_options *opts,
                                   onnx_model **out)
{
    return onnx_model__load(buf, len, opts, opts ? opts->external_data_dir : NULL, 0, out);
}

static kinfer_status *onnx_model__load(const void *buf, size_t len, const onnx_options *opts,
                                       const char *ext_dir, int droppable, onnx_model **out)
{
    *out = NULL;
    kinfer_status *st = NULL;
    onnx_model *m = calloc(1, sizeof(*m));
    if (!m) return kinfer_status_new(KINFER_ENOMEM, "model");
    pthread_mutex_init(&m->mu, NULL);
    if ((st = graph__load(buf, len, ext_dir, droppable, &m->g))) goto out;
    graph *g = m->g;
    if ((st = graph__init_nodes(g))) goto out;
    int optimize = !(opts && opts->no_optimize);
    size_t before = g->n_plan;
    if ((st = graph__infer_types(g, optimize))) goto out;
    if (optimize && ((st = graph__plan(g)) || (st = graph__optimize(g)))) goto out;
    if ((st = graph__plan(g))) goto out;
    graph__liveness(g);
    m->removed = before - g->n_plan;
    m->in_info = calloc(g->n_inputs + 1, sizeof(onnx_value_info));
    m->out_info = calloc(g->n_outputs + 1, sizeof(onnx_value_info));
    if (!m->in_info || !m->out_info) {
        st = kinfer_status_new(KINFER_ENOMEM, "model info");
        goto out;
    }
    for (size_t i = 0; i < g->n_inputs; i++) fill_info(g, g->inputs[i], &m->in_info[i]);
    for (size_t i = 0; i < g->n_outputs; i++) fill_info(g, g->outputs[i], &m->out_info[i]);
    int threads = opts && opts->threads > 0 ? opts->threads : threadpool_default_size();
    if (!(m->pool = threadpool_create(threads)))
        st = kinfer_status_new(KINFER_ENOMEM, "thread pool");
out:
    if (st) {
        onnx_model_free(m);
        return st;
    }
    *out = m;
    return NULL;
}

/* The file is mapped, not read: the loader converts one initializer at a time and drops the
 * mapping's pages behind it, so a model's weights are resident about once while it loads. */
kinfer_status *onnx_model_load_file(const char *path, const onnx_options *opts, onnx_model **out)
{
    *out = NULL;
    kinfer_status *st = NULL;
    void *buf = MAP_FAILED;
    size_t len = 0;
    char *dir = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kinfer_status_new(errno == ENOENT ? KINFER_ENOTFOUND : KINFER_EIO, "open %s: %m",
                                 path);
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        st = kinfer_status_new(KINFER_EIO, "%s: not a regular file", path);
        goto out;
    }
    if ((size_t)sb.st_size > MODEL_MAX_FILE_BYTES) {
        st = kinfer_status_new(KINFER_ETOOBIG, "%s: %lld bytes is over the %zu-byte limit", path,
                               (long long)sb.st_size, MODEL_MAX_FILE_BYTES);
        goto out;
    }
    len = (size_t)sb.st_size;
    if (len && (buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        st = kinfer_status_new(KINFER_EIO, "map %s: %m", path);
        goto out;
    }
    const char *ext = opts ? opts->external_data_dir : NULL;
    if (!ext) {
        const char *slash = strrchr(path, '/');
        dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
        if (!dir) {
            st = kinfer_status_new(KINFER_ENOMEM, "path");
            goto out;
        }
        ext = dir;
    }
    st = onnx_model__load(len ? buf : "", len, opts, ext, len != 0, out);
    if (st) st = kinfer_status_wrap(st, "%s", path);
out:
    if (buf != MAP_FAILED) munmap(buf, len);
    close(fd);
    free(dir);
    return st;
}

size_t onnx_model_num_inputs(const onnx_model *m)
{
    return m->g->n_inputs;
}
size_t onnx_model_num_outputs(const onnx_model *m)
{
    return m->g->n_outputs;
}

const onnx_value_info *onnx_model_input(const onnx_model *m, size_t i)
{
    return i < m->g->n_inputs ? &m->in_info[i] : NULL;
}

const onnx_value_info *onnx_model_output(const onnx_model *m, size_t i)
{
    return i < m->g->n_outputs ? &m->out_info[i] : NULL;
}

void onnx_model_last_run_stats(const onnx_model *m, onnx_run_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&m->mu);
    *out = m->last;
    pthread_mutex_unlock((pthread_mutex_t *)&m->mu);
}

size_t onnx_model_plan_size(const onnx_model *m)
{
    return m->g->n_plan;
}
size_t onnx_model_nodes_removed(const onnx_model *m)
{
    return m->removed;
}

static run_ctx *ctx_get(onnx_model *m)
{
    pthread_mutex_lock(&m->mu);
    run_ctx *rc = m->free_ctx;
    if (rc) m->free_ctx = rc->next;
    pthread_mutex_unlock(&m->mu);
    if (rc) return rc;
    rc = calloc(1, sizeof(*rc));
    if (!rc) return NULL;
    rc->ar = arena_create();
    rc->vals = calloc(m->g->n_vals + 1, sizeof(op_tensor));
    rc->heap = calloc(m->g->n_vals + 1, 1);
    if (!rc->ar || !rc->vals || !rc->heap) {
        run_ctx_free(rc);
        return NULL;
    }
    return rc;
}

static void ctx_put(onnx_model *m, run_ctx *rc, const onnx_run_stats *stats)
{
    pthread_mutex_lock(&m->mu);
    if (stats) m->last = *stats;
    rc->next = m->free_ctx;
    m->free_ctx = rc;
    pthread_mutex_unlock(&m->mu);
}

static void *run_scratch(void *env, size_t bytes)
{
    run_ctx *rc = env;
    if (rc->n_scratch == RUN_MAX_SCRATCH) return NULL;
    void *p = arena_alloc(rc->ar, bytes);
    if (p) rc->scratch[rc->n_scratch++] = p;
    return p;
}

static void *run_keep(void *env, size_t bytes)
{
    return arena_alloc(((run_ctx *)env)->ar, bytes);
}

static kinfer_status *bind_inputs(onnx_model *m, run_ctx *rc, const onnx_tensor *inputs,
                                  size_t n_inputs)
{
    const graph *g = m->g;
    for (size_t j = 0; j < n_inputs; j++) {
        int v = inputs[j].name ? graph__find_value(g, inputs[j].name) : -1;
        if (v < 0 || !g->vals[v].is_input)
            return kinfer_status_new(KINFER_EINVAL, "'%s' is not an input of the model",
                                     inputs[j].name ? inputs[j].name : "(null)");
    }
    for (size_t i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const graph_value *gv = &g->vals[v];
        const onnx_tensor *in = NULL;
        for (size_t j = 0; j < n_inputs && !in; j++)
            if (!strcmp(inputs[j].name, gv->name)) in = &inputs[j];
        if (!in) return kinfer_status_new(KINFER_EINVAL, "input '%s' is missing", gv->name);
        if (in->kind != ONNX_VALUE_TENSOR || in->dtype != gv->t.dtype)
            return kinfer_status_new(KINFER_EDTYPE, "input '%s': got %s, the model expects %s",
                                     gv->name, onnx_dtype_name(in->dtype),
                                     onnx_dtype_name(gv->t.dtype));
        if (in->rank < 0 || in->rank > ONNX_MAX_RANK ||
            (gv->decl.rank >= 0 && in->rank != gv->decl.rank))
            return kinfer_status_new(KINFER_ESHAPE, "input '%s': rank %d, the model expects %d",
                                     gv->name, in->rank, gv->decl.rank);
        for (int d = 0; d < in->rank; d++) {
            if (in->dims[d] < 0)
                return kinfer_status_new(KINFER_ESHAPE, "input '%s': negative dim %d", gv->name, d);
            if (gv->decl.rank >= 0 && gv->decl.dims[d] >= 0 && gv->decl.dims[d] != in->dims[d])
                return kinfer_status_new(
                    KINFER_ESHAPE, "input '%s': dim %d is %lld, the model expects %lld", gv->name,
                    d, (long long)in->dims[d], (long long)gv->decl.dims[d]);
        }
        if (!in->data && onnx_tensor_numel(in) > 0)
            return kinfer_status_new(KINFER_EINVAL, "input '%s' has no data", gv->name);
        op_tensor *t = &rc->vals[v];
        t->dtype = in->dtype;
        t->rank = in->rank;
        memcpy(t->dims, in->dims, sizeof(t->dims));
        t->data = in->data;
    }
    return NULL;
}

/* The outputs handed to the caller: STRING data is repacked into one block, SEQ_MAP keys copied. */
static kinfer_status *export_value(run_ctx *rc, const graph_value *gv, int v, int take,
                                   onnx_tensor *o)
{
    op_tensor *t = &rc->vals[v];
    o->name = gv->name;
    o->kind = t->kind;
    o->dtype = t->dtype;
    o->rank = t->rank;
    memcpy(o->dims, t->dims, sizeof(o->dims));
    int64_t n = op_tensor_numel(t);
    if (take && t->dtype != ONNX_DTYPE_STRING) {
        o->data = t->data;
        rc->heap[v] = 0;
    } else {
        o->data = onnx_proto__copy_data(t->dtype, t->data, n);
    }
    if (!o->data) return kinfer_status_new(KINFER_ENOMEM, "output '%s'", gv->name);
    if (t->kind == ONNX_VALUE_SEQ_MAP && t->keys) {
        o->keys = calloc(1, sizeof(onnx_tensor));
        if (!o->keys) return kinfer_status_new(KINFER_ENOMEM, "output keys");
        o->keys->dtype = t->keys->dtype;
        o->keys->rank = t->keys->rank;
        memcpy(o->keys->dims, t->keys->dims, sizeof(o->keys->dims));
        o->keys->data =
            onnx_proto__copy_data(t->keys->dtype, t->keys->data, op_tensor_numel(t->keys));
        if (!o->keys->data) return kinfer_status_new(KINFER_ENOMEM, "output keys");
    }
    return NULL;
}

static kinfer_status *run_node(onnx_model *m, run_ctx *rc, op_node *n, onnx_run_stats *stats)
{
    graph *g = m->g;
    op_tensor *inp[GRAPH_MAX_NODE_IO + 1], *outp[GRAPH_MAX_NODE_IO + 1];
    for (int j = 0; j < n->n_in; j++) inp[j] = n->in[j] >= 0 ? &rc->vals[n->in[j]] : NULL;
    for (int o = 0; o < n->n_out; o++) {
        outp[o] = n->out[o] >= 0 ? &rc->vals[n->out[o]] : NULL;
        if (outp[o]) memset(outp[o], 0, sizeof(op_tensor));
    }
    kinfer_status *st = graph__node_infer(n, inp, outp, 1);
    if (st) return st;
    if (n->alias) {
        if (outp[0]->dtype != inp[0]->dtype || op_tensor_numel(outp[0]) != op_tensor_numel(inp[0]))
            return op_node_error(n, KINFER_EINTERNAL, "aliased output differs from its input");
        outp[0]->data = inp[0]->data;
        return NULL;
    }
    for (int o = 0; o < n->n_out; o++) {
        if (!outp[o]) continue;
        int v = n->out[o];
        size_t es = onnx_dtype_size(outp[o]->dtype);
        if (!es || outp[o]->dtype != g->vals[v].t.dtype)
            return op_node_error(n, KINFER_EINTERNAL, "output '%s': bad inferred type",
                                 g->vals[v].name);
        int64_t cnt = graph__checked_numel(outp[o], ONNX_PROTO_MAX_TENSOR_BYTES / (int64_t)es);
        if (cnt < 0)
            return op_node_error(n, KINFER_ETOOBIG, "output '%s': shape is negative or too large",
                                 g->vals[v].name);
        size_t bytes = (size_t)cnt * es;
        if (g->vals[v].is_output) {
            outp[o]->data = malloc(bytes ? bytes : 1);
            rc->heap[v] = outp[o]->data != NULL;
        } else {
            outp[o]->data = arena_alloc(rc->ar, bytes);
            stats->intermediate_bytes += (bytes + 63) & ~(size_t)63;
        }
        if (!outp[o]->data)
            return op_node_error(n, KINFER_ENOMEM, "output '%s': %zu bytes", g->vals[v].name,
                                 bytes);
    }
    op_ctx c = {.node = n,
                .in = inp,
                .out = outp,
                .run = 1,
                .scratch_fn = run_scratch,
                .keep_fn = run_keep,
                .env = rc,
                .pool = m->pool};
    st = n->def->compute(&c);
    for (int i = 0; i < rc->n_scratch; i++) arena_release(rc->ar, rc->scratch[i]);
    rc->n_scratch = 0;
    return st;
}

/* After the node at plan position p: free what no later node reads. */
static void release_dead(onnx_model *m, run_ctx *rc, const op_node *n, int p)
{
    const graph *g = m->g;
    for (int j = 0; j < n->n_in; j++) {
        int v = n->in[j];
        if (v < 0) continue;
        if (g->vals[v].alias_of >= 0) v = g->vals[v].alias_of; /* free the storage, once */
        if (g->vals[v].last_use != p || rc->heap[v] || g->vals[v].is_const || g->vals[v].is_input ||
            !rc->vals[v].data)
            continue;
        arena_release(rc->ar, rc->vals[v].data);
        rc->vals[v].data = NULL;
    }
    for (int o = 0; o < n->n_out; o++) {
        int v = n->out[o];
        if (v >= 0 && !n->alias && g->vals[v].n_consumers == 0 && !g->vals[v].is_output) {
            arena_release(rc->ar, rc->vals[v].data);
            rc->vals[v].data = NULL;
        }
    }
}

kinfer_status *onnx_model_run(onnx_model *m, const onnx_tensor *inputs, size_t n_inputs,
                              const char *const *output_names, onnx_tensor *outputs,
                              size_t n_outputs)
{
    kinfer_status *st = NULL;
    graph *g = m->g;
    int sel[GRAPH_MAX_IO];
    memset(outputs, 0, n_outputs * sizeof(*outputs));
    if (!output_names && n_outputs != g->n_outputs)
        return kinfer_status_new(KINFER_EINVAL, "%zu outputs requested, the model has %zu",
                                 n_outputs, g->n_outputs);
    if (n_outputs > GRAPH_MAX_IO)
        return kinfer_status_new(KINFER_EINVAL, "too many outputs requested");
    for (size_t k = 0; k < n_outputs; k++) {
        sel[k] = -1;
        for (size_t i = 0; i < g->n_outputs; i++)
            if (!output_names ? i == k : !strcmp(output_names[k], g->vals[g->outputs[i]].name))
                sel[k] = g->outputs[i];
        if (sel[k] < 0)
            return kinfer_status_new(KINFER_EINVAL, "'%s' is not an output of the model",
                                     output_names[k]);
    }
    run_ctx *rc = ctx_get(m);
    if (!rc) return kinfer_status_new(KINFER_ENOMEM, "run context");
    onnx_run_stats stats = {0};
    for (size_t v = 0; v < g->n_vals; v++) {
        rc->vals[v] = g->vals[v].is_const ? g->vals[v].t : (op_tensor){0};
        rc->heap[v] = 0;
    }
    if ((st = bind_inputs(m, rc, inputs, n_inputs))) goto out;
    for (size_t p = 0; p < g->n_plan; p++) {
        op_node *n = &g->nodes[g->plan[p]];
        if ((st = run_node(m, rc, n, &stats))) goto out;
        release_dead(m, rc, n, (int)p);
    }
    for (size_t k = 0; k < n_outputs; k++) {
        int take = rc->heap[sel[k]];
        if ((st = export_value(rc, &g->vals[sel[k]], sel[k], take, &outputs[k]))) goto out;
    }
    stats.arena_peak = arena_high_water(rc->ar);
    stats.arena_overflow = arena_overflow(rc->ar);
    stats.nodes = g->n_plan;
out:
    if (st)
        for (size_t k = 0; k < n_outputs; k++) onnx_tensor_release(&outputs[k]);
    for (size_t v = 0; v < g->n_vals; v++)
        if (rc->heap[v]) free(rc->vals[v].data);
    arena_reset(rc->ar);
    ctx_put(m, rc, st ? NULL : &stats);
    return st;
}
