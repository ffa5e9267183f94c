/*
 * Encoding of inference results: V2 JSON, V2 with Triton's binary tensor data extension (JSON
 * header, then each binary output's raw bytes in order), V1 {"predictions": [...]}, and the
 * {"error": "..."} body every error path uses. It writes into a pbuf and never fails halfway
 * silently: an over-cap or out-of-memory buffer is a status.
 */
#ifndef KINFER_INFER_RESPONSE_H
#define KINFER_INFER_RESPONSE_H

#include <stddef.h>

#include "../common/status.h"
#include "../engine/onnx_model.h"
#include "../common/pbuf.h"

/* outs[i] is named outs[i].name; binary[i] (NULL: none) sends it as binary data. *json_len gets
 * the JSON part's length when any output is binary (the Inference-Header-Content-Length), else 0.
 */
kinfer_status *infer_response_encode_v2(pbuf *b, const char *model, const char *version,
                                        const char *id, const onnx_tensor *outs, const int *binary,
                                        size_t n, size_t *json_len)
    __attribute__((warn_unused_result));

/* {"predictions": [...]}: row i of the single output, or an object of every output's row i. */
kinfer_status *infer_response_encode_v1(pbuf *b, const onnx_tensor *outs, size_t n)
    __attribute__((warn_unused_result));

/* {"error": "<msg>"} */
void infer_response_encode_error(pbuf *b, const char *msg);

#endif
