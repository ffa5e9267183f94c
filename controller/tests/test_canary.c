/* Tests of canary.c's pure half: which children each revision gets (single revision, canary split,
 * routing none replica shares, promotion, rollback, automatic rollout promoted), and the status
 * (revisions, traffic tags, CanaryReady). The previous revision comes only from the cached stable
 * Deployment's labels and annotations, as after a controller restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../src/rollout/canary.h"
#include "../src/reconcile/autoscale.h"
#include "../src/rollout/revision.h"

static const reconcile_config rc = {.runtime_image = "kinfer/kinfer-server:test"};
static const canary_config none_cfg = {.default_routing = ROUTING_NONE};

static json_object *isvc_new(const char *uri, const char *predictor_extra, const char *spec_extra,
                             const char *status)
{
    char buf[4096];
    snprintf(
        buf, sizeof(buf),
        "{\"apiVersion\":\"serving.kinfer.dev/v1beta1\",\"kind\":\"InferenceService\","
        "\"metadata\":{\"name\":\"iris\",\"namespace\":\"ml\",\"uid\":\"u-1\",\"generation\":2},"
        "\"spec\":{%s\"predictor\":{%s\"model\":{\"modelFormat\":{\"name\":\"onnx\"},"
        "\"storageUri\":\"%s\"}}}%s%s}",
        spec_extra ? spec_extra : "", predictor_extra ? predictor_extra : "", uri,
        status ? ",\"status\":" : "", status ? status : "");
    json_object *o = json_tokener_parse(buf);
    if (!o) fail_msg("bad test JSON: %s", buf);
    return o;
}

/* Plans isvc with the given cached Deployments (JSON array text); returns children via *children.
 */
static canary_plan *plan_of(const canary_config *cfg, json_object *isvc, const char *deployments,
                            json_object **children)
{
    json_object *deps = json_tokener_parse(deployments ? deployments : "[]");
    canary_plan *p = NULL;
    ctl_status *st = reconcile_desired(isvc, &rc, children);
    if (st) fail_msg("reconcile: %s", ctl_status_msg(st));
    if ((st = canary_plan_new(cfg, isvc, &rc, deps, children, &p)))
        fail_msg("plan: %s", ctl_status_msg(st));
    json_object_put(deps);
    return p;
}

static json_object *find(json_object *children, const char *kind, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(children); i++) {
        json_object *c = json_object_array_get_idx(children, i),
                    *md = json_object_object_get(c, "metadata");
        if (!strcmp(json_object_get_string(json_object_object_get(c, "kind")), kind) &&
            !strcmp(json_object_get_string(json_object_object_get(md, "name")), name))
            return c;
    }
    return NULL;
}

static const char *js(json_object *o)
{
    return json_object_to_json_string_ext(o,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static const char *label(json_object *o, const char *k)
{
    return json_object_get_string(json_object_object_get(
        json_object_object_get(json_object_object_get(o, "metadata"), "labels"), k));
}

static const char *annotation(json_object *o, const char *k)
{
    return json_object_get_string(json_object_object_get(
        json_object_object_get(json_object_object_get(o, "metadata"), "annotations"), k));
}

static int64_t replicas(json_object *d)
{
    return json_object_get_int64(
        json_object_object_get(json_object_object_get(d, "spec"), "replicas"));
}

/* The cached stable Deployment (metadata only, as the informer keeps it) for the revision of `uri`.
 */
static char *stable_cache_of(const char *uri, const char *predictor_extra, const char *prev,
                             char *rev_out)
{
    json_object *isvc = isvc_new(uri, predictor_extra, NULL, NULL), *children = NULL;
    canary_plan *p = plan_of(&none_cfg, isvc, NULL, &children);
    json_object *dep = find(children, "Deployment", "iris-predictor"),
                *md = json_object_object_get(dep, "metadata");
    strcpy(rev_out, canary__plan_latest(p));
    if (prev)
        json_object_object_add(json_object_object_get(md, "annotations"),
                               REVISION_ANNOTATION_PREVIOUS, json_object_new_string(prev));
    char *out = NULL;
    if (asprintf(&out, "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":%s}]",
                 js(md)) < 0)
        out = NULL;
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    return out;
}

static char *stable_cache(const char *uri, const char *prev, char *rev_out)
{
    return stable_cache_of(uri, NULL, prev, rev_out);
}

static void single_revision_is_labelled_and_records_its_spec(void **state)
{
    (void)state;
    json_object *isvc = isvc_new("s3://m/v1", "\"canaryTrafficPercent\":20,", NULL, NULL),
                *children = NULL;
    canary_plan *p = plan_of(&none_cfg, isvc, NULL, &children);
    const char *rev = canary__plan_latest(p);
    assert_non_null(revision_hash_of(rev));
    assert_null(canary__plan_stable(p));
    assert_false(canary__plan_split(p));
    json_object *dep = find(children, "Deployment", "iris-predictor");
    assert_non_null(dep);
    assert_string_equal(label(dep, REVISION_LABEL), rev);
    json_object *tmpl_labels = json_object_object_get(
        json_object_object_get(
            json_object_object_get(json_object_object_get(dep, "spec"), "template"), "metadata"),
        "labels");
    assert_string_equal(json_object_get_string(json_object_object_get(tmpl_labels, REVISION_LABEL)),
                        rev);
    assert_non_null(strstr(annotation(dep, REVISION_ANNOTATION_SPEC), "s3://m/v1"));
    assert_non_null(find(children, "Service", "iris"));
    assert_int_equal(json_object_array_length(children), 2);
    /* status: one revision, all traffic, no prev tag, no CanaryReady */
    json_object *status = json_tokener_parse("{\"observedGeneration\":2,\"conditions\":[]}");
    json_object *empty = json_object_new_object();
    canary_plan_observe(p, empty); /* not a Deployment: ignored */
    json_object_put(empty);
    canary_plan_status(p, status, "2026-01-01T00:00:00Z");
    json_object *pred =
        json_object_object_get(json_object_object_get(status, "components"), "predictor");
    assert_string_equal(
        json_object_get_string(json_object_object_get(pred, "latestCreatedRevision")), rev);
    json_object *tr = json_object_object_get(pred, "traffic");
    assert_int_equal(json_object_array_length(tr), 1);
    assert_int_equal(
        json_object_get_int(json_object_object_get(json_object_array_get_idx(tr, 0), "percent")),
        100);
    assert_int_equal(json_object_array_length(json_object_object_get(status, "conditions")), 0);
    json_object_put(status);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
}

static void template_change_with_canary_percent_splits(void **state)
{
    (void)state;
    char old_rev[REVISION_NAME_MAX];
    char *cache = stable_cache("s3://m/v1", NULL, old_rev);
    canary_config gw = {.default_routing = ROUTING_NONE};
    json_object *isvc =
        isvc_new("s3://m/v2", "\"canaryTrafficPercent\":20,",
                 "\"routing\":{\"gateway\":{\"parentRefs\":[{\"name\":\"g\"}]}},", NULL);
    json_object *children = NULL;
    canary_plan *p = plan_of(&gw, isvc, cache, &children);
    const char *rev = canary__plan_latest(p);
    assert_true(canary__plan_split(p));
    assert_string_equal(canary__plan_stable(p), old_rev);
    assert_string_not_equal(rev, old_rev);
    json_object *stable = find(children, "Deployment", "iris-predictor"),
                *canary = find(children, "Deployment", rev);
    assert_non_null(stable);
    assert_non_null(canary);
    /* the stable Deployment is rebuilt from its recorded spec, not from the new one */
    assert_string_equal(label(stable, REVISION_LABEL), old_rev);
    assert_non_null(strstr(js(stable), "s3://m/v1"));
    assert_null(strstr(js(stable), "s3://m/v2"));
    assert_non_null(strstr(js(canary), "s3://m/v2"));
    /* the canary selects only its own pods */
    json_object *sel = json_object_object_get(
        json_object_object_get(json_object_object_get(canary, "spec"), "selector"), "matchLabels");
    assert_string_equal(json_object_get_string(json_object_object_get(sel, REVISION_LABEL)), rev);
    /* a Service per revision; the entry Service is applied later, by canary_plan_route() */
    assert_non_null(find(children, "Service", rev));
    assert_non_null(find(children, "Service", old_rev));
    assert_null(find(children, "Service", "iris"));
    /* gateway routing: both revisions keep their full replica count */
    assert_int_equal(replicas(stable), 1);
    assert_int_equal(replicas(canary), 1);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    free(cache);
}

static void routing_none_splits_replicas(void **state)
{
    (void)state;
    char old_rev[REVISION_NAME_MAX];
    char *cache = stable_cache_of("s3://m/v1", "\"minReplicas\":5,", NULL,
                                  old_rev); /* the stable's own spec counts */
    json_object *isvc = isvc_new("s3://m/v2", "\"minReplicas\":5,\"canaryTrafficPercent\":20,",
                                 NULL, NULL),
                *children = NULL;
    canary_plan *p = plan_of(&none_cfg, isvc, cache, &children);
    assert_int_equal(replicas(find(children, "Deployment", "iris-predictor")), 4);
    assert_int_equal(replicas(find(children, "Deployment", canary__plan_latest(p))), 1);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    /* 0: all traffic back to the previous revision; the canary keeps one replica */
    isvc = isvc_new("s3://m/v2", "\"minReplicas\":5,\"canaryTrafficPercent\":0,", NULL, NULL);
    p = plan_of(&none_cfg, isvc, cache, &children);
    assert_true(canary__plan_split(p));
    assert_int_equal(replicas(find(children, "Deployment", "iris-predictor")), 5);
    assert_int_equal(replicas(find(children, "Deployment", canary__plan_latest(p))), 1);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    /* autoscaled: each revision's HPA bounds are split */
    isvc =
        isvc_new("s3://m/v2", "\"minReplicas\":4,\"maxReplicas\":10,\"canaryTrafficPercent\":25,",
                 NULL, NULL);
    p = plan_of(&none_cfg, isvc, cache, &children);
    json_object *h = find(children, "HorizontalPodAutoscaler", canary__plan_latest(p)), *hs;
    assert_non_null(h);
    hs = json_object_object_get(h, "spec");
    assert_int_equal(json_object_get_int(json_object_object_get(hs, "minReplicas")), 1);
    assert_int_equal(json_object_get_int(json_object_object_get(hs, "maxReplicas")), 3);
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_object_get(hs, "scaleTargetRef"), "name")),
                        canary__plan_latest(p));
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    free(cache);
    assert_int_equal(autoscale_share(5, 20), 1);
    assert_int_equal(autoscale_share(5, 80), 4);
    assert_int_equal(autoscale_share(3, 1), 1);
    assert_int_equal(autoscale_share(3, 100), 3);
}

static void no_canary_percent_rolls_out_directly_and_promotes(void **state)
{
    (void)state;
    char old_rev[REVISION_NAME_MAX];
    char *cache = stable_cache("s3://m/v1", "iris-predictor-0000aaaa", old_rev);
    json_object *isvc = isvc_new("s3://m/v2", NULL, NULL, NULL), *children = NULL;
    canary_plan *p = plan_of(&none_cfg, isvc, cache, &children);
    assert_false(canary__plan_split(p));
    json_object *dep = find(children, "Deployment", "iris-predictor");
    assert_non_null(strstr(js(dep), "s3://m/v2"));
    assert_string_equal(annotation(dep, REVISION_ANNOTATION_PREVIOUS), old_rev);
    assert_int_equal(json_object_array_length(children), 2);
    canary_plan_free(p);
    json_object_put(children);
    /* a canary of this revision exists: promotion keeps it until the stable is Ready */
    char *cache2 = NULL;
    assert_true(asprintf(&cache2, "[%.*s,{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\"}}]",
                         (int)strlen(cache) - 2, cache + 1, "REV") > 0);
    p = plan_of(&none_cfg, isvc, NULL, &children); /* to learn the new revision's name */
    char rev[REVISION_NAME_MAX];
    strcpy(rev, canary__plan_latest(p));
    canary_plan_free(p);
    json_object_put(children);
    free(cache2);
    assert_true(asprintf(&cache2, "[%.*s,{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\"}}]",
                         (int)strlen(cache) - 2, cache + 1, rev) > 0);
    p = plan_of(&none_cfg, isvc, cache2, &children);
    assert_false(canary__plan_split(p));
    assert_non_null(find(children, "Deployment", rev));
    assert_non_null(find(children, "Deployment", "iris-predictor"));
    /* status while the stable rolls: rolled-out revision unchanged from the previous status */
    json_object *status = json_tokener_parse("{\"observedGeneration\":2}");
    canary_plan_status(p, status, "2026-01-01T00:00:00Z");
    json_object *pred =
        json_object_object_get(json_object_object_get(status, "components"), "predictor");
    assert_null(json_object_object_get(pred, "latestRolledoutRevision"));
    /* the stable reports Ready: rolled out, previous = the old stable revision */
    json_object *applied = json_tokener_parse(
        "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"iris-predictor\",\"generation\":3},"
        "\"spec\":{\"replicas\":1},\"status\":{\"observedGeneration\":3,\"replicas\":1,"
        "\"updatedReplicas\":1,\"readyReplicas\":1,\"availableReplicas\":1}}");
    canary_plan_observe(p, applied);
    json_object_put(applied);
    canary_plan_status(p, status, "2026-01-01T00:00:00Z");
    pred = json_object_object_get(json_object_object_get(status, "components"), "predictor");
    assert_string_equal(
        json_object_get_string(json_object_object_get(pred, "latestRolledoutRevision")), rev);
    assert_string_equal(
        json_object_get_string(json_object_object_get(pred, "previousRolledoutRevision")), old_rev);
    json_object_put(status);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    free(cache);
    free(cache2);
}

static void split_status_tags_and_canary_ready(void **state)
{
    (void)state;
    char old_rev[REVISION_NAME_MAX];
    char *cache = stable_cache("s3://m/v1", NULL, old_rev);
    json_object *isvc = isvc_new("s3://m/v2", "\"canaryTrafficPercent\":30,", NULL, NULL),
                *children = NULL;
    canary_plan *p = plan_of(&none_cfg, isvc, cache, &children);
    json_object *status = json_tokener_parse("{\"observedGeneration\":2,\"conditions\":[]}");
    /* canary not Ready: weight 0 until it is; no routing call here, so weight_eff keeps its default
     */
    canary_plan_status(p, status, "2026-01-01T00:00:00Z");
    json_object *conds = json_object_object_get(status, "conditions");
    assert_int_equal(json_object_array_length(conds), 1);
    json_object *c = json_object_array_get_idx(conds, 0);
    assert_string_equal(json_object_get_string(json_object_object_get(c, "type")), "CanaryReady");
    assert_string_equal(json_object_get_string(json_object_object_get(c, "status")), "False");
    json_object *pred =
        json_object_object_get(json_object_object_get(status, "components"), "predictor");
    json_object *tr = json_object_object_get(pred, "traffic");
    assert_int_equal(json_object_array_length(tr), 2);
    assert_string_equal(
        json_object_get_string(json_object_object_get(json_object_array_get_idx(tr, 0), "tag")),
        "prev");
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_array_get_idx(tr, 0), "revisionName")),
                        old_rev);
    assert_true(json_object_get_boolean(
        json_object_object_get(json_object_array_get_idx(tr, 1), "latestRevision")));
    assert_string_equal(
        json_object_get_string(json_object_object_get(pred, "latestRolledoutRevision")), old_rev);
    assert_string_equal(
        json_object_get_string(json_object_object_get(pred, "previousRolledoutRevision")), old_rev);
    json_object_put(status);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    free(cache);
}

static void rollout_succeeded_promotes_and_failed_stays_at_zero(void **state)
{
    (void)state;
    char old_rev[REVISION_NAME_MAX], rev[REVISION_NAME_MAX], st_json[512];
    char *cache = stable_cache("s3://m/v1", NULL, old_rev);
    const char *ro = "\"rollout\":{\"stepWeights\":[10,50],\"interval\":\"1s\"},";
    json_object *isvc = isvc_new("s3://m/v2", ro, NULL, NULL), *children = NULL;
    canary_plan *p = plan_of(&none_cfg, isvc, cache, &children);
    assert_true(canary__plan_split(p)); /* a rollout without state: starts as a canary */
    strcpy(rev, canary__plan_latest(p));
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    snprintf(
        st_json, sizeof(st_json),
        "{\"components\":{\"predictor\":{\"rollout\":{\"revision\":\"%s\",\"phase\":\"Succeeded\","
        "\"weight\":100}}}}",
        rev);
    isvc = isvc_new("s3://m/v2", ro, NULL, st_json);
    p = plan_of(&none_cfg, isvc, cache, &children);
    assert_false(canary__plan_split(p)); /* promoted: the stable rolls to it */
    assert_non_null(strstr(js(find(children, "Deployment", "iris-predictor")), "s3://m/v2"));
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    snprintf(
        st_json, sizeof(st_json),
        "{\"components\":{\"predictor\":{\"rollout\":{\"revision\":\"%s\",\"phase\":\"Failed\","
        "\"weight\":0,\"failedChecks\":2,\"reason\":\"RolledBack\"}}}}",
        rev);
    isvc = isvc_new("s3://m/v2", ro, NULL, st_json);
    p = plan_of(&none_cfg, isvc, cache, &children);
    assert_true(canary__plan_split(
        p)); /* rolled back: the canary stays beside the stable with no traffic */
    assert_int_equal(replicas(find(children, "Deployment", "iris-predictor")), 1);
    json_object *status = json_tokener_parse(
        "{\"observedGeneration\":2,\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}");
    canary_plan_status(p, status, "2026-01-01T00:00:00Z");
    json_object *r = json_object_object_get(
        json_object_object_get(json_object_object_get(status, "components"), "predictor"),
        "rollout");
    assert_string_equal(json_object_get_string(json_object_object_get(r, "phase")), "Failed");
    assert_int_equal(json_object_get_int(json_object_object_get(r, "failedChecks")), 2);
    /* a later pass (no rollout step ran) keeps the last transition's reason */
    assert_string_equal(json_object_get_string(json_object_object_get(r, "reason")), "RolledBack");
    /* kstatus: Failed (Stalled, RolloutFailed) beside CanaryReady; Ready stays status_compute's */
    json_object *conds = json_object_object_get(status, "conditions");
    assert_int_equal(json_object_array_length(conds), 3);
    assert_string_equal(json_object_get_string(
                            json_object_object_get(json_object_array_get_idx(conds, 0), "status")),
                        "True");
    assert_string_equal(
        json_object_get_string(json_object_object_get(json_object_array_get_idx(conds, 1), "type")),
        "CanaryReady");
    json_object *stalled = json_object_array_get_idx(conds, 2);
    assert_string_equal(json_object_get_string(json_object_object_get(stalled, "type")), "Stalled");
    assert_string_equal(json_object_get_string(json_object_object_get(stalled, "reason")),
                        "RolloutFailed");
    assert_non_null(
        strstr(json_object_get_string(json_object_object_get(stalled, "message")), rev));
    json_object_put(status);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(isvc);
    free(cache);
}

static void bad_routing_and_rollout_are_einval(void **state)
{
    (void)state;
    json_object *isvc = isvc_new("s3://m/v1", "\"rollout\":{\"stepWeights\":[50,10]},", NULL, NULL),
                *children = NULL;
    canary_plan *p = NULL;
    assert_null(reconcile_desired(isvc, &rc, &children));
    ctl_status *st = canary_plan_new(&none_cfg, isvc, &rc, NULL, &children, &p);
    assert_int_equal(ctl_status_code(st), CTL_EINVAL);
    assert_non_null(strstr(ctl_status_msg(st), "stepWeights: must be ascending"));
    assert_null(p);
    ctl_status_free(st);
    json_object_put(children);
    json_object_put(isvc);
    isvc = isvc_new("s3://m/v1", NULL, "\"routing\":{\"gateway\":{}},", NULL);
    assert_null(reconcile_desired(isvc, &rc, &children));
    st = canary_plan_new(&none_cfg, isvc, &rc, NULL, &children, &p);
    assert_non_null(strstr(ctl_status_msg(st), "parentRefs: required"));
    ctl_status_free(st);
    json_object_put(children);
    json_object_put(isvc);
}

/* autoscalerClass keda: each revision gets its own ScaledObject, named after and scaling its own
 * Deployment, its Prometheus query restricted to its own pods; the canary's stays while promoting.
 */
static json_object *so_spec(json_object *children, const char *name)
{
    json_object *so = find(children, "ScaledObject", name);
    if (!so) fail_msg("no ScaledObject %s in %s", name, js(children));
    return json_object_object_get(so, "spec");
}

static const char *so_query(json_object *spec)
{
    json_object *t = json_object_array_get_idx(json_object_object_get(spec, "triggers"), 0);
    const char *q = json_object_get_string(
        json_object_object_get(json_object_object_get(t, "metadata"), "query"));
    if (!q) fail_msg("no prometheus query in %s", js(spec));
    return q;
}

static void keda_canary_has_its_own_scaledobject(void **state)
{
    (void)state;
    const reconcile_config krc = {.runtime_image = "kinfer/kinfer-server:test",
                                  .prometheus_address = "http://prom:9090"};
    const char *pe =
        "\"minReplicas\":2,\"maxReplicas\":6,\"scaleMetric\":\"rps\",\"canaryTrafficPercent\":50,";
    char old_rev[REVISION_NAME_MAX], rev[REVISION_NAME_MAX], re[REVISION_NAME_MAX + 40];
    char *cache = stable_cache_of(
        "s3://m/v1", "\"minReplicas\":2,\"maxReplicas\":6,\"scaleMetric\":\"rps\",", NULL, old_rev);
    json_object *children = NULL, *deps = json_tokener_parse(cache),
                *ann = json_object_new_object();
    json_object *isvc = isvc_new("s3://m/v2", pe, NULL, NULL);
    canary_plan *p = NULL;
    json_object_object_add(ann, "serving.kinfer.dev/autoscalerClass",
                           json_object_new_string("keda"));
    json_object_object_add(json_object_object_get(isvc, "metadata"), "annotations", ann);
    assert_null(reconcile_desired(isvc, &krc, &children));
    assert_null(canary_plan_new(&none_cfg, isvc, &krc, deps, &children, &p));
    assert_true(canary__plan_split(p));
    strcpy(rev, canary__plan_latest(p));
    json_object *cs = so_spec(children, rev), *ss = so_spec(children, "iris-predictor");
    assert_null(find(children, "HorizontalPodAutoscaler", rev));
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_object_get(cs, "scaleTargetRef"), "name")),
                        rev);
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_object_get(ss, "scaleTargetRef"), "name")),
                        "iris-predictor");
    assert_string_equal(label(find(children, "ScaledObject", rev), REVISION_LABEL), rev);
    assert_string_equal(label(find(children, "ScaledObject", "iris-predictor"), REVISION_LABEL),
                        old_rev);
    /* owned by the InferenceService (garbage-collected with it) */
    assert_non_null(strstr(js(find(children, "ScaledObject", rev)), "\"ownerReferences\":[{"));
    assert_non_null(
        strstr(js(find(children, "ScaledObject", rev)), "\"kind\":\"InferenceService\""));
    snprintf(re, sizeof(re), "model=\"iris\",pod=~\"%s-.*\"}", rev);
    assert_non_null(strstr(so_query(cs), re));
    assert_non_null(
        strstr(so_query(ss), "model=\"iris\",pod=~\"iris-predictor-[a-z0-9]+-[a-z0-9]+\"}"));
    /* routing none: bounds split by weight (50%: 1..3 each) */
    assert_int_equal(json_object_get_int(json_object_object_get(cs, "minReplicaCount")), 1);
    assert_int_equal(json_object_get_int(json_object_object_get(cs, "maxReplicaCount")), 3);
    /* exactly one autoscaler per revision */
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(children); i++)
        n += !strcmp(json_object_get_string(
                         json_object_object_get(json_object_array_get_idx(children, i), "kind")),
                     "ScaledObject");
    assert_int_equal(n, 2);
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(deps);
    /* promotion (no canaryTrafficPercent, the canary Deployment still cached): the canary's
     * ScaledObject stays until canary_plan_route() sees the stable Ready; the stable's scales the
     * stable again */
    char *cache2 = NULL;
    assert_true(asprintf(&cache2, "[%.*s,{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\"}}]",
                         (int)strlen(cache) - 2, cache + 1, rev) > 0);
    json_object_object_del(
        json_object_object_get(json_object_object_get(isvc, "spec"), "predictor"),
        "canaryTrafficPercent");
    deps = json_tokener_parse(cache2);
    assert_null(reconcile_desired(isvc, &krc, &children));
    assert_null(canary_plan_new(&none_cfg, isvc, &krc, deps, &children, &p));
    assert_false(canary__plan_split(p));
    cs = so_spec(children, rev);
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_object_get(cs, "scaleTargetRef"), "name")),
                        rev);
    assert_non_null(strstr(so_query(cs), re));
    assert_null(strstr(so_query(so_spec(children, "iris-predictor")),
                       "pod=~")); /* one revision: the whole model */
    canary_plan_free(p);
    json_object_put(children);
    json_object_put(deps);
    json_object_put(isvc);
    free(cache);
    free(cache2);
}

int test_canary_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_revision_is_labelled_and_records_its_spec),
        cmocka_unit_test(template_change_with_canary_percent_splits),
        cmocka_unit_test(routing_none_splits_replicas),
        cmocka_unit_test(no_canary_percent_rolls_out_directly_and_promotes),
        cmocka_unit_test(split_status_tags_and_canary_ready),
        cmocka_unit_test(rollout_succeeded_promotes_and_failed_stays_at_zero),
        cmocka_unit_test(bad_routing_and_rollout_are_einval),
        cmocka_unit_test(keda_canary_has_its_own_scaledobject),
    };
    return cmocka_run_group_tests_name("canary", tests, NULL, NULL);
}
