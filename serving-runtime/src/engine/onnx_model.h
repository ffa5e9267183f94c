/*
 * onnx_model: the public face of kinfer's ONNX engine. This header is the whole contract that
 * kinfer-server, kinfer-onnx-check and the tests use; everything else in src/engine and src/ops
 * is internal.
 *
 * A model is loaded once (parsed, validated, planned, optimized) and then run any number of
 * times, from any number of threads at once, with any batch size its symbolic dimensions allow.
 *
 * Ownership: a function returning kinfer_status * returns NULL on success; a non-NULL status
 * belongs to the caller (kinfer_status_free). Output tensors filled by onnx_model_run() own
 * their data; release each with onnx_tensor_release(). Input tensors stay the caller's.
 */
#ifndef KINFER_ONNX_MODEL_H
#define KINFER_ONNX_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum onnx_dtype {
    ONNX_DTYPE_UNDEFINED = 0,
    ONNX_DTYPE_FLOAT = 1,
    ONNX_DTYPE_UINT8 = 2,
    ONNX_DTYPE_INT8 = 3,
    ONNX_DTYPE_UINT16 = 4,
    ONNX_DTYPE_INT16 = 5,
    ONNX_DTYPE_INT32 = 6,
    ONNX_DTYPE_INT64 = 7,
    ONNX_DTYPE_STRING = 8, /* element is a char * to a NUL-terminated UTF-8 string */
    ONNX_DTYPE_BOOL = 9,   /* one byte, 0 or 1 */
    ONNX_DTYPE_FLOAT16 = 10,
    ONNX_DTYPE_DOUBLE = 11,
    ONNX_DTYPE_UINT32 = 12,
    ONNX_DTYPE_UINT64 = 13,
} onnx_dtype;

#define ONNX_MAX_RANK 8

/* What a value is. Most are tensors; ZipMap (scikit-learn classifiers) yields a sequence of
 * maps, which the engine returns as ONNX_VALUE_SEQ_MAP: dims = [N, K], data = the N*K values
 * (row i is map i), keys = a rank-1 tensor of the K keys (INT64 or STRING). */
typedef enum onnx_value_kind {
    ONNX_VALUE_TENSOR = 0,
    ONNX_VALUE_SEQ_MAP = 1,
} onnx_value_kind;

typedef struct onnx_tensor {
    const char *name; /* inputs: the graph input's name (caller's string); outputs: the model's */
    onnx_value_kind kind;
    onnx_dtype dtype;
    int rank;
    int64_t dims[ONNX_MAX_RANK];
    void *data;               /* row-major, densely packed */
    struct onnx_tensor *keys; /* ONNX_VALUE_SEQ_MAP only; owned with the tensor */
} onnx_tensor;

/* A graph input or output as declared. rank -1: unknown. dims[i] -1: symbolic or unknown, with
 * its name in dim_params[i] when the model names it (for example "batch_size"). */
typedef struct onnx_value_info {
    const char *name;
    onnx_value_kind kind;
    onnx_dtype dtype;
    int rank;
    int64_t dims[ONNX_MAX_RANK];
    const char *dim_params[ONNX_MAX_RANK];
} onnx_value_info;

typedef struct onnx_options {
    int threads;     /* intra-op threads; 0 = the container's CPU limit (cgroup quota) */
    int no_optimize; /* 1 = skip constant folding and fusions (for debugging) */
    const char *external_data_dir; /* base for external initializers; default: the model's dir */
} onnx_options;

typedef struct onnx_model onnx_model;

/* Bytes per element (sizeof(char *) for STRING); 0 for UNDEFINED or unknown codes. */
size_t onnx_dtype_size(onnx_dtype dt);
/* ONNX's name for the type ("float", "int64", "string", ...); "undefined" for unknown codes. */
const char *onnx_dtype_name(onnx_dtype dt);
/* Product of dims (1 for rank 0). */
int64_t onnx_tensor_numel(const onnx_tensor *t);
/* Frees what the engine allocated in t (data, strings, keys) and zeroes it. NULL is a no-op. */
void onnx_tensor_release(onnx_tensor *t);

/* Loads, validates and plans a model. opts may be NULL for defaults. On error *out is NULL and
 * the status names the node and the problem. */
kinfer_status *onnx_model_load_file(const char *path, const onnx_options *opts, onnx_model **out)
    __attribute__((warn_unused_result));
kinfer_status *onnx_model_load_mem(const void *buf, size_t len, const onnx_options *opts,
                                   onnx_model **out) __attribute__((warn_unused_result));
/* NULL is a no-op. No run may be in progress. */
void onnx_model_free(onnx_model *m);

/* Declared graph inputs (initializers excluded) and outputs. Owned by the model. */
size_t onnx_model_num_inputs(const onnx_model *m);
const onnx_value_info *onnx_model_input(const onnx_model *m, size_t i);
size_t onnx_model_num_outputs(const onnx_model *m);
const onnx_value_info *onnx_model_output(const onnx_model *m, size_t i);

/* Runs the model. inputs[] are matched by name and must cover every graph input. output_names
 * selects outputs (NULL: all, in model order; n_outputs must then equal num_outputs). outputs[]
 * is the caller's array of n_outputs entries, filled on success and left zeroed on error.
 * Thread-safe: concurrent runs on one model are allowed. A wrong shape, rank or dtype is a
 * KINFER_ESHAPE / KINFER_EDTYPE status naming the input. */
kinfer_status *onnx_model_run(onnx_model *m, const onnx_tensor *inputs, size_t n_inputs,
                              const char *const *output_names, onnx_tensor *outputs,
                              size_t n_outputs) __attribute__((warn_unused_result));

#endif
