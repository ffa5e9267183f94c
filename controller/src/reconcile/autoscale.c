/*
 * autoscale: the replica owner and autoscaler object of a predictor (see autoscale.h).
 *
 * Metrics. cpu and memory are utilization of the container's requests (HPA Resource metrics, KEDA
 * cpu/memory triggers). The others come from kinfer-server's /metrics:
 *   scaleMetric   HPA Pods metric (a Prometheus adapter   KEDA prometheus query (the total over the
 *                 rule exposes it per pod)                 service's pods; KEDA divides by
 * threshold) rps           kinfer_requests_per_second
 * sum(rate(nv_inference_request_(success|failure)[1m])) concurrency   kinfer_inflight_requests
 * sum(kinfer_inflight_requests) queueDepth    kinfer_queue_depth sum(kinfer_queue_depth) Series are
 * selected by namespace and model (kinfer-server labels every series with model=<the
 * InferenceService name>; Prometheus's usual pod scrape job adds namespace). scaleTarget is the
 * per-pod average the autoscaler aims for (an HPA AverageValue, KEDA's threshold).
 */
#include "autoscale.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define QUERY_MAX 512

static const struct metric {
    const char *name;    /* scaleMetric */
    int utilization;     /* cpu/memory: a percentage of requests */
    int64_t dflt_target; /* scaleTarget default */
    const char *pods;    /* the HPA Pods metric name */
    const char *query;   /* KEDA: printf format of the query; args namespace, model */
} metrics[] = {
    {"cpu", 1, 80, NULL, NULL},
    {"memory", 1, 80, NULL, NULL},
    {"rps", 0, 200, "kinfer_requests_per_second",
     "sum(rate({__name__=~\"nv_inference_request_(success|failure)\",namespace=\"%s\",model=\"%s\"}"
     "[1m]))"},
    {"concurrency", 0, 100, "kinfer_inflight_requests",
     "sum(kinfer_inflight_requests{namespace=\"%s\",model=\"%s\"})"},
    {"queueDepth", 0, 10, "kinfer_queue_depth",
     "sum(kinfer_queue_depth{namespace=\"%s\",model=\"%s\"})"},
};

static json_object *jstr(const char *s)
{
    return json_object_new_string(s);
}
static json_object *jint(int64_t v)
{
    return json_object_new_int64(v);
}
static void put(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, v);
}

const char *autoscale_class_name(autoscale_class c)
{
    switch (c) {
    case AUTOSCALE_HPA:
        return "hpa";
    case AUTOSCALE_KEDA:
        return "keda";
    case AUTOSCALE_EXTERNAL:
        return "external";
    case AUTOSCALE_NONE:
        return "none";
    }
    return "hpa";
}

/* An integer field in [lo, hi], dflt when absent or null. */
static ctl_status *get_int(json_object *o, const char *path, const char *k, int64_t lo, int64_t hi,
                           int64_t dflt, int64_t *out)
{
    json_object *v = jx_get(o, k);
    *out = dflt;
    if (!v) return NULL;
    if (!json_object_is_type(v, json_type_int))
        return ctl_status_new(CTL_EINVAL, "%s%s: must be an integer, got %s", path, k,
                              json_object_is_type(v, json_type_string)   ? "a string"
                              : json_object_is_type(v, json_type_double) ? "a number"
                                                                         : "another type");
    *out = json_object_get_int64(v);
    if (*out < lo || *out > hi)
        return ctl_status_new(CTL_EINVAL,
                              "%s%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", path,
                              k, *out, lo, hi);
    return NULL;
}

static ctl_status *class_parse(json_object *isvc, autoscale_class *out)
{
    static const char *const keys[] = {AUTOSCALE_ANNOTATION_CLASS,
                                       AUTOSCALE_ANNOTATION_CLASS_KSERVE};
    json_object *ann = jx_get(jx_get(isvc, "metadata"), "annotations");
    *out = AUTOSCALE_HPA;
    for (int k = 0; k < 2; k++) {
        json_object *v = jx_get(ann, keys[k]);
        if (!v) continue;
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        for (autoscale_class c = AUTOSCALE_HPA; c <= AUTOSCALE_NONE; c++)
            if (!strcmp(s, autoscale_class_name(c))) {
                *out = c;
                return NULL;
            }
        return ctl_status_new(
            CTL_EINVAL, "metadata.annotations[%s]: \"%s\" is not one of hpa, keda, external, none",
            keys[k], s);
    }
    return NULL;
}

static json_object *target_ref_new(const char *target)
{
    json_object *ref = json_object_new_object();
    put(ref, "apiVersion", jstr("apps/v1"));
    put(ref, "kind", jstr("Deployment"));
    put(ref, "name", jstr(target));
    return ref;
}

static json_object *hpa_spec_new(const struct metric *m, int64_t min, int64_t max,
                                 int64_t target_value, json_object *behavior, const char *target)
{
    json_object *sp = json_object_new_object(), *list = json_object_new_array(),
                *entry = json_object_new_object(), *tgt = json_object_new_object(),
                *src = json_object_new_object();
    put(sp, "scaleTargetRef", target_ref_new(target));
    put(sp, "minReplicas", jint(min));
    put(sp, "maxReplicas", jint(max));
    if (m->utilization) {
        put(entry, "type", jstr("Resource"));
        put(src, "name", jstr(m->name));
        put(tgt, "type", jstr("Utilization"));
        put(tgt, "averageUtilization", jint(target_value));
        put(src, "target", tgt);
        put(entry, "resource", src);
    } else {
        json_object *metric = json_object_new_object();
        char v[32];
        put(entry, "type", jstr("Pods"));
        put(metric, "name", jstr(m->pods));
        put(src, "metric", metric);
        snprintf(v, sizeof(v), "%" PRId64, target_value);
        put(tgt, "type", jstr("AverageValue"));
        put(tgt, "averageValue", jstr(v));
        put(src, "target", tgt);
        put(entry, "pods", src);
    }
    json_object_array_add(list, entry);
    put(sp, "metrics", list);
    if (behavior) put(sp, "behavior", jx_copy(behavior));
    return sp;
}

static json_object *keda_spec_new(const struct metric *m, int64_t min, int64_t max,
                                  int64_t target_value, json_object *behavior, const char *target,
                                  const char *ns, const char *name, const char *prometheus)
{
    json_object *sp = json_object_new_object(), *triggers = json_object_new_array(),
                *trig = json_object_new_object(), *md = json_object_new_object();
    char v[32], query[QUERY_MAX];
    snprintf(v, sizeof(v), "%" PRId64, target_value);
    put(sp, "scaleTargetRef", target_ref_new(target));
    put(sp, "minReplicaCount", jint(min));
    put(sp, "maxReplicaCount", jint(max));
    if (m->utilization) {
        put(trig, "type", jstr(m->name));
        put(trig, "metricType", jstr("Utilization"));
        put(md, "value", jstr(v));
    } else {
        put(trig, "type", jstr("prometheus"));
        put(md, "serverAddress", jstr(prometheus));
        snprintf(query, sizeof(query), m->query, ns, name);
        put(md, "query", jstr(query));
        put(md, "threshold", jstr(v));
    }
    put(trig, "metadata", md);
    json_object_array_add(triggers, trig);
    put(sp, "triggers", triggers);
    if (behavior) {
        json_object *adv = json_object_new_object(), *hpa = json_object_new_object();
        put(hpa, "behavior", jx_copy(behavior));
        put(adv, "horizontalPodAutoscalerConfig", hpa);
        put(sp, "advanced", adv);
    }
    return sp;
}

ctl_status *autoscale_plan_build(json_object *isvc, const autoscale_config *cfg, const char *target,
                                 autoscale_plan *out)
{
    ctl_status *st = NULL;
    const struct metric *m = NULL;
    int64_t min, max, tv;
#define P "spec.predictor."
    memset(out, 0, sizeof(*out));
    out->replicas = -1;
    json_object *md = jx_get(isvc, "metadata"), *pred = jx_get(jx_get(isvc, "spec"), "predictor"),
                *v, *behavior = NULL;
    json_object *jns = jx_get(md, "namespace"), *jname = jx_get(md, "name");
    if (!pred || !json_object_is_type(pred, json_type_object) || !jns || !jname || !target)
        return ctl_status_new(CTL_EINVAL,
                              "autoscale: InferenceService without metadata or spec.predictor");
    if ((st = class_parse(isvc, &out->cls))) goto out;
    if ((st = get_int(pred, P, "minReplicas", 0, INT32_MAX, 1, &min))) goto out;
    if ((st = get_int(pred, P, "maxReplicas", 0, INT32_MAX, 0, &max))) goto out;
    v = jx_get(pred, "scaleMetric");
    const char *metric =
        v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "cpu";
    if (v && !json_object_is_type(v, json_type_string)) {
        st = ctl_status_new(CTL_EINVAL, P "scaleMetric: must be a string");
        goto out;
    }
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]) && !m; i++)
        if (!strcmp(metrics[i].name, metric)) m = &metrics[i];
    if (!m) {
        st = ctl_status_new(
            CTL_EINVAL,
            P "scaleMetric: \"%s\" is not one of cpu, memory, rps, concurrency, queueDepth",
            metric);
        goto out;
    }
    if ((st = get_int(pred, P, "scaleTarget", 1, m->utilization ? 100 : INT32_MAX, m->dflt_target,
                      &tv)))
        goto out;
    if ((v = jx_get(pred, "autoScaling"))) {
        if (!json_object_is_type(v, json_type_object)) {
            st = ctl_status_new(CTL_EINVAL, P "autoScaling: must be an object");
            goto out;
        }
        behavior = jx_get(v, "behavior");
        if (behavior && !json_object_is_type(behavior, json_type_object)) {
            st = ctl_status_new(CTL_EINVAL, P "autoScaling.behavior: must be an object");
            goto out;
        }
    }
    out->scaling = autoscale_class_name(out->cls);
    switch (out->cls) {
    case AUTOSCALE_EXTERNAL:
    case AUTOSCALE_NONE:
        break; /* min/max/metric are not used: whoever owns replicas decides */
    case AUTOSCALE_HPA:
        if (min == 0) {
            st = ctl_status_new(
                CTL_EINVAL,
                P "minReplicas: 0 (scale to zero) needs the annotation " AUTOSCALE_ANNOTATION_CLASS
                  ": keda; the HorizontalPodAutoscaler cannot scale to zero (use 1, or keda)");
            goto out;
        }
        if (max == 0) max = min;
        if (max < min) {
            st = ctl_status_new(CTL_EINVAL,
                                P "maxReplicas: %" PRId64 " is less than minReplicas %" PRId64, max,
                                min);
            goto out;
        }
        if (min == max) {
            out->scaling = "fixed";
            out->replicas = min;
            break;
        }
        out->api_version = "autoscaling/v2";
        out->kind = "HorizontalPodAutoscaler";
        out->spec = hpa_spec_new(m, min, max, tv, behavior, target);
        break;
    case AUTOSCALE_KEDA:
        if (max == 0) max = min ? min : 1;
        if (max < min) {
            st = ctl_status_new(CTL_EINVAL,
                                P "maxReplicas: %" PRId64 " is less than minReplicas %" PRId64, max,
                                min);
            goto out;
        }
        if (min == 0 && m->utilization) {
            st = ctl_status_new(
                CTL_EINVAL,
                P "minReplicas: 0 (scale to zero) needs a scaleMetric other than %s: an idle "
                  "service has no %s utilization to wake it (use rps, concurrency or queueDepth)",
                m->name, m->name);
            goto out;
        }
        if (!m->utilization && (!cfg || !cfg->prometheus_address || !*cfg->prometheus_address)) {
            st = ctl_status_new(
                CTL_EINVAL,
                "autoscalerClass keda with scaleMetric %s needs Prometheus: kinfer-controller was "
                "started without --prometheus-address",
                m->name);
            goto out;
        }
        out->api_version = "keda.sh/v1alpha1";
        out->kind = "ScaledObject";
        out->spec =
            keda_spec_new(m, min, max, tv, behavior, target, json_object_get_string(jns),
                          json_object_get_string(jname), cfg ? cfg->prometheus_address : NULL);
        break;
    }
    if (out->kind && !out->spec) st = ctl_status_new(CTL_ENOMEM, "autoscale: out of memory");
#undef P
out:
    if (st) autoscale_plan_free(out);
    return st;
}

void autoscale_plan_free(autoscale_plan *p)
{
    if (!p) return;
    json_object_put(p->spec);
    memset(p, 0, sizeof(*p));
    p->replicas = -1;
}

/* ---- per-revision scaling, used while two revisions share traffic (canary.c) ---- */

int64_t autoscale_share(int64_t n, int w)
{
    int64_t r = (n * w + 50) / 100; /* rounded half up, without libm */
    return r < 1 ? 1 : r > n ? n : r;
}

int autoscale_is_scaler(const char *kind)
{
    return kind && (!strcmp(kind, "HorizontalPodAutoscaler") || !strcmp(kind, "ScaledObject"));
}

/* A ScaledObject's Prometheus queries (a sum over the model's series) restricted to pods matching
 * pod_re, so that a revision scales on its own load, not on the sum across both. */
void autoscale_scope_query(json_object *so, const char *model, const char *pod_re)
{
    json_object *tr = jx_get(jx_get(so, "spec"), "triggers");
    char needle[128], q[1024];
    snprintf(needle, sizeof(needle), "model=\"%s\"", model);
    for (size_t i = 0;
         tr && json_object_is_type(tr, json_type_array) && i < json_object_array_length(tr); i++) {
        json_object *md = jx_get(json_object_array_get_idx(tr, i), "metadata");
        const char *old = jx_str(md, "query"), *at = old ? strstr(old, needle) : NULL;
        if (!at) continue;
        at += strlen(needle);
        if (snprintf(q, sizeof(q), "%.*s,pod=~\"%s\"%s", (int)(at - old), old, pod_re, at) <
            (int)sizeof(q))
            json_object_object_add(md, "query", json_object_new_string(q));
    }
}

/* Replicas (fixed) or autoscaler bounds scaled to weight w, for routing none. */
void autoscale_scale_to_weight(json_object *o, int w)
{
    const char *kind = jx_str(o, "kind");
    json_object *sp = jx_get(o, "spec");
    if (!kind || !sp) return;
    if (!strcmp(kind, "Deployment") && jx_get(sp, "replicas"))
        json_object_object_add(
            sp, "replicas", json_object_new_int64(autoscale_share(jx_int(sp, "replicas", 1), w)));
    if (!strcmp(kind, "HorizontalPodAutoscaler")) {
        int64_t mn = autoscale_share(jx_int(sp, "minReplicas", 1), w),
                mx = autoscale_share(jx_int(sp, "maxReplicas", 1), w);
        json_object_object_add(sp, "minReplicas", json_object_new_int64(mn));
        json_object_object_add(sp, "maxReplicas", json_object_new_int64(mx < mn ? mn : mx));
    }
    if (!strcmp(kind, "ScaledObject")) { /* minReplicaCount 0 (scale to zero) stays 0 */
        int64_t mn0 = jx_int(sp, "minReplicaCount", 0), mn = mn0 ? autoscale_share(mn0, w) : 0;
        int64_t mx = autoscale_share(jx_int(sp, "maxReplicaCount", 1), w);
        json_object_object_add(sp, "minReplicaCount", json_object_new_int64(mn));
        json_object_object_add(sp, "maxReplicaCount", json_object_new_int64(mx < mn ? mn : mx));
    }
}
