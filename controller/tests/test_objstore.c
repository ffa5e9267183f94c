/* objstore: insert/replace/remove, many keys (table growth, tombstones), compaction keeps every
 * live object intact, and an emptied store holds nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/kube/objstore.h"

static void test_put_get_replace_remove(void **state)
{
    (void)state;
    objstore *s = objstore_create();
    int replaced = -1;
    assert_int_equal(objstore_put(s, "ns/a", "{\"a\":1}", 7, "ns/x", "10", &replaced), 0);
    assert_int_equal(replaced, 0);
    objstore_entry e;
    assert_int_equal(objstore_get(s, "ns/a", &e), 1);
    assert_string_equal(e.key, "ns/a");
    assert_string_equal(e.json, "{\"a\":1}");
    assert_int_equal(e.len, 7);
    assert_string_equal(e.index, "ns/x");
    assert_string_equal(e.rv, "10");
    assert_int_equal(objstore_put(s, "ns/a", "{\"a\":22}", 8, "ns/y", "11", &replaced), 0);
    assert_int_equal(replaced, 1);
    assert_int_equal(objstore_count(s), 1);
    assert_int_equal(objstore_get(s, "ns/a", &e), 1);
    assert_string_equal(e.json, "{\"a\":22}");
    assert_string_equal(e.index, "ns/y");
    assert_int_equal(objstore_get(s, "ns/b", &e), 0);
    char *idx = NULL;
    assert_int_equal(objstore_remove(s, "ns/b", &idx), 0);
    assert_null(idx);
    assert_int_equal(objstore_remove(s, "ns/a", &idx), 1);
    assert_string_equal(idx, "ns/y");
    free(idx);
    assert_int_equal(objstore_count(s), 0);
    assert_int_equal(objstore_bytes(s), 0);
    objstore_free(s);
    objstore_free(NULL);
}

static int count_cb(void *ud, const objstore_entry *e)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

/* 5000 keys with churn: every survivor reads back exactly, across table growth and compaction. */
static void test_many_keys_and_compaction(void **state)
{
    (void)state;
    objstore *s = objstore_create();
    char key[32], json[600], rv[16];
    int version[5000] = {0};
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 5000; i++) {
            if (round == 2 && i % 3 == 0) { /* remove a third, leaving tombstones */
                snprintf(key, sizeof(key), "ns/k%d", i);
                assert_int_equal(objstore_remove(s, key, NULL), version[i] ? 1 : 0);
                version[i] = 0;
                continue;
            }
            int n = (i * 37 + round * 11) % 500;
            snprintf(key, sizeof(key), "ns/k%d", i);
            memset(json, 'a' + round, (size_t)n);
            json[n] = 0;
            snprintf(rv, sizeof(rv), "%d", round * 10000 + i);
            assert_int_equal(
                objstore_put(s, key, json, (size_t)n, i % 2 ? "odd" : "even", rv, NULL), 0);
            version[i] = round * 10000 + i + 1;
        }
    }
    int live = 0, seen = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "ns/k%d", i);
        objstore_entry e;
        int has = objstore_get(s, key, &e);
        assert_int_equal(has, version[i] != 0);
        if (!has) continue;
        live++;
        assert_int_equal(atoi(e.rv), version[i] - 1);
        int round = (version[i] - 1) / 10000;
        assert_int_equal(e.len, (size_t)((i * 37 + round * 11) % 500));
        for (size_t j = 0; j < e.len; j++) assert_int_equal(e.json[j], 'a' + round);
        assert_string_equal(e.index, i % 2 ? "odd" : "even");
    }
    assert_int_equal(objstore_count(s), (size_t)live);
    /* compaction keeps the dead part of the region under an eighth (plus one blob's slack) */
    assert_true(objstore__used(s) - objstore_bytes(s) <= objstore__used(s) / 8 + 1024);
    objstore_each(s, count_cb, &seen);
    assert_int_equal(seen, live);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "ns/k%d", i);
        (void)objstore_remove(s, key, NULL);
    }
    assert_int_equal(objstore_count(s), 0);
    assert_int_equal(objstore_bytes(s), 0);
    objstore_free(s);
}

int test_objstore_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_remove),
        cmocka_unit_test(test_many_keys_and_compaction),
    };
    return cmocka_run_group_tests_name("objstore", tests, NULL, NULL);
}
