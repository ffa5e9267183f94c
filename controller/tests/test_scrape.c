/* Tests of scrape.c: parsing kinfer-server's exposition text, success rate and p99 from deltas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "../src/rollout/scrape.h"

/* The shape kinfer-server renders (serving-runtime/src/metrics/metrics.c), trimmed buckets. */
static const char text1[] =
    "# HELP nv_inference_request_success Successful inference requests\n"
    "# TYPE nv_inference_request_success counter\n"
    "nv_inference_request_success{model=\"iris\",version=\"1\"} 90\n"
    "# TYPE nv_inference_request_failure counter\n"
    "nv_inference_request_failure{model=\"iris\",version=\"1\",reason=\"REJECTED\"} 4\n"
    "nv_inference_request_failure{model=\"iris\",version=\"1\",reason=\"OTHER\"} 6\n"
    "nv_inference_count{model=\"iris\",version=\"1\"} 90\n"
    "# TYPE kinfer_request_duration_seconds histogram\n"
    "kinfer_request_duration_seconds_bucket{model=\"iris\",version=\"1\",le=\"0.001\"} 50\n"
    "kinfer_request_duration_seconds_bucket{model=\"iris\",version=\"1\",le=\"0.01\"} 90\n"
    "kinfer_request_duration_seconds_bucket{model=\"iris\",version=\"1\",le=\"0.1\"} 100\n"
    "kinfer_request_duration_seconds_bucket{model=\"iris\",version=\"1\",le=\"+Inf\"} 100\n"
    "kinfer_request_duration_seconds_sum{model=\"iris\",version=\"1\"} 0.5\n"
    "kinfer_request_duration_seconds_count{model=\"iris\",version=\"1\"} 100\n"
    "kinfer_queue_duration_seconds_bucket{model=\"iris\",version=\"1\",le=\"+Inf\"} 100\n";

static scrape_sample parse(const char *t)
{
    scrape_sample s;
    ctl_status *st = scrape_parse(t, strlen(t), &s);
    if (st) fail_msg("%s", ctl_status_msg(st));
    return s;
}

static void parses_counters_and_histogram(void **state)
{
    (void)state;
    scrape_sample s = parse(text1);
    assert_true(s.success == 90 && s.failure == 10);
    assert_true(s.have_requests && s.have_histogram);
    assert_int_equal(s.nbuckets, 4);
    assert_true(s.le[0] == 0.001 && isinf(s.le[3]) && s.cum[3] == 100);
    /* unrelated text: no data, not an error */
    s = parse("# nothing\nprocess_cpu_seconds_total 3\n");
    assert_false(s.have_requests || s.have_histogram);
}

static void parse_errors_are_precise(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"nv_inference_request_success{model=\"m\"} abc\n", "line 1: bad counter value \"abc\""},
        {"#\nnv_inference_request_success{model=\"m\" 3\n", "line 2: unterminated label set"},
        {"nv_inference_request_success{model=\"m\"}\n", "line 1: no value"},
        {"kinfer_request_duration_seconds_bucket{model=\"m\"} 3\n", "histogram bucket without le"},
        {"kinfer_request_duration_seconds_bucket{le=\"x1\"} 3\n", "bad le \"x1\""},
        {"kinfer_request_duration_seconds_bucket{le=\"0.1\"} 3\n", "has no +Inf bucket"},
        {"nv_inference_request_failure{reason=\"OTHER\"} -1\n", "bad counter value \"-1\""},
        {"kinfer_request_duration_seconds_bucket{le=\"-0.5\"} 3\n", "negative le \"-0.5\""},
        {"nv_inference_request_success{model=\"m\"} +Inf\n", "bad counter value \"+Inf\""},
        {"nv_inference_request_success{model=\"m\"} 1e400\n", "bad counter value \"1e400\""},
        {"nv_inference_request_success{a=\"1\"} 1e308\nnv_inference_request_success{a=\"2\"} "
         "1e308\n",
         "line 2: request counters overflow"},
        {"kinfer_request_duration_seconds_bucket{le=\"+Inf\"} 1e308\n"
         "kinfer_request_duration_seconds_bucket{le=\"+Inf\"} 1e308\n",
         "line 2: histogram counts overflow"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        scrape_sample s;
        ctl_status *st = scrape_parse(cases[i].text, strlen(cases[i].text), &s);
        if (!st) fail_msg("case %zu accepted", i);
        if (!strstr(ctl_status_msg(st), cases[i].want))
            fail_msg("case %zu: want \"%s\" in \"%s\"", i, cases[i].want, ctl_status_msg(st));
        ctl_status_free(st);
    }
}

static void success_rate_and_p99_from_deltas(void **state)
{
    (void)state;
    scrape_sample zero = {0}, s1 = parse(text1), s2;
    rollout_metric sr, p99;
    scrape_analyze(&zero, &s1, &sr, &p99);
    assert_int_equal(sr.status, ROLLOUT_METRIC_OK);
    assert_true(fabs(sr.value - 90.0) < 1e-9);
    /* rank 99 of 100 lies in (0.01, 0.1] holding 10 (cum 90..100): 0.01 + 0.09 * 9/10 = 0.091 s */
    assert_int_equal(p99.status, ROLLOUT_METRIC_OK);
    assert_true(fabs(p99.value - 91.0) < 1e-6);
    /* the next interval: 100 more successes, all fast */
    s2 = s1;
    s2.success += 100;
    s2.cum[0] += 100, s2.cum[1] += 100, s2.cum[2] += 100, s2.cum[3] += 100;
    scrape_analyze(&s1, &s2, &sr, &p99);
    assert_true(sr.value == 100.0);
    assert_true(p99.value > 0 && p99.value <= 1.0); /* within the first bucket, 1 ms */
    /* nothing happened: no data (not 100%, not 0%) */
    scrape_analyze(&s2, &s2, &sr, &p99);
    assert_int_equal(sr.status, ROLLOUT_METRIC_NODATA);
    assert_int_equal(p99.status, ROLLOUT_METRIC_NODATA);
    /* a restarted pod (counters went down) counts from zero */
    scrape_analyze(&s2, &s1, &sr, &p99);
    assert_true(fabs(sr.value - 90.0) < 1e-9);
    assert_true(fabs(p99.value - 91.0) < 1e-6);
}

static void slow_requests_beyond_last_bucket(void **state)
{
    (void)state;
    scrape_sample zero = {0};
    scrape_sample s = parse("kinfer_request_duration_seconds_bucket{le=\"0.5\"} 0\n"
                            "kinfer_request_duration_seconds_bucket{le=\"+Inf\"} 10\n");
    rollout_metric sr, p99;
    scrape_analyze(&zero, &s, &sr, &p99);
    assert_int_equal(sr.status, ROLLOUT_METRIC_NODATA); /* no request counters */
    assert_int_equal(p99.status, ROLLOUT_METRIC_OK);
    assert_true(p99.value == 500.0); /* histogram_quantile: the highest finite bound */
}

static void impossible_histogram_is_no_data(void **state)
{
    (void)state;
    /* scrape_parse refuses negative bounds; a sample that has one anyway (built by hand here)
     * interpolates to a negative latency, which analyze must report as no data. */
    scrape_sample zero = {0}, s = {0};
    s.have_histogram = 1;
    s.nbuckets = 2;
    s.le[0] = -1, s.le[1] = INFINITY;
    s.cum[0] = 5, s.cum[1] = 5;
    rollout_metric sr, p99;
    scrape_analyze(&zero, &s, &sr, &p99);
    assert_int_equal(p99.status, ROLLOUT_METRIC_NODATA);
}

static void pods_add_up(void **state)
{
    (void)state;
    scrape_sample a = parse(text1), b = parse(text1), acc = {0};
    scrape_add(&acc, &a);
    scrape_add(&acc, &b);
    assert_true(acc.success == 180 && acc.failure == 20);
    assert_int_equal(acc.nbuckets, 4);
    assert_true(acc.cum[3] == 200);
}

static void fetch_unreachable_is_transport_error(void **state)
{
    (void)state;
    scrape_sample s;
    ctl_status *st = scrape_fetch("http://127.0.0.1:1", &s); /* nothing listens on port 1 */
    assert_non_null(st);
    assert_int_equal(ctl_status_code(st), CTL_ETRANSPORT);
    assert_non_null(strstr(ctl_status_msg(st), "http://127.0.0.1:1/metrics"));
    ctl_status_free(st);
}

int test_scrape_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_counters_and_histogram),
        cmocka_unit_test(parse_errors_are_precise),
        cmocka_unit_test(success_rate_and_p99_from_deltas),
        cmocka_unit_test(slow_requests_beyond_last_bucket),
        cmocka_unit_test(impossible_histogram_is_no_data),
        cmocka_unit_test(pods_add_up),
        cmocka_unit_test(fetch_unreachable_is_transport_error),
    };
    return cmocka_run_group_tests_name("scrape", tests, NULL, NULL);
}
