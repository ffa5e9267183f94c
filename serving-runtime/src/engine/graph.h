/*
 * graph: the engine's in-memory model (values, nodes, plan), shared by the engine's own modules
 * (loader, optimizer, op accessors, runtime). Not seen by kernels (they get op.h) nor by anyone
 * outside src/engine (they get onnx_model.h). All memory belongs to the graph's region.
 */
#ifndef KINFER_GRAPH_H
#define KINFER_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "region.h"

/* Hard caps that keep hostile models from exhausting memory before validation finishes. */
#define GRAPH_MAX_NODES   (1 << 20)
#define GRAPH_MAX_VALUES  (1 << 22)
#define GRAPH_MAX_IO      64
#define GRAPH_MAX_NODE_IO 4096

typedef enum attr_type {
    ATTR_FLOAT = 1,
    ATTR_INT = 2,
    ATTR_STRING = 3,
    ATTR_TENSOR = 4,
    ATTR_GRAPH = 5,
    ATTR_FLOATS = 6,
    ATTR_INTS = 7,
    ATTR_STRINGS = 8,
} attr_type;

typedef struct graph_attr {
    const char *name;
    attr_type type;
    int64_t i;
    float f;
    const char *s;
    size_t n; /* ints/floats/strings count */
    int64_t *ints;
    float *floats;
    const char **strings;
    op_tensor *t;
} graph_attr;

typedef struct graph_value {
    const char *name;
    op_tensor t;    /* load-time type/shape; data when constant */
    op_tensor decl; /* type/shape the model declares (graph inputs/outputs); dtype 0 if none */
    const char *dim_params[ONNX_MAX_RANK];
    int n_consumers; /* live nodes reading it */
    int is_const;    /* initializer, Constant output or folded */
    int is_input;    /* graph input (not an initializer) */
    int is_output;   /* graph output */
    int producer;    /* node index, -1 for inputs/constants */
    int last_use;    /* position in plan order of the last consumer (of it or of any value
                      * aliasing its storage); -1 if none */
    int alias_of;    /* value whose storage this one shares (zero-copy reshape); -1 if none */
} graph_value;

struct op_node {
    const char *name, *op_type, *domain;
    int opset;
    int n_in, n_out;
    int *in, *out; /* value indices; -1 = absent optional */
    graph_attr *attrs;
    size_t n_attrs;
    const op_def *def;
    void *state;
    op_act act;
    float act_lo, act_hi;
    /* The producer's fused activation, moved here by the optimizer: applied to input 0 as the
     * kernel reads it (a depthwise Conv after a Conv+Clip); OP_ACT_NONE otherwise. */
    op_act in_act;
    float in_lo, in_hi;
    int dead;  /* removed by the optimizer */
    int alias; /* output 0 reuses input 0's storage (Reshape, Flatten, Squeeze, ...) */
    struct graph *g;
};

typedef struct graph {
    region *rg;
    graph_value *vals;
    size_t n_vals, cap_vals;
    op_node *nodes;
    size_t n_nodes;
    int *plan; /* node indices in execution order (live nodes only) */
    size_t n_plan;
    int *inputs, *outputs; /* value indices */
    size_t n_inputs, n_outputs;
    int opset_default, opset_ml;
    int64_t folded_bytes; /* constant-folded data so far (capped) */
    int *hash;            /* open addressing over vals by name */
    size_t hash_cap;
} graph;

/* Parses and validates a model (onnx_loader.c); ext_dir: base for external data or NULL.
 * droppable: buf is a private read-only file mapping whose pages may be dropped once consumed. */
kinfer_status *graph__load(const void *buf, size_t len, const char *ext_dir, int droppable,
                           graph **out) __attribute__((warn_unused_result));
/* Runs every node's fini and releases everything. NULL is a no-op. */
void graph__free(graph *g);
/* Calls every node's init (after optimization decided which nodes live). */
kinfer_status *graph__init_nodes(graph *g) __attribute__((warn_unused_result));

/* One node invocation. The runtime supplies the allocators; at load time they may be NULL. */
struct threadpool;
struct op_ctx {
    op_node *node;
    op_tensor **in, **out; /* n_in / n_out entries; NULL = absent */
    int run;
    void *(*scratch_fn)(void *env, size_t bytes); /* freed after compute */
    void *(*keep_fn)(void *env, size_t bytes);    /* freed at the end of the run */
    void *env;
    struct threadpool *pool;
};

/* Element count of an inferred shape, or -1 if a dim is negative/unknown or the product exceeds
 * max_elems (checked without overflow: a hostile shape must not wrap around to a small buffer). */
int64_t graph__checked_numel(const op_tensor *t, int64_t max_elems);

/* Index of the value named name, or -1. */
int graph__find_value(const graph *g, const char *name);
/* Adds a value (name copied); returns its index or -1 on OOM/cap. */
int graph__add_value(graph *g, const char *name);
/* Finds the kernel for n (domain, op_type, opset); NULL if none. */
const op_def *graph__lookup_op(const char *domain, const char *op_type, int opset);
/* Topological order into g->plan; status names a node on a cycle or an undefined input. */
kinfer_status *graph__plan(graph *g) __attribute__((warn_unused_result));
/* Load-time type pass: runs every live node's infer with the known types (and shapes where
 * known), storing its outputs' types into the graph. */
kinfer_status *graph__infer_types(graph *g, int fold) __attribute__((warn_unused_result));
/* Liveness after planning: aliasing (which nodes may reuse their input's storage) and the
 * last_use of every storage root. */
void graph__liveness(graph *g);
/* Constant folding and fusions (optimize.c). */
kinfer_status *graph__optimize(graph *g) __attribute__((warn_unused_result));
/* Runs one node with the given input/output tensors (op.c). Used by folding and by runs. */
kinfer_status *graph__node_infer(op_node *n, op_tensor **in, op_tensor **out, int run)
    __attribute__((warn_unused_result));

#endif
