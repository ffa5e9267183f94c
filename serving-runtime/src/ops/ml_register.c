/*
 * ml_register: the ai.onnx.ml operator table (see ops_ml.h). Owned by the ML kernels' author:
 * add one op_def line per kernel in src/ops/ml_*.c. Empty until those kernels land, so models
 * with ai.onnx.ml nodes fail to load with "unsupported operator".
 */
#include "ops_ml.h"

static const op_def ml_table[] = {
    {"ai.onnx.ml", "", 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL}, /* sentinel, never matches */
};

const op_def *ops_ml_table(size_t *n)
{
    *n = 0;
    return ml_table;
}
