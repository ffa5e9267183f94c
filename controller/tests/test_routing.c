/* Tests of routing.c: golden HTTPRoute and VirtualService, spec.routing parsing and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../src/rollout/routing.h"
#include "golden.h"

static json_object *isvc_with(const char *routing_json)
{
    char buf[1024];
    snprintf(
        buf, sizeof(buf),
        "{\"metadata\":{\"name\":\"iris\",\"namespace\":\"ml\",\"uid\":\"u-1\",\"generation\":3},"
        "\"spec\":{%s%s%s\"predictor\":{}}}",
        routing_json ? "\"routing\":" : "", routing_json ? routing_json : "",
        routing_json ? "," : "");
    return json_tokener_parse(buf);
}

static void render_case(const char *routing_json, routing_mode dflt, const char *gw,
                        const routing_backend *b, int nb, const char *golden)
{
    json_object *isvc = isvc_with(routing_json), *obj = NULL;
    routing_spec rs;
    assert_non_null(isvc);
    ctl_status *st = routing_spec_parse(json_object_object_get(isvc, "spec"), dflt, gw, &rs);
    if (st) fail_msg("%s", ctl_status_msg(st));
    if ((st = routing_render(&rs, isvc, b, nb, &obj))) fail_msg("%s", ctl_status_msg(st));
    golden_check(obj, golden);
    json_object_put(obj);
    json_object_put(isvc);
}

static const routing_backend split[] = {{"iris-predictor-11111111", 80},
                                        {"iris-predictor-22222222", 20}};

static void golden_httproute(void **state)
{
    (void)state;
    render_case("{\"gateway\":{\"parentRefs\":[{\"name\":\"web\",\"namespace\":\"infra\","
                "\"sectionName\":\"http\"}],"
                "\"hostnames\":[\"iris.example.com\"]}}",
                ROUTING_NONE, NULL, split, 2, "routing/httproute-split.json");
    /* the controller's default mode and Gateway */
    render_case(NULL, ROUTING_GATEWAY, "infra/shared", (routing_backend[]){{"iris", 100}}, 1,
                "routing/httproute-default.json");
}

static void golden_virtualservice(void **state)
{
    (void)state;
    render_case("{\"istio\":{}}", ROUTING_NONE, NULL, split, 2, "routing/virtualservice-mesh.json");
    render_case(
        "{\"istio\":{\"hosts\":[\"iris.example.com\"],\"gateways\":[\"istio-system/ingress\"]}}",
        ROUTING_GATEWAY, NULL, split, 2, "routing/virtualservice-gateway.json");
}

static void none_renders_nothing(void **state)
{
    (void)state;
    json_object *isvc = isvc_with("{\"none\":{}}"), *obj = (json_object *)1;
    routing_spec rs;
    assert_null(routing_spec_parse(json_object_object_get(isvc, "spec"), ROUTING_ISTIO, NULL, &rs));
    assert_int_equal(rs.mode, ROUTING_NONE);
    assert_null(routing_render(&rs, isvc, split, 2, &obj));
    assert_null(obj);
    json_object_put(isvc);
}

static void errors_are_precise(void **state)
{
    (void)state;
    static const struct {
        const char *routing;
        routing_mode dflt;
        const char *want;
    } cases[] = {
        {"{\"gateway\":{}}", ROUTING_NONE, "spec.routing.gateway.parentRefs: required"},
        {NULL, ROUTING_GATEWAY, "spec.routing.gateway.parentRefs: required"},
        {"{\"gateway\":{\"parentRefs\":{}}}", ROUTING_NONE, "parentRefs: must be an array"},
        {"{\"istio\":{\"hosts\":\"x\"}}", ROUTING_NONE,
         "spec.routing.istio.hosts: must be an array"},
        {"{\"gateway\":{\"parentRefs\":[{\"name\":\"g\"}]},\"istio\":{}}", ROUTING_NONE,
         "mutually exclusive"},
        {"[]", ROUTING_NONE, "spec.routing: must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *isvc = isvc_with(cases[i].routing);
        routing_spec rs;
        ctl_status *st =
            routing_spec_parse(json_object_object_get(isvc, "spec"), cases[i].dflt, NULL, &rs);
        if (!st) fail_msg("case %zu accepted", i);
        assert_int_equal(ctl_status_code(st), CTL_EINVAL);
        if (!strstr(ctl_status_msg(st), cases[i].want))
            fail_msg("case %zu: want \"%s\" in \"%s\"", i, cases[i].want, ctl_status_msg(st));
        ctl_status_free(st);
        json_object_put(isvc);
    }
    /* weights must add up to 100 */
    json_object *isvc = isvc_with("{\"istio\":{}}"), *obj = NULL;
    routing_spec rs;
    assert_null(routing_spec_parse(json_object_object_get(isvc, "spec"), ROUTING_NONE, NULL, &rs));
    ctl_status *st = routing_render(&rs, isvc, (routing_backend[]){{"a", 50}, {"b", 40}}, 2, &obj);
    assert_non_null(strstr(ctl_status_msg(st), "weights sum to 90"));
    ctl_status_free(st);
    st = routing_render(&rs, isvc, (routing_backend[]){{"a", 150}, {"b", -50}}, 2, &obj);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    ctl_status_free(st);
    assert_null(obj);
    assert_int_equal(routing_mode_parse("istio"), ROUTING_ISTIO);
    assert_int_equal(routing_mode_parse("linkerd"), -1);
    json_object_put(isvc);
}

int test_routing_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_httproute),
        cmocka_unit_test(golden_virtualservice),
        cmocka_unit_test(none_renders_nothing),
        cmocka_unit_test(errors_are_precise),
    };
    return cmocka_run_group_tests_name("routing", tests, NULL, NULL);
}
