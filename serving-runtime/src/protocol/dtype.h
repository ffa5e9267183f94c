/*
 * The Open Inference Protocol's datatype names ("FP32", "BYTES", ...) mapped onto ONNX element
 * types, with element sizes and FP16 conversion. The protocol layer keeps its own tables so it
 * links and is fuzzed without the engine.
 */
#ifndef KINFER_PROTO_DTYPE_H
#define KINFER_PROTO_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/onnx_model.h"

/* ONNX_DTYPE_UNDEFINED for a name the protocol does not define (case-sensitive, as in the spec). */
onnx_dtype proto_dtype_from_name(const char *name, size_t len);
/* "FP32" etc.; NULL for a type the protocol cannot carry. Static string. */
const char *proto_dtype_name(onnx_dtype dt);
/* Bytes per element in memory (sizeof(char *) for STRING); 0 for unknown. */
size_t proto_dtype_size(onnx_dtype dt);
/* IEEE half <-> float, round to nearest even. */
uint16_t proto_half_from_float(float f);
float proto_float_from_half(uint16_t h);
/* Product of t's dims (1 for rank 0); the engine's onnx_tensor_numel, kept here so the protocol
 * links without the engine. */
int64_t proto_tensor_numel(const onnx_tensor *t);

#endif
