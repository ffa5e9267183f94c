/*
 * libFuzzer target for kinfer-server's request parsing: V2 JSON, V2 with the binary extension
 * (a JSON header of N bytes, then raw tensors) and V1 instances, checked against a fixed model
 * signature with every kind of input. A parsed request is then encoded back as a response (its
 * inputs as outputs) so the encoders see whatever the parser accepts. The first byte picks the
 * mode; for the binary mode the next two bytes are the header length.
 */
#include <stdint.h>
#include <string.h>

#include "../src/protocol/infer_request.h"
#include "../src/protocol/infer_response.h"

static const onnx_value_info inputs[] = {
    {.name = "a", .dtype = ONNX_DTYPE_FLOAT, .rank = 2, .dims = {-1, 3}},
    {.name = "b", .dtype = ONNX_DTYPE_INT64, .rank = 1, .dims = {-1}},
    {.name = "c", .dtype = ONNX_DTYPE_STRING, .rank = 2, .dims = {-1, 2}},
    {.name = "d", .dtype = ONNX_DTYPE_BOOL, .rank = -1},
    {.name = "e", .dtype = ONNX_DTYPE_FLOAT16, .rank = 1, .dims = {-1}},
};
static const onnx_value_info outputs[] = {
    {.name = "o1", .dtype = ONNX_DTYPE_FLOAT, .rank = 2, .dims = {-1, 3}},
    {.name = "o2", .dtype = ONNX_DTYPE_UINT64, .rank = -1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    infer_model_sig sig = {inputs, 5, outputs, 2};
    req_arena *a = req_arena_create(1 << 22);
    if (!a) return 0;
    infer_request ir;
    kinfer_status *st;
    int mode = data[0] % 3;
    if (mode == 1 && size >= 3) {
        int64_t hl = data[1] | data[2] << 8;
        st = infer_request_parse_v2((const char *)data + 3, size - 3, hl, &sig, a, &ir);
    } else if (mode == 2)
        st = infer_request_parse_v1((const char *)data + 1, size - 1, &sig, a, &ir);
    else
        st = infer_request_parse_v2((const char *)data + 1, size - 1, -1, &sig, a, &ir);
    if (!st) {
        pbuf b;
        pbuf_init(&b, 16, 1 << 24);
        int binary[5] = {1, 0, 1, 0, 1};
        size_t json_len;
        for (size_t i = 0; i < ir.n_inputs; i++) {
            const onnx_tensor *t = &ir.inputs[i];
            if (!t->name || t->rank < 0 || t->rank > ONNX_MAX_RANK) __builtin_trap();
            for (int d = 0; d < t->rank; d++)
                if (t->dims[d] < 0) __builtin_trap();
        }
        kinfer_status_free(infer_response_encode_v2(
            &b, "m", "1", ir.id, ir.inputs, data[0] & 4 ? binary : NULL, ir.n_inputs, &json_len));
        pbuf_reset(&b);
        kinfer_status_free(infer_response_encode_v1(&b, ir.inputs, ir.n_inputs));
        pbuf_free(&b);
    }
    kinfer_status_free(st);
    req_arena_destroy(a);
    return 0;
}
