/*
 * Tests of the same-shape fast path of the binary ops (src/ops/core_binary.c): a residual Add
 * runs as flat blocks split across the pool (from 8K elements) instead of one call per innermost
 * row, with the optimizer's fused Relu applied per block. Checked element by element (exactly)
 * against a plain loop, at one and two threads, on both sides of the threshold and with blocks
 * that are not whole vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/engine/onnx_model.h"
#include "onnx_builder.h"

#define F ONNX_DTYPE_FLOAT

/* y = Relu?(x + w), w a constant of x's shape. */
static void same_shape_add(const int64_t *d, int relu, int threads, unsigned seed)
{
    size_t n = (size_t)(d[0] * d[1] * d[2] * d[3]);
    float *x = mb_rand_floats(n, seed), *w = mb_rand_floats(n, seed + 1);
    mb *mb = mb_new(13);
    mb_input(mb, "x", F, 4, d);
    mb_init_float(mb, "w", 4, d, w);
    mb_add_node(mb, "Add", "x,w", relu ? "s" : "y");
    if (relu) mb_add_node(mb, "Relu", "s", "y");
    mb_output(mb, "y", F);
    size_t len;
    void *buf = mb_pack(mb, &len);
    mb_free(mb);
    onnx_tensor out = mb_run_one(buf, len, threads, d, x);
    free(buf);
    const float *y = out.data;
    for (size_t i = 0; i < n; i++) {
        float want = x[i] + w[i];
        if (relu && want < 0) want = 0;
        if (y[i] != want) fail_msg("y[%zu] = %.9g, want %.9g", i, y[i], want);
    }
    onnx_tensor_release(&out);
    free(x), free(w);
}

static void add_same_shape_in_blocks(void **state)
{
    (void)state;
    static const int64_t shapes[][4] = {
        {1, 96, 14, 14}, {1, 160, 7, 7}, {2, 3, 5, 7}, {1, 1, 1, 8193}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int relu = 0; relu < 2; relu++)
            for (int threads = 1; threads <= 2; threads++)
                same_shape_add(shapes[i], relu, threads, 80 + (unsigned)i);
}

int test_core_binary_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_same_shape_in_blocks),
    };
    return cmocka_run_group_tests_name("core_binary", tests, NULL, NULL);
}
