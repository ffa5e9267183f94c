/* metrics: the exposition text carries every series with the right values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/common/metrics.h"

static size_t depth(void *ud)
{
    return *(size_t *)ud;
}

static void test_render(void **state)
{
    (void)state;
    metrics_reset();
    metrics_observe_reconcile("success", 0.003);
    metrics_observe_reconcile("success", 0.2);
    metrics_observe_reconcile("error", 3.0);
    metrics_count_api_request("apply", 200);
    metrics_count_api_request("apply", 200);
    metrics_count_api_request("get", 404);
    metrics_count_watch_restart("pods");
    metrics_count_relist("pods");
    metrics_count_relist("pods");
    size_t d = 7;
    metrics_set_depth_source(depth, &d);
    metrics_set_leader(1);
    char *text = NULL;
    size_t len = 0;
    assert_null(metrics_render(&text, &len));
    assert_int_equal(strlen(text), len);
    static const char *const want[] = {
        "kinfer_controller_reconcile_total{result=\"success\"} 2\n",
        "kinfer_controller_reconcile_total{result=\"error\"} 1\n",
        "kinfer_controller_reconcile_errors_total 1\n",
        "kinfer_controller_reconcile_duration_seconds_bucket{le=\"0.005\"} 1\n",
        "kinfer_controller_reconcile_duration_seconds_bucket{le=\"0.25\"} 2\n",
        "kinfer_controller_reconcile_duration_seconds_bucket{le=\"2.5\"} 2\n",
        "kinfer_controller_reconcile_duration_seconds_bucket{le=\"5\"} 3\n",
        "kinfer_controller_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3\n",
        "kinfer_controller_reconcile_duration_seconds_count 3\n",
        "kinfer_controller_workqueue_depth 7\n",
        "kinfer_controller_watch_restarts_total{resource=\"pods\"} 1\n",
        "kinfer_controller_relists_total{resource=\"pods\"} 2\n",
        "kinfer_controller_api_requests_total{verb=\"apply\",code=\"200\"} 2\n",
        "kinfer_controller_api_requests_total{verb=\"get\",code=\"404\"} 1\n",
        "kinfer_controller_leader 1\n",
        "# TYPE kinfer_controller_reconcile_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i])) fail_msg("missing %s", want[i]);
    free(text);
    metrics_reset();
}

/* More label combinations than the table holds fold into one row instead of growing. */
static void test_bounded_labels(void **state)
{
    (void)state;
    metrics_reset();
    for (int code = 100; code < 400; code++) metrics_count_api_request("get", code);
    char *text = NULL;
    assert_null(metrics_render(&text, NULL));
    int rows = 0;
    for (const char *p = text; (p = strstr(p, "kinfer_controller_api_requests_total{")); p++)
        rows++;
    assert_true(rows <= 48);
    assert_non_null(strstr(text, "verb=\"other\""));
    free(text);
    metrics_reset();
}

/* Paused InferenceServices are listed while paused, dropped on resume, and a full table says so. */
static void test_paused(void **state)
{
    (void)state;
    metrics_reset();
    metrics_set_paused("a/one", 1);
    metrics_set_paused("a/one", 1); /* every reconcile sets it: one row */
    metrics_set_paused("b/two", 1);
    metrics_set_paused("c/never", 0);
    char *text = NULL;
    assert_null(metrics_render(&text, NULL));
    assert_non_null(strstr(text, "kinfer_controller_paused{inferenceservice=\"a/one\"} 1\n"));
    assert_non_null(strstr(text, "kinfer_controller_paused{inferenceservice=\"b/two\"} 1\n"));
    assert_null(strstr(text, "c/never"));
    assert_null(strstr(strstr(text, "a/one") + 1, "a/one")); /* one row */
    assert_non_null(strstr(text, "kinfer_controller_paused_unlisted 0\n"));
    free(text);
    metrics_set_paused("a/one", 0);
    assert_null(metrics_render(&text, NULL));
    assert_null(strstr(text, "a/one"));
    assert_non_null(strstr(text, "kinfer_controller_paused{inferenceservice=\"b/two\"} 1\n"));
    free(text);
    for (int i = 0; i < 70; i++) {
        char k[32];
        snprintf(k, sizeof(k), "ns/isvc-%d", i);
        metrics_set_paused(k, 1);
    }
    assert_null(metrics_render(&text, NULL));
    int rows = 0;
    for (const char *p = text; (p = strstr(p, "kinfer_controller_paused{")); p++) rows++;
    assert_int_equal(rows, 64);
    assert_non_null(strstr(text, "kinfer_controller_paused_unlisted 1\n"));
    free(text);
    metrics_reset();
}

int test_metrics_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_bounded_labels),
        cmocka_unit_test(test_paused),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
