/*
 * ops_core: the default-domain (ai.onnx) operator table of the CPU backend, from the kernels in
 * src/ops/core_*.c. See src/engine/op.h for the kernel interface.
 */
#ifndef KINFER_OPS_CORE_H
#define KINFER_OPS_CORE_H

#include <stddef.h>

#include "../engine/op.h"

/* The table and its length in *n; static storage. */
const op_def *ops_core_table(size_t *n);

#endif
