/*
 * ops_ml: the ai.onnx.ml operator table (LinearClassifier, TreeEnsemble*, Scaler, Normalizer,
 * ZipMap, ArrayFeatureExtractor, Binarizer, ...). Defined in serving-runtime/src/ops/ml_register.c
 * from the kernels in src/ops/ml_*.c; the engine's registry (src/engine/op_registry.c) consults it
 * after the core table. Kernels follow src/engine/op.h.
 */
#ifndef KINFER_OPS_ML_H
#define KINFER_OPS_ML_H

#include <stddef.h>

#include "../engine/op.h"

/* The table and its length in *n; static storage, never NULL (may be empty, *n = 0). */
const op_def *ops_ml_table(size_t *n);

#endif
