/*
 * Tests of the global pools (src/ops/core_pool.c), which reduce each plane in 16 lanes, split
 * across the pool from 32K elements: against a plain loop in double (exact for max), at one and
 * two threads, on planes below, at and above one vector, with tails.
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

static void global_pool(const char *op, const int64_t *d, int threads, unsigned seed)
{
    size_t planes = (size_t)(d[0] * d[1]), sz = (size_t)(d[2] * d[3]);
    float *x = mb_rand_floats(planes * sz, seed);
    mb *mb = mb_new(13);
    mb_input(mb, "x", F, 4, d);
    mb_add_node(mb, op, "x", "y");
    mb_output(mb, "y", F);
    size_t len;
    void *buf = mb_pack(mb, &len);
    mb_free(mb);
    onnx_tensor out = mb_run_one(buf, len, threads, d, x);
    free(buf);
    assert_int_equal(out.rank, 4);
    assert_int_equal(out.dims[1], d[1]);
    assert_int_equal(out.dims[2], 1);
    const float *y = out.data;
    int is_max = !strcmp(op, "GlobalMaxPool");
    for (size_t p = 0; p < planes; p++) {
        double acc = is_max ? -INFINITY : 0.0;
        for (size_t i = 0; i < sz; i++)
            acc = is_max ? fmax(acc, x[p * sz + i]) : acc + x[p * sz + i];
        if (!is_max) acc /= (double)sz;
        if (fabs(y[p] - acc) > (is_max ? 0.0 : 1e-6))
            fail_msg("%s y[%zu] = %.9g, want %.9g", op, p, y[p], acc);
    }
    onnx_tensor_release(&out);
    free(x);
}

static void global_pools_in_lanes(void **state)
{
    (void)state;
    static const int64_t shapes[][4] = {{3, 300, 7, 7}, {1, 5, 3, 5}, {2, 4, 4, 4}, {1, 2, 1, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int threads = 1; threads <= 2; threads++) {
            global_pool("GlobalAveragePool", shapes[i], threads, 90 + (unsigned)i);
            global_pool("GlobalMaxPool", shapes[i], threads, 95 + (unsigned)i);
        }
}

int test_core_pool_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(global_pools_in_lanes),
    };
    return cmocka_run_group_tests_name("core_pool", tests, NULL, NULL);
}
