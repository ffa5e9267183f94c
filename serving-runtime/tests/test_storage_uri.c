/* URI parsing and the path-traversal rule for object keys (src/storage/storage_uri.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../src/storage/storage_uri.h"

static void parses_each_scheme(void **state)
{
    (void)state;
    storage_uri u;
    assert_null(storage_uri_parse("s3://my-bucket/models/resnet/", &u));
    assert_int_equal(u.scheme, STORAGE_SCHEME_S3);
    assert_string_equal(u.bucket, "my-bucket");
    assert_string_equal(u.key, "models/resnet/");
    storage_uri_clear(&u);

    assert_null(storage_uri_parse("s3://bucket.with.dots", &u));
    assert_string_equal(u.bucket, "bucket.with.dots");
    assert_string_equal(u.key, "");
    storage_uri_clear(&u);

    assert_null(storage_uri_parse("gs://kfserving-examples/models/sklearn/1.0/model", &u));
    assert_int_equal(u.scheme, STORAGE_SCHEME_GS);
    assert_string_equal(u.bucket, "kfserving-examples");
    assert_string_equal(u.key, "models/sklearn/1.0/model");
    storage_uri_clear(&u);

    assert_null(storage_uri_parse("https://example.org/m/model.onnx?x=1", &u));
    assert_int_equal(u.scheme, STORAGE_SCHEME_HTTP);
    assert_string_equal(u.url, "https://example.org/m/model.onnx?x=1");
    storage_uri_clear(&u);

    assert_null(storage_uri_parse("file:///mnt/models", &u));
    assert_int_equal(u.scheme, STORAGE_SCHEME_LOCAL);
    assert_string_equal(u.path, "/mnt/models");
    storage_uri_clear(&u);

    assert_null(storage_uri_parse("relative/dir", &u));
    assert_int_equal(u.scheme, STORAGE_SCHEME_LOCAL);
    assert_string_equal(u.path, "relative/dir");
    storage_uri_clear(&u);

    assert_null(storage_uri_parse("pvc://claim/sub/model", &u));
    assert_int_equal(u.scheme, STORAGE_SCHEME_PVC);
    assert_string_equal(u.bucket, "claim");
    assert_string_equal(u.key, "sub/model");
    storage_uri_clear(&u);
    storage_uri_clear(NULL);
}

static void rejects_bad_uris_precisely(void **state)
{
    (void)state;
    static const struct {
        const char *uri, *why;
    } cases[] = {
        {"", "empty"},
        {"s3://", "bad bucket name"},
        {"s3://ab/x", "bad bucket name"},
        {"s3://Bad Bucket/x", "bad bucket name"},
        {"s3://-bucket/x", "bad bucket name"},
        {"gs://bucket?x/y", "bad bucket name"},
        {"ftp://host/x", "unsupported URI scheme 'ftp'"},
        {"http:///nohost", "no host"},
        {"https://h/a b", "space"},
        {"file://host/x", "file:///ABSOLUTE/PATH"},
        {"s3://bucket/a\nb", "control characters"},
        {"pvc://", "claim name"},
        {"pvc://claim/../etc", "unsafe"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        storage_uri u;
        kinfer_status *st = storage_uri_parse(cases[i].uri, &u);
        assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
        if (!strstr(kinfer_status_msg(st), cases[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].uri, kinfer_status_msg(st),
                     cases[i].why);
        assert_null(u.bucket);
        kinfer_status_free(st);
    }
    char *long_uri = malloc(STORAGE_URI_MAX + 16);
    memset(long_uri, 'a', STORAGE_URI_MAX + 15);
    memcpy(long_uri, "s3://bucket/", 12);
    long_uri[STORAGE_URI_MAX + 15] = '\0';
    storage_uri u;
    kinfer_status *st = storage_uri_parse(long_uri, &u);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
    long_uri[STORAGE_KEY_MAX + 20] = '\0'; /* under the URI cap, over S3's key cap */
    st = storage_uri_parse(long_uri, &u);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "key is"));
    kinfer_status_free(st);
    free(long_uri);
}

static void relpath_rejects_traversal(void **state)
{
    (void)state;
    const char *why = NULL;
    static const char *ok[] = {"model.onnx", "a/b/c.bin", "..hidden",
                               "a..b/c",     "x/.y",      "1/2/3/4/5"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (storage_relpath_check(ok[i], &why)) fail_msg("'%s' rejected: %s", ok[i], why);
    static const struct {
        const char *p, *why;
    } bad[] = {{"", "empty"},
               {"/etc/passwd", "absolute"},
               {"..", "'..'"},
               {"../x", "'..'"},
               {"a/../../x", "'..'"},
               {"a/..", "'..'"},
               {"./x", "'.'"},
               {"a//b", "empty path component"},
               {"a/", "empty path component"},
               {"a\tb", "control"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(storage_relpath_check(bad[i].p, &why), -1);
        if (!strstr(why, bad[i].why)) fail_msg("'%s': '%s' lacks '%s'", bad[i].p, why, bad[i].why);
    }
    char comp[300];
    memset(comp, 'x', 299);
    comp[299] = '\0';
    assert_int_equal(storage_relpath_check(comp, NULL), -1);
}

int test_storage_uri_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_each_scheme),
        cmocka_unit_test(rejects_bad_uris_precisely),
        cmocka_unit_test(relpath_rejects_traversal),
    };
    return cmocka_run_group_tests_name("storage_uri", tests, NULL, NULL);
}
