/*
 * ml_common: what the ai.onnx.ml kernels (ml_*.c) share: post transforms with onnxruntime's exact
 * formulas (the reference kinfer is tested against), the [N, C] view of a feature input, and
 * reading numeric inputs as float or double. Internal to src/ops.
 */
#ifndef KINFER_ML_COMMON_H
#define KINFER_ML_COMMON_H

#include <stdint.h>

#include "../engine/op.h"

typedef enum ml_post {
    ML_POST_NONE = 0,
    ML_POST_LOGISTIC,
    ML_POST_SOFTMAX,
    ML_POST_SOFTMAX_ZERO,
    ML_POST_PROBIT,
} ml_post;

/* Parses the post_transform attribute (default NONE); an unknown name is KINFER_EMODEL. */
kinfer_status *ml__parse_post(const op_node *n, ml_post *out) __attribute__((warn_unused_result));

float ml__logistic(float v);
/* sqrt(2) * erfinv(2v - 1) with the same closed-form erfinv approximation onnxruntime uses. */
float ml__probit(float v);
/* Applies p to the n scores of one row in place, the way onnxruntime does for n >= 2
 * (element-wise LOGISTIC/PROBIT, row SOFTMAX, SOFTMAX_ZERO that leaves zeros out). */
void ml__post_row(ml_post p, float *s, int64_t n);

/* A double as float, saturating to +-inf beyond the float range (a plain cast of such a value is
 * undefined behaviour in C); NaN stays NaN. */
float ml__to_float(double v);

/* 1 for FLOAT, DOUBLE, INT64, INT32: the feature types the ML operators accept. */
int ml__is_feature_type(onnx_dtype dt);
/* The [N, C] view of a feature input: rank 1 is one row, rank 2 is N rows; other ranks give a
 * KINFER_ESHAPE status. At load time dims may be -1. */
kinfer_status *ml__rows_cols(op_ctx *c, const op_tensor *x, int64_t *n, int64_t *cols)
    __attribute__((warn_unused_result));
/* Elements [off, off + n) of a feature tensor converted to double / float. */
void ml__read_double(const op_tensor *x, int64_t off, int64_t n, double *out);
void ml__read_float(const op_tensor *x, int64_t off, int64_t n, float *out);

/* Float attribute list `name`, or its `name_as_tensor` (DOUBLE or FLOAT) form, as a freshly
 * malloc'd double array in *out (NULL and 0 when both are absent). */
kinfer_status *ml__attr_doubles(const op_node *n, const char *name, double **out, size_t *len)
    __attribute__((warn_unused_result));

#endif
