/*
 * Unit tests of src/ops/ml_common.c: the post transforms shared by the ai.onnx.ml kernels (their
 * values are the ones onnxruntime produces, checked end to end in test/models) and the feature
 * readers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../src/ops/ml_common.h"

static void logistic_is_symmetric_and_saturates(void **state)
{
    (void)state;
    assert_float_equal(ml__logistic(0.0f), 0.5f, 1e-7);
    assert_float_equal(ml__logistic(2.0f) + ml__logistic(-2.0f), 1.0f, 1e-6);
    assert_float_equal(ml__logistic(-100.0f), 0.0f, 1e-7);
    assert_float_equal(ml__logistic(100.0f), 1.0f, 1e-7);
}

static void probit_inverts_the_normal_cdf(void **state)
{
    (void)state;
    assert_float_equal(ml__probit(0.5f), 0.0f, 1e-6);
    /* Phi(1) = 0.841345; the Winitzki approximation is within ~2e-3 of the true quantile. */
    assert_float_equal(ml__probit(0.841345f), 1.0f, 3e-3);
    assert_float_equal(ml__probit(0.2f), -ml__probit(0.8f), 1e-5);
}

static void softmax_rows_sum_to_one(void **state)
{
    (void)state;
    float s[3] = {1.0f, 2.0f, 3.0f};
    ml__post_row(ML_POST_SOFTMAX, s, 3);
    assert_float_equal(s[0] + s[1] + s[2], 1.0f, 1e-6);
    assert_true(s[0] < s[1] && s[1] < s[2]);
    assert_float_equal(s[2] / s[1], expf(1.0f), 1e-5);
}

static void softmax_zero_leaves_zeros_out(void **state)
{
    (void)state;
    float s[3] = {0.0f, 1.0f, 1.0f};
    ml__post_row(ML_POST_SOFTMAX_ZERO, s, 3);
    assert_float_equal(s[0], 0.0f, 1e-7);
    assert_float_equal(s[1], 0.5f, 1e-6);
    assert_float_equal(s[2], 0.5f, 1e-6);
}

static void none_changes_nothing(void **state)
{
    (void)state;
    float s[2] = {-3.5f, 7.25f};
    ml__post_row(ML_POST_NONE, s, 2);
    assert_true(s[0] == -3.5f && s[1] == 7.25f);
}

static void readers_convert_every_feature_type(void **state)
{
    (void)state;
    int64_t i64[3] = {-2, 0, 5};
    int32_t i32[3] = {7, -1, 3};
    double d[3];
    float f[3];
    op_tensor t = {.dtype = ONNX_DTYPE_INT64, .rank = 1, .dims = {3}, .data = i64};
    ml__read_double(&t, 1, 2, d);
    assert_true(d[0] == 0.0 && d[1] == 5.0);
    t.dtype = ONNX_DTYPE_INT32;
    t.data = i32;
    ml__read_float(&t, 0, 3, f);
    assert_true(f[0] == 7.0f && f[1] == -1.0f && f[2] == 3.0f);
    assert_true(ml__is_feature_type(ONNX_DTYPE_FLOAT) && ml__is_feature_type(ONNX_DTYPE_INT32));
    assert_false(ml__is_feature_type(ONNX_DTYPE_STRING) || ml__is_feature_type(ONNX_DTYPE_BOOL));
}

int test_ml_common_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(logistic_is_symmetric_and_saturates),
        cmocka_unit_test(probit_inverts_the_normal_cdf),
        cmocka_unit_test(softmax_rows_sum_to_one),
        cmocka_unit_test(softmax_zero_leaves_zeros_out),
        cmocka_unit_test(none_changes_nothing),
        cmocka_unit_test(readers_convert_every_feature_type),
    };
    return cmocka_run_group_tests_name("ml_common", tests, NULL, NULL);
}
