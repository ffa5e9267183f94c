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
                                  const char *what, op_tensor *out)
    __attribute__((warn_unused_result));

/* Serialized TensorProto -> caller-owned tensor (release with onnx_tensor_release; name is NULL).
 */
kinfer_status *onnx_proto_tensor_load(const void *buf, size_t len, onnx_tensor *out)
    __attribute__((warn_unused_result));

/* A ModelProto split so that protobuf-c never holds every initializer's payload at once: the
 * model's bytes with the main graph's `initializer` fields cut out (a small malloc'd message
 * protobuf-c unpacks as usual), and where each cut TensorProto lies in the original buffer, in
 * file order, to be unpacked and converted one at a time. Several `graph` fields are merged as
 * protobuf merges them (their fields concatenated). Only the framing is read here; a damaged
 * field inside a message is left for protobuf-c to reject. */
typedef struct onnx_proto_span {
    const unsigned char *p;
    size_t len;
} onnx_proto_span;

typedef struct onnx_proto_split {
    unsigned char *model;
    size_t model_len;
    onnx_proto_span *inits;
    size_t n_inits;
} onnx_proto_split;

/* Fails on a truncated field, a bad varint, a group (wire types 3 and 4, which ONNX never uses)
 * or more than max_inits initializers. Free with onnx_proto__split_free even on failure. */
kinfer_status *onnx_proto__split_model(const void *buf, size_t len, size_t max_inits,
                                       onnx_proto_split *out) __attribute__((warn_unused_result));
void onnx_proto__split_free(onnx_proto_split *s);

/* Copies n tensor elements of type dt from src into a fresh malloc'd block (STRING: the pointer
 * array followed by the characters, so one free releases everything). NULL on OOM. */
void *onnx_proto__copy_data(onnx_dtype dt, const void *src, int64_t n);

#endif
