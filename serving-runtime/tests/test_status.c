#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../src/common/status.h"

static void status_carries_code_and_wrapped_message(void **state)
{
    (void)state;
    kinfer_status *st = kinfer_status_new(KINFER_EMODEL, "node %s: %s", "conv1", "bad kernel");
    st = kinfer_status_wrap(st, "load %s", "m.onnx");
    assert_int_equal(kinfer_status_code(st), KINFER_EMODEL);
    assert_string_equal(kinfer_status_msg(st), "load m.onnx: node conv1: bad kernel");
    kinfer_status_free(st);
}

static void null_is_success(void **state)
{
    (void)state;
    assert_null(kinfer_status_new(KINFER_OK, "x"));
    assert_int_equal(kinfer_status_code(NULL), KINFER_OK);
    assert_string_equal(kinfer_status_msg(NULL), "");
    kinfer_status_free(NULL);
    for (int c = KINFER_OK; c <= KINFER_EINTERNAL; c++)
        assert_string_not_equal(kinfer_strerror((kinfer_err)c), "unknown error");
}

int test_status_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_carries_code_and_wrapped_message),
        cmocka_unit_test(null_is_success),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
