/*
 * ml_kernels: the op_def arrays that each ai.onnx.ml kernel file (ml_*.c) exports to
 * ml_register.c. Internal to src/ops.
 */
#ifndef KINFER_ML_KERNELS_H
#define KINFER_ML_KERNELS_H

#include "../engine/op.h"

#define ML_TREE_DEFS 3
extern const op_def
    ml__tree_defs[ML_TREE_DEFS]; /* TreeEnsembleClassifier, -Regressor, TreeEnsemble */
#define ML_LINEAR_DEFS 2
extern const op_def ml__linear_defs[ML_LINEAR_DEFS]; /* LinearClassifier, LinearRegressor */
#define ML_TRANSFORM_DEFS 6
/* Scaler, Normalizer, Imputer, Binarizer, ArrayFeatureExtractor, ZipMap */
extern const op_def ml__transform_defs[ML_TRANSFORM_DEFS];
#define ML_ENCODE_DEFS 3
extern const op_def
    ml__encode_defs[ML_ENCODE_DEFS]; /* LabelEncoder, OneHotEncoder, FeatureVectorizer */

#endif
