/*
 * onnx_proto: conversion of ONNX protobuf messages (protobuf-c, generated from onnx.proto at build
 * time) into the engine's tensors, with every size checked: a hostile TensorProto yields a status,
 * never an out-of-bounds read. Engine-internal, plus onnx_proto_tensor_load() for
 * kinfer-onnx-check, which reads the backend test suites' input_N.pb/output_N.pb.
 */
#ifndef KINFER_ONNX_PROTO_H
#define KINFER_ONNX_PROTO_H

#include <stddef.h>

#include "onnx/onnx.pb-c.h"
#include "op.h"
#include "region.h"

/* Largest tensor the engine accepts from a file (bytes). */
#define ONNX_PROTO_MAX_TENSOR_BYTES ((int64_t)1 << 36)

/* TensorProto -> tensor whose data lives in rg. ext_dir: base directory for external data (NULL:
 * external data is an error). what names the tensor in error messages. */
kinfer_status *onnx_proto__tensor(const Onnx__TensorProto *tp, const char *ext_dir, region *rg,
                                  const char *what, op_tensor *out) __attribute__((warn_unused_result));

/* Serialized TensorProto -> caller-owned tensor (release with onnx_tensor_release; name is NULL). */
kinfer_status *onnx_proto_tensor_load(const void *buf, size_t len, onnx_tensor *out)
    __attribute__((warn_unused_result));

/* Copies n tensor elements of type dt from src into a fresh malloc'd block (STRING: the pointer
 * array followed by the characters, so one free releases everything). NULL on OOM. */
void *onnx_proto__copy_data(onnx_dtype dt, const void *src, int64_t n);

#endif
