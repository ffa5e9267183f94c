/* Tests of status.c: each Ready reason, kstatus conditions, lastTransitionTime rules, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../src/reconcile/status.h"
#include "golden.h"

#define ISVC                                                                                       \
    "{\"metadata\":{\"name\":\"iris\",\"namespace\":\"default\",\"uid\":\"u1\",\"generation\":%d}" \
    "}"
#define T1 "2026-01-01T00:00:00Z"
#define T2 "2026-01-01T00:01:00Z"
#define T3 "2026-01-01T00:02:00Z"

static json_object *parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_object *parse(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_object *o = json_tokener_parse(buf);
    if (!o) fail_msg("fixture does not parse: %s", buf);
    return o;
}

/* A Deployment applied from isvc generation `applied`; conds is a JSON array. */
static json_object *deployment(int applied, int dgen, int dobs, int want, int total, int updated,
                               int ready, int avail, const char *conds)
{
    return parse("{\"metadata\":{\"name\":\"iris-predictor\",\"generation\":%d,"
                 "\"annotations\":{\"serving.kinfer.dev/generation\":\"%d\"}},"
                 "\"spec\":{\"replicas\":%d},"
                 "\"status\":{\"observedGeneration\":%d,\"replicas\":%d,\"updatedReplicas\":%d,"
                 "\"readyReplicas\":%d,\"availableReplicas\":%d,\"conditions\":%s}}",
                 dgen, applied, want, dobs, total, updated, ready, avail, conds ? conds : "[]");
}

/* A pod with one container in state waiting/`reason`, or scheduling failure when reason is
 * "Unschedulable". */
static json_object *pod(const char *name, const char *reason, const char *extra_meta)
{
    if (!strcmp(reason, "Unschedulable"))
        return parse(
            "{\"metadata\":{\"name\":\"%s\"%s},\"status\":{\"phase\":\"Pending\",\"conditions\":["
            "{\"type\":\"PodScheduled\",\"status\":\"False\",\"reason\":\"Unschedulable\","
            "\"message\":\"0/1 nodes are available: 1 Insufficient cpu.\"}]}}",
            name, extra_meta);
    return parse(
        "{\"metadata\":{\"name\":\"%s\"%s},\"status\":{\"phase\":\"Pending\",\"containerStatuses\":"
        "["
        "{\"name\":\"kinfer-server\",\"ready\":false,\"state\":{\"waiting\":{\"reason\":\"%s\","
        "\"message\":\"details of %s\"}}}]}}",
        name, extra_meta, reason, reason);
}

static json_object *cond(json_object *status, const char *type)
{
    json_object *conds, *t;
    if (!json_object_object_get_ex(status, "conditions", &conds)) return NULL;
    for (size_t i = 0; i < json_object_array_length(conds); i++) {
        json_object *c = json_object_array_get_idx(conds, i);
        if (json_object_object_get_ex(c, "type", &t) && !strcmp(json_object_get_string(t), type))
            return c;
    }
    return NULL;
}

static const char *field(json_object *c, const char *key)
{
    json_object *v;
    if (!c || !json_object_object_get_ex(c, key, &v)) fail_msg("no field %s", key);
    return json_object_get_string(v);
}

/* Runs status_compute and checks Ready/PredictorReady status+reason and which kstatus condition is
 * present. */
static json_object *expect(json_object *isvc, json_object *dep, json_object *pods,
                           json_object *prev, const char *now, const char *ready,
                           const char *reason, const char *kstatus)
{
    json_object *s = NULL;
    ctl_status *st = status_compute(isvc, dep, pods, prev, now, &s);
    if (st) fail_msg("status_compute: %s", ctl_status_msg(st));
    assert_string_equal(field(cond(s, "Ready"), "status"), ready);
    assert_string_equal(field(cond(s, "Ready"), "reason"), reason);
    assert_string_equal(field(cond(s, "PredictorReady"), "status"), ready);
    assert_string_equal(field(cond(s, "PredictorReady"), "reason"), reason);
    assert_true((cond(s, "Reconciling") != NULL) == !strcmp(kstatus, "Reconciling"));
    assert_true((cond(s, "Stalled") != NULL) == !strcmp(kstatus, "Stalled"));
    if (*kstatus) assert_string_equal(field(cond(s, kstatus), "reason"), reason);
    return s;
}

static void ready_when_rolled_out(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 2), *dep = deployment(2, 5, 5, 2, 2, 2, 2, 2, NULL),
                *pods = parse("[]");
    json_object *s = expect(isvc, dep, pods, NULL, T1, "True", "Available", "");
    assert_string_equal(field(cond(s, "Ready"), "message"), "2 of 2 replicas ready");
    golden_check(s, "status/ready.out.json");
    json_object_put(s);
    json_object_put(isvc), json_object_put(dep), json_object_put(pods);
}

static void progress_reasons(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 2), *s, *d;
    s = expect(isvc, NULL, NULL, NULL, T1, "False", "DeploymentNotFound", "Reconciling");
    json_object_put(s);
    d = deployment(1, 5, 5, 2, 2, 2, 2, 2, NULL); /* applied from an older isvc generation */
    s = expect(isvc, d, NULL, NULL, T1, "False", "DeploymentOutdated", "Reconciling");
    assert_string_equal(
        field(cond(s, "Ready"), "message"),
        "Deployment iris-predictor was applied from generation 1, the InferenceService is at 2");
    json_object_put(s), json_object_put(d);
    d = deployment(2, 6, 5, 2, 2, 2, 2, 2, NULL);
    s = expect(isvc, d, NULL, NULL, T1, "False", "DeploymentPending", "Reconciling");
    json_object_put(s), json_object_put(d);
    d = deployment(2, 6, 6, 3, 3, 1, 3, 3, NULL);
    s = expect(isvc, d, NULL, NULL, T1, "False", "RolloutInProgress", "Reconciling");
    assert_string_equal(field(cond(s, "Ready"), "message"),
                        "Deployment iris-predictor: 1 of 3 replicas updated");
    json_object_put(s), json_object_put(d);
    d = deployment(2, 6, 6, 3, 4, 3, 3, 3, NULL);
    s = expect(isvc, d, NULL, NULL, T1, "False", "RolloutInProgress", "Reconciling");
    assert_string_equal(field(cond(s, "Ready"), "message"),
                        "Deployment iris-predictor: 1 old replicas pending termination");
    json_object_put(s), json_object_put(d);
    d = deployment(2, 6, 6, 3, 3, 3, 1, 1, NULL);
    s = expect(isvc, d, NULL, NULL, T1, "False", "ReplicasNotReady", "Reconciling");
    assert_string_equal(field(cond(s, "Ready"), "message"),
                        "Deployment iris-predictor: 1 of 3 replicas ready, 1 available");
    json_object_put(s), json_object_put(d);
    json_object_put(isvc);
}

/* Each pod failure reason: Ready False with that reason, Stalled or Reconciling as documented. */
static void pod_failure_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *reason, *kstatus;
    } cases[] = {
        {"ImagePullBackOff", "Stalled"},  {"ErrImagePull", "Reconciling"},
        {"CrashLoopBackOff", "Stalled"},  {"CreateContainerConfigError", "Stalled"},
        {"Unschedulable", "Reconciling"}, {"InvalidImageName", "Stalled"},
    };
    json_object *isvc = parse(ISVC, 1), *d = deployment(1, 1, 1, 1, 1, 1, 0, 0, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *pods = json_object_new_array();
        json_object_array_add(pods, pod("iris-predictor-abc", cases[i].reason, ""));
        json_object *s =
            expect(isvc, d, pods, NULL, T1, "False", cases[i].reason, cases[i].kstatus);
        const char *msg = field(cond(s, "Ready"), "message");
        assert_non_null(strstr(msg, "pod iris-predictor-abc"));
        if (strcmp(cases[i].reason, "Unschedulable"))
            assert_non_null(strstr(msg, "container kinfer-server"));
        else
            assert_non_null(strstr(msg, "Insufficient cpu"));
        json_object_put(s), json_object_put(pods);
    }
    json_object_put(isvc), json_object_put(d);
}

static void deployment_failure_reasons(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 1), *s, *d, *pods;
    d = deployment(
        1, 1, 1, 1, 1, 1, 0, 0,
        "[{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":\"ProgressDeadlineExceeded\","
        "\"message\":\"ReplicaSet \\\"iris-predictor-5d\\\" has timed out progressing.\"}]");
    s = expect(isvc, d, NULL, NULL, T1, "False", "ProgressDeadlineExceeded", "Stalled");
    assert_string_equal(
        field(cond(s, "Ready"), "message"),
        "Deployment iris-predictor: ReplicaSet \"iris-predictor-5d\" has timed out progressing.");
    json_object_put(s);
    /* A pod's reason is more precise than the deadline: it wins, and the deadline makes it Stalled.
     */
    pods = json_object_new_array();
    json_object_array_add(pods, pod("iris-predictor-abc", "ErrImagePull", ""));
    s = expect(isvc, d, pods, NULL, T1, "False", "ErrImagePull", "Stalled");
    json_object_put(s), json_object_put(d), json_object_put(pods);
    d = deployment(1, 1, 1, 2, 0, 0, 0, 0,
                   "[{\"type\":\"ReplicaFailure\",\"status\":\"True\",\"reason\":\"FailedCreate\","
                   "\"message\":\"pods \\\"x\\\" is forbidden: exceeded quota\"}]");
    s = expect(isvc, d, NULL, NULL, T1, "False", "ReplicaFailure", "Stalled");
    assert_string_equal(field(cond(s, "Ready"), "message"),
                        "Deployment iris-predictor: pods \"x\" is forbidden: exceeded quota");
    json_object_put(s), json_object_put(d), json_object_put(isvc);
}

/* A pod whose container `name` (in list `list`) waits in CrashLoopBackOff after its last run
 * ended with `reason` and exit code `code`, having printed `msg` (FallbackToLogsOnError). */
static json_object *crashed_pod(const char *list, const char *name, const char *reason, int code,
                                const char *msg)
{
    return parse(
        "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Pending\",\"%s\":[{\"name\":\"%s\","
        "\"restartCount\":4,\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\",\"message\":"
        "\"back-off 40s\"}},"
        "\"lastState\":{\"terminated\":{\"reason\":\"%s\",\"exitCode\":%d,\"message\":\"%s\"}}}]}}",
        list, name, reason, code, msg);
}

/* A container's own failure names the cause: an OOM kill with the memory limit from the spec, a
 * failed storage initializer with its error text; both beat the waiting reason. */
static void oom_and_fetch_failures_name_their_cause(void **state)
{
    (void)state;
    json_object *isvc =
        parse("{\"metadata\":{\"name\":\"iris\",\"namespace\":\"default\",\"uid\":\"u1\","
              "\"generation\":1},\"spec\":{\"predictor\":{\"model\":{\"resources\":{\"limits\":"
              "{\"memory\":\"64Mi\"}}}}}}");
    json_object *d = deployment(1, 1, 1, 1, 1, 1, 0, 0, NULL), *pods = json_object_new_array();
    json_object_array_add(pods,
                          crashed_pod("containerStatuses", "kinfer-server", "OOMKilled", 137, ""));
    json_object_array_add(pods, pod("other", "ImagePullBackOff", ""));
    json_object *s = expect(isvc, d, pods, NULL, T1, "False", "OOMKilled", "Stalled");
    const char *m = field(cond(s, "Ready"), "message");
    assert_non_null(strstr(
        m, "pod p container kinfer-server was killed for exceeding its memory limit of 64Mi"));
    assert_non_null(strstr(m, "exit code 137, 4 restarts"));
    json_object_put(s), json_object_put(pods);

    pods = json_object_new_array();
    json_object_array_add(pods, crashed_pod("initContainerStatuses", "storage-initializer", "Error",
                                            1, "fetch: s3://models/x: 403 InvalidAccessKeyId\\n"));
    s = expect(isvc, d, pods, NULL, T1, "False", "ModelFetchFailed", "Stalled");
    assert_string_equal(field(cond(s, "Ready"), "message"),
                        "pod p: the storage initializer failed (exit code 1, 4 restarts): fetch: "
                        "s3://models/x: 403 "
                        "InvalidAccessKeyId");
    json_object_put(s), json_object_put(pods);

    /* The main container crashing with an error is still CrashLoopBackOff, with the waiting
     * message. */
    pods = json_object_new_array();
    json_object_array_add(
        pods, crashed_pod("containerStatuses", "kinfer-server", "Error", 2, "bad model"));
    s = expect(isvc, d, pods, NULL, T1, "False", "CrashLoopBackOff", "Stalled");
    json_object_put(s), json_object_put(pods);

    /* Running again after an OOM kill, or an init container that succeeded on a retry: no failure.
     */
    pods = json_object_new_array();
    json_object_array_add(
        pods,
        parse("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Running\","
              "\"initContainerStatuses\":[{\"name\":\"storage-initializer\",\"state\":{"
              "\"terminated\":"
              "{\"exitCode\":0}},\"lastState\":{\"terminated\":{\"exitCode\":1}}}],"
              "\"containerStatuses\":[{\"name\":\"kinfer-server\",\"state\":{},"
              "\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\",\"exitCode\":137}}}]}}"));
    s = expect(isvc, d, pods, NULL, T1, "False", "ReplicasNotReady", "Reconciling");
    json_object_put(s), json_object_put(pods), json_object_put(d), json_object_put(isvc);
}

/* Among several pods, the most telling reason wins; terminating and finished pods are ignored. */
static void reason_precedence_and_ignored_pods(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 1), *d = deployment(1, 1, 1, 3, 3, 3, 0, 0, NULL),
                *pods = json_object_new_array();
    json_object_array_add(pods, pod("a", "CrashLoopBackOff", ""));
    json_object_array_add(
        pods, pod("b", "CreateContainerConfigError", ",\"deletionTimestamp\":\"" T1 "\""));
    json_object_array_add(pods, pod("c", "Unschedulable", ""));
    json_object_array_add(pods,
                          parse("{\"metadata\":{\"name\":\"d\"},\"status\":{\"phase\":\"Failed\","
                                "\"containerStatuses\":[{\"name\":\"x\",\"state\":{\"waiting\":"
                                "{\"reason\":\"ImagePullBackOff\"}}}]}}"));
    json_object *s = expect(isvc, d, pods, NULL, T1, "False", "CrashLoopBackOff", "Stalled");
    json_object_put(s);
    json_object_array_add(pods, pod("e", "ImagePullBackOff", ""));
    s = expect(isvc, d, pods, NULL, T1, "False", "ImagePullBackOff", "Stalled");
    assert_non_null(strstr(field(cond(s, "Ready"), "message"),
                           "pod e container kinfer-server: ImagePullBackOff: details"));
    json_object_put(s), json_object_put(pods), json_object_put(d), json_object_put(isvc);
}

/* lastTransitionTime moves only when a condition's status changes. */
static void last_transition_time(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 1), *s1, *s2, *s3, *s4;
    json_object *d1 = deployment(1, 1, 1, 2, 2, 2, 0, 0, NULL),
                *d2 = deployment(1, 1, 1, 2, 2, 2, 2, 2, NULL);
    s1 = expect(isvc, NULL, NULL, NULL, T1, "False", "DeploymentNotFound", "Reconciling");
    s2 = expect(isvc, d1, NULL, s1, T2, "False", "ReplicasNotReady", "Reconciling");
    assert_string_equal(field(cond(s2, "Ready"), "lastTransitionTime"),
                        T1); /* reason changed, status not */
    assert_string_equal(field(cond(s2, "Reconciling"), "lastTransitionTime"), T1);
    s3 = expect(isvc, d2, NULL, s2, T3, "True", "Available", "");
    assert_string_equal(field(cond(s3, "Ready"), "lastTransitionTime"), T3);
    assert_string_equal(field(cond(s3, "PredictorReady"), "lastTransitionTime"), T3);
    s4 = expect(isvc, d2, NULL, s3, "2026-01-01T00:09:00Z", "True", "Available", "");
    assert_string_equal(field(cond(s4, "Ready"), "lastTransitionTime"), T3);
    assert_true(json_object_equal(s3, s4)); /* steady state: no status write needed */
    json_object_put(s1), json_object_put(s2), json_object_put(s3), json_object_put(s4);
    json_object_put(d1), json_object_put(d2), json_object_put(isvc);
}

static void generation_and_urls(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 7), *s = expect(isvc, NULL, NULL, NULL, T1, "False",
                                                    "DeploymentNotFound", "Reconciling");
    json_object *v;
    assert_true(json_object_object_get_ex(s, "observedGeneration", &v));
    assert_int_equal(json_object_get_int64(v), 7);
    assert_int_equal(
        json_object_get_int64(json_object_object_get(cond(s, "Ready"), "observedGeneration")), 7);
    assert_string_equal(field(s, "url"), "http://iris.default.svc.cluster.local");
    assert_string_equal(field(json_object_object_get(s, "address"), "url"),
                        "http://iris.default.svc.cluster.local");
    json_object_put(s), json_object_put(isvc);
}

static void invalid_spec_is_stalled(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 3), *s = NULL;
    assert_null(status_compute_invalid(isvc, "spec.predictor.model: required", NULL, T1, &s));
    assert_string_equal(field(cond(s, "Ready"), "status"), "False");
    assert_string_equal(field(cond(s, "Ready"), "reason"), "InvalidSpec");
    assert_string_equal(field(cond(s, "Stalled"), "message"), "spec.predictor.model: required");
    assert_null(cond(s, "Reconciling"));
    json_object_put(s), json_object_put(isvc);
}

static void bad_arguments(void **state)
{
    (void)state;
    json_object *isvc = parse(ISVC, 1), *noname = parse("{\"metadata\":{\"namespace\":\"x\"}}"),
                *s = (json_object *)1;
    json_object *notarray = parse("{}");
    ctl_status *st = status_compute(isvc, NULL, NULL, NULL, NULL, &s);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    assert_string_equal(ctl_status_msg(st), "status: no current time given");
    assert_null(s);
    ctl_status_free(st);
    st = status_compute(noname, NULL, NULL, NULL, T1, &s);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    ctl_status_free(st);
    st = status_compute(isvc, NULL, notarray, NULL, T1, &s);
    assert_string_equal(ctl_status_msg(st), "status: pods must be a JSON array");
    ctl_status_free(st);
    st = status_compute(isvc, notarray, NULL, notarray, T1,
                        &s); /* empty deployment object: no crash */
    assert_null(st);
    json_object_put(s);
    json_object_put(isvc), json_object_put(noname), json_object_put(notarray);
}

/* status_rollout_conditions: a rollout of the latest revision sets Reconciling (moving) or Stalled
 * (failed) on top of status_compute's Ready, never both, and defers to the predictor's own. */
static json_object *with_rollout(json_object *dep, const char *rev, const char *phase, int weight,
                                 json_object *prev, const char *now)
{
    json_object *isvc = parse(ISVC, 1), *s = NULL;
    assert_null(status_compute(isvc, dep, NULL, prev, now, &s));
    json_object *pred = json_object_new_object();
    json_object_object_add(
        json_object_object_get(json_object_object_get(s, "components"), "predictor"),
        "latestCreatedRevision", json_object_new_string("iris-predictor-00000002"));
    json_object_object_add(pred, "revision", json_object_new_string(rev));
    json_object_object_add(pred, "phase", json_object_new_string(phase));
    json_object_object_add(pred, "weight", json_object_new_int(weight));
    json_object_object_add(pred, "message", json_object_new_string("details"));
    json_object_object_add(
        json_object_object_get(json_object_object_get(s, "components"), "predictor"), "rollout",
        pred);
    status_rollout_conditions(s, prev ? json_object_object_get(prev, "conditions") : NULL, now);
    json_object_put(isvc);
    return s;
}

static void rollout_conditions(void **state)
{
    (void)state;
    const char *rev = "iris-predictor-00000002";
    json_object *ready = deployment(1, 1, 1, 2, 2, 2, 2, 2, NULL),
                *rolling = deployment(1, 1, 1, 2, 2, 1, 1, 1, NULL);
    static const struct {
        const char *phase, *type, *reason;
    } cases[] = {{"WaitingForCanary", "Reconciling", "RolloutProgressing"},
                 {"Progressing", "Reconciling", "RolloutProgressing"},
                 {"Paused", "Reconciling", "RolloutPaused"},
                 {"Failed", "Stalled", "RolloutFailed"},
                 {"Succeeded", NULL, NULL},
                 {"Idle", NULL, NULL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *s = with_rollout(ready, rev, cases[i].phase, 30, NULL, T1);
        assert_string_equal(field(cond(s, "Ready"), "status"),
                            "True"); /* the stable serves: Ready unchanged */
        assert_string_equal(field(cond(s, "Ready"), "reason"), "Available");
        if (!cases[i].type) {
            assert_null(cond(s, "Reconciling"));
            assert_null(cond(s, "Stalled"));
        } else {
            json_object *c = cond(s, cases[i].type);
            assert_non_null(c);
            assert_null(cond(s, !strcmp(cases[i].type, "Stalled") ? "Reconciling" : "Stalled"));
            assert_string_equal(field(c, "status"), "True");
            assert_string_equal(field(c, "reason"), cases[i].reason);
            assert_non_null(strstr(field(c, "message"), "weight 30%"));
            assert_non_null(strstr(field(c, "message"), rev));
        }
        json_object_put(s);
    }
    /* a failed rollout of an older revision is history: nothing */
    json_object *s = with_rollout(ready, "iris-predictor-00000001", "Failed", 0, NULL, T1);
    assert_null(cond(s, "Stalled"));
    json_object_put(s);
    /* the predictor itself still rolling: its Reconciling wins, no Stalled beside it */
    s = with_rollout(rolling, rev, "Failed", 0, NULL, T1);
    assert_string_equal(field(cond(s, "Reconciling"), "reason"), "RolloutInProgress");
    assert_null(cond(s, "Stalled"));
    json_object_put(s);
    /* lastTransitionTime is kept while the condition holds, even as the weight moves */
    json_object *s1 = with_rollout(ready, rev, "Progressing", 10, NULL, T1);
    json_object *s2 = with_rollout(ready, rev, "Paused", 50, s1, T2);
    assert_string_equal(field(cond(s2, "Reconciling"), "lastTransitionTime"), T1);
    assert_non_null(strstr(field(cond(s2, "Reconciling"), "message"), "weight 50%"));
    json_object *s3 = with_rollout(ready, rev, "Failed", 0, s2, T3);
    assert_string_equal(field(cond(s3, "Stalled"), "lastTransitionTime"), T3);
    assert_null(cond(s3, "Reconciling"));
    /* no status.conditions (nothing from status_compute): left alone */
    json_object *bare =
        parse("{\"components\":{\"predictor\":{\"rollout\":{\"phase\":\"Failed\"}}}}");
    status_rollout_conditions(bare, NULL, T1);
    assert_null(json_object_object_get(bare, "conditions"));
    json_object_put(bare), json_object_put(s1), json_object_put(s2), json_object_put(s3);
    json_object_put(ready), json_object_put(rolling);
}

/* ---- pause (serving.kinfer.dev/paused) ---- */

#define PAUSED_ISVC                                                                                \
    "{\"metadata\":{\"name\":\"iris\",\"namespace\":\"default\",\"uid\":\"u1\",\"generation\":%d," \
    "\"annotations\":{\"serving.kinfer.dev/paused\":\"%s\"}}}"

static json_object *paused(json_object *isvc, json_object *dep, json_object *pods,
                           json_object *prev, const char *now)
{
    json_object *s = NULL;
    ctl_status *st = status_compute_paused(isvc, dep, pods, prev, now, &s);
    if (st) fail_msg("status_compute_paused: %s", ctl_status_msg(st));
    return s;
}

static int64_t observed(json_object *s)
{
    json_object *v;
    return json_object_object_get_ex(s, "observedGeneration", &v) ? json_object_get_int64(v) : -1;
}

static void pause_annotation_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        status_pause want;
    } cases[] = {{"true", STATUS_PAUSE_ON},     {"false", STATUS_PAUSE_IGNORED},
                 {"yes", STATUS_PAUSE_IGNORED}, {"True", STATUS_PAUSE_IGNORED},
                 {"", STATUS_PAUSE_IGNORED},    {"true ", STATUS_PAUSE_IGNORED}};
    const char *v = "x";
    json_object *plain = parse(ISVC, 1);
    assert_int_equal(status_pause_read(plain, &v), STATUS_PAUSE_OFF);
    assert_null(v);
    assert_int_equal(status_pause_read(NULL, NULL), STATUS_PAUSE_OFF);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *o = parse(PAUSED_ISVC, 1, cases[i].value);
        assert_int_equal(status_pause_read(o, &v), cases[i].want);
        assert_string_equal(v, cases[i].value);
        json_object *s = parse("{\"observedGeneration\":1,\"conditions\":[]}");
        status_pause_condition(s, o, NULL, T1);
        json_object *c = cond(s, "Paused");
        assert_non_null(c);
        assert_string_equal(field(c, "status"),
                            cases[i].want == STATUS_PAUSE_ON ? "True" : "False");
        assert_string_equal(field(c, "reason"), cases[i].want == STATUS_PAUSE_ON
                                                    ? "PausedByAnnotation"
                                                    : "IgnoredAnnotationValue");
        assert_non_null(strstr(field(c, "message"), "serving.kinfer.dev/paused"));
        if (cases[i].want != STATUS_PAUSE_ON) {
            char quoted[32];
            snprintf(quoted, sizeof(quoted), "=\"%s\" is ignored", cases[i].value);
            assert_non_null(strstr(field(c, "message"), quoted));
        }
        json_object_put(s), json_object_put(o);
    }
    /* no annotation: no condition, and a status without conditions gets none */
    json_object *s = parse("{}");
    status_pause_condition(s, plain, NULL, T1);
    assert_null(json_object_object_get(s, "conditions"));
    json_object_put(s), json_object_put(plain);
}

static void paused_spec_change_is_not_observed(void **state)
{
    (void)state;
    /* Reconciled at generation 2 with a rollout at 30% and a Ready canary; then paused and the spec
     * changed (generation 3). */
    json_object *isvc = parse(PAUSED_ISVC, 3, "true"),
                *dep = deployment(2, 5, 5, 2, 2, 2, 2, 2, NULL), *pods = parse("[]");
    json_object *prev = parse(
        "{\"observedGeneration\":2,\"conditions\":["
        "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Available\",\"message\":\"m\","
        "\"lastTransitionTime\":\"" T1 "\"},"
        "{\"type\":\"CanaryReady\",\"status\":\"True\",\"reason\":\"CanaryReady\",\"message\":"
        "\"c\","
        "\"lastTransitionTime\":\"" T1 "\"}],"
        "\"components\":{\"predictor\":{\"latestCreatedRevision\":\"iris-predictor-abcd1234\","
        "\"traffic\":[{\"revisionName\":\"iris-predictor-00000001\",\"percent\":70},"
        "{\"revisionName\":\"iris-predictor-abcd1234\",\"percent\":30}],"
        "\"rollout\":{\"revision\":\"iris-predictor-abcd1234\",\"phase\":\"Progressing\","
        "\"weight\":30}}}}");
    json_object *s = paused(isvc, dep, pods, prev, T2);
    assert_int_equal(observed(s), 2); /* not 3: kstatus says InProgress for the unapplied change */
    /* Ready describes what runs: the Deployment of generation 2 is available, not "outdated". */
    assert_string_equal(field(cond(s, "Ready"), "status"), "True");
    assert_string_equal(field(cond(s, "Ready"), "reason"), "Available");
    assert_string_equal(field(cond(s, "Ready"), "lastTransitionTime"), T1);
    json_object *p = cond(s, "Paused");
    assert_string_equal(field(p, "status"), "True");
    assert_string_equal(field(p, "reason"), "PausedByAnnotation");
    assert_string_equal(field(p, "lastTransitionTime"), T2);
    assert_non_null(strstr(field(p, "message"), "serving.kinfer.dev/paused"));
    /* The components (traffic, the rollout at 30%) and CanaryReady are held as they were. */
    assert_true(json_object_equal(json_object_object_get(s, "components"),
                                  json_object_object_get(prev, "components")));
    assert_string_equal(field(cond(s, "CanaryReady"), "status"), "True");
    /* The held rollout still counts as in progress. */
    assert_string_equal(field(cond(s, "Reconciling"), "reason"), "RolloutProgressing");
    assert_null(cond(s, "Stalled"));
    /* Stable while nothing changes: the next pass computes the same status (no write, no event),
     * and the pause keeps its start. */
    json_object *s2 = paused(isvc, dep, pods, s, T3);
    assert_true(json_object_equal(s, s2));
    assert_int_equal(status_paused_since_ms(s2), 1767225660000LL); /* T2 */
    json_object_put(s2);
    /* Resumed (no annotation): status_compute() acts on generation 3 and carries no Paused. */
    json_object *resumed = parse(ISVC, 3), *dep3 = deployment(3, 6, 6, 2, 2, 2, 2, 2, NULL),
                *r = NULL;
    ctl_status *st = status_compute(resumed, dep3, pods, s, T3, &r);
    assert_null(st);
    status_pause_condition(r, resumed, json_object_object_get(s, "conditions"), T3);
    assert_int_equal(observed(r), 3);
    assert_null(cond(r, "Paused"));
    assert_int_equal(status_paused_since_ms(r), 0);
    json_object_put(r), json_object_put(resumed), json_object_put(dep3);
    json_object_put(s), json_object_put(prev), json_object_put(isvc), json_object_put(dep),
        json_object_put(pods);
}

static void paused_status_from_children(void **state)
{
    (void)state;
    json_object *isvc = parse(PAUSED_ISVC, 4, "true"), *pods = parse("[]"), *s;
    /* No previous status: the generation the Deployment was applied from is what was acted on. */
    json_object *dep = deployment(3, 5, 5, 2, 2, 2, 2, 2, NULL);
    s = paused(isvc, dep, pods, NULL, T1);
    assert_int_equal(observed(s), 3);
    assert_string_equal(field(cond(s, "Ready"), "status"), "True");
    assert_int_equal(
        json_object_get_int64(json_object_object_get(cond(s, "Ready"), "observedGeneration")), 3);
    json_object_put(s), json_object_put(dep);
    /* Never more than the current generation. */
    json_object *prev = parse("{\"observedGeneration\":9}");
    dep = deployment(4, 5, 5, 2, 2, 2, 2, 2, NULL);
    s = paused(isvc, dep, pods, prev, T1);
    assert_int_equal(observed(s), 4);
    json_object_put(s), json_object_put(dep), json_object_put(prev);
    /* What runs is judged as it runs: a pod crash-looping while paused is Stalled. */
    json_object *crash = parse("[]");
    json_object_array_add(crash, pod("p1", "CrashLoopBackOff", ""));
    dep = deployment(3, 5, 5, 2, 2, 2, 1, 1, NULL);
    s = paused(isvc, dep, crash, NULL, T1);
    assert_string_equal(field(cond(s, "Ready"), "reason"), "CrashLoopBackOff");
    assert_string_equal(field(cond(s, "Stalled"), "status"), "True");
    assert_string_equal(field(cond(s, "Paused"), "status"), "True");
    json_object_put(s), json_object_put(dep), json_object_put(crash);
    /* Paused before anything was applied: no observedGeneration, Reconciling (kstatus InProgress),
     * and the url for the Service that will exist. */
    s = paused(isvc, NULL, pods, NULL, T1);
    assert_int_equal(observed(s), -1);
    assert_string_equal(field(cond(s, "Ready"), "status"), "False");
    assert_string_equal(field(cond(s, "Ready"), "reason"), "Paused");
    assert_string_equal(field(cond(s, "Reconciling"), "reason"), "Paused");
    assert_string_equal(
        field(json_object_object_get(json_object_object_get(s, "components"), "predictor"), "url"),
        "http://iris.default.svc.cluster.local");
    json_object_put(s);
    /* Bad input gets a precise error. */
    json_object *out = (json_object *)1, *bad_pods = parse("{}");
    ctl_status *st = status_compute_paused(isvc, NULL, bad_pods, NULL, T1, &out);
    assert_non_null(st);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    assert_null(out);
    assert_non_null(strstr(ctl_status_msg(st), "pods must be a JSON array"));
    ctl_status_free(st), json_object_put(bad_pods);
    st = status_compute_paused(isvc, NULL, NULL, NULL, NULL, &out);
    assert_non_null(strstr(ctl_status_msg(st), "no current time"));
    ctl_status_free(st);
    json_object_put(isvc), json_object_put(pods);
}

static void paused_since(void **state)
{
    (void)state;
    static const struct {
        const char *status;
        int64_t want;
    } cases[] = {
        {"{\"conditions\":[{\"type\":\"Paused\",\"status\":\"True\",\"lastTransitionTime\":\"" T1
         "\"}]}",
         1767225600000LL},
        {"{\"conditions\":[{\"type\":\"Paused\",\"status\":\"True\",\"lastTransitionTime\":\"2026-"
         "01-01T00:00:00.5Z\"}]}",
         1767225600000LL},
        {"{\"conditions\":[{\"type\":\"Paused\",\"status\":\"False\",\"lastTransitionTime\":\"" T1
         "\"}]}",
         0},
        {"{\"conditions\":[{\"type\":\"Paused\",\"status\":\"True\",\"lastTransitionTime\":"
         "\"yesterday\"}]}",
         0},
        {"{\"conditions\":[{\"type\":\"Paused\",\"status\":\"True\",\"lastTransitionTime\":\"2026-"
         "01-01T00:00:00\"}]}",
         0},
        {"{\"conditions\":[{\"type\":\"Paused\",\"status\":\"True\"}]}", 0},
        {"{\"conditions\":{}}", 0},
        {"{}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *o = parse("%s", cases[i].status);
        if (status_paused_since_ms(o) != cases[i].want)
            fail_msg("%s: %lld, want %lld", cases[i].status, (long long)status_paused_since_ms(o),
                     (long long)cases[i].want);
        json_object_put(o);
    }
    assert_int_equal(status_paused_since_ms(NULL), 0);
}

int test_status_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ready_when_rolled_out),
        cmocka_unit_test(progress_reasons),
        cmocka_unit_test(pod_failure_reasons),
        cmocka_unit_test(deployment_failure_reasons),
        cmocka_unit_test(reason_precedence_and_ignored_pods),
        cmocka_unit_test(oom_and_fetch_failures_name_their_cause),
        cmocka_unit_test(last_transition_time),
        cmocka_unit_test(generation_and_urls),
        cmocka_unit_test(invalid_spec_is_stalled),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(rollout_conditions),
        cmocka_unit_test(pause_annotation_values),
        cmocka_unit_test(paused_spec_change_is_not_observed),
        cmocka_unit_test(paused_status_from_children),
        cmocka_unit_test(paused_since),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
