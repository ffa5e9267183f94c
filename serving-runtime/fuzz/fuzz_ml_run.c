/*
 * libFuzzer target for the ai.onnx.ml kernels at run time: arbitrary bytes are loaded as a model
 * and, when that succeeds, run on small synthetic inputs (declared dtypes, unknown dims = 3), so
 * that mutated tree/encoder/linear attributes reach init, infer and compute. Any input must end
 * in outputs or a status: never a crash, leak, hang or sanitizer report.
 * Seeds: serving-runtime/fuzz/corpus/ml (kinfer's small ML test graphs and ONNX's ai.onnx.ml
 * cases).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/engine/onnx_model.h"

#define FUZZ_MAX_ELEMS  4096
#define FUZZ_MAX_INPUTS 16

/* Small values around the thresholds the seeds use, some NaN, some negative indices. */
static void fuzz_fill(onnx_tensor *t, int64_t n)
{
    static char word[] = "cat";
    for (int64_t k = 0; k < n; k++) {
        int v = (int)(k % 7) - 3;
        switch (t->dtype) {
        case ONNX_DTYPE_FLOAT:
            ((float *)t->data)[k] = k % 11 == 5 ? NAN : v + 0.1f * (k % 3);
            break;
        case ONNX_DTYPE_DOUBLE:
            ((double *)t->data)[k] = k % 11 == 5 ? NAN : v;
            break;
        case ONNX_DTYPE_INT64:
            ((int64_t *)t->data)[k] = v;
            break;
        case ONNX_DTYPE_INT32:
            ((int32_t *)t->data)[k] = v;
            break;
        case ONNX_DTYPE_STRING:
            ((char **)t->data)[k] = word;
            break;
        default:
            memset((char *)t->data + k * onnx_dtype_size(t->dtype), k & 1,
                   onnx_dtype_size(t->dtype));
        }
    }
}

static void fuzz_run(onnx_model *m)
{
    size_t ni = onnx_model_num_inputs(m), no = onnx_model_num_outputs(m);
    onnx_tensor in[FUZZ_MAX_INPUTS];
    onnx_tensor *out = NULL;
    size_t made = 0;
    if (ni > FUZZ_MAX_INPUTS || no == 0 || no > 64) return;
    memset(in, 0, sizeof(in));
    for (; made < ni; made++) {
        const onnx_value_info *v = onnx_model_input(m, made);
        onnx_tensor *t = &in[made];
        size_t es = onnx_dtype_size(v->dtype);
        if (!es || v->kind != ONNX_VALUE_TENSOR) goto out;
        t->name = v->name;
        t->dtype = v->dtype;
        t->rank = v->rank < 0 ? 2 : v->rank;
        for (int d = 0; d < t->rank; d++)
            t->dims[d] = v->rank < 0 || v->dims[d] < 0 ? 3 : v->dims[d];
        int64_t n = onnx_tensor_numel(t);
        if (n < 0 || n > FUZZ_MAX_ELEMS) goto out;
        t->data = calloc((size_t)(n ? n : 1), es);
        if (!t->data) goto out;
        fuzz_fill(t, n);
    }
    out = calloc(no, sizeof(*out));
    if (!out) goto out;
    kinfer_status *st = onnx_model_run(m, in, ni, NULL, out, no);
    kinfer_status_free(st);
    for (size_t i = 0; i < no; i++) onnx_tensor_release(&out[i]);
out:
    free(out);
    for (size_t i = 0; i < made && i < ni; i++) free(in[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    onnx_options o = {.threads = 1};
    onnx_model *m = NULL;
    kinfer_status *st = onnx_model_load_mem(data, size, &o, &m);
    if (!st) fuzz_run(m);
    kinfer_status_free(st);
    onnx_model_free(m);
    return 0;
}
