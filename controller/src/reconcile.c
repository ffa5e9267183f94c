/*
 * reconcile: InferenceService -> desired children, as a pure function (see reconcile.h).
 *
 * Names: the Deployment and HPA are "<name>-predictor"; the Service is "<name>", so that the
 * status URL http://<name>.<namespace>.svc.cluster.local resolves. Defaults follow KServe's raw
 * deployment mode: minReplicas 1 (0 treated as 1: no scale to zero), maxReplicas 0/unset = min,
 * scaleMetric cpu, scaleTarget 80 (cpu, memory) / 200 (rps) / 100 (concurrency), batcher 32 and
 * 500 ms, container resources 1 CPU / 2Gi where unset.
 *
 * spec.replicas is set only when autoscaling is off (min == max). With an HPA the field is left
 * out of the apply, so kinfer's field manager does not own it and never fights the HPA or a
 * `kubectl scale`.
 *
 * The admission rules in the CRD already reject most bad specs; this code re-checks what it
 * relies on (types, required fields) because objects can predate a CRD change, and it must never
 * crash on them.
 */
#include "reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MODEL_DIR "/mnt/models"
#define PVC_MOUNT "/mnt/pvc"
#define SERVER_PORT 8080
#define CONTAINER_NAME "kinfer-server"

const char *const reconcile_child_kinds[][2] = {
    {"apps/v1", "Deployment"},
    {"v1", "Service"},
    {"autoscaling/v2", "HorizontalPodAutoscaler"},
    {NULL, NULL},
};

/* The parsed, defaulted spec: everything the builders need, borrowed from the isvc object. */
typedef struct spec {
    const char *image; /* from reconcile_config */
    const char *name, *ns, *uid, *storage_uri;
    int64_t generation;
    int64_t min_replicas, max_replicas;
    const char *scale_metric;
    int64_t scale_target;
    int64_t container_concurrency; /* 0 = none */
    int64_t timeout;               /* 0 = unset */
    int batcher;
    int64_t max_batch_size, max_latency_ms;
    const char *service_account;
    json_object *node_selector, *tolerations, *affinity, *resources, *env, *args;
} spec;

/* ---- small json builders; json-c allocation failures surface as NULL and are checked once ---- */

static json_object *jstr(const char *s) { return json_object_new_string(s); }
static json_object *jint(int64_t v) { return json_object_new_int64(v); }

static void put(json_object *o, const char *k, json_object *v) { json_object_object_add(o, k, v); }

/* A deep copy of a borrowed subtree (json-c 0.13+), so children never alias the isvc. */
static json_object *dup(json_object *src)
{
    json_object *dst = NULL;
    if (json_object_deep_copy(src, &dst, NULL) != 0) return NULL;
    return dst;
}

/* ---- spec parsing with precise errors ---- */

static const char *type_name(json_type t)
{
    switch (t) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double: return "a number";
    case json_type_int: return "an integer";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "unknown";
}

/* *out = obj[key], NULL when absent or JSON null; an error when present with another type.
 * path is the dotted path of obj, for the message ("spec.predictor."). */
static ctl_status *get_typed(json_object *obj, const char *path, const char *key, json_type want, json_object **out)
{
    json_object *v = NULL;
    *out = NULL;
    if (!obj || !json_object_object_get_ex(obj, key, &v) || !v) return NULL;
    if (!json_object_is_type(v, want))
        return ctl_status_new(CTL_EINVAL, "%s%s: must be %s, got %s", path, key, type_name(want),
                              type_name(json_object_get_type(v)));
    *out = v;
    return NULL;
}

static ctl_status *get_required(json_object *obj, const char *path, const char *key, json_type want,
                                json_object **out)
{
    ctl_status *st = get_typed(obj, path, key, want, out);
    if (!st && !*out) st = ctl_status_new(CTL_EINVAL, "%s%s: required", path, key);
    return st;
}

/* A non-empty string. */
static ctl_status *get_string(json_object *obj, const char *path, const char *key, int required, const char **out)
{
    json_object *v;
    ctl_status *st = required ? get_required(obj, path, key, json_type_string, &v)
                              : get_typed(obj, path, key, json_type_string, &v);
    *out = NULL;
    if (st || !v) return st;
    if (!json_object_get_string_len(v)) {
        if (required) return ctl_status_new(CTL_EINVAL, "%s%s: must not be empty", path, key);
        return NULL;
    }
    *out = json_object_get_string(v);
    return NULL;
}

/* An integer in [lo, hi], or dflt when absent. */
static ctl_status *get_int(json_object *obj, const char *path, const char *key, int64_t lo, int64_t hi, int64_t dflt,
                           int64_t *out)
{
    json_object *v;
    ctl_status *st = get_typed(obj, path, key, json_type_int, &v);
    *out = dflt;
    if (st || !v) return st;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return ctl_status_new(CTL_EINVAL, "%s%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", path, key,
                              x, lo, hi);
    *out = x;
    return NULL;
}

/* The schemes the CRD admits; a second line of defence for objects stored before a CRD change. */
static int uri_scheme_ok(const char *u)
{
    static const char *const ok[] = {"s3://", "gs://", "http://", "https://", "file:///", "pvc://"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strncmp(u, ok[i], strlen(ok[i])) && u[strlen(ok[i])]) return 1;
    return 0;
}

static ctl_status *spec_parse(json_object *isvc, spec *s)
{
    ctl_status *st = NULL;
    json_object *meta, *sp, *pred, *model, *fmt, *batcher, *v;
    const char *fmt_name;
    memset(s, 0, sizeof(*s));

    if (!isvc || !json_object_is_type(isvc, json_type_object))
        return ctl_status_new(CTL_EINVAL, "InferenceService: must be an object");
    if ((st = get_required(isvc, "", "metadata", json_type_object, &meta))) goto out;
    if ((st = get_string(meta, "metadata.", "name", 1, &s->name))) goto out;
    if ((st = get_string(meta, "metadata.", "namespace", 1, &s->ns))) goto out;
    if ((st = get_string(meta, "metadata.", "uid", 1, &s->uid))) goto out;
    if ((st = get_int(meta, "metadata.", "generation", 0, INT64_MAX, 0, &s->generation))) goto out;
    if (strlen(s->name) > 44) {
        st = ctl_status_new(CTL_EINVAL, "metadata.name: \"%s\" is longer than 44 characters", s->name);
        goto out;
    }

    if ((st = get_required(isvc, "", "spec", json_type_object, &sp))) goto out;
    if ((st = get_required(sp, "spec.", "predictor", json_type_object, &pred))) goto out;
#define P "spec.predictor."
    if ((st = get_int(pred, P, "minReplicas", 0, INT32_MAX, 1, &s->min_replicas))) goto out;
    if ((st = get_int(pred, P, "maxReplicas", 0, INT32_MAX, 0, &s->max_replicas))) goto out;
    if (s->min_replicas < 1) s->min_replicas = 1; /* raw mode: no scale to zero (KServe does the same) */
    if (s->max_replicas == 0) s->max_replicas = s->min_replicas;
    if (s->max_replicas < s->min_replicas) {
        st = ctl_status_new(CTL_EINVAL, P "maxReplicas: %" PRId64 " is less than minReplicas %" PRId64,
                            s->max_replicas, s->min_replicas);
        goto out;
    }
    if ((st = get_string(pred, P, "scaleMetric", 0, &s->scale_metric))) goto out;
    if (!s->scale_metric) s->scale_metric = "cpu";
    int util = !strcmp(s->scale_metric, "cpu") || !strcmp(s->scale_metric, "memory");
    int64_t dflt_target = util ? 80 : !strcmp(s->scale_metric, "rps") ? 200 : 100;
    if (!util && strcmp(s->scale_metric, "rps") && strcmp(s->scale_metric, "concurrency")) {
        st = ctl_status_new(CTL_EINVAL, P "scaleMetric: \"%s\" is not one of cpu, memory, rps, concurrency",
                            s->scale_metric);
        goto out;
    }
    if ((st = get_int(pred, P, "scaleTarget", 1, util ? 100 : INT32_MAX, dflt_target, &s->scale_target))) goto out;
    if ((st = get_int(pred, P, "canaryTrafficPercent", 0, 100, 100, &(int64_t){0}))) goto out;
    if ((st = get_int(pred, P, "containerConcurrency", 0, INT32_MAX, 0, &s->container_concurrency))) goto out;
    if ((st = get_int(pred, P, "timeout", 1, INT32_MAX, 0, &s->timeout))) goto out;

    if ((st = get_typed(pred, P, "batcher", json_type_object, &batcher))) goto out;
    s->batcher = batcher != NULL;
    if ((st = get_int(batcher, P "batcher.", "maxBatchSize", 1, INT32_MAX, 32, &s->max_batch_size))) goto out;
    if ((st = get_int(batcher, P "batcher.", "maxLatency", 1, 600000, 500, &s->max_latency_ms))) goto out;

    if ((st = get_string(pred, P, "serviceAccountName", 0, &s->service_account))) goto out;
    if ((st = get_typed(pred, P, "nodeSelector", json_type_object, &s->node_selector))) goto out;
    if ((st = get_typed(pred, P, "tolerations", json_type_array, &s->tolerations))) goto out;
    if ((st = get_typed(pred, P, "affinity", json_type_object, &s->affinity))) goto out;

    if ((st = get_required(pred, P, "model", json_type_object, &model))) goto out;
#define M P "model."
    if ((st = get_required(model, M, "modelFormat", json_type_object, &fmt))) goto out;
    if ((st = get_string(fmt, M "modelFormat.", "name", 1, &fmt_name))) goto out;
    if (strcasecmp(fmt_name, "onnx")) {
        st = ctl_status_new(CTL_EINVAL, M "modelFormat.name: \"%s\" is not supported: kinfer serves onnx models",
                            fmt_name);
        goto out;
    }
    if ((st = get_string(model, M, "storageUri", 1, &s->storage_uri))) goto out;
    if (!uri_scheme_ok(s->storage_uri)) {
        st = ctl_status_new(CTL_EINVAL,
                            M "storageUri: \"%s\" must start with s3://, gs://, http://, https://, file:/// or pvc://",
                            s->storage_uri);
        goto out;
    }
    if ((st = get_typed(model, M, "resources", json_type_object, &s->resources))) goto out;
    if ((st = get_typed(model, M, "env", json_type_array, &s->env))) goto out;
    if ((st = get_typed(model, M, "args", json_type_array, &s->args))) goto out;
    for (size_t i = 0; s->env && i < json_object_array_length(s->env); i++) {
        v = json_object_array_get_idx(s->env, i);
        const char *n;
        char path[64];
        snprintf(path, sizeof(path), M "env[%zu].", i);
        if (!json_object_is_type(v, json_type_object)) {
            st = ctl_status_new(CTL_EINVAL, M "env[%zu]: must be an object", i);
            goto out;
        }
        if ((st = get_string(v, path, "name", 1, &n))) goto out;
    }
    for (size_t i = 0; s->args && i < json_object_array_length(s->args); i++) {
        if (!json_object_is_type(json_object_array_get_idx(s->args, i), json_type_string)) {
            st = ctl_status_new(CTL_EINVAL, M "args[%zu]: must be a string", i);
            goto out;
        }
    }
    if (s->resources) {
        static const char *const keys[] = {"requests", "limits"};
        for (int k = 0; k < 2; k++) {
            json_object *m;
            if ((st = get_typed(s->resources, M "resources.", keys[k], json_type_object, &m))) goto out;
            if (!m) continue; /* json-c's foreach dereferences a NULL object (found by fuzz_reconcile) */
            json_object_object_foreach(m, rk, rv)
            {
                if (!json_object_is_type(rv, json_type_string) && !json_object_is_type(rv, json_type_int)) {
                    st = ctl_status_new(CTL_EINVAL, M "resources.%s.%s: must be a quantity (string or integer)",
                                        keys[k], rk);
                    goto out;
                }
            }
        }
    }
#undef M
#undef P
out:
    return st;
}

/* ---- builders ---- */

/* "<name>-predictor" into buf (names are at most 44 characters, checked by spec_parse). */
static const char *predictor_name(const spec *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s-predictor", s->name);
    return buf;
}

static json_object *labels_new(const spec *s, int selector_only)
{
    json_object *l = json_object_new_object();
    if (!selector_only) {
        put(l, "app.kubernetes.io/name", jstr("kinfer-server"));
        put(l, "app.kubernetes.io/instance", jstr(s->name));
        put(l, "app.kubernetes.io/component", jstr("predictor"));
        put(l, "app.kubernetes.io/part-of", jstr("kinfer"));
        put(l, "app.kubernetes.io/managed-by", jstr(RECONCILE_FIELD_MANAGER));
    }
    put(l, RECONCILE_LABEL_ISVC, jstr(s->name));
    put(l, "serving.kinfer.dev/component", jstr("predictor"));
    return l;
}

/* apiVersion, kind, metadata{name, namespace, labels, annotations, ownerReferences}. */
static json_object *object_new(const spec *s, const char *api_version, const char *kind, const char *name)
{
    json_object *o = json_object_new_object(), *md = json_object_new_object(), *owners = json_object_new_array(),
                *owner = json_object_new_object(), *ann = json_object_new_object();
    char gen[32];
    put(o, "apiVersion", jstr(api_version));
    put(o, "kind", jstr(kind));
    put(md, "name", jstr(name));
    put(md, "namespace", jstr(s->ns));
    put(md, "labels", labels_new(s, 0));
    /* Lets status_compute() tell whether this child was applied from the current spec. */
    snprintf(gen, sizeof(gen), "%" PRId64, s->generation);
    put(ann, "serving.kinfer.dev/generation", jstr(gen));
    put(md, "annotations", ann);
    put(owner, "apiVersion", jstr("serving.kinfer.dev/v1beta1"));
    put(owner, "kind", jstr("InferenceService"));
    put(owner, "name", jstr(s->name));
    put(owner, "uid", jstr(s->uid));
    put(owner, "controller", json_object_new_boolean(1));
    put(owner, "blockOwnerDeletion", json_object_new_boolean(1));
    json_object_array_add(owners, owner);
    put(md, "ownerReferences", owners);
    put(o, "metadata", md);
    return o;
}

static void args_add(json_object *args, const char *flag, const char *value)
{
    json_object_array_add(args, jstr(flag));
    json_object_array_add(args, jstr(value));
}

static void args_add_int(json_object *args, const char *flag, int64_t value)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, value);
    args_add(args, flag, buf);
}

/* KServe's defaults for whichever of requests/limits cpu/memory the user left out. */
static json_object *resources_new(const spec *s)
{
    static const char *const keys[] = {"requests", "limits"};
    json_object *r = s->resources ? dup(s->resources) : json_object_new_object();
    for (int k = 0; r && k < 2; k++) {
        json_object *m = NULL;
        if (!json_object_object_get_ex(r, keys[k], &m) || !m) {
            m = json_object_new_object();
            put(r, keys[k], m);
        }
        if (!json_object_object_get_ex(m, "cpu", NULL)) put(m, "cpu", jstr("1"));
        if (!json_object_object_get_ex(m, "memory", NULL)) put(m, "memory", jstr("2Gi"));
    }
    return r;
}

static json_object *probe_new(const char *path, int period, int failures)
{
    json_object *p = json_object_new_object(), *http = json_object_new_object();
    put(http, "path", jstr(path));
    put(http, "port", jstr("http"));
    put(p, "httpGet", http);
    put(p, "periodSeconds", jint(period));
    put(p, "timeoutSeconds", jint(1));
    put(p, "failureThreshold", jint(failures));
    return p;
}

static json_object *volume_new(const char *name, const char *source_kind, json_object *source)
{
    json_object *v = json_object_new_object();
    put(v, "name", jstr(name));
    put(v, source_kind, source);
    return v;
}

static json_object *mount_new(const char *name, const char *path, int read_only)
{
    json_object *m = json_object_new_object();
    put(m, "name", jstr(name));
    put(m, "mountPath", jstr(path));
    if (read_only) put(m, "readOnly", json_object_new_boolean(1));
    return m;
}

static json_object *container_new(const spec *s, json_object *mounts)
{
    json_object *c = json_object_new_object(), *args = json_object_new_array(), *env = json_object_new_array(),
                *ports = json_object_new_array(), *port = json_object_new_object();
    put(c, "name", jstr(CONTAINER_NAME));
    put(c, "image", jstr(s->image));
    if (!strncmp(s->storage_uri, "pvc://", 6)) {
        /* pvc://claim/path: the claim is mounted read-only at PVC_MOUNT; serve from the path. */
        const char *rest = strchr(s->storage_uri + 6, '/');
        char dir[4096];
        snprintf(dir, sizeof(dir), PVC_MOUNT "%s", rest ? rest : "");
        args_add(args, "--model-dir", dir);
    } else {
        args_add(args, "--model-uri", s->storage_uri);
        args_add(args, "--model-dir", MODEL_DIR);
    }
    args_add(args, "--model-name", s->name);
    args_add_int(args, "--port", SERVER_PORT);
    if (s->batcher) {
        args_add_int(args, "--max-batch-size", s->max_batch_size);
        args_add_int(args, "--max-queue-delay-us", s->max_latency_ms * 1000);
    }
    if (s->container_concurrency) args_add_int(args, "--max-queue-size", s->container_concurrency);
    for (size_t i = 0; s->args && i < json_object_array_length(s->args); i++)
        json_object_array_add(args, dup(json_object_array_get_idx(s->args, i)));
    put(c, "args", args);
    for (size_t i = 0; s->env && i < json_object_array_length(s->env); i++)
        json_object_array_add(env, dup(json_object_array_get_idx(s->env, i)));
    if (json_object_array_length(env)) put(c, "env", env);
    else json_object_put(env);
    put(port, "name", jstr("http"));
    put(port, "containerPort", jint(SERVER_PORT));
    put(port, "protocol", jstr("TCP"));
    json_object_array_add(ports, port);
    put(c, "ports", ports);
    put(c, "resources", resources_new(s));
    put(c, "readinessProbe", probe_new("/v2/health/ready", 5, 3));
    put(c, "livenessProbe", probe_new("/v2/health/live", 10, 6));
    put(c, "volumeMounts", mounts);
    return c;
}

static json_object *deployment_new(const spec *s)
{
    char name[64];
    json_object *d = object_new(s, "apps/v1", "Deployment", predictor_name(s, name, sizeof(name)));
    json_object *sp = json_object_new_object(), *sel = json_object_new_object(), *tmpl = json_object_new_object(),
                *tmd = json_object_new_object(), *pod = json_object_new_object(),
                *containers = json_object_new_array(), *volumes = json_object_new_array(),
                *mounts = json_object_new_array(), *src;

    int fixed = s->min_replicas == s->max_replicas;
    if (fixed) put(sp, "replicas", jint(s->min_replicas));
    put(json_object_object_get(json_object_object_get(d, "metadata"), "annotations"), RECONCILE_ANNOTATION_SCALING,
        jstr(fixed ? "fixed" : "hpa"));
    put(sel, "matchLabels", labels_new(s, 1));
    put(sp, "selector", sel);
    put(tmd, "labels", labels_new(s, 0));
    put(tmpl, "metadata", tmd);

    if (!strncmp(s->storage_uri, "pvc://", 6)) {
        const char *claim = s->storage_uri + 6, *slash = strchr(claim, '/');
        src = json_object_new_object();
        put(src, "claimName", json_object_new_string_len(claim, slash ? (int)(slash - claim) : (int)strlen(claim)));
        put(src, "readOnly", json_object_new_boolean(1));
        json_object_array_add(volumes, volume_new("model-pvc", "persistentVolumeClaim", src));
        json_object_array_add(mounts, mount_new("model-pvc", PVC_MOUNT, 1));
    } else {
        json_object_array_add(volumes, volume_new("model-dir", "emptyDir", json_object_new_object()));
        json_object_array_add(mounts, mount_new("model-dir", MODEL_DIR, 0));
    }
    json_object_array_add(containers, container_new(s, mounts));
    put(pod, "containers", containers);
    put(pod, "volumes", volumes);
    if (s->service_account) put(pod, "serviceAccountName", jstr(s->service_account));
    if (s->node_selector) put(pod, "nodeSelector", dup(s->node_selector));
    if (s->tolerations) put(pod, "tolerations", dup(s->tolerations));
    if (s->affinity) put(pod, "affinity", dup(s->affinity));
    if (s->timeout) put(pod, "terminationGracePeriodSeconds", jint(s->timeout));
    put(tmpl, "spec", pod);
    put(sp, "template", tmpl);
    put(d, "spec", sp);
    return d;
}

static json_object *service_new(const spec *s)
{
    json_object *svc = object_new(s, "v1", "Service", s->name);
    json_object *sp = json_object_new_object(), *ports = json_object_new_array(), *port = json_object_new_object();
    put(sp, "type", jstr("ClusterIP"));
    put(sp, "selector", labels_new(s, 1));
    put(port, "name", jstr("http"));
    put(port, "port", jint(80));
    put(port, "targetPort", jstr("http"));
    put(port, "protocol", jstr("TCP"));
    json_object_array_add(ports, port);
    put(sp, "ports", ports);
    put(svc, "spec", sp);
    return svc;
}

static json_object *hpa_new(const spec *s)
{
    char name[64];
    json_object *h = object_new(s, "autoscaling/v2", "HorizontalPodAutoscaler", predictor_name(s, name, sizeof(name)));
    json_object *sp = json_object_new_object(), *ref = json_object_new_object(), *metrics = json_object_new_array(),
                *m = json_object_new_object(), *target = json_object_new_object(), *src = json_object_new_object();
    put(ref, "apiVersion", jstr("apps/v1"));
    put(ref, "kind", jstr("Deployment"));
    put(ref, "name", jstr(name));
    put(sp, "scaleTargetRef", ref);
    put(sp, "minReplicas", jint(s->min_replicas));
    put(sp, "maxReplicas", jint(s->max_replicas));
    if (!strcmp(s->scale_metric, "cpu") || !strcmp(s->scale_metric, "memory")) {
        put(m, "type", jstr("Resource"));
        put(src, "name", jstr(s->scale_metric));
        put(target, "type", jstr("Utilization"));
        put(target, "averageUtilization", jint(s->scale_target));
        put(src, "target", target);
        put(m, "resource", src);
    } else {
        json_object *metric = json_object_new_object();
        char v[32];
        put(m, "type", jstr("Pods"));
        put(metric, "name",
            jstr(!strcmp(s->scale_metric, "rps") ? "kinfer_requests_per_second" : "kinfer_inflight_requests"));
        put(src, "metric", metric);
        snprintf(v, sizeof(v), "%" PRId64, s->scale_target);
        put(target, "type", jstr("AverageValue"));
        put(target, "averageValue", jstr(v));
        put(src, "target", target);
        put(m, "pods", src);
    }
    json_object_array_add(metrics, m);
    put(sp, "metrics", metrics);
    put(h, "spec", sp);
    return h;
}

ctl_status *reconcile_desired(json_object *isvc, const reconcile_config *cfg, json_object **children)
{
    ctl_status *st = NULL;
    json_object *out = NULL;
    spec s;
    *children = NULL;
    if (!cfg || !cfg->runtime_image || !*cfg->runtime_image) {
        st = ctl_status_new(CTL_EINVAL, "reconcile: runtime image not configured");
        goto out;
    }
    if ((st = spec_parse(isvc, &s))) goto out;
    s.image = cfg->runtime_image;
    out = json_object_new_array();
    if (!out) goto nomem;
    if (json_object_array_add(out, deployment_new(&s)) || json_object_array_add(out, service_new(&s))) goto nomem;
    if (s.max_replicas > s.min_replicas && json_object_array_add(out, hpa_new(&s))) goto nomem;
    *children = out;
    out = NULL;
    goto out;
nomem:
    st = ctl_status_new(CTL_ENOMEM, "reconcile: out of memory building children");
out:
    json_object_put(out);
    return st;
}

ctl_status *reconcile_handover(json_object *desired_deployment, json_object *live_deployment, json_object **patch)
{
    json_object *dspec = NULL, *lmeta = NULL, *lspec = NULL, *ann = NULL, *v = NULL, *dmeta = NULL, *name = NULL,
                *ns = NULL, *replicas = NULL;
    *patch = NULL;
    if (!desired_deployment || !json_object_is_type(desired_deployment, json_type_object))
        return ctl_status_new(CTL_EINVAL, "reconcile_handover: no desired Deployment");
    if (!live_deployment) return NULL;
    json_object_object_get_ex(desired_deployment, "spec", &dspec);
    if (dspec && json_object_object_get_ex(dspec, "replicas", NULL)) return NULL; /* kinfer keeps owning it */
    json_object_object_get_ex(live_deployment, "metadata", &lmeta);
    json_object_object_get_ex(lmeta, "annotations", &ann);
    if (json_object_object_get_ex(ann, RECONCILE_ANNOTATION_SCALING, &v) && v &&
        !strcmp(json_object_get_string(v), "hpa"))
        return NULL; /* already handed over */
    if (!json_object_object_get_ex(live_deployment, "spec", &lspec) ||
        !json_object_object_get_ex(lspec, "replicas", &replicas) || !json_object_is_type(replicas, json_type_int))
        return NULL; /* nothing to keep */
    json_object_object_get_ex(desired_deployment, "metadata", &dmeta);
    if (!json_object_object_get_ex(dmeta, "name", &name) || !json_object_object_get_ex(dmeta, "namespace", &ns))
        return ctl_status_new(CTL_EINVAL, "reconcile_handover: desired Deployment without name and namespace");
    json_object *p = json_object_new_object(), *md = json_object_new_object(), *sp = json_object_new_object();
    put(p, "apiVersion", jstr("apps/v1"));
    put(p, "kind", jstr("Deployment"));
    put(md, "name", json_object_get(name));
    put(md, "namespace", json_object_get(ns));
    put(p, "metadata", md);
    put(sp, "replicas", jint(json_object_get_int64(replicas)));
    put(p, "spec", sp);
    *patch = p;
    return NULL;
}
