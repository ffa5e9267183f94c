/* applied: when a cached child counts as "as we last applied it", so the apply can be skipped,
 * and every kind of drift that must make it count as changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/runtime/applied.h"

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

/* A cached child: annotation hash, and generation (or resourceVersion when gen < 0). */
static json_object *cached(const char *hash, int gen, const char *rv)
{
    char buf[512];
    if (gen >= 0)
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"d\",\"generation\":%d,\"resourceVersion\":\"%s\","
                 "\"annotations\":{\"" APPLIED_ANNOTATION_HASH "\":\"%s\"}}}",
                 gen, rv, hash);
    else
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"d\",\"resourceVersion\":\"%s\","
                 "\"annotations\":{\"" APPLIED_ANNOTATION_HASH "\":\"%s\"}}}",
                 rv, hash);
    return parse(buf);
}

static void test_stamp_is_stable_and_sensitive(void **state)
{
    (void)state;
    char h1[17], h2[17], h3[17];
    json_object *a =
        parse("{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},\"spec\":{\"replicas\":1}}");
    applied_stamp(a, h1);
    assert_int_equal(strlen(h1), 16);
    json_object *md, *ann, *v;
    assert_true(json_object_object_get_ex(a, "metadata", &md) &&
                json_object_object_get_ex(md, "annotations", &ann) &&
                json_object_object_get_ex(ann, APPLIED_ANNOTATION_HASH, &v));
    assert_string_equal(json_object_get_string(v), h1);
    applied_stamp(a, h2); /* stamping again ignores its own annotation */
    assert_string_equal(h1, h2);
    json_object *b =
        parse("{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"},\"spec\":{\"replicas\":2}}");
    applied_stamp(b, h3);
    assert_string_not_equal(h1, h3);
    json_object_put(a);
    json_object_put(b);
}

static void test_current_only_as_last_applied(void **state)
{
    (void)state;
    applied *ap = applied_create();
    assert_non_null(ap);
    const char *k = "Deployment ns/d";
    json_object *c = cached("00000000000000aa", 3, "100");
    assert_int_equal(applied_current(ap, k, "00000000000000aa", c),
                     0); /* never applied (restart) */
    json_object *res = cached("00000000000000aa", 3, "99");
    applied_record(ap, k, "00000000000000aa", res);
    assert_int_equal(applied_current(ap, k, "00000000000000aa", c),
                     1); /* status writes change rv only */
    assert_int_equal(applied_current(ap, k, "00000000000000bb", c), 0); /* desired changed */
    assert_int_equal(applied_current(ap, "Deployment ns/other", "00000000000000aa", c), 0);
    assert_int_equal(applied_current(ap, k, "00000000000000aa", NULL), 0); /* deleted */
    json_object *edited = cached("00000000000000aa", 4, "101"); /* someone changed the spec */
    assert_int_equal(applied_current(ap, k, "00000000000000aa", edited), 0);
    json_object *stale = cached("0000000000000011", 3, "100"); /* cache behind our apply */
    assert_int_equal(applied_current(ap, k, "00000000000000aa", stale), 0);
    applied_forget(ap, k);
    assert_int_equal(applied_current(ap, k, "00000000000000aa", c), 0);
    json_object_put(c);
    json_object_put(res);
    json_object_put(edited);
    json_object_put(stale);
    applied_free(ap);
    applied_free(NULL);
}

/* Services have no generation: any write by anyone (a new resourceVersion) counts as a change. */
static void test_kinds_without_generation_use_resource_version(void **state)
{
    (void)state;
    applied *ap = applied_create();
    const char *k = "Service ns/s";
    json_object *res = cached("00000000000000aa", -1, "7"),
                *same = cached("00000000000000aa", -1, "7"),
                *touched = cached("00000000000000aa", -1, "8"), *bare = parse("{\"metadata\":{}}");
    applied_record(ap, k, "00000000000000aa", res);
    assert_int_equal(applied_current(ap, k, "00000000000000aa", same), 1);
    assert_int_equal(applied_current(ap, k, "00000000000000aa", touched), 0);
    applied_record(ap, k, "00000000000000aa", bare); /* no marker: forgotten, never "current" */
    assert_int_equal(applied_current(ap, k, "00000000000000aa", same), 0);
    json_object_put(res);
    json_object_put(same);
    json_object_put(touched);
    json_object_put(bare);
    applied_free(ap);
}

static json_object *with_fields(const char *managed)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"d\",\"generation\":3,\"resourceVersion\":\"5\","
             "\"annotations\":{\"" APPLIED_ANNOTATION_HASH
             "\":\"00000000000000aa\"},\"managedFields\":[%s]}}",
             managed);
    json_object *o = parse(buf);
    applied_mark(o);
    return o;
}

#define MF(m, op, t, sub)                                                                          \
    "{\"manager\":\"" m "\",\"operation\":\"" op "\",\"time\":\"" t "\"" sub "}"
#define OURS MF("kinfer-controller", "Apply", "2026-01-01T00:00:10Z", "")

/* After a restart there is no record: the managers' write times decide. */
static void test_restart_trusts_cache_unless_written_by_others(void **state)
{
    (void)state;
    applied *ap = applied_create();
    const char *k = "Deployment ns/d", *h = "00000000000000aa";
    struct {
        const char *managed;
        int current;
    } cases[] = {
        {OURS, 1},
        {OURS "," MF("kube-controller-manager", "Update", "2026-01-01T00:00:11Z", ""),
         1}, /* revision annotation */
        {OURS "," MF("kube-controller-manager", "Update", "2026-01-01T00:00:12Z",
                     ",\"subresource\":\"status\""),
         1},
        {OURS "," MF("kubectl", "Update", "2026-01-01T00:00:20Z", ",\"subresource\":\"scale\""),
         0}, /* by hand */
        {OURS "," MF("kube-controller-manager", "Update", "2026-01-01T00:00:20Z",
                     ",\"subresource\":\"scale\""),
         1},
        {MF("kinfer-handover", "Apply", "2026-01-01T00:00:10Z", "") "," OURS, 1},
        {MF("someone", "Apply", "2026-01-01T00:00:09Z", "") "," OURS, 1}, /* before our apply */
        {OURS "," MF("someone", "Apply", "2026-01-01T00:00:11Z", ""), 0}, /* forced a field back */
        {OURS "," MF("kubectl-edit", "Update", "2026-01-01T00:00:10Z", ""), 0}, /* same second */
        {MF("kubectl-create", "Update", "2026-01-01T00:00:10Z", ""), 0}, /* never applied by us */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *o = with_fields(cases[i].managed);
        assert_int_equal(applied_current(ap, k, h, o), cases[i].current);
        json_object_put(o);
    }
    /* with a record, a metadata-only write by someone else (same generation) is drift too */
    json_object *mine = with_fields(OURS),
                *theirs = with_fields(OURS "," MF("x", "Update", "2026-01-01T00:00:30Z", ""));
    applied_record(ap, k, h, mine);
    assert_int_equal(applied_current(ap, k, h, mine), 1);
    assert_int_equal(applied_current(ap, k, h, theirs), 0);
    json_object_put(mine);
    json_object_put(theirs);
    applied_mark(NULL);
    applied_free(ap);
}

int test_applied_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stamp_is_stable_and_sensitive),
        cmocka_unit_test(test_current_only_as_last_applied),
        cmocka_unit_test(test_kinds_without_generation_use_resource_version),
        cmocka_unit_test(test_restart_trusts_cache_unless_written_by_others),
    };
    return cmocka_run_group_tests_name("applied", tests, NULL, NULL);
}
