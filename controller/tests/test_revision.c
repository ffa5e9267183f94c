/* Tests of revision.c: names from pod-template hashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../src/rollout/revision.h"

static void name_of(const char *isvc, const char *tmpl_json, char *buf)
{
    json_object *t = json_tokener_parse(tmpl_json);
    assert_non_null(t);
    ctl_status *st = revision_name(isvc, t, buf, REVISION_NAME_MAX);
    if (st) fail_msg("%s", ctl_status_msg(st));
    json_object_put(t);
}

static void hash_depends_on_content_not_key_order(void **state)
{
    (void)state;
    char a[REVISION_NAME_MAX], b[REVISION_NAME_MAX], c[REVISION_NAME_MAX], d[REVISION_NAME_MAX];
    name_of("iris",
            "{\"metadata\":{\"labels\":{\"x\":\"1\",\"y\":\"2\"}},\"spec\":{\"containers\":[{"
            "\"image\":\"a:1\",\"name\":\"s\"}]}}",
            a);
    name_of("iris",
            "{\"spec\":{\"containers\":[{\"name\":\"s\",\"image\":\"a:1\"}]},\"metadata\":{"
            "\"labels\":{\"y\":\"2\",\"x\":\"1\"}}}",
            b);
    name_of("iris",
            "{\"metadata\":{\"labels\":{\"x\":\"1\",\"y\":\"2\"}},\"spec\":{\"containers\":[{"
            "\"image\":\"a:2\",\"name\":\"s\"}]}}",
            c);
    /* the revision label itself does not change the revision */
    name_of("iris",
            "{\"metadata\":{\"labels\":{\"x\":\"1\",\"serving.kinfer.dev/"
            "revision\":\"iris-predictor-00000000\",\"y\":\"2\"}},"
            "\"spec\":{\"containers\":[{\"image\":\"a:1\",\"name\":\"s\"}]}}",
            d);
    assert_string_equal(a, b);
    assert_string_equal(a, d);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), strlen("iris-predictor-") + 8);
    assert_memory_equal(a, "iris-predictor-", 15);
    assert_ptr_equal(revision_hash_of(a), a + 15);
    /* array order matters (containers, args) */
    name_of("iris", "{\"a\":[1,2]}", a);
    name_of("iris", "{\"a\":[2,1]}", b);
    assert_string_not_equal(a, b);
}

static void longest_name_fits_63(void **state)
{
    (void)state;
    char name[45], buf[REVISION_NAME_MAX];
    memset(name, 'a', 44);
    name[44] = 0;
    name_of(name, "{}", buf);
    assert_int_equal(strlen(buf), 63);
    char small[20];
    json_object *t = json_object_new_object();
    ctl_status *st = revision_name(name, t, small, sizeof(small));
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    ctl_status_free(st);
    st = revision_name("x", NULL, buf, sizeof(buf));
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    ctl_status_free(st);
    json_object_put(t);
}

static void hash_of_rejects_other_names(void **state)
{
    (void)state;
    assert_null(revision_hash_of("iris-predictor"));
    assert_null(revision_hash_of("iris-predictor-0123456g"));
    assert_null(revision_hash_of("iris-foo-01234567"));
    assert_null(revision_hash_of(NULL));
    assert_string_equal(revision_hash_of("a-predictor-0123abcd"), "0123abcd");
}

int test_revision_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_depends_on_content_not_key_order),
        cmocka_unit_test(longest_name_fits_63),
        cmocka_unit_test(hash_of_rejects_other_names),
    };
    return cmocka_run_group_tests_name("revision", tests, NULL, NULL);
}
