/* Tests of podspec.c: golden pod templates (plain, pvc, secret credentials, GPU, MIG), the
 * restricted security profile on every container, and precise errors for bad pod fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../src/reconcile/podspec.h"
#include "golden.h"

static const podspec_config cfg = {.image = "ghcr.io/kinfer/kinfer-server:test"};
static const char *const cases[] = {"plain", "pvc", "secret-creds", "gpu", "mig"};

static json_object *build(const char *name)
{
    char in[256];
    snprintf(in, sizeof(in), "podspec/%s.in.json", name);
    json_object *isvc = golden_load(in), *tmpl = NULL;
    ctl_status *st = podspec_build(isvc, &cfg, &tmpl);
    if (st) fail_msg("%s: %s", name, ctl_status_msg(st));
    json_object_put(isvc); /* the template must not alias it (ASan checks) */
    return tmpl;
}

static void golden_templates(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        snprintf(out, sizeof(out), "podspec/%s.out.json", cases[i]);
        json_object *tmpl = build(cases[i]);
        golden_check(tmpl, out);
        json_object_put(tmpl);
    }
}

static json_object *at(json_object *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); o && k; k = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(o, k, &o)) return NULL;
    return o;
}

static int flag_is(json_object *c, const char *path, int want)
{
    json_object *v = at(c, path);
    return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v) == want;
}

/* The "restricted" Pod Security Standard, checked field by field on every container of every case
 * (the e2e test has the API server's admission check it too). */
static void every_container_is_restricted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *tmpl = build(cases[i]), *spec = at(tmpl, "spec");
        assert_true(flag_is(spec, "securityContext.runAsNonRoot", 1));
        assert_int_equal(json_object_get_int(at(spec, "securityContext.runAsUser")), PODSPEC_UID);
        assert_string_equal(json_object_get_string(at(spec, "securityContext.seccompProfile.type")),
                            "RuntimeDefault");
        static const char *const lists[] = {"containers", "initContainers"};
        int n = 0;
        for (int l = 0; l < 2; l++) {
            json_object *cs = at(spec, lists[l]);
            for (size_t k = 0; cs && k < json_object_array_length(cs); k++, n++) {
                json_object *c = json_object_array_get_idx(cs, k);
                assert_true(flag_is(c, "securityContext.allowPrivilegeEscalation", 0));
                assert_true(flag_is(c, "securityContext.readOnlyRootFilesystem", 1));
                assert_true(flag_is(c, "securityContext.runAsNonRoot", 1));
                json_object *drop = at(c, "securityContext.capabilities.drop");
                assert_non_null(drop);
                assert_string_equal(json_object_get_string(json_object_array_get_idx(drop, 0)),
                                    "ALL");
            }
        }
        assert_int_equal(n,
                         strcmp(cases[i], "pvc") ? 2 : 1); /* pvc:// has no storage initializer */
        json_object_put(tmpl);
    }
}

/* Storage credentials reach the storage initializer and never the serving container. */
static void secret_only_in_init_container(void **state)
{
    (void)state;
    json_object *tmpl = build("secret-creds");
    json_object *init = json_object_array_get_idx(at(tmpl, "spec.initContainers"), 0);
    json_object *server = json_object_array_get_idx(at(tmpl, "spec.containers"), 0);
    const char *i = json_object_to_json_string(init), *s = json_object_to_json_string(server);
    assert_non_null(strstr(i, "s3-creds"));
    assert_null(strstr(s, "s3-creds"));
    assert_null(at(server, "envFrom"));
    json_object_put(tmpl);
}

#define META "\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\",\"uid\":\"u1\"}"
#define FMT  "\"modelFormat\":{\"name\":\"onnx\"},\"storageUri\":\"s3://b/m\""

static const struct {
    const char *json, *msg;
} bad[] = {
    {"[]", "InferenceService: must be an object"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"onnx\"}}}}}",
     "spec.predictor.model.storageUri: required"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{" FMT
     ",\"resources\":{\"requests\":{\"nvidia.com/gpu\":1}}}}}}",
     "spec.predictor.model.resources.requests.nvidia.com/gpu: GPUs must be set in limits (requests "
     "may only repeat "
     "the same value)"},
    {"{" META ",\"spec\":{\"predictor\":{\"model\":{" FMT ",\"storageSecretName\":\"Bad_Name\"}}}}",
     "spec.predictor.model.storageSecretName: \"Bad_Name\" is not a valid Secret name"},
    {"{" META ",\"spec\":{\"predictor\":{\"priorityClassName\":\"-x\",\"model\":{" FMT "}}}}",
     "spec.predictor.priorityClassName: \"-x\" is not a valid PriorityClass name"},
    {"{" META ",\"spec\":{\"predictor\":{\"automountServiceAccountToken\":\"yes\",\"model\":{" FMT
     "}}}}",
     "spec.predictor.automountServiceAccountToken: has the wrong type (a boolean expected)"},
};

static void bad_pod_fields_are_einval(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *isvc = json_tokener_parse(bad[i].json), *tmpl = (json_object *)1;
        if (!isvc) fail_msg("case %zu: test JSON does not parse", i);
        ctl_status *st = podspec_build(isvc, &cfg, &tmpl);
        if (!st) fail_msg("case %zu (%s): accepted", i, bad[i].msg);
        assert_int_equal(ctl_status_code(st), CTL_EINVAL);
        assert_string_equal(ctl_status_msg(st), bad[i].msg);
        assert_null(tmpl);
        ctl_status_free(st);
        json_object_put(isvc);
    }
    json_object *tmpl = NULL;
    ctl_status *st = podspec_build(NULL, &(podspec_config){0}, &tmpl);
    assert_string_equal(ctl_status_msg(st), "podspec: runtime image not configured");
    ctl_status_free(st);
}

/* Defaults never contradict the user's values: a default request above the user's limit, or a
 * default limit below the user's request, would make the API server refuse the Deployment. */
static void defaults_respect_user_resources(void **state)
{
    (void)state;
    json_object *isvc =
                    json_tokener_parse("{" META ",\"spec\":{\"predictor\":{\"model\":{" FMT
                                       ",\"resources\":{\"requests\":{\"cpu\":\"4\"},"
                                       "\"limits\":{\"memory\":\"1Gi\",\"nvidia.com/gpu\":1}}}}}}"),
                *tmpl = NULL;
    assert_null(podspec_build(isvc, &cfg, &tmpl));
    json_object *r = at(json_object_array_get_idx(at(tmpl, "spec.containers"), 0), "resources");
    assert_string_equal(json_object_get_string(at(r, "requests.cpu")), "4"); /* user's */
    assert_string_equal(json_object_get_string(at(r, "limits.cpu")), "4");   /* not the default 1 */
    assert_string_equal(json_object_get_string(at(r, "limits.memory")), "1Gi"); /* user's */
    assert_string_equal(json_object_get_string(at(r, "requests.memory")),
                        "1Gi"); /* not the default 2Gi */
    json_object_put(tmpl);
    json_object_put(isvc);
    isvc = json_tokener_parse("{" META ",\"spec\":{\"predictor\":{\"model\":{" FMT
                              ",\"resources\":{\"requests\":"
                              "{\"cpu\":\"250m\",\"memory\":\"64Mi\"},\"limits\":{\"cpu\":3}}}}}}");
    assert_null(podspec_build(isvc, &cfg, &tmpl));
    r = at(json_object_array_get_idx(at(tmpl, "spec.containers"), 0), "resources");
    assert_string_equal(json_object_get_string(at(r, "limits.memory")),
                        "2Gi"); /* 64Mi < default: default */
    assert_int_equal(json_object_get_int(at(r, "limits.cpu")), 3);
    json_object_put(tmpl);
    json_object_put(isvc);
}

/* The value after flag in the server container's args, or -1. */
static int arg_int(json_object *tmpl, const char *flag)
{
    json_object *args = at(json_object_array_get_idx(at(tmpl, "spec.containers"), 0), "args");
    for (size_t i = 0; i + 1 < json_object_array_length(args); i++)
        if (!strcmp(json_object_get_string(json_object_array_get_idx(args, i)), flag))
            return json_object_get_int(json_object_array_get_idx(args, i + 1));
    return -1;
}

/* preStop sleeps while the pod leaves the endpoints, then the server drains in what is left. */
static void prestop_sleep_fits_the_grace_period(void **state)
{
    (void)state;
    struct {
        const char *timeout;
        int sleep, server_grace;
    } cases[] = {{"", 5, 25},
                 {",\"timeout\":45", 5, 40},
                 {",\"timeout\":10", 5, 5},
                 {",\"timeout\":4", 2, 2},
                 {",\"timeout\":1", 0, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "{" META ",\"spec\":{\"predictor\":{\"model\":{" FMT "}%s}}}",
                 cases[i].timeout);
        json_object *isvc = json_tokener_parse(text), *tmpl = NULL;
        assert_non_null(isvc);
        assert_null(podspec_build(isvc, &cfg, &tmpl));
        json_object *c = json_object_array_get_idx(at(tmpl, "spec.containers"), 0), *lc = NULL;
        json_object_object_get_ex(c, "lifecycle", &lc);
        if (cases[i].sleep)
            assert_int_equal(json_object_get_int(at(c, "lifecycle.preStop.sleep.seconds")),
                             cases[i].sleep);
        else
            assert_null(lc);
        assert_int_equal(arg_int(tmpl, "--grace-period-s"), cases[i].server_grace);
        json_object_put(tmpl);
        json_object_put(isvc);
    }
}

static void gpu_resource_names(void **state)
{
    (void)state;
    assert_true(podspec_is_gpu_resource("nvidia.com/gpu"));
    assert_true(podspec_is_gpu_resource("nvidia.com/mig-1g.5gb"));
    assert_true(podspec_is_gpu_resource("nvidia.com/mig-3g.40gb"));
    assert_false(podspec_is_gpu_resource("nvidia.com/mig-"));
    assert_false(podspec_is_gpu_resource("amd.com/gpu"));
    assert_false(podspec_is_gpu_resource("cpu"));
    assert_false(podspec_is_gpu_resource(NULL));
}

int test_podspec_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_templates),
        cmocka_unit_test(every_container_is_restricted),
        cmocka_unit_test(secret_only_in_init_container),
        cmocka_unit_test(bad_pod_fields_are_einval),
        cmocka_unit_test(defaults_respect_user_resources),
        cmocka_unit_test(gpu_resource_names),
        cmocka_unit_test(prestop_sleep_fits_the_grace_period),
    };
    return cmocka_run_group_tests_name("podspec", tests, NULL, NULL);
}
