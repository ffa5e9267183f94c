/* pack: round trips (with and without a dictionary, long runs, binary bytes, random inputs), the
 * ratio on near-copies of a cached object, the incompressible worst case, and every malformed
 * coded text (wrong length, cut stream, trailing bytes, wrong dictionary, junk) answered with
 * PACK_EMALFORMED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/kube/pack.h"

/* Codes src against dict, decodes it back, checks the bytes; returns the coded length. */
static size_t round_trip(const char *dict, size_t dlen, const char *src, size_t n)
{
    char *c = NULL, *d = NULL;
    size_t clen = 0, dn = 0;
    assert_int_equal(pack_encode(dict, dlen, src, n, &c, &clen), PACK_OK);
    assert_true(clen <= 10 + n + n / 128 + 1);
    assert_int_equal(pack_decode(dict, dlen, c, clen, &d, &dn), PACK_OK);
    assert_int_equal(dn, n);
    assert_memory_equal(d, src, n);
    assert_int_equal(d[n], 0);
    free(c);
    free(d);
    return clen;
}

static const char isvc_fmt[] =
    "{\"apiVersion\":\"serving.kinfer.dev/"
    "v1beta1\",\"kind\":\"InferenceService\",\"metadata\":{\"creationTimestamp\":"
    "\"2026-11-22T10:19:%02dZ\",\"generation\":1,\"name\":\"bench-%05d\",\"namespace\":\"kinfer-"
    "bench-ctl-1a2b3c\","
    "\"resourceVersion\":\"%d\",\"uid\":\"fd1b6a54-b973-45e4-b471-%012d\"},\"spec\":{\"predictor\":"
    "{\"maxReplicas\":2,"
    "\"minReplicas\":1,\"model\":{\"modelFormat\":{\"name\":\"onnx\"},\"resources\":{\"limits\":{"
    "\"cpu\":\"10m\","
    "\"memory\":\"16Mi\"},\"requests\":{\"cpu\":\"1m\",\"memory\":\"1Mi\"}},\"storageUri\":\"s3://"
    "bench/bench-%05d\"}}},"
    "\"status\":{\"address\":{\"url\":\"http://"
    "bench-%05d.kinfer-bench-ctl-1a2b3c.svc.cluster.local\"},\"components\":"
    "{\"predictor\":{\"address\":{\"url\":\"http://"
    "bench-%05d.kinfer-bench-ctl-1a2b3c.svc.cluster.local\"},"
    "\"latestCreatedRevision\":\"bench-%05d-predictor-f77fc415\",\"url\":\"http://"
    "bench-%05d.kinfer-bench-ctl-1a2b3c."
    "svc.cluster.local\"}},\"conditions\":[{\"lastTransitionTime\":\"2026-11-22T10:19:%02dZ\","
    "\"message\":\"0 of 1 "
    "replicas "
    "ready\",\"observedGeneration\":1,\"reason\":\"MinimumReplicasUnavailable\",\"status\":"
    "\"False\","
    "\"type\":\"PredictorReady\"}],\"observedGeneration\":1,\"url\":\"http://"
    "bench-%05d.kinfer-bench-ctl-1a2b3c.svc."
    "cluster.local\"}}";

static size_t isvc(char *buf, size_t len, int i)
{
    return (size_t)snprintf(buf, len, isvc_fmt, i % 60, i, 1000 + i * 7, i * 7919, i, i, i, i, i,
                            i % 60, i);
}

/* The first cached object as the dictionary: its near copies shrink more than fivefold. */
static void test_near_copies(void **state)
{
    (void)state;
    char dict[4096], obj[4096];
    size_t dlen = isvc(dict, sizeof(dict), 1);
    for (int i = 2; i < 200; i += 37) {
        size_t n = isvc(obj, sizeof(obj), i), c = round_trip(dict, dlen, obj, n);
        assert_true(c * 5 < n);
    }
    /* without a dictionary the object still codes (its own repeats), just less */
    size_t n = isvc(obj, sizeof(obj), 3), c = round_trip(NULL, 0, obj, n);
    assert_true(c < n);
}

static void test_edge_inputs(void **state)
{
    (void)state;
    round_trip(NULL, 0, "", 0);
    round_trip("abc", 3, "", 0);
    round_trip(NULL, 0, "abc", 3);
    round_trip("abcdefgh", 8, "abcdefgh", 8); /* the whole dictionary, one copy */
    char run[5000], bin[700];
    memset(run, 'a', sizeof(run)); /* a run: copies overlapping what they write */
    assert_true(round_trip(NULL, 0, run, sizeof(run)) < 40);
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (char)(i * 37 % 256); /* NULs and high bytes */
    round_trip(bin, 300, bin, sizeof(bin));
    /* of a dictionary over PACK_DICT_MAX, its last PACK_DICT_MAX bytes are used, on both sides */
    char *big = calloc(PACK_DICT_MAX + 100, 1);
    assert_non_null(big);
    memcpy(big + PACK_DICT_MAX + 10, "tail-only-text", 14);
    round_trip(big, PACK_DICT_MAX + 100, big + PACK_DICT_MAX - 50, 150);
    free(big);
}

/* Random inputs and random dictionaries cut from them: round trips and the worst-case bound. */
static void test_random(void **state)
{
    (void)state;
    unsigned x = 12345;
    char buf[3000];
    for (int r = 0; r < 300; r++) {
        size_t n = (size_t)(r * 10) % sizeof(buf);
        int alphabet = 2 + r % 50;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (char)('a' + (x >> 16) % (unsigned)alphabet);
        }
        round_trip(buf, n / 3, buf + n / 3, n - n / 3);
    }
}

static int decode(const char *dict, size_t dlen, const char *p, size_t n)
{
    char *o = (char *)1;
    size_t on = 1;
    int rc = pack_decode(dict, dlen, p, n, &o, &on);
    if (rc == PACK_OK)
        free(o);
    else
        assert_true(o == NULL && on == 0);
    return rc;
}

/* Codes src against dict into buf (at most cap bytes); returns the length. */
static size_t code(const char *dict, size_t dlen, const char *src, char *buf, size_t cap)
{
    char *c = NULL;
    size_t n = 0;
    assert_int_equal(pack_encode(dict, dlen, src, strlen(src), &c, &n), PACK_OK);
    assert_true(n <= cap);
    memcpy(buf, c, n);
    free(c);
    return n;
}

/* The dictionary is used: a near copy of it codes several times smaller with it than without. And
 * a text coded against one dictionary does not decode against another one, of the same length or
 * not, nor without one: PACK_EMALFORMED, not some other text. (A dictionary that differs only in
 * bytes the stream never copies from decodes the same text, rightly: those are not tested.) */
static void test_dictionary_used_and_checked(void **state)
{
    (void)state;
    char dict[4096], other[4096], obj[4096];
    size_t dlen = isvc(dict, sizeof(dict), 1), n = isvc(obj, sizeof(obj), 2);
    size_t with = round_trip(dict, dlen, obj, n), without = round_trip(NULL, 0, obj, n);
    assert_true(with * 3 < without);
    /* a plausible wrong one: the same length and keys, every letter's case swapped */
    memcpy(other, dict, dlen);
    for (size_t i = 0; i < dlen; i++)
        if ((other[i] | 0x20) >= 'a' && (other[i] | 0x20) <= 'z') other[i] ^= 0x20;
    char *c = NULL;
    size_t clen = 0;
    assert_int_equal(pack_encode(dict, dlen, obj, n, &c, &clen), PACK_OK);
    assert_int_equal(decode(dict, dlen, c, clen), PACK_OK);
    assert_int_equal(decode(other, dlen, c, clen), PACK_EMALFORMED);
    assert_int_equal(decode(dict, dlen - 1, c, clen), PACK_EMALFORMED); /* its last byte missing */
    assert_int_equal(decode("x", 1, c, clen), PACK_EMALFORMED);
    assert_int_equal(decode(NULL, 0, c, clen), PACK_EMALFORMED);
    free(c);
}

static void test_malformed(void **state)
{
    (void)state;
    assert_int_equal(decode(NULL, 0, "", 0), PACK_EMALFORMED);     /* no length */
    assert_int_equal(decode(NULL, 0, "\x80", 1), PACK_EMALFORMED); /* length runs off */
    assert_int_equal(decode(NULL, 0, "\xff\xff\xff\xff\x0f", 5),
                     PACK_EMALFORMED); /* length over the cap */
    assert_int_equal(decode(NULL, 0, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11),
                     PACK_EMALFORMED);
    assert_int_equal(decode(NULL, 0, NULL, 0), PACK_EMALFORMED);
    const char *dict = "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"bench-00001\"}}";
    const char *text = "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"bench-00002\"}}";
    char c[256], bad[260];
    size_t n = code(dict, strlen(dict), text, c, sizeof(c));
    assert_int_equal(c[0], (char)strlen(text)); /* a one-byte varint: the length */
    assert_int_equal(decode(dict, strlen(dict), c, n), PACK_OK);
    memcpy(bad, c, n);
    bad[0]++; /* the stream ends before the length */
    assert_int_equal(decode(dict, strlen(dict), bad, n), PACK_EMALFORMED);
    bad[0] -= 2; /* the stream goes past the length */
    assert_int_equal(decode(dict, strlen(dict), bad, n), PACK_EMALFORMED);
    for (size_t cut = 1; cut < n; cut++) /* every truncation */
        assert_int_equal(decode(dict, strlen(dict), c, cut), PACK_EMALFORMED);
    memcpy(bad, c, n);
    bad[n] = 'x'; /* bytes after the stream's end */
    assert_int_equal(decode(dict, strlen(dict), bad, n + 1), PACK_EMALFORMED);
    /* copies from a dictionary that the decoder does not have reach before the start */
    assert_int_equal(decode(NULL, 0, c, n), PACK_EMALFORMED);
    /* random bytes decode or are refused, never read or write out of bounds (ASan) */
    unsigned x = 99;
    char junk[64];
    for (int r = 0; r < 20000; r++) {
        for (size_t i = 0; i < sizeof(junk); i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (char)(x >> 16);
        }
        junk[0] = (char)(r % 64); /* small raw lengths, so some succeed */
        int rc = decode("dictionary text", 15, junk, 1 + (size_t)r % sizeof(junk));
        assert_true(rc == PACK_OK || rc == PACK_EMALFORMED);
    }
}

int test_pack_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_near_copies),
        cmocka_unit_test(test_edge_inputs),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_dictionary_used_and_checked),
    };
    return cmocka_run_group_tests_name("pack", tests, NULL, NULL);
}
