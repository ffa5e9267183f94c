/*
 * npy: reads and writes NumPy .npy files (format 1.0-3.0, C order, little-endian) as onnx_tensor
 * values, for kinfer-run. Numeric, bool and string (numpy '<U', UTF-32) arrays both ways;
 * strings are UTF-8 char * elements in memory, as onnx_model.h wants them. Not a general NumPy
 * reader: no Fortran order, no big-endian, no object arrays.
 */
#ifndef KINFER_NPY_H
#define KINFER_NPY_H

#include "../src/engine/onnx_model.h"

/* Files above this are refused rather than read (a cap, not a format limit). */
#define NPY_MAX_BYTES ((size_t)1 << 32)

/* Reads path into *t: dtype, rank, dims, and data (one malloc'd block, strings included: the
 * caller frees t->data).
 * t->name is left NULL. On error *t is zeroed and the status says what was wrong. */
kinfer_status *npy_read(const char *path, onnx_tensor *t) __attribute__((warn_unused_result));

/* Writes the tensor t (kind TENSOR; a SEQ_MAP's values are written as a [N, K] tensor). */
kinfer_status *npy_write(const char *path, const onnx_tensor *t)
    __attribute__((warn_unused_result));

#endif
