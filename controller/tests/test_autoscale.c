/* Tests of autoscale.c: golden plans for every class and metric, and precise errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../src/reconcile/autoscale.h"
#include "golden.h"

static const autoscale_config cfg = {.prometheus_address = "http://prometheus.monitoring:9090"};
static const char *const cases[] = {"fixed",
                                    "hpa-cpu",
                                    "hpa-memory",
                                    "hpa-rps",
                                    "hpa-concurrency",
                                    "hpa-queuedepth-behavior",
                                    "keda-rps-zero",
                                    "keda-cpu",
                                    "keda-kserve-annotation",
                                    "external",
                                    "none"};

/* The plan as one JSON object, so a golden file shows all of it. */
static json_object *plan_json(const autoscale_plan *p)
{
    json_object *o = json_object_new_object(), *spec = NULL;
    json_object_object_add(o, "class", json_object_new_string(autoscale_class_name(p->cls)));
    json_object_object_add(o, "scaling", json_object_new_string(p->scaling));
    json_object_object_add(o, "replicas", json_object_new_int64(p->replicas));
    if (p->kind) {
        json_object_object_add(o, "apiVersion", json_object_new_string(p->api_version));
        json_object_object_add(o, "kind", json_object_new_string(p->kind));
        assert_int_equal(json_object_deep_copy(p->spec, &spec, NULL), 0);
        json_object_object_add(o, "spec", spec);
    }
    return o;
}

static void golden_plans(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[256], out[256];
        snprintf(in, sizeof(in), "autoscale/%s.in.json", cases[i]);
        snprintf(out, sizeof(out), "autoscale/%s.out.json", cases[i]);
        json_object *isvc = golden_load(in);
        autoscale_plan plan;
        ctl_status *st = autoscale_plan_build(isvc, &cfg, "iris-predictor", &plan);
        if (st) fail_msg("%s: %s", cases[i], ctl_status_msg(st));
        json_object_put(isvc);
        json_object *got = plan_json(&plan);
        golden_check(got, out);
        /* Invariant: kinfer sets replicas exactly when no autoscaler and no user owns them. */
        assert_true((plan.replicas >= 0) == !strcmp(plan.scaling, "fixed"));
        assert_true(plan.replicas < 0 || !plan.kind);
        json_object_put(got);
        autoscale_plan_free(&plan);
        autoscale_plan_free(&plan); /* idempotent */
    }
}

#define META(ann) "\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\"" ann "}"
#define KEDA      ",\"annotations\":{\"serving.kinfer.dev/autoscalerClass\":\"keda\"}"
#define MODEL     "\"model\":{\"modelFormat\":{\"name\":\"onnx\"},\"storageUri\":\"s3://b/m\"}"

static const struct {
    const char *json, *msg; /* a message naming --prometheus-address: built without one */
} bad[] = {
    {"{" META("") ",\"spec\":{\"predictor\":{\"minReplicas\":0," MODEL "}}}",
     "spec.predictor.minReplicas: 0 (scale to zero) needs the annotation "
     "serving.kinfer.dev/autoscalerClass: keda; "
     "the HorizontalPodAutoscaler cannot scale to zero (use 1, or keda)"},
    {"{" META(KEDA) ",\"spec\":{\"predictor\":{\"minReplicas\":0," MODEL "}}}",
     "spec.predictor.minReplicas: 0 (scale to zero) needs a scaleMetric other than cpu: an idle "
     "service has no cpu "
     "utilization to wake it (use rps, concurrency or queueDepth)"},
    {"{" META(KEDA) ",\"spec\":{\"predictor\":{\"scaleMetric\":\"rps\"," MODEL "}}}",
     "autoscalerClass keda with scaleMetric rps needs Prometheus: kinfer-controller was started "
     "without "
     "--prometheus-address"},
    {"{" META(",\"annotations\":{\"serving.kinfer.dev/autoscalerClass\":\"vpa\"}") ",\"spec\":{"
                                                                                   "\"predictor\":"
                                                                                   "{" MODEL "}}}",
     "metadata.annotations[serving.kinfer.dev/autoscalerClass]: \"vpa\" is not one of hpa, keda, "
     "external, none"},
    {"{" META("") ",\"spec\":{\"predictor\":{\"scaleMetric\":\"gpu\"," MODEL "}}}",
     "spec.predictor.scaleMetric: \"gpu\" is not one of cpu, memory, rps, concurrency, queueDepth"},
    {"{" META("") ",\"spec\":{\"predictor\":{\"scaleMetric\":\"memory\",\"scaleTarget\":101," MODEL
                  "}}}",
     "spec.predictor.scaleTarget: 101 is out of range [1, 100]"},
    {"{" META("") ",\"spec\":{\"predictor\":{\"minReplicas\":4,\"maxReplicas\":2," MODEL "}}}",
     "spec.predictor.maxReplicas: 2 is less than minReplicas 4"},
    {"{" META(KEDA) ",\"spec\":{\"predictor\":{\"minReplicas\":4,\"maxReplicas\":2," MODEL "}}}",
     "spec.predictor.maxReplicas: 2 is less than minReplicas 4"},
    {"{" META("") ",\"spec\":{\"predictor\":{\"autoScaling\":{\"behavior\":[]}," MODEL "}}}",
     "spec.predictor.autoScaling.behavior: must be an object"},
    {"{" META("") ",\"spec\":{\"predictor\":{\"minReplicas\":\"2\"," MODEL "}}}",
     "spec.predictor.minReplicas: must be an integer, got a string"},
    {"{\"spec\":{\"predictor\":{}}}",
     "autoscale: InferenceService without metadata or spec.predictor"},
};

static void bad_specs_are_einval(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *isvc = json_tokener_parse(bad[i].json);
        if (!isvc) fail_msg("case %zu: test JSON does not parse", i);
        autoscale_plan plan;
        ctl_status *st = autoscale_plan_build(
            isvc, strstr(bad[i].msg, "--prometheus-address") ? &(autoscale_config){0} : &cfg,
            "m-predictor", &plan);
        if (!st) fail_msg("case %zu (%s): accepted", i, bad[i].msg);
        assert_int_equal(ctl_status_code(st), CTL_EINVAL);
        assert_string_equal(ctl_status_msg(st), bad[i].msg);
        assert_null(plan.spec);
        assert_null(plan.kind);
        ctl_status_free(st);
        json_object_put(isvc);
    }
}

/* external and none: no autoscaler, no replicas, whatever min/max say (kinfer never fights the
 * user). */
static void external_and_none_leave_replicas_alone(void **state)
{
    (void)state;
    static const char *const json[] = {
        "{" META(",\"annotations\":{\"serving.kinfer.dev/"
                 "autoscalerClass\":\"external\"}") ",\"spec\":{\"predictor\":{"
                                                    "\"minReplicas\":3,"
                                                    "\"maxReplicas\":3," MODEL "}}}",
        "{" META(",\"annotations\":{\"serving.kinfer.dev/"
                 "autoscalerClass\":\"none\"}") ",\"spec\":{\"predictor\":{"
                                                "\"minReplicas\":2," MODEL "}}}",
    };
    for (size_t i = 0; i < 2; i++) {
        json_object *isvc = json_tokener_parse(json[i]);
        autoscale_plan plan;
        assert_null(autoscale_plan_build(isvc, NULL, "m-predictor", &plan));
        assert_int_equal(plan.replicas, -1);
        assert_null(plan.kind);
        assert_string_equal(plan.scaling, i ? "none" : "external");
        autoscale_plan_free(&plan);
        json_object_put(isvc);
    }
}

int test_autoscale_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_plans),
        cmocka_unit_test(bad_specs_are_einval),
        cmocka_unit_test(external_and_none_leave_replicas_alone),
    };
    return cmocka_run_group_tests_name("autoscale", tests, NULL, NULL);
}
