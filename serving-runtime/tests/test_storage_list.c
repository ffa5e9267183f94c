/* Listing and error-body parsers (src/storage/storage_list.c), malformed input included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../src/storage/storage_list.h"

#define HEAD                                                                                       \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "                               \
    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"

static kinfer_status *parse(const char *xml, size_t max, storage_list_page *p)
{
    return storage_list_parse_s3(xml, strlen(xml), max, p);
}

static void s3_page_with_entities_and_token(void **state)
{
    (void)state;
    const char *xml =
        HEAD "<Name>b</Name><Prefix>m/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
             "<IsTruncated>true</IsTruncated>"
             "<Contents><Key>m/a&amp;b &lt;1&gt;.bin</Key><Size>3</Size></Contents>"
             "<Contents><Key>m/caf&#xe9;/&#20013;.onnx</Key><ETag>&quot;x&quot;</ETag></Contents>"
             "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
             "NextContinuationToken>"
             "</ListBucketResult>";
    storage_list_page p;
    assert_null(parse(xml, 10, &p));
    assert_int_equal(p.n_keys, 2);
    assert_string_equal(p.keys[0], "m/a&b <1>.bin");
    assert_string_equal(p.keys[1], "m/caf\xc3\xa9/\xe4\xb8\xad.onnx");
    assert_true(p.truncated);
    assert_string_equal(p.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    storage_list_page_clear(&p);
    storage_list_page_clear(&p);
}

static void s3_last_and_empty_pages(void **state)
{
    (void)state;
    storage_list_page p;
    assert_null(parse(
        HEAD "<IsTruncated>false</IsTruncated><Contents><Key>k</Key></Contents></ListBucketResult>",
        5, &p));
    assert_int_equal(p.n_keys, 1);
    assert_false(p.truncated);
    assert_null(p.next_token);
    storage_list_page_clear(&p);
    assert_null(parse(
        HEAD "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>", 5, &p));
    assert_int_equal(p.n_keys, 0);
    storage_list_page_clear(&p);
}

static void s3_malformed_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *xml, *why;
        kinfer_err code;
    } cases[] = {
        {"", "no <ListBucketResult>", KINFER_EINVAL},
        {"<html>502 Bad Gateway</html>", "no <ListBucketResult>", KINFER_EINVAL},
        {HEAD "<Contents><Key>a</Key></Contents>", "cut off", KINFER_EINVAL},
        {HEAD "<Contents><Key>a</Key></ListBucketResult>", "not closed", KINFER_EINVAL},
        {HEAD "<Contents><Size>1</Size></Contents></ListBucketResult>", "without <Key>",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a</Contents></ListBucketResult>", "not closed", KINFER_EINVAL},
        {HEAD "<Contents><Key></Key></Contents></ListBucketResult>", "key of 0 bytes",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a&nbsp;b</Key></Contents></ListBucketResult>", "unknown entity",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a&amp</Key></Contents></ListBucketResult>", "unterminated entity",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a&#0;</Key></Contents></ListBucketResult>", "out of range",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a&#xD800;</Key></Contents></ListBucketResult>", "out of range",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a&#x110000;</Key></Contents></ListBucketResult>", "out of range",
         KINFER_EINVAL},
        {HEAD "<Contents><Key>a&#x;</Key></Contents></ListBucketResult>",
         "empty character reference", KINFER_EINVAL},
        {HEAD "<Contents><Key>a&#12z;</Key></Contents></ListBucketResult>", "bad digit",
         KINFER_EINVAL},
        {HEAD "<Contents><Key><![CDATA[x]]></Key></Contents></ListBucketResult>", "markup",
         KINFER_EINVAL},
        {HEAD "<IsTruncated>true</IsTruncated></ListBucketResult>", "no NextContinuationToken",
         KINFER_EINVAL},
        {HEAD "<IsTruncated>yes</IsTruncated></ListBucketResult>", "<IsTruncated> is 'yes'",
         KINFER_EINVAL},
        {HEAD "<IsTruncated>true</IsTruncated><NextContinuationToken></NextContinuationToken></"
              "ListBucketResult>",
         "no NextContinuationToken", KINFER_EINVAL},
        {"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
         "AccessDenied: Access Denied", KINFER_EHTTP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        storage_list_page p;
        kinfer_status *st = parse(cases[i].xml, 10, &p);
        if (kinfer_status_code(st) != cases[i].code || !strstr(kinfer_status_msg(st), cases[i].why))
            fail_msg("case %zu: got %d '%s', want '%s'", i, kinfer_status_code(st),
                     kinfer_status_msg(st), cases[i].why);
        assert_int_equal(p.n_keys, 0);
        assert_null(p.keys);
        kinfer_status_free(st);
    }
}

static void s3_key_cap_and_bounds(void **state)
{
    (void)state;
    storage_list_page p;
    const char *xml = HEAD "<Contents><Key>a</Key></Contents><Contents><Key>b</Key></Contents>"
                           "<Contents><Key>c</Key></Contents></ListBucketResult>";
    kinfer_status *st = parse(xml, 2, &p);
    assert_int_equal(kinfer_status_code(st), KINFER_ETOOBIG);
    kinfer_status_free(st);
    /* The length bounds the scan: the same text cut before </ListBucketResult> is cut off. */
    char *copy = strdup(xml);
    size_t cut = strlen(copy) - 5;
    copy[cut] = 'X'; /* no NUL where the parser is told the input ends */
    st = storage_list_parse_s3(copy, cut, 10, &p);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
    free(copy);
}

static void s3_error_body(void **state)
{
    (void)state;
    char code[16], msg[8];
    const char *xml =
        "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not "
        "exist.</Message><Key>x</Key></Error>";
    assert_int_equal(storage_list_s3_error(xml, strlen(xml), code, sizeof(code), msg, sizeof(msg)),
                     0);
    assert_string_equal(code, "NoSuchKey");
    assert_string_equal(msg, "The spe"); /* truncated to the buffer */
    assert_int_equal(storage_list_s3_error("nope", 4, code, sizeof(code), msg, sizeof(msg)), -1);
    assert_string_equal(code, "");
}

static kinfer_status *gparse(const char *json, size_t max, storage_list_page *p)
{
    return storage_list_parse_gcs(json, strlen(json), max, p);
}

static void gcs_pages(void **state)
{
    (void)state;
    storage_list_page p;
    assert_null(
        gparse("{\"kind\":\"storage#objects\",\"nextPageToken\":\"CgVhL2IvYw==\","
               "\"items\":[{\"name\":\"m/a.bin\",\"size\":\"3\"},{\"name\":\"m/\\u00e9.onnx\"}]}",
               5, &p));
    assert_int_equal(p.n_keys, 2);
    assert_string_equal(p.keys[1], "m/\xc3\xa9.onnx");
    assert_true(p.truncated);
    assert_string_equal(p.next_token, "CgVhL2IvYw==");
    storage_list_page_clear(&p);
    assert_null(gparse("{\"kind\":\"storage#objects\"}", 5, &p));
    assert_int_equal(p.n_keys, 0);
    assert_false(p.truncated);
    storage_list_page_clear(&p);
}

static void gcs_malformed_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *json, *why;
        kinfer_err code;
    } cases[] = {
        {"", "not one JSON value", KINFER_EINVAL},
        {"{\"items\":[", "not one JSON value", KINFER_EINVAL},
        {"{} {}", "trailing data", KINFER_EINVAL},
        {"[1]", "not a JSON object", KINFER_EINVAL},
        {"{\"items\":{}}", "not an array", KINFER_EINVAL},
        {"{\"items\":[{\"name\":5}]}", "no string name", KINFER_EINVAL},
        {"{\"items\":[{\"name\":\"\"}]}", "name of 0 bytes", KINFER_EINVAL},
        {"{\"items\":[{\"name\":\"a\\u0000b\"}]}", "name of 3 bytes", KINFER_EINVAL},
        {"{\"nextPageToken\":7}", "bad nextPageToken", KINFER_EINVAL},
        {"{\"items\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]}", "more than 2",
         KINFER_ETOOBIG},
        {"{\"error\":{\"code\":403,\"message\":\"Forbidden\"}}", "Forbidden", KINFER_EHTTP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        storage_list_page p;
        kinfer_status *st = gparse(cases[i].json, 2, &p);
        if (kinfer_status_code(st) != cases[i].code || !strstr(kinfer_status_msg(st), cases[i].why))
            fail_msg("case %zu: got %d '%s', want '%s'", i, kinfer_status_code(st),
                     kinfer_status_msg(st), cases[i].why);
        assert_int_equal(p.n_keys, 0);
        kinfer_status_free(st);
    }
}

int test_storage_list_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(s3_page_with_entities_and_token),
        cmocka_unit_test(s3_last_and_empty_pages),
        cmocka_unit_test(s3_malformed_rejected),
        cmocka_unit_test(s3_key_cap_and_bounds),
        cmocka_unit_test(s3_error_body),
        cmocka_unit_test(gcs_pages),
        cmocka_unit_test(gcs_malformed_rejected),
    };
    return cmocka_run_group_tests_name("storage_list", tests, NULL, NULL);
}
