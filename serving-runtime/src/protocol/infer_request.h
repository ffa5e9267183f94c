/*
 * Parsing of inference requests into engine tensors: the Open Inference Protocol (KServe V2) in
 * JSON, with Triton's binary tensor data extension (a JSON header of
 * Inference-Header-Content-Length bytes followed by raw tensors), and KServe V1's {"instances":
 * [...]}. Requests are checked against the model's signature here, so a wrong name, datatype or
 * shape is a precise 400 before anything is queued. Everything parsed lives in the caller's request
 * arena. It does not run, batch or encode anything (see infer_response.h).
 */
#ifndef KINFER_INFER_REQUEST_H
#define KINFER_INFER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../engine/onnx_model.h"
#include "req_arena.h"

/* The model's declared inputs and outputs (owned by whoever loaded the model). */
typedef struct infer_model_sig {
    const onnx_value_info *inputs;
    size_t n_inputs;
    const onnx_value_info *outputs;
    size_t n_outputs;
} infer_model_sig;

typedef struct infer_request {
    const char *id;      /* V2 "id", NULL when absent */
    onnx_tensor *inputs; /* sig->n_inputs tensors in the model's order */
    size_t n_inputs;
    const char **output_names; /* requested outputs, in request order; NULL: all */
    int *output_binary;        /* per requested output: binary_data */
    size_t n_outputs;
    int binary_output;  /* request parameter binary_data_output */
    int64_t timeout_us; /* request parameter "timeout" (Triton, microseconds); 0: none */
} infer_request;

/* V2. header_len: the Inference-Header-Content-Length value, or -1 when the body is all JSON.
 * Data pointers in *out point into the arena (never into body). Errors: EINVAL (malformed JSON,
 * missing or unknown field, unknown input or output), EDTYPE, ESHAPE, ETOOBIG (arena cap),
 * EUNSUPPORTED (a feature kinfer does not implement, e.g. classification). */
kinfer_status *infer_request_parse_v2(const char *body, size_t len, int64_t header_len,
                                      const infer_model_sig *sig, req_arena *a, infer_request *out)
    __attribute__((warn_unused_result));

/* V1 {"instances": [...]}: each instance is one row of the single input, or an object naming every
 * input. Rows are stacked along a new dim 0. Same errors as V2. */
kinfer_status *infer_request_parse_v1(const char *body, size_t len, const infer_model_sig *sig,
                                      req_arena *a, infer_request *out)
    __attribute__((warn_unused_result));

#endif
