/*
 * onnx_builder: test support that writes small ONNX models with protobuf-c (the same generated
 * code the engine parses with), so the engine's tests can make well-formed and deliberately broken
 * models without Python or files. Not part of any program.
 */
#ifndef KINFER_TEST_ONNX_BUILDER_H
#define KINFER_TEST_ONNX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "../src/engine/onnx_model.h"

typedef struct mb mb;
typedef struct mb_node mb_node;

/* A model importing the default domain at opset. */
mb *mb_new(int opset);
void mb_free(mb *b);
/* Graph input; dims[i] < 0 becomes the symbolic dim "N". dtype as onnx_dtype. */
void mb_input(mb *b, const char *name, int dtype, int rank, const int64_t *dims);
/* Graph output with element type only (dtype 0: none declared). */
void mb_output(mb *b, const char *name, int dtype);
/* Float initializer (data copied). */
void mb_init_float(mb *b, const char *name, int rank, const int64_t *dims, const float *data);
void mb_init_int64(mb *b, const char *name, int rank, const int64_t *dims, const int64_t *data);
/* Node; inputs/outputs are comma-separated names ("" entries allowed: "x,,b"). */
mb_node *mb_add_node(mb *b, const char *op, const char *inputs, const char *outputs);
void mb_attr_int(mb *b, mb_node *n, const char *name, int64_t v);
void mb_attr_float(mb *b, mb_node *n, const char *name, float v);
void mb_attr_string(mb *b, mb_node *n, const char *name, const char *v);
void mb_attr_ints(mb *b, mb_node *n, const char *name, size_t cnt, const int64_t *v);
/* n pseudo-random floats in [-1, 1) from seed (a fixed LCG: the same seed gives the same
 * values on every machine), malloc'd for the caller; aborts when out of memory. */
float *mb_rand_floats(size_t n, unsigned seed);

/* Loads the packed model buf (len bytes; the caller still owns it) with `threads` threads, runs
 * it on float input "x" of rank-4 shape d4 and returns its one output (release with
 * onnx_tensor_release). Prints the engine's message and aborts when the load or run fails. */
onnx_tensor mb_run_one(const void *buf, size_t len, int threads, const int64_t *d4, float *x);
/* Serialized model (malloc'd; caller frees) and its length. */
void *mb_pack(mb *b, size_t *len);

#endif
