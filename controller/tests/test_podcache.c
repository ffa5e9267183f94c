/* podcache: a cached pod keeps exactly what status_compute and the canary read, and status_compute
 * reaches the same verdict on the trimmed pod as on the whole one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/runtime/podcache.h"
#include "../src/reconcile/status.h"

/* A pod as the API server sends it (spec already dropped by the informer), waiting on an image. */
#define WHOLE_POD                                                                                  \
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"iris-predictor-7d9f-"        \
    "abcde\","                                                                                     \
    "\"generateName\":\"iris-predictor-7d9f-\",\"namespace\":\"default\",\"uid\":\"0b3c\","        \
    "\"resourceVersion\":\"42\","                                                                  \
    "\"creationTimestamp\":\"2026-01-01T00:00:00Z\",\"deletionTimestamp\":\"2026-01-01T00:05:"     \
    "00Z\","                                                                                       \
    "\"labels\":{\"app\":\"iris\",\"pod-template-hash\":\"7d9f\",\"serving.kinfer.dev/"            \
    "inferenceservice\":\"iris\","                                                                 \
    "\"serving.kinfer.dev/revision\":\"r1\"},\"ownerReferences\":[{\"apiVersion\":\"apps/"         \
    "v1\",\"kind\":\"ReplicaSet\","                                                                \
    "\"name\":\"iris-predictor-7d9f\",\"uid\":\"9a\",\"controller\":true}]},"                      \
    "\"status\":{\"phase\":\"Pending\",\"hostIP\":\"10.0.0.1\",\"podIP\":\"10.244.0.7\","          \
    "\"podIPs\":[{\"ip\":\"10.244.0.7\"}],\"qosClass\":\"Burstable\",\"startTime\":\"2026-01-"     \
    "01T00:00:01Z\","                                                                              \
    "\"conditions\":[{\"type\":\"Initialized\",\"status\":\"True\",\"lastTransitionTime\":\"2026-" \
    "01-01T00:00:01Z\"},"                                                                          \
    "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"ContainersNotReady\",\"message\":"      \
    "\"not ready\","                                                                               \
    "\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-01-01T00:00:01Z\"},"                     \
    "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastTransitionTime\":\"2026-01-01T00:00:"    \
    "01Z\"}],"                                                                                     \
    "\"initContainerStatuses\":[{\"name\":\"fetch\",\"ready\":true,\"restartCount\":0,\"image\":"  \
    "\"x\","                                                                                       \
    "\"imageID\":\"sha256:1\",\"containerID\":\"c://"                                              \
    "1\",\"state\":{\"terminated\":{\"exitCode\":0,"                                               \
    "\"reason\":\"Completed\"}}}],"                                                                \
    "\"containerStatuses\":[{\"name\":\"kinfer-server\",\"ready\":false,\"restartCount\":3,"       \
    "\"image\":\"x\","                                                                             \
    "\"imageID\":\"\",\"started\":false,\"state\":{\"waiting\":{\"reason\":\"ImagePullBackOff\","  \
    "\"message\":\"Back-off pulling image x\"}},\"lastState\":{}}]}}"

#define TRIMMED_POD                                                                                \
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"iris-predictor-7d9f-"        \
    "abcde\","                                                                                     \
    "\"namespace\":\"default\",\"resourceVersion\":\"42\",\"deletionTimestamp\":\"2026-01-01T00:"  \
    "05:00Z\","                                                                                    \
    "\"labels\":{\"serving.kinfer.dev/revision\":\"r1\"}},"                                        \
    "\"status\":{\"phase\":\"Pending\",\"podIP\":\"10.244.0.7\",\"conditions\":["                  \
    "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"ContainersNotReady\",\"message\":"      \
    "\"not ready\"},"                                                                              \
    "{\"type\":\"PodScheduled\",\"status\":\"True\"}],"                                            \
    "\"initContainerStatuses\":[{\"name\":\"fetch\",\"restartCount\":0,"                           \
    "\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}}}],"                      \
    "\"containerStatuses\":[{\"name\":\"kinfer-server\",\"restartCount\":3,"                       \
    "\"state\":{\"waiting\":{\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling "      \
    "image x\"}}}]}}"

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static void keeps_only_what_is_read(void **state)
{
    (void)state;
    json_object *pod = parse(WHOLE_POD), *want = parse(TRIMMED_POD);
    podcache_trim(pod);
    if (!json_object_equal(pod, want))
        fail_msg("trimmed pod:\n%s\nwant:\n%s", json_object_to_json_string(pod),
                 json_object_to_json_string(want));
    size_t whole = strlen(WHOLE_POD),
           trimmed = strlen(json_object_to_json_string_ext(pod, JSON_C_TO_STRING_PLAIN));
    assert_true(trimmed * 2 < whole); /* the point of it */
    json_object_put(pod);
    json_object_put(want);
}

/* status_compute reads the waiting reason (and skips deleting pods) and the scheduling failure:
 * the same status either way. */
static void status_is_the_same(void **state)
{
    (void)state;
    static const char *const variants[] = {
        WHOLE_POD,
        /* not deleting, so its waiting reason counts */
        "{\"metadata\":{\"name\":\"p\",\"uid\":\"u\",\"resourceVersion\":\"1\"},\"status\":{"
        "\"phase\":\"Pending\","
        "\"containerStatuses\":[{\"name\":\"kinfer-server\",\"image\":\"x\",\"state\":{\"waiting\":"
        "{\"reason\":"
        "\"ImagePullBackOff\",\"message\":\"m\"}}}]}}",
        /* unschedulable */
        "{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"1\"},\"status\":{\"phase\":"
        "\"Pending\",\"conditions\":["
        "{\"type\":\"PodScheduled\",\"status\":\"False\",\"reason\":\"Unschedulable\",\"message\":"
        "\"0/1 nodes\","
        "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}}",
    };
    json_object *isvc =
        parse("{\"metadata\":{\"name\":\"iris\",\"namespace\":\"default\",\"generation\":1}}");
    /* applied from this generation, observed, one replica not ready: the pods decide the reason */
    json_object *dep =
        parse("{\"metadata\":{\"name\":\"iris-predictor\",\"generation\":1,\"annotations\":"
              "{\"serving.kinfer.dev/generation\":\"1\"}},\"spec\":{\"replicas\":1},\"status\":"
              "{\"observedGeneration\":1,\"replicas\":1,\"updatedReplicas\":1,\"readyReplicas\":0,"
              "\"availableReplicas\":0}}");
    static const char *const reasons[] = {"ReplicasNotReady", "ImagePullBackOff", "Unschedulable"};
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        json_object *whole = json_object_new_array(), *trimmed = json_object_new_array(), *a = NULL,
                    *b = NULL;
        json_object *p = parse(variants[i]);
        json_object_array_add(whole, json_object_get(p));
        json_object *q = parse(variants[i]);
        podcache_trim(q);
        json_object_array_add(trimmed, q);
        assert_null(status_compute(isvc, dep, whole, NULL, "2026-01-01T00:10:00Z", &a));
        assert_null(status_compute(isvc, dep, trimmed, NULL, "2026-01-01T00:10:00Z", &b));
        assert_non_null(strstr(json_object_to_json_string(b), reasons[i]));
        if (!json_object_equal(a, b))
            fail_msg("variant %zu:\n%s\n!=\n%s", i, json_object_to_json_string(a),
                     json_object_to_json_string(b));
        json_object_put(a), json_object_put(b), json_object_put(p), json_object_put(whole),
            json_object_put(trimmed);
    }
    json_object_put(isvc);
    json_object_put(dep);
}

/* Odd shapes: no status, metadata of the wrong type, conditions that are not an array. */
static void odd_shapes_do_not_crash(void **state)
{
    (void)state;
    json_object
        *a = parse("{\"metadata\":{\"name\":\"p\"}}"),
        *b = parse("{\"metadata\":7,\"status\":[]}"),
        *c = parse(
            "{\"metadata\":{\"name\":\"p\"},\"status\":{\"conditions\":{},\"containerStatuses\":[1,"
            "{\"state\":{\"waiting\":3}}]}}");
    podcache_trim(a);
    podcache_trim(b);
    podcache_trim(c);
    assert_string_equal(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                        "{\"metadata\":{\"name\":\"p\"}}");
    assert_string_equal(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                        "{\"metadata\":{},\"status\":{}}");
    assert_string_equal(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN),
                        "{\"metadata\":{\"name\":\"p\"},\"status\":{\"conditions\":[],"
                        "\"containerStatuses\":[{},{}]}}");
    json_object_put(a), json_object_put(b), json_object_put(c);
}

int test_podcache_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_only_what_is_read),
        cmocka_unit_test(status_is_the_same),
        cmocka_unit_test(odd_shapes_do_not_crash),
    };
    return cmocka_run_group_tests_name("podcache", tests, NULL, NULL);
}
