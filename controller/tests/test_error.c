#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../src/common/error.h"

static void api_status_keeps_code_reason_message(void **state)
{
    (void)state;
    ctl_status *st = ctl_status_api(409, "Conflict", "apply %s: %s", "deployments/x", "conflict");
    assert_int_equal(ctl_status_code(st), CTL_EAPI);
    assert_int_equal(ctl_status_http(st), 409);
    assert_string_equal(ctl_status_reason(st), "Conflict");
    st = ctl_status_wrap(st, "reconcile %s", "ns/a");
    assert_string_equal(ctl_status_msg(st), "reconcile ns/a: apply deployments/x: conflict");
    ctl_status_free(st);
}

static void gone_maps_to_relist_code(void **state)
{
    (void)state;
    ctl_status *st = ctl_status_api(410, "Expired", "too old resource version");
    assert_int_equal(ctl_status_code(st), CTL_EGONE);
    ctl_status_free(st);
}

static void null_is_success(void **state)
{
    (void)state;
    assert_null(ctl_status_new(CTL_OK, "x"));
    assert_int_equal(ctl_status_code(NULL), CTL_OK);
    assert_string_equal(ctl_status_msg(NULL), "");
    ctl_status_free(NULL);
    for (int c = CTL_OK; c <= CTL_EINTERNAL; c++) assert_non_null(ctl_strerror((ctl_err)c));
}

int test_error_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_status_keeps_code_reason_message),
        cmocka_unit_test(gone_maps_to_relist_code),
        cmocka_unit_test(null_is_success),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
