/* Tests of rollout.c: policy parsing with precise errors, and the state machine, case by case and
 * over random observation sequences (every rollout ends by its deadline, weights only step up). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../src/rollout/rollout.h"

static rollout_policy parse_ok(const char *json)
{
    rollout_policy p;
    int present = 0;
    json_object *o = json_tokener_parse(json);
    ctl_status *st = rollout_policy_parse(o, &p, &present);
    if (st) fail_msg("%s: %s", json, ctl_status_msg(st));
    assert_true(present);
    json_object_put(o);
    return p;
}

static void parse_err(const char *json, const char *want)
{
    rollout_policy p;
    int present = 0;
    json_object *o = json_tokener_parse(json);
    ctl_status *st = rollout_policy_parse(o, &p, &present);
    if (!st) fail_msg("%s: accepted", json);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    if (!strstr(ctl_status_msg(st), want))
        fail_msg("%s: want \"%s\" in \"%s\"", json, want, ctl_status_msg(st));
    ctl_status_free(st);
    json_object_put(o);
}

static void policy_parse(void **state)
{
    (void)state;
    rollout_policy p = parse_ok("{\"stepWeights\":[10,25,50]}");
    assert_int_equal(p.nsteps, 3);
    assert_int_equal(p.steps[2], 50);
    assert_int_equal(p.interval_ms, 60000);
    assert_int_equal(p.threshold, 5);
    assert_int_equal(p.deadline_ms, 600000);
    assert_false(p.check_success || p.check_latency || p.blue_green);
    p = parse_ok(
        "{\"stepWeight\":20,\"maxWeight\":50,\"interval\":\"1s\",\"threshold\":2,"
        "\"progressDeadlineSeconds\":30,\"metrics\":{\"successRate\":{\"minPercent\":99.5},"
        "\"latencyP99\":{\"maxMilliseconds\":250}}}");
    assert_int_equal(p.nsteps, 2);
    assert_int_equal(p.steps[0], 20);
    assert_int_equal(p.steps[1], 40);
    assert_int_equal(p.interval_ms, 1000);
    assert_int_equal(p.threshold, 2);
    assert_int_equal(p.deadline_ms, 30000);
    assert_true(p.check_success && p.check_latency);
    assert_true(p.min_success_pct == 99.5 && p.max_p99_ms == 250);
    p = parse_ok("{\"stepWeight\":25}");
    assert_int_equal(p.nsteps, 4);
    assert_int_equal(p.steps[3], 100);
    p = parse_ok("{\"blueGreen\":{\"prePromotionAnalysis\":{\"checks\":3}},\"interval\":\"2m\"}");
    assert_true(p.blue_green);
    assert_int_equal(p.nsteps, 3);
    assert_int_equal(p.steps[0] + p.steps[1] + p.steps[2], 0);
    assert_int_equal(p.interval_ms, 120000);
    p = parse_ok("{\"blueGreen\":{}}");
    assert_int_equal(p.nsteps, 1);

    rollout_policy q;
    int present = 1;
    assert_null(rollout_policy_parse(NULL, &q, &present));
    assert_false(present);

    parse_err("{}", "exactly one of stepWeights, stepWeight or blueGreen");
    parse_err("{\"stepWeights\":[10],\"stepWeight\":10}", "exactly one of");
    parse_err("{\"stepWeights\":[10],\"blueGreen\":{}}", "exactly one of");
    parse_err("{\"stepWeights\":[]}", "stepWeights: must be a non-empty array");
    parse_err("{\"stepWeights\":[10,10]}", "stepWeights: must be ascending");
    parse_err("{\"stepWeights\":[50,20]}", "stepWeights: must be ascending");
    parse_err("{\"stepWeights\":[0]}", "stepWeights[0]: 0 is out of range [1, 100]");
    parse_err("{\"stepWeights\":[10,101]}", "stepWeights[1]: 101 is out of range");
    parse_err("{\"stepWeights\":[\"10\"]}", "stepWeights[0]: must be an integer");
    parse_err("{\"stepWeight\":60,\"maxWeight\":50}", "stepWeight: 60 is above maxWeight 50");
    parse_err("{\"stepWeights\":[10],\"interval\":\"10\"}", "interval: \"10\" is not a duration");
    parse_err("{\"stepWeights\":[10],\"interval\":\"-1s\"}", "is not a duration");
    parse_err("{\"stepWeights\":[10],\"interval\":\"500ms\"}",
              "interval: \"500ms\" is not a duration like 30s or 2m");
    parse_err("{\"stepWeights\":[10],\"interval\":30}", "interval: must be a string");
    parse_err("{\"stepWeights\":[10],\"threshold\":0}", "threshold: 0 is out of range");
    parse_err("{\"stepWeights\":[10],\"metrics\":{\"successRate\":{\"minPercent\":101}}}",
              "minPercent: 101 is out of range");
    parse_err("{\"stepWeights\":[10],\"metrics\":{\"latencyP99\":{\"maxMilliseconds\":\"x\"}}}",
              "maxMilliseconds: must be a number");
    parse_err("[1]", "must be an object");
}

static const rollout_policy canary3 = {.steps = {10, 30, 60},
                                       .nsteps = 3,
                                       .interval_ms = 1000,
                                       .deadline_ms = 60000,
                                       .threshold = 2,
                                       .check_success = 1,
                                       .min_success_pct = 99,
                                       .check_latency = 1,
                                       .max_p99_ms = 100};

static rollout_obs good(void)
{
    return (rollout_obs){.canary_ready = 1,
                         .success_pct = {ROLLOUT_METRIC_OK, 100},
                         .p99_ms = {ROLLOUT_METRIC_OK, 5}};
}

static void start_waits_for_ready_then_routes_first_step(void **state)
{
    (void)state;
    rollout_state s = {0};
    rollout_obs o = {0};
    rollout_result r = rollout_step(&canary3, &s, &o, 1000);
    assert_int_equal(r.state.phase, ROLLOUT_WAITING);
    assert_int_equal(r.state.weight, 0);
    assert_int_equal(r.action, ROLLOUT_ACT_NONE);
    assert_int_equal(r.state.start_ms, 1000);
    assert_true(r.requeue_ms > 0 && r.requeue_ms <= 1000);
    assert_string_equal(r.reason, "WaitingForCanary");
    o = good();
    r = rollout_step(&canary3, &r.state, &o, 3000);
    assert_int_equal(r.state.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(r.state.weight, 10);
    assert_int_equal(r.action, ROLLOUT_ACT_SET_WEIGHT);
    assert_false(r.checked);
    assert_int_equal(r.state.last_check_ms, 3000);
    assert_int_equal(r.state.start_ms, 1000);
    /* a Ready canary at the very start goes straight to the first weight */
    r = rollout_step(&canary3, &(rollout_state){0}, &o, 5);
    assert_int_equal(r.state.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(r.state.weight, 10);
}

static void passes_step_up_and_promote(void **state)
{
    (void)state;
    rollout_obs o = good();
    rollout_state s = {
        .phase = ROLLOUT_PROGRESSING, .weight = 10, .start_ms = 0, .last_check_ms = 0};
    rollout_result r = rollout_step(&canary3, &s, &o, 500); /* before the interval: nothing */
    assert_false(r.checked);
    assert_int_equal(r.action, ROLLOUT_ACT_NONE);
    assert_int_equal(r.requeue_ms, 500);
    assert_false(rollout_check_due(&canary3, &s, 500));
    assert_true(rollout_check_due(&canary3, &s, 1000));
    r = rollout_step(&canary3, &s, &o, 1000);
    assert_true(r.checked);
    assert_int_equal(r.action, ROLLOUT_ACT_SET_WEIGHT);
    assert_int_equal(r.state.weight, 30);
    assert_int_equal(r.state.step, 1);
    assert_int_equal(r.state.passed_checks, 1);
    assert_string_equal(r.reason, "StepPassed");
    assert_non_null(strstr(r.message, "weight 10% -> 30%"));
    r = rollout_step(&canary3, &r.state, &o, 2000);
    assert_int_equal(r.state.weight, 60);
    r = rollout_step(&canary3, &r.state, &o, 3000);
    assert_int_equal(r.state.phase, ROLLOUT_SUCCEEDED);
    assert_int_equal(r.action, ROLLOUT_ACT_PROMOTE);
    assert_int_equal(r.state.weight, 100);
    assert_int_equal(r.requeue_ms, 0);
    assert_int_equal(r.state.passed_checks, 3);
    /* terminal: stays */
    rollout_result t = rollout_step(&canary3, &r.state, &o, 100000);
    assert_int_equal(t.state.phase, ROLLOUT_SUCCEEDED);
    assert_int_equal(t.action, ROLLOUT_ACT_NONE);
    assert_false(t.checked);
}

static void failures_reach_threshold_and_roll_back(void **state)
{
    (void)state;
    rollout_obs bad = good();
    bad.success_pct.value = 80;
    rollout_state s = {.phase = ROLLOUT_PROGRESSING, .step = 1, .weight = 30};
    rollout_result r = rollout_step(&canary3, &s, &bad, 1000);
    assert_int_equal(r.state.failed_checks, 1);
    assert_int_equal(r.state.weight, 30);
    assert_int_equal(r.action, ROLLOUT_ACT_NONE);
    assert_string_equal(r.reason, "CheckFailed");
    assert_non_null(strstr(r.message, "success rate 80.00% < 99.00%"));
    r = rollout_step(&canary3, &r.state, &bad, 2000);
    assert_int_equal(r.state.phase, ROLLOUT_FAILED);
    assert_int_equal(r.action, ROLLOUT_ACT_ROLLBACK);
    assert_int_equal(r.state.weight, 0);
    assert_int_equal(r.state.failed_checks, 2);
    assert_string_equal(r.reason, "RolledBack");
    /* slow canary: latency over the bound fails even with a perfect success rate */
    rollout_obs slow = good();
    slow.p99_ms.value = 250;
    r = rollout_step(&canary3, &s, &slow, 1000);
    assert_int_equal(r.state.failed_checks, 1);
    assert_non_null(strstr(r.message, "latency p99 250.0 ms > 100.0 ms"));
    /* an out-of-bounds metric wins over a missing one */
    slow.success_pct.status = ROLLOUT_METRIC_ERROR;
    r = rollout_step(&canary3, &s, &slow, 1000);
    assert_int_equal(r.state.failed_checks, 1);
    assert_int_equal(r.state.inconclusive_checks, 0);
}

static void missing_metrics_pause_without_failing(void **state)
{
    (void)state;
    rollout_obs o = good();
    o.success_pct.status = ROLLOUT_METRIC_ERROR;
    o.detail = "GET http://127.0.0.1:1/metrics: Couldn't connect to server";
    rollout_state s = {.phase = ROLLOUT_PROGRESSING, .weight = 10};
    rollout_result r = rollout_step(&canary3, &s, &o, 1000);
    assert_int_equal(r.state.phase, ROLLOUT_PAUSED);
    assert_int_equal(r.state.inconclusive_checks, 1);
    assert_int_equal(r.state.failed_checks, 0);
    assert_int_equal(r.state.weight, 10);
    assert_int_equal(r.action, ROLLOUT_ACT_NONE);
    assert_string_equal(r.reason, "MetricsUnavailable");
    assert_non_null(strstr(r.message, "Couldn't connect"));
    for (int i = 2; i <= 10; i++)
        r = rollout_step(&canary3, &r.state, &o, 1000 * i); /* beyond threshold */
    assert_int_equal(r.state.phase, ROLLOUT_PAUSED);
    assert_int_equal(r.state.inconclusive_checks, 10);
    o.p99_ms.status = ROLLOUT_METRIC_NODATA;
    o.success_pct.status = ROLLOUT_METRIC_NODATA;
    r = rollout_step(&canary3, &r.state, &o, 11000);
    assert_non_null(strstr(r.message, "has no data"));
    /* metrics back: resumes */
    o = good();
    r = rollout_step(&canary3, &r.state, &o, 12000);
    assert_int_equal(r.state.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(r.state.weight, 30);
    /* a canary that is no longer Ready is inconclusive too */
    o.canary_ready = 0;
    r = rollout_step(&canary3, &r.state, &o, 13000);
    assert_int_equal(r.state.phase, ROLLOUT_PAUSED);
    assert_non_null(strstr(r.message, "canary not Ready"));
}

static void deadline_ends_every_rollout(void **state)
{
    (void)state;
    rollout_obs none = {0}, o = good();
    o.success_pct.status = ROLLOUT_METRIC_NODATA;
    /* paused forever */
    rollout_state s = {.phase = ROLLOUT_PAUSED,
                       .weight = 30,
                       .start_ms = 0,
                       .last_check_ms = 59000,
                       .inconclusive_checks = 7};
    rollout_result r = rollout_step(&canary3, &s, &o, 59500);
    assert_int_equal(r.requeue_ms, 500); /* wakes at the next check, before the deadline */
    r = rollout_step(&canary3, &s, &o, 60000);
    assert_int_equal(r.state.phase, ROLLOUT_FAILED);
    assert_int_equal(r.action, ROLLOUT_ACT_ROLLBACK);
    assert_int_equal(r.state.weight, 0);
    assert_string_equal(r.reason, "ProgressDeadlineExceeded");
    assert_non_null(strstr(r.message, "7 inconclusive"));
    /* never Ready */
    s = (rollout_state){.phase = ROLLOUT_WAITING, .start_ms = 1000};
    r = rollout_step(&canary3, &s, &none, 60999);
    assert_int_equal(r.state.phase, ROLLOUT_WAITING);
    r = rollout_step(&canary3, &s, &none, 61000);
    assert_int_equal(r.state.phase, ROLLOUT_FAILED);
    /* requeue never overshoots the deadline */
    rollout_policy p = canary3;
    p.interval_ms = 50000;
    p.deadline_ms = 10000;
    s = (rollout_state){.phase = ROLLOUT_PROGRESSING, .weight = 10, .last_check_ms = 0};
    r = rollout_step(&p, &s, &o, 4000);
    assert_int_equal(r.requeue_ms, 6000);
}

static void blue_green_no_traffic_then_switch(void **state)
{
    (void)state;
    rollout_policy bg = {.nsteps = 2,
                         .blue_green = 1,
                         .interval_ms = 1000,
                         .deadline_ms = 60000,
                         .threshold = 1,
                         .check_success = 1,
                         .min_success_pct = 95};
    rollout_obs o = good();
    rollout_result r = rollout_step(&bg, &(rollout_state){0}, &o, 0);
    assert_int_equal(r.state.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(r.state.weight, 0);
    r = rollout_step(&bg, &r.state, &o, 1000);
    assert_int_equal(r.state.weight, 0);
    assert_int_equal(r.state.passed_checks, 1);
    r = rollout_step(&bg, &r.state, &o, 2000);
    assert_int_equal(r.state.phase, ROLLOUT_SUCCEEDED);
    assert_int_equal(r.state.weight, 100);
    assert_int_equal(r.action, ROLLOUT_ACT_PROMOTE);
    /* threshold 1: one failed pre-promotion check fails it, having sent no traffic */
    o.success_pct.value = 10;
    r = rollout_step(&bg, &(rollout_state){.phase = ROLLOUT_PROGRESSING}, &o, 1000);
    assert_int_equal(r.state.phase, ROLLOUT_FAILED);
    assert_int_equal(r.state.weight, 0);
}

static void no_metrics_means_time_based_steps(void **state)
{
    (void)state;
    rollout_policy p = {
        .steps = {50}, .nsteps = 1, .interval_ms = 10, .deadline_ms = 1000, .threshold = 1};
    rollout_obs o = {.canary_ready = 1}; /* metrics unset: nothing to read */
    rollout_result r =
        rollout_step(&p, &(rollout_state){.phase = ROLLOUT_PROGRESSING, .weight = 50}, &o, 10);
    assert_int_equal(r.state.phase, ROLLOUT_SUCCEEDED);
    assert_non_null(strstr(r.message, "no metrics configured"));
}

/* Random observations at the times the machine asks for: it always ends (Succeeded or Failed) no
 * later than start + deadline, the weight only takes step values, and it rises until the end. */
static void random_sequences_terminate_by_deadline(void **state)
{
    (void)state;
    unsigned seed = 12345;
    for (int run = 0; run < 2000; run++) {
        rollout_policy p = canary3;
        p.threshold = 1 + (int)(rand_r(&seed) % 4);
        p.interval_ms = 100 + rand_r(&seed) % 900;
        p.deadline_ms = 1000 + rand_r(&seed) % 20000;
        rollout_state s = {0};
        int64_t now = 1000000, start = now;
        int last_weight = 0, calls = 0;
        for (;;) {
            rollout_obs o = {.canary_ready = (int)(rand_r(&seed) % 5 != 0)};
            int kind = (int)(rand_r(&seed) % 4);
            o.success_pct = (rollout_metric){kind == 0   ? ROLLOUT_METRIC_ERROR
                                             : kind == 1 ? ROLLOUT_METRIC_NODATA
                                                         : ROLLOUT_METRIC_OK,
                                             kind == 3 ? 50 : 100};
            o.p99_ms = (rollout_metric){ROLLOUT_METRIC_OK, (double)(rand_r(&seed) % 150)};
            rollout_result r = rollout_step(&p, &s, &o, now);
            assert_true(r.state.weight == 0 || r.state.weight == 100 || r.state.weight == 10 ||
                        r.state.weight == 30 || r.state.weight == 60);
            if (rollout_phase_terminal(r.state.phase)) {
                assert_true(now <= start + p.deadline_ms);
                assert_true(r.requeue_ms == 0);
                assert_int_equal(r.state.weight, r.state.phase == ROLLOUT_SUCCEEDED ? 100 : 0);
                break;
            }
            assert_true(r.state.weight >= last_weight);
            assert_true(r.requeue_ms > 0);
            last_weight = r.state.weight;
            s = r.state;
            now += r.requeue_ms;
            assert_true(++calls < 100000);
        }
    }
}

/* A pause (serving.kinfer.dev/paused) holds the rollout: on resume the paused time is taken out of
 * the deadline and the interval restarts, so the pause neither fails checks nor ends the rollout.
 */
static void resume_excludes_the_pause(void **state)
{
    (void)state;
    rollout_obs bad = good();
    bad.success_pct.value = 50;
    /* Progressing at 30%, one failed check, last check at 5 s; paused from 6 s to 506 s (the
     * deadline is 60 s). */
    rollout_state s = {.phase = ROLLOUT_PROGRESSING,
                       .step = 1,
                       .weight = 30,
                       .failed_checks = 1,
                       .start_ms = 1000,
                       .last_check_ms = 5000};
    rollout_state r = rollout_resume(&s, 6000, 506000);
    assert_int_equal(r.start_ms, 1000 + 500000);
    assert_int_equal(r.last_check_ms, 506000);
    assert_int_equal(r.phase, ROLLOUT_PROGRESSING);
    assert_int_equal(r.weight, 30);
    assert_int_equal(r.step, 1);
    assert_int_equal(r.failed_checks, 1);
    /* Without the resume the deadline would have passed long ago: the rollout would roll back. */
    assert_int_equal(rollout_step(&canary3, &s, &bad, 506000).state.phase, ROLLOUT_FAILED);
    /* Resumed: no check until a whole interval of unpaused traffic, and the weight holds. */
    rollout_result x = rollout_step(&canary3, &r, &bad, 506000 + 999);
    assert_false(x.checked);
    assert_int_equal(x.action, ROLLOUT_ACT_NONE);
    assert_int_equal(x.state.weight, 30);
    assert_int_equal(x.requeue_ms, 1);
    /* The deadline counts only the unpaused time: 5 s before the pause + 54 s after it is within
     * 60 s, 60 s in all is not. */
    rollout_obs nodata = good();
    nodata.success_pct.status = ROLLOUT_METRIC_NODATA;
    x = rollout_step(&canary3, &r, &nodata, 506000 + 54000);
    assert_int_equal(x.state.phase, ROLLOUT_PAUSED);
    assert_int_equal(x.state.failed_checks, 1);
    x = rollout_step(&canary3, &r, &nodata, 1000 + 500000 + 60000);
    assert_int_equal(x.state.phase, ROLLOUT_FAILED);
    assert_string_equal(x.reason, "ProgressDeadlineExceeded");
    /* A metrics-paused (inconclusive) rollout restarts its interval too. */
    s.phase = ROLLOUT_PAUSED;
    r = rollout_resume(&s, 6000, 7000);
    assert_int_equal(r.last_check_ms, 7000);
    assert_int_equal(r.start_ms, 2000);
    /* Waiting for the canary: the deadline moves, there is no check clock. */
    s = (rollout_state){.phase = ROLLOUT_WAITING, .start_ms = 1000};
    r = rollout_resume(&s, 3000, 13000);
    assert_int_equal(r.start_ms, 11000);
    assert_int_equal(r.last_check_ms, 0);
    /* A pause that began before the rollout started counts from the start only. */
    s = (rollout_state){
        .phase = ROLLOUT_PROGRESSING, .weight = 10, .start_ms = 10000, .last_check_ms = 10000};
    r = rollout_resume(&s, 2000, 12000);
    assert_int_equal(r.start_ms, 12000);
    /* Unchanged: idle and finished rollouts, no pause, a pause that has not ended (clock skew). */
    rollout_state same[] = {
        {.phase = ROLLOUT_IDLE},
        {.phase = ROLLOUT_SUCCEEDED, .weight = 100, .start_ms = 1000, .last_check_ms = 2000},
        {.phase = ROLLOUT_FAILED, .start_ms = 1000, .last_check_ms = 2000}};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        r = rollout_resume(&same[i], 3000, 90000);
        assert_memory_equal(&r, &same[i], sizeof(r));
    }
    s = (rollout_state){
        .phase = ROLLOUT_PROGRESSING, .weight = 10, .start_ms = 1000, .last_check_ms = 2000};
    r = rollout_resume(&s, 0, 90000);
    assert_memory_equal(&r, &s, sizeof(r));
    r = rollout_resume(&s, 95000, 90000);
    assert_memory_equal(&r, &s, sizeof(r));
}

static void phase_names_round_trip(void **state)
{
    (void)state;
    for (int ph = ROLLOUT_IDLE; ph <= ROLLOUT_FAILED; ph++)
        assert_int_equal(rollout_phase_parse(rollout_phase_name((rollout_phase)ph)), ph);
    assert_int_equal(rollout_phase_parse("Bogus"), -1);
    assert_int_equal(rollout_phase_parse(NULL), -1);
    assert_true(rollout_phase_terminal(ROLLOUT_FAILED) && !rollout_phase_terminal(ROLLOUT_PAUSED));
}

int test_rollout_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(policy_parse),
        cmocka_unit_test(start_waits_for_ready_then_routes_first_step),
        cmocka_unit_test(passes_step_up_and_promote),
        cmocka_unit_test(failures_reach_threshold_and_roll_back),
        cmocka_unit_test(missing_metrics_pause_without_failing),
        cmocka_unit_test(deadline_ends_every_rollout),
        cmocka_unit_test(blue_green_no_traffic_then_switch),
        cmocka_unit_test(no_metrics_means_time_based_steps),
        cmocka_unit_test(random_sequences_terminate_by_deadline),
        cmocka_unit_test(resume_excludes_the_pause),
        cmocka_unit_test(phase_names_round_trip),
    };
    return cmocka_run_group_tests_name("rollout", tests, NULL, NULL);
}
