/*
 * Tests of core_sgemm's paths (src/ops/core_linalg.c) against sums in double: the GEMV path
 * (Gemm with transB and one or two rows: a classifier at batch 1 or 2), and the bias filled in
 * before the GEMM (Gemm with a [N] bias, fused MatMul + Add) with and without a fused Relu, on one
 * and two threads and with rows or columns split.
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

/* y = x [M, K] times W (as [N, K] with trans_b (Gemm transB=1), else [K, N] through MatMul + Add),
 * plus bias [N], optionally Relu. */
static void linear_check(int64_t M, int64_t K, int64_t N, int trans_b, int relu, int threads,
                         unsigned seed)
{
    float *x = mb_rand_floats((size_t)(M * K), seed),
          *w = mb_rand_floats((size_t)(K * N), seed + 1);
    float *b = mb_rand_floats((size_t)N, seed + 2);
    mb *mb = mb_new(13);
    int64_t xd[2] = {-1, K}, wd[2] = {trans_b ? N : K, trans_b ? K : N}, bd[1] = {N};
    mb_input(mb, "x", F, 2, xd);
    mb_init_float(mb, "w", 2, wd, w);
    mb_init_float(mb, "b", 1, bd, b);
    const char *out = relu ? "h" : "y";
    if (trans_b) {
        mb_node *g = mb_add_node(mb, "Gemm", "x,w,b", out);
        mb_attr_int(mb, g, "transB", 1);
    } else {
        mb_add_node(mb, "MatMul", "x,w", "mm");
        mb_add_node(mb, "Add", "mm,b", out);
    }
    if (relu) mb_add_node(mb, "Relu", "h", "y");
    mb_output(mb, "y", F);
    size_t len;
    void *buf = mb_pack(mb, &len);
    mb_free(mb);
    onnx_options o = {.threads = threads};
    onnx_model *m = NULL;
    kinfer_status *st = onnx_model_load_mem(buf, len, &o, &m);
    free(buf);
    if (st) fail_msg("load: %s", kinfer_status_msg(st));
    onnx_tensor in = {.name = "x", .dtype = F, .rank = 2, .dims = {M, K}, .data = x}, y;
    if ((st = onnx_model_run(m, &in, 1, NULL, &y, 1))) fail_msg("run: %s", kinfer_status_msg(st));
    assert_int_equal(y.dims[0], M);
    assert_int_equal(y.dims[1], N);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = b[j], mag = fabs(s);
            for (int64_t k = 0; k < K; k++) {
                double p = (double)x[i * K + k] * (trans_b ? w[j * K + k] : w[k * N + j]);
                s += p, mag += fabs(p);
            }
            if (relu && s < 0) s = 0;
            double got = ((float *)y.data)[i * N + j];
            if (fabs(got - s) > 1e-5 * mag + 1e-6)
                fail_msg("y[%lld,%lld] = %.7g, want %.7g", (long long)i, (long long)j, got, s);
        }
    onnx_tensor_release(&y);
    onnx_model_free(m);
    free(x), free(w), free(b);
}

/* One or two rows against a [N, K] weight: the GEMV path, split over the weight's rows. */
static void gemm_transb_few_rows(void **state)
{
    (void)state;
    linear_check(1, 2048, 1000, 1, 0, 2, 1);
    linear_check(2, 1280, 1000, 1, 1, 2, 2);
    linear_check(1, 96, 67, 1, 1, 1, 3);
    linear_check(3, 256, 130, 1, 0, 2, 4); /* three rows: sgemm again */
}

/* The bias goes into C before a beta = 1 GEMM: rows split (tall), columns split (wide), and the
 * small-M kernel, with and without Relu. */
static void bias_is_filled_before_the_gemm(void **state)
{
    (void)state;
    linear_check(200, 64, 48, 0, 0, 2, 5);
    linear_check(8, 96, 700, 0, 1, 2, 6);
    linear_check(40, 128, 2100, 0, 0, 2, 7);
    linear_check(64, 33, 17, 1, 1, 1, 8);
}

/* Columns are split at the multiples of 16 nearest the even shares (96 + 100 of 196, 32 + 17 of
 * 49, 32 + 32 + 36 of 100 at three threads): every column is written exactly once. */
static void columns_split_near_even_shares(void **state)
{
    (void)state;
    linear_check(96, 576, 196, 0, 1, 2, 9);
    linear_check(40, 64, 49, 0, 0, 2, 10);
    linear_check(30, 20, 100, 0, 1, 3, 11);
}

int test_core_linalg_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_transb_few_rows),
        cmocka_unit_test(bias_is_filled_before_the_gemm),
        cmocka_unit_test(columns_split_near_even_shares),
    };
    return cmocka_run_group_tests_name("core_linalg", tests, NULL, NULL);
}
