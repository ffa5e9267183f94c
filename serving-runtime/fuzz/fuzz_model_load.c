/*
 * libFuzzer target for the ONNX model loader: arbitrary bytes through onnx_model_load_mem()
 * (protobuf parse, validation, kernel init, type pass, constant folding, fusions, planning).
 * Any input must yield a model or a status: never a crash, leak, hang or sanitizer report.
 * Seeds: serving-runtime/fuzz/corpus/model (small models from ONNX's node test suite).
 */
#include <stddef.h>
#include <stdint.h>

#include "../src/engine/onnx_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    onnx_options o = {.threads = 1};
    onnx_model *m = NULL;
    kinfer_status *st = onnx_model_load_mem(data, size, &o, &m);
    if (!st) {
        /* Touch what a server reads right after loading. */
        for (size_t i = 0; i < onnx_model_num_inputs(m); i++) (void)onnx_model_input(m, i)->name;
        for (size_t i = 0; i < onnx_model_num_outputs(m); i++) (void)onnx_model_output(m, i)->dtype;
    }
    kinfer_status_free(st);
    onnx_model_free(m);
    return 0;
}
