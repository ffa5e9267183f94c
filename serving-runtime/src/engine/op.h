/*
 * op: the internal kernel interface of kinfer's ONNX engine. Everything a kernel in src/ops sees
 * is in this header; the engine (loader, planner, runtime) is behind it.
 *
 * An operator is an op_def: (domain, op_type, opset range) plus up to four functions. The CPU
 * backend is a set of op_def tables (ops_core.c for the default domain, ml_register.c for
 * ai.onnx.ml, see ops_ml.h); a GPU backend would be another set of tables with the same shape.
 *
 * Life of a node:
 *   load:  init(n, &state)   once per node; parse/validate attributes, build private state.
 *                            Return KINFER_EUNSUPPORTED for attribute values you do not handle
 *                            (kinfer-onnx-check reports that as a named skip, not a failure).
 *          infer(c)          once with load-time types: input dtypes are known, but shapes may
 *                            be unknown (rank -1, or a dim -1 for a symbolic batch) and data is
 *                            NULL unless the input is a constant. Check the input dtypes and set
 *                            every output's dtype; set the shape only if op_shapes_known(c).
 *   run:   infer(c)          again before every compute, now with every shape and every input's
 *                            data known: set each output's dtype, rank and dims.
 *          (the engine allocates the outputs from the run's arena)
 *          compute(c)        fill the outputs. Must not keep pointers to inputs/outputs.
 *   free:  fini(state)       once; may be NULL.
 * Because shapes are re-inferred per run, one loaded model serves any batch size. infer must be
 * cheap and must not allocate. Both infer and compute may run concurrently for different runs of
 * one model: node state is read-only after init.
 *
 * Tensors (op_tensor): row-major, densely packed, dims[i] >= 0 at run time. STRING tensors hold
 * char * elements (data is char **). A string element must point at memory that outlives the
 * run: an attribute's string (op_attr_strings), node state, an input's element, or op_strdup().
 * BOOL is one byte 0/1.
 *
 * Threads: compute runs on the caller's thread; call op_parallel() to split work across the
 * model's thread pool. fn(arg, ith, nth) is called once for each ith in [0, nth) (nth may be 1,
 * e.g. when the pool is busy with another run); use op_split() to get row ranges.
 *
 * Example (a complete kernel; registered by an entry in an op_def table):
 *
 *   typedef struct { const op_tensor *x; op_tensor *y; float alpha; } lrelu_job;
 *
 *   static void lrelu_rows(void *arg, int ith, int nth)
 *   {
 *       lrelu_job *j = arg;
 *       int64_t b, e;
 *       op_split(op_tensor_numel(j->x), ith, nth, &b, &e);
 *       const float *x = j->x->data;
 *       float *y = j->y->data;
 *       for (int64_t i = b; i < e; i++) y[i] = x[i] >= 0 ? x[i] : j->alpha * x[i];
 *   }
 *
 *   static kinfer_status *lrelu_infer(op_ctx *c)
 *   {
 *       if (op_input(c, 0)->dtype != ONNX_DTYPE_FLOAT)
 *           return op_error(c, KINFER_EUNSUPPORTED, "input type %s",
 *                           onnx_dtype_name(op_input(c, 0)->dtype));
 *       return op_infer_like(c, 0, 0);           // Y has X's dtype and shape
 *   }
 *
 *   static kinfer_status *lrelu_compute(op_ctx *c)
 *   {
 *       lrelu_job j = {op_input(c, 0), op_output(c, 0),
 *                      op_attr_float(op_ctx_node(c), "alpha", 0.01f)};
 *       op_parallel(c, lrelu_rows, &j);
 *       return NULL;
 *   }
 *
 *   static const op_def my_table[] = {
 *       {"", "LeakyRelu", 6, OP_OPSET_MAX, 1, 1, 1, 1, NULL, NULL, lrelu_infer, lrelu_compute},
 *   };
 */
#ifndef KINFER_OP_H
#define KINFER_OP_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_model.h"

typedef struct op_node op_node; /* a node of the loaded graph (attributes, name, opset) */
typedef struct op_ctx op_ctx;   /* one node's invocation: its input/output tensors */

typedef struct op_tensor {
    onnx_dtype dtype;
    int rank;                     /* load time: -1 when unknown */
    int64_t dims[ONNX_MAX_RANK];  /* load time: -1 when symbolic/unknown */
    void *data;                   /* load time: NULL unless constant; run time: always set */
    onnx_value_kind kind;         /* ONNX_VALUE_SEQ_MAP only for ZipMap-like outputs */
    const struct op_tensor *keys; /* SEQ_MAP: rank-1 keys owned by node state; else NULL */
} op_tensor;

#define OP_OPSET_MAX 1000 /* "up to the newest" in op_def.until */

typedef struct op_def {
    const char *domain;         /* "" (ai.onnx) or "ai.onnx.ml" */
    const char *op_type;        /* as in ONNX, e.g. "Gemm" */
    int since;                  /* first opset version of the domain this def handles */
    int until;                  /* last one (inclusive); OP_OPSET_MAX for open-ended */
    int min_inputs, max_inputs; /* counted as the node lists them (optional ones included) */
    int min_outputs, max_outputs;
    /* Optional: validate attributes and build read-only per-node state (freed by fini). */
    kinfer_status *(*init)(const op_node *n, void **state);
    void (*fini)(void *state);
    /* Required: types (load time) and types + shapes (run time). See the file comment. */
    kinfer_status *(*infer)(op_ctx *c);
    /* Required: fill the outputs (already allocated with the shapes infer set). */
    kinfer_status *(*compute)(op_ctx *c);
} op_def;

/* ---- the node (valid at init, infer and compute) ---- */
const char *op_node_name(const op_node *n); /* never NULL; "" if the model gave none */
const char *op_node_op_type(const op_node *n);
int op_node_opset(const op_node *n);      /* opset version of the node's domain */
int op_node_num_inputs(const op_node *n); /* as listed, optional (empty) ones included */
int op_node_num_outputs(const op_node *n);
/* Load-time view of input i (dtype always known after the type pass; data set only when the
 * input is an initializer/constant); NULL when absent or i out of range. Useful in init; copy
 * what you need into your state: the pointer is not valid after init returns. */
const op_tensor *op_node_const_input(const op_node *n, int i);
/* A fused activation the optimizer attached to this node (Conv/Gemm/MatMul/Add + Relu/Clip); only
 * the core kernels that the optimizer fuses into read it. OP_ACT_CLIP clamps to [*lo, *hi]. */
typedef enum op_act { OP_ACT_NONE = 0, OP_ACT_RELU, OP_ACT_CLIP } op_act;
op_act op_node_act(const op_node *n, float *lo, float *hi);
/* An activation to apply to input 0 as it is read, moved there from the producer by the optimizer
 * (only into a depthwise Conv, whose kernel applies it while copying each plane). */
op_act op_node_in_act(const op_node *n, float *lo, float *hi);

/* Attributes, by ONNX name. The getters return def when the attribute is absent (or of another
 * type). Array getters return the count and set *out (NULL and 0 when absent). Pointers stay
 * valid for the model's lifetime. */
int op_attr_has(const op_node *n, const char *name);
int64_t op_attr_int(const op_node *n, const char *name, int64_t def);
float op_attr_float(const op_node *n, const char *name, float def);
const char *op_attr_string(const op_node *n, const char *name, const char *def);
size_t op_attr_ints(const op_node *n, const char *name, const int64_t **out);
size_t op_attr_floats(const op_node *n, const char *name, const float **out);
size_t op_attr_strings(const op_node *n, const char *name, const char *const **out);
const op_tensor *op_attr_tensor(const op_node *n, const char *name); /* NULL when absent */

/* ---- the invocation (infer and compute) ---- */
const op_node *op_ctx_node(const op_ctx *c);
void *op_ctx_state(const op_ctx *c); /* what init stored; NULL if no init */
int op_num_inputs(const op_ctx *c);
int op_num_outputs(const op_ctx *c);
const op_tensor *op_input(const op_ctx *c, int i); /* NULL when absent (optional) */
op_tensor *op_output(op_ctx *c, int i);            /* NULL when the output is unused/absent */
/* 1 when every input's rank and dims are known (always true at run time). */
int op_shapes_known(const op_ctx *c);
/* 1 at run time (data of every input present); 0 in the load-time type pass. */
int op_is_run(const op_ctx *c);

/* A status whose message starts with "node NAME (OpType): ". */
kinfer_status *op_error(const op_ctx *c, kinfer_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
kinfer_status *op_node_error(const op_node *n, kinfer_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Scratch memory for this compute call: 64-byte aligned, valid until compute returns, NULL on
 * out-of-memory (return KINFER_ENOMEM). Comes from the run's arena: no malloc on the hot path. */
void *op_scratch(op_ctx *c, size_t bytes);
/* A copy of s that lives until the end of the run (for STRING outputs); NULL on OOM. */
char *op_strdup(op_ctx *c, const char *s);

/* Runs fn(arg, ith, nth) for ith = 0..nth-1 on the model's thread pool and waits. */
void op_parallel(op_ctx *c, void (*fn)(void *arg, int ith, int nth), void *arg);
/* [*begin, *end) of n items for worker ith of nth. */
void op_split(int64_t n, int ith, int nth, int64_t *begin, int64_t *end);
int op_num_threads(const op_ctx *c);

/* ---- helpers ---- */
int64_t op_tensor_numel(const op_tensor *t); /* -1 if a dim is unknown */
/* Sets output o's dtype/rank/dims. */
void op_set_output(op_ctx *c, int o, onnx_dtype dt, int rank, const int64_t *dims);
/* Output o gets input i's dtype and (if known) shape. Always returns NULL. */
kinfer_status *op_infer_like(op_ctx *c, int i, int o);
/* Multidirectional (numpy) broadcast of inputs [0, n) into output 0's shape, dtype dt.
 * Returns a KINFER_ESHAPE status when shapes are incompatible. */
kinfer_status *op_infer_broadcast(op_ctx *c, int n, onnx_dtype dt);
/* Reads element k of an integer tensor (INT32/INT64/UINT8/BOOL...) as int64; 0 if not integer. */
int64_t op_tensor_get_int(const op_tensor *t, int64_t k);
/* Element k of a float/double/int tensor as double. */
double op_tensor_get_double(const op_tensor *t, int64_t k);

#endif
