/*
 * core_util: small helpers shared by the default-domain kernels (axis normalization, dtype
 * checks, strided broadcasting). Internal to src/ops.
 */
#ifndef KINFER_CORE_UTIL_H
#define KINFER_CORE_UTIL_H

#include <string.h>

#include "../engine/op.h"

#define CORE_PAR_MIN 32768 /* elements below which threading costs more than it saves */

/* Normalizes axis into [0, rank) (rank+1 when allow_end); -1 if out of range. */
static inline int core_axis(int64_t axis, int rank, int allow_end)
{
    int r = rank + (allow_end ? 1 : 0);
    if (axis < 0) axis += rank;
    return axis < 0 || axis >= r ? -1 : (int)axis;
}

static inline int core_is_float(onnx_dtype dt)
{
    return dt == ONNX_DTYPE_FLOAT || dt == ONNX_DTYPE_DOUBLE;
}

static inline int core_is_numeric(onnx_dtype dt)
{
    switch (dt) {
    case ONNX_DTYPE_FLOAT:
    case ONNX_DTYPE_DOUBLE:
    case ONNX_DTYPE_INT32:
    case ONNX_DTYPE_INT64:
    case ONNX_DTYPE_UINT8:
    case ONNX_DTYPE_INT8:
    case ONNX_DTYPE_INT16:
    case ONNX_DTYPE_UINT16:
    case ONNX_DTYPE_UINT32:
    case ONNX_DTYPE_UINT64:
        return 1;
    default:
        return 0;
    }
}

/* Strides (in elements) of t broadcast into out's shape (0 on broadcast dims). */
static inline void core_bcast_strides(const op_tensor *t, const op_tensor *out, int64_t *st)
{
    int64_t s = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int td = d - (out->rank - t->rank);
        if (td < 0 || t->dims[td] == 1)
            st[d] = 0;
        else {
            st[d] = s;
            s *= t->dims[td];
        }
    }
}

static inline int64_t core_prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Reads the (required) integer list of input i into out; count, or -1 if absent/not integer. */
static inline int core_read_ints(const op_tensor *t, int64_t *out, int max)
{
    if (!t || !t->data || (t->dtype != ONNX_DTYPE_INT64 && t->dtype != ONNX_DTYPE_INT32)) return -1;
    int64_t n = op_tensor_numel(t);
    if (n < 0 || n > max) return -1;
    for (int64_t i = 0; i < n; i++) out[i] = op_tensor_get_int(t, i);
    return (int)n;
}

#endif

#ifndef KINFER_CORE_UTIL_STORE
#define KINFER_CORE_UTIL_STORE
/* Stores v into element i of y, converting to y's type. */
static inline void core_store_double(op_tensor *y, int64_t i, double v)
{
    switch (y->dtype) {
    case ONNX_DTYPE_FLOAT:
        ((float *)y->data)[i] = (float)v;
        break;
    case ONNX_DTYPE_DOUBLE:
        ((double *)y->data)[i] = v;
        break;
    case ONNX_DTYPE_BOOL:
        ((uint8_t *)y->data)[i] = v != 0;
        break;
    case ONNX_DTYPE_INT64:
        ((int64_t *)y->data)[i] = (int64_t)v;
        break;
    case ONNX_DTYPE_INT32:
        ((int32_t *)y->data)[i] = (int32_t)(int64_t)v;
        break;
    case ONNX_DTYPE_INT16:
        ((int16_t *)y->data)[i] = (int16_t)(int64_t)v;
        break;
    case ONNX_DTYPE_INT8:
        ((int8_t *)y->data)[i] = (int8_t)(int64_t)v;
        break;
    case ONNX_DTYPE_UINT8:
        ((uint8_t *)y->data)[i] = (uint8_t)(int64_t)v;
        break;
    case ONNX_DTYPE_UINT16:
        ((uint16_t *)y->data)[i] = (uint16_t)(int64_t)v;
        break;
    case ONNX_DTYPE_UINT32:
        ((uint32_t *)y->data)[i] = (uint32_t)(int64_t)v;
        break;
    case ONNX_DTYPE_UINT64:
        ((uint64_t *)y->data)[i] = (uint64_t)v;
        break;
    default:
        break;
    }
}
#endif
