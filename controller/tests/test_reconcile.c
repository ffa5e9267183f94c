/* Tests of reconcile.c: golden children for representative specs, and precise errors for bad ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../src/reconcile/reconcile.h"
#include "golden.h"

static const reconcile_config cfg = {.runtime_image = "ghcr.io/kinfer/kinfer-server:test"};

/* state: the case name; golden/reconcile/<case>.in.json -> <case>.out.json */
static void golden_case(void **state)
{
    const char *name = *state;
    char in[256], out[256];
    snprintf(in, sizeof(in), "reconcile/%s.in.json", name);
    snprintf(out, sizeof(out), "reconcile/%s.out.json", name);
    json_object *isvc = golden_load(in), *children = NULL;
    ctl_status *st = reconcile_desired(isvc, &cfg, &children);
    if (st) fail_msg("%s: %s", name, ctl_status_msg(st));
    golden_check(children, out);
    json_object_put(children);
    json_object_put(isvc);
}

static json_object *child(json_object *children, const char *kind)
{
    for (size_t i = 0; i < json_object_array_length(children); i++) {
        json_object *c = json_object_array_get_idx(children, i), *k;
        if (json_object_object_get_ex(c, "kind", &k) && !strcmp(json_object_get_string(k), kind))
            return c;
    }
    return NULL;
}

static json_object *at(json_object *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); o && k; k = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(o, k, &o)) return NULL;
    return o;
}

/* The invariant that keeps the controller from fighting the HPA: replicas only without one. */
static void replicas_only_without_hpa(void **state)
{
    (void)state;
    static const char *const cases[] = {"minimal", "full-cpu", "rps", "concurrency", "fixed-pvc"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "reconcile/%s.in.json", cases[i]);
        json_object *isvc = golden_load(in), *children = NULL;
        assert_null(reconcile_desired(isvc, &cfg, &children));
        json_object *dep = child(children, "Deployment"),
                    *hpa = child(children, "HorizontalPodAutoscaler");
        assert_non_null(dep);
        assert_non_null(child(children, "Service"));
        assert_true((hpa == NULL) == (at(dep, "spec.replicas") != NULL));
        json_object *owner = json_object_array_get_idx(at(dep, "metadata.ownerReferences"), 0);
        assert_true(json_object_get_boolean(at(owner, "controller")));
        assert_string_equal(json_object_get_string(at(owner, "uid")),
                            json_object_get_string(at(isvc, "metadata.uid")));
        json_object_put(children);
        json_object_put(isvc);
    }
}

static void output_is_deterministic(void **state)
{
    (void)state;
    json_object *isvc = golden_load("reconcile/full-cpu.in.json"), *a = NULL, *b = NULL;
    assert_null(reconcile_desired(isvc, &cfg, &a));
    assert_null(reconcile_desired(isvc, &cfg, &b));
    assert_string_equal(json_object_to_json_string(a), json_object_to_json_string(b));
    json_object_put(a);
    json_object_put(b);
    json_object_put(isvc);
}

/* Children must not alias the isvc: freeing the isvc first must leave them intact (ASan checks). */
static void children_outlive_isvc(void **state)
{
    (void)state;
    json_object *isvc = golden_load("reconcile/full-cpu.in.json"), *children = NULL;
    assert_null(reconcile_desired(isvc, &cfg, &children));
    json_object_put(isvc);
    assert_non_null(strstr(json_object_to_json_string(children), "podAntiAffinity"));
    json_object_put(children);
}

#define META  "\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\",\"uid\":\"u1\",\"generation\":1}"
#define MODEL "\"model\":{\"modelFormat\":{\"name\":\"onnx\"},\"storageUri\":\"s3://b/m\"}"

static const struct {
    const char *json, *msg;
} bad[] = {
    {"[]", "InferenceService: must be an object"},
    {"{\"spec\":{}}", "metadata: required"},
    {"{\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\"},\"spec\":{}}", "metadata.uid: required"},
    {"{\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\",\"uid\":\"u\",\"generation\":\"1\"}}",
     "metadata.generation: must be an integer, got a string"},
    {"{\"metadata\":{\"name\":\"abcdefghij-abcdefghij-abcdefghij-abcdefghij-x\",\"namespace\":"
     "\"ns\",\"uid\":\"u\"}}",
     "metadata.name: \"abcdefghij-abcdefghij-abcdefghij-abcdefghij-x\" is longer than 44 "
     "characters"},
    {"{" META "}", "spec: required"},
    {"{" META ",\"spec\":{}}", "spec.predictor: required"},
    {"{" META ",\"spec\":{\"predictor\":[]}}", "spec.predictor: must be an object, got an array"},
    {"{" META ",\"spec\":{\"predictor\":{}}}", "spec.predictor.model: required"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"storageUri\":\"s3://b/m\"}}}}",
     "spec.predictor.model.modelFormat: required"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"sklearn\"},"
     "\"storageUri\":\"s3://b\"}}}}",
     "spec.predictor.model.modelFormat.name: \"sklearn\" is not supported: kinfer serves onnx "
     "models"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"}}}}}",
     "spec.predictor.model.storageUri: required"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
     "\"storageUri\":\"\"}}}}",
     "spec.predictor.model.storageUri: must not be empty"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
     "\"storageUri\":42}}}}",
     "spec.predictor.model.storageUri: must be a string, got an integer"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
     "\"storageUri\":\"/models/x\"}}}}",
     "spec.predictor.model.storageUri: \"/models/x\" must start with s3://, gs://, http://, "
     "https://, file:/// or pvc://"},
    {"{" META ",\"spec\":{\"predictor\":{\"minReplicas\":\"2\"," MODEL "}}}",
     "spec.predictor.minReplicas: must be an integer, got a string"},
    {"{" META ",\"spec\":{\"predictor\":{\"minReplicas\":-1," MODEL "}}}",
     "spec.predictor.minReplicas: -1 is out of range [0, 2147483647]"},
    {"{" META ",\"spec\":{\"predictor\":{\"minReplicas\":3,\"maxReplicas\":2," MODEL "}}}",
     "spec.predictor.maxReplicas: 2 is less than minReplicas 3"},
    {"{" META ",\"spec\":{\"predictor\":{\"scaleMetric\":\"gpu\"," MODEL "}}}",
     "spec.predictor.scaleMetric: \"gpu\" is not one of cpu, memory, rps, concurrency, queueDepth"},
    {"{" META ",\"spec\":{\"predictor\":{\"scaleTarget\":150," MODEL "}}}",
     "spec.predictor.scaleTarget: 150 is out of range [1, 100]"},
    {"{" META ",\"spec\":{\"predictor\":{\"canaryTrafficPercent\":101," MODEL "}}}",
     "spec.predictor.canaryTrafficPercent: 101 is out of range [0, 100]"},
    {"{" META ",\"spec\":{\"predictor\":{\"timeout\":0," MODEL "}}}",
     "spec.predictor.timeout: 0 is out of range [1, 2147483647]"},
    {"{" META ",\"spec\":{\"predictor\":{\"batcher\":{\"maxBatchSize\":0}," MODEL "}}}",
     "spec.predictor.batcher.maxBatchSize: 0 is out of range [1, 2147483647]"},
    {"{" META ",\"spec\":{\"predictor\":{\"batcher\":{\"maxLatency\":1.5}," MODEL "}}}",
     "spec.predictor.batcher.maxLatency: must be an integer, got a number"},
    {"{" META ",\"spec\":{\"predictor\":{\"tolerations\":{}," MODEL "}}}",
     "spec.predictor.tolerations: must be an array, got an object"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
     "\"storageUri\":\"s3://b/m\","
     "\"env\":[{\"value\":\"x\"}]}}}}",
     "spec.predictor.model.env[0].name: required"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
     "\"storageUri\":\"s3://b/m\","
     "\"args\":[\"--x\",1]}}}}",
     "spec.predictor.model.args[1]: must be a string"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
     "\"storageUri\":\"s3://b/m\","
     "\"resources\":{\"requests\":{\"cpu\":true}}}}}}",
     "spec.predictor.model.resources.requests.cpu: must be a quantity (string or integer)"},
};

static void bad_specs_are_einval_with_precise_message(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *isvc = json_tokener_parse(bad[i].json), *children = (json_object *)1;
        if (!isvc) fail_msg("case %zu: test JSON does not parse", i);
        ctl_status *st = reconcile_desired(isvc, &cfg, &children);
        if (!st) fail_msg("case %zu (%s): accepted", i, bad[i].msg);
        assert_int_equal(ctl_status_code(st), CTL_EINVAL);
        assert_string_equal(ctl_status_msg(st), bad[i].msg);
        assert_null(children);
        ctl_status_free(st);
        json_object_put(isvc);
    }
}

static void missing_runtime_image_is_einval(void **state)
{
    (void)state;
    json_object *isvc = golden_load("reconcile/minimal.in.json"), *children = NULL;
    reconcile_config none = {0};
    ctl_status *st = reconcile_desired(isvc, &none, &children);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    assert_string_equal(ctl_status_msg(st), "reconcile: runtime image not configured");
    ctl_status_free(st);
    st = reconcile_desired(NULL, &cfg, &children);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    ctl_status_free(st);
    json_object_put(isvc);
}

/* Only limits (or only requests): the other half gets KServe's defaults; no crash on the absent
 * map. */
static void partial_resources_get_defaults(void **state)
{
    (void)state;
    json_object *isvc = json_tokener_parse(
                    "{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":"
                    "{\"name\":\"onnx\"},\"storageUri\":\"s3://b/m\",\"resources\":"
                    "{\"limits\":{\"cpu\":\"2\"}}}}}}"),
                *children = NULL;
    assert_non_null(isvc);
    assert_null(reconcile_desired(isvc, &cfg, &children));
    json_object *c = json_object_array_get_idx(
        at(child(children, "Deployment"), "spec.template.spec.containers"), 0);
    assert_string_equal(json_object_get_string(at(c, "resources.limits.cpu")), "2");
    assert_string_equal(json_object_get_string(at(c, "resources.limits.memory")), "2Gi");
    assert_string_equal(json_object_get_string(at(c, "resources.requests.cpu")), "1");
    json_object_put(children);
    json_object_put(isvc);
}

static void handover_case(const char *desired_file, const char *live_json, const char *want_json)
{
    json_object *isvc = golden_load(desired_file), *children = NULL, *patch = (json_object *)1;
    json_object *live = live_json ? json_tokener_parse(live_json) : NULL;
    assert_null(reconcile_desired(isvc, &cfg, &children));
    assert_null(reconcile_handover(child(children, "Deployment"), live, &patch));
    if (!want_json) {
        assert_null(patch);
    } else {
        json_object *want = json_tokener_parse(want_json);
        assert_non_null(want);
        if (!json_object_equal(patch, want))
            fail_msg("handover: got %s", json_object_to_json_string(patch));
        json_object_put(want);
    }
    json_object_put(patch);
    json_object_put(live);
    json_object_put(children);
    json_object_put(isvc);
}

/* Fixed -> autoscaled keeps the live replica count through a co-owning field manager. */
static void handover_only_when_leaving_fixed_replicas(void **state)
{
    (void)state;
    /* rps.in.json autoscales (2..10): bert-predictor in nlp. */
    handover_case("reconcile/rps.in.json",
                  "{\"metadata\":{\"annotations\":{\"serving.kinfer.dev/"
                  "scaling\":\"fixed\"}},\"spec\":{\"replicas\":3}}",
                  "{\"apiVersion\":\"apps/"
                  "v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"bert-predictor\","
                  "\"namespace\":\"nlp\"},\"spec\":{\"replicas\":3}}");
    handover_case("reconcile/rps.in.json",
                  "{\"spec\":{\"replicas\":4}}", /* unannotated: assume fixed */
                  "{\"apiVersion\":\"apps/"
                  "v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"bert-predictor\","
                  "\"namespace\":\"nlp\"},\"spec\":{\"replicas\":4}}");
    handover_case("reconcile/rps.in.json",
                  "{\"metadata\":{\"annotations\":{\"serving.kinfer.dev/"
                  "scaling\":\"hpa\"}},\"spec\":{\"replicas\":7}}",
                  NULL);                                /* already handed over */
    handover_case("reconcile/rps.in.json", NULL, NULL); /* first creation */
    handover_case("reconcile/fixed-pvc.in.json", "{\"spec\":{\"replicas\":1}}",
                  NULL); /* still fixed */
    json_object *patch = NULL;
    ctl_status *st = reconcile_handover(NULL, NULL, &patch);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    ctl_status_free(st);
}

int test_reconcile_run(void)
{
    const struct CMUnitTest tests[] = {
        {"golden_minimal", golden_case, NULL, NULL, "minimal"},
        {"golden_full_cpu", golden_case, NULL, NULL, "full-cpu"},
        {"golden_rps", golden_case, NULL, NULL, "rps"},
        {"golden_concurrency", golden_case, NULL, NULL, "concurrency"},
        {"golden_fixed_pvc", golden_case, NULL, NULL, "fixed-pvc"},
        cmocka_unit_test(replicas_only_without_hpa),
        cmocka_unit_test(output_is_deterministic),
        cmocka_unit_test(children_outlive_isvc),
        cmocka_unit_test(bad_specs_are_einval_with_precise_message),
        cmocka_unit_test(missing_runtime_image_is_einval),
        cmocka_unit_test(handover_only_when_leaving_fixed_replicas),
        cmocka_unit_test(partial_resources_get_defaults),
    };
    return cmocka_run_group_tests_name("reconcile", tests, NULL, NULL);
}
