/*
 * ml_register: the ai.onnx.ml operator table (see ops_ml.h), assembled once from the op_def
 * arrays the ML kernel files export (ml_kernels.h).
 */
#include <pthread.h>
#include <string.h>

#include "ml_kernels.h"
#include "ops_ml.h"

#define ML_TABLE_LEN (ML_TREE_DEFS + ML_LINEAR_DEFS + ML_TRANSFORM_DEFS + ML_ENCODE_DEFS)

static op_def ml_table[ML_TABLE_LEN];

static void ml_table_fill(void)
{
    size_t k = 0;
    memcpy(ml_table + k, ml__tree_defs, sizeof(ml__tree_defs));
    k += ML_TREE_DEFS;
    memcpy(ml_table + k, ml__linear_defs, sizeof(ml__linear_defs));
    k += ML_LINEAR_DEFS;
    memcpy(ml_table + k, ml__transform_defs, sizeof(ml__transform_defs));
    k += ML_TRANSFORM_DEFS;
    memcpy(ml_table + k, ml__encode_defs, sizeof(ml__encode_defs));
}

const op_def *ops_ml_table(size_t *n)
{
    /* Filling is idempotent and writes the same bytes, but models may load concurrently: use
     * pthread_once so that no reader sees a half-written table. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ml_table_fill);
    *n = ML_TABLE_LEN;
    return ml_table;
}
