/*
 * onnx_debug: engine statistics for tests and benchmarks (not part of the serving contract).
 */
#ifndef KINFER_ONNX_DEBUG_H
#define KINFER_ONNX_DEBUG_H

#include <stddef.h>

#include "onnx_model.h"

typedef struct onnx_run_stats {
    size_t arena_peak;         /* bytes of the run arena in use at the worst moment */
    size_t intermediate_bytes; /* sum of the sizes of every intermediate tensor of the run */
    size_t arena_overflow;     /* bytes that had to be malloc'd (0 once the arena has grown) */
    size_t nodes;              /* nodes executed (after folding and fusion) */
} onnx_run_stats;

/* Statistics of the most recently finished run of m (zeroes before the first). */
void onnx_model_last_run_stats(const onnx_model *m, onnx_run_stats *out);
/* Number of live nodes in the plan, and how many nodes the optimizer folded or fused away. */
size_t onnx_model_plan_size(const onnx_model *m);
size_t onnx_model_nodes_removed(const onnx_model *m);

#endif
