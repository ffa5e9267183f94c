/* framer: every split point of a multi-event stream, malformed and oversized events, and the
 * event parser's precise errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/kube/framer.h"

#define MAXF 16

typedef struct rec {
    int n;
    framer_kind kind[MAXF];
    char *data[MAXF];
    size_t len[MAXF];
} rec;

/* Frames are not NUL-terminated: copy by length (strndup may read past under ASan's strict checks).
 */
static char *memdup0(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static int record(void *ud, framer_kind kind, const char *data, size_t len)
{
    rec *r = ud;
    if (r->n == MAXF) return 0;
    r->kind[r->n] = kind;
    r->len[r->n] = len;
    r->data[r->n] = data ? memdup0(data, len) : NULL;
    r->n++;
    return 0;
}

static void rec_clear(rec *r)
{
    for (int i = 0; i < r->n; i++) free(r->data[i]);
    memset(r, 0, sizeof(*r));
}

static const char *const events[] = {
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}",
    /* braces and quotes inside strings, escapes, unicode */
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"annotations\":{\"x\":\"}{"
    "\\\"]\\\\\"}},"
    "\"spec\":{\"l\":[1,{\"k\":[]},\"\\u007d\"]}}}",
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"99\"}}}",
};

/* Feeding the stream cut at every single point (and in 1-byte pieces) yields the same events. */
static void test_every_split_point(void **state)
{
    (void)state;
    char stream[1024] = "";
    for (size_t i = 0; i < 3; i++) {
        strcat(stream, events[i]);
        strcat(stream, i == 1 ? "\r\n  " : "\n"); /* odd whitespace between events */
    }
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        rec r = {0};
        framer *f = framer_create(4096, record, &r);
        assert_non_null(f);
        assert_int_equal(framer_feed(f, stream, cut), 0);
        assert_int_equal(framer_feed(f, stream + cut, n - cut), 0);
        assert_int_equal(framer_finish(f), 0);
        assert_int_equal(r.n, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(r.kind[i], FRAMER_FRAME);
            assert_string_equal(r.data[i], events[i]);
        }
        rec_clear(&r);
        framer_free(f);
    }
    /* byte by byte */
    rec r = {0};
    framer *f = framer_create(4096, record, &r);
    for (size_t i = 0; i < n; i++) assert_int_equal(framer_feed(f, stream + i, 1), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.data[1], events[1]);
    rec_clear(&r);
    framer_free(f);
}

/* Two cut points: every pair for a short two-event stream. */
static void test_every_pair_of_cuts(void **state)
{
    (void)state;
    const char *s = "{\"a\":\"}\"}{\"b\":[{}]}\n";
    size_t n = strlen(s);
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {
            rec r = {0};
            framer *f = framer_create(64, record, &r);
            assert_int_equal(framer_feed(f, s, i), 0);
            assert_int_equal(framer_feed(f, s + i, j - i), 0);
            assert_int_equal(framer_feed(f, s + j, n - j), 0);
            assert_int_equal(r.n, 2);
            assert_string_equal(r.data[0], "{\"a\":\"}\"}");
            assert_string_equal(r.data[1], "{\"b\":[{}]}");
            rec_clear(&r);
            framer_free(f);
        }
}

/* Over the cap: skipped to its end, reported with its size, and the next event still framed;
 * memory never exceeds the cap. */
static void test_oversized_event_skipped(void **state)
{
    (void)state;
    rec r = {0};
    framer *f = framer_create(32, record, &r);
    char big[200];
    memset(big, 'x', sizeof(big));
    assert_int_equal(framer_feed(f, "{\"big\":\"", 8), 0);
    for (int i = 0; i < 50; i++) assert_int_equal(framer_feed(f, big, sizeof(big)), 0);
    assert_int_equal(framer_feed(f, "\"}\n{\"ok\":1}\n", 12), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.kind[0], FRAMER_TOOBIG);
    assert_int_equal(r.len[0], 8 + 50 * 200 + 2);
    assert_null(r.data[0]);
    assert_int_equal(r.kind[1], FRAMER_FRAME);
    assert_string_equal(r.data[1], "{\"ok\":1}");
    rec_clear(&r);
    framer_free(f);
}

/* An event exactly at the cap is kept; one byte more is not. */
static void test_cap_boundary(void **state)
{
    (void)state;
    rec r = {0};
    framer *f = framer_create(8, record, &r);
    assert_int_equal(framer_feed(f, "{\"a\":12}{\"a\":123}", 17), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.kind[0], FRAMER_FRAME);
    assert_string_equal(r.data[0], "{\"a\":12}");
    assert_int_equal(r.kind[1], FRAMER_TOOBIG);
    assert_int_equal(r.len[1], 9);
    rec_clear(&r);
    framer_free(f);
}

/* Bytes that cannot start an event are reported once and skipped to the next line. */
static void test_garbage_resyncs_at_newline(void **state)
{
    (void)state;
    rec r = {0};
    framer *f = framer_create(64, record, &r);
    const char *s = "<html>{not json}</html>\n{\"ok\":2}\nnull\n";
    assert_int_equal(framer_feed(f, s, strlen(s)), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.kind[0], FRAMER_GARBAGE);
    assert_int_equal(r.kind[1], FRAMER_FRAME);
    assert_string_equal(r.data[1], "{\"ok\":2}");
    assert_int_equal(r.kind[2], FRAMER_GARBAGE);
    rec_clear(&r);
    framer_free(f);
}

/* A stream that ends inside an event reports it as truncated. */
static void test_truncated_at_finish(void **state)
{
    (void)state;
    rec r = {0};
    framer *f = framer_create(64, record, &r);
    assert_int_equal(framer_feed(f, "{\"type\":\"ADD", 12), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(framer_finish(f), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kind[0], FRAMER_TRUNCATED);
    assert_string_equal(r.data[0], "{\"type\":\"ADD");
    /* after finish the framer starts clean */
    assert_int_equal(framer_feed(f, "{}", 2), 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.data[1], "{}");
    rec_clear(&r);
    framer_free(f);
}

static int stop_at_first(void *ud, framer_kind kind, const char *data, size_t len)
{
    (void)kind, (void)data, (void)len;
    (*(int *)ud)++;
    return 7;
}

/* A callback's nonzero return stops feeding at once and is passed back. */
static void test_callback_stops(void **state)
{
    (void)state;
    int calls = 0;
    framer *f = framer_create(64, stop_at_first, &calls);
    assert_int_equal(framer_feed(f, "{}{}{}", 6), 7);
    assert_int_equal(calls, 1);
    framer_free(f);
    assert_null(framer_create(1, stop_at_first, &calls));
    framer_free(NULL);
}

static void test_parse_event(void **state)
{
    (void)state;
    watch_type t;
    json_object *o = NULL;
    ctl_status *st = framer_parse_event(events[0], strlen(events[0]), &t, &o);
    assert_null(st);
    assert_int_equal(t, WATCH_ADDED);
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_object));
    json_object_put(o);

    static const struct {
        const char *in, *want;
    } bad[] = {
        {"{\"type\":\"ADDED\",\"object\":", "not one JSON value"},
        {"not json", "not one JSON value"},
        {"[1,2]", "not a JSON object"},
        {"{\"object\":{}}", "no string \"type\""},
        {"{\"type\":7,\"object\":{}}", "no string \"type\""},
        {"{\"type\":\"EXPLODED\",\"object\":{}}", "unknown type \"EXPLODED\""},
        {"{\"type\":\"ADDED\"}", "ADDED watch event has no \"object\" object"},
        {"{\"type\":\"ADDED\",\"object\":[]}", "ADDED watch event has no \"object\" object"},
        {"{\"type\":\"ADDED\",\"object\":{}} {}", "trailing data"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = NULL;
        st = framer_parse_event(bad[i].in, strlen(bad[i].in), &t, &o);
        assert_non_null(st);
        assert_int_equal(ctl_status_code(st), CTL_EPARSE);
        if (!strstr(ctl_status_msg(st), bad[i].want))
            fail_msg("%s: got \"%s\"", bad[i].in, ctl_status_msg(st));
        assert_null(o);
        ctl_status_free(st);
    }
}

/* ERROR events: 410 (by code or by reason) means relist; others keep code, reason, message. */
static void test_error_event(void **state)
{
    (void)state;
    const char *gone =
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\","
        "\"message\":\"too old resource version: 5 (10)\",\"reason\":\"Expired\",\"code\":410}}";
    watch_type t;
    json_object *o = NULL;
    assert_null(framer_parse_event(gone, strlen(gone), &t, &o));
    assert_int_equal(t, WATCH_ERROR);
    ctl_status *st = framer_event_error(o);
    assert_int_equal(ctl_status_code(st), CTL_EGONE);
    assert_int_equal(ctl_status_http(st), 410);
    assert_string_equal(ctl_status_reason(st), "Expired");
    assert_non_null(strstr(ctl_status_msg(st), "too old resource version"));
    ctl_status_free(st);
    json_object_put(o);

    json_object *s =
        json_tokener_parse("{\"code\":500,\"reason\":\"InternalError\",\"message\":\"etcd down\"}");
    st = framer_event_error(s);
    assert_int_equal(ctl_status_code(st), CTL_EAPI);
    assert_int_equal(ctl_status_http(st), 500);
    assert_string_equal(ctl_status_reason(st), "InternalError");
    assert_non_null(strstr(ctl_status_msg(st), "etcd down"));
    ctl_status_free(st);
    json_object_put(s);
    st = framer_event_error(NULL);
    assert_int_equal(ctl_status_http(st), 500);
    ctl_status_free(st);
}

int test_framer_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_every_pair_of_cuts),
        cmocka_unit_test(test_oversized_event_skipped),
        cmocka_unit_test(test_cap_boundary),
        cmocka_unit_test(test_garbage_resyncs_at_newline),
        cmocka_unit_test(test_truncated_at_finish),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_parse_event),
        cmocka_unit_test(test_error_event),
    };
    return cmocka_run_group_tests_name("framer", tests, NULL, NULL);
}
