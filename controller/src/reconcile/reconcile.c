/*
 * reconcile: InferenceService -> desired children, as a pure function (see reconcile.h).
 *
 * Names: the Deployment and its autoscaler (HPA or KEDA ScaledObject) are "<name>-predictor"; the
 * Service is "<name>", so that the status URL http://<name>.<namespace>.svc.cluster.local
 * resolves. The pod template is podspec.c's; who owns replicas and the autoscaler object are
 * autoscale.c's (docs/autoscaling.md).
 *
 * spec.replicas is set only when autoscale.c says "fixed" (hpa class, min == max). Otherwise the
 * field is left out of the apply, so kinfer's field manager does not own it and never fights the
 * HPA, KEDA or a `kubectl scale`.
 *
 * The admission rules in the CRD already reject most bad specs; this code re-checks what it
 * relies on (types, required fields) because objects can predate a CRD change, and it must never
 * crash on them.
 */
#include "reconcile.h"
#include "../common/jsonx.h"

#include "autoscale.h"
#include "podspec.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *const reconcile_child_kinds[][2] = {
    {"apps/v1", "Deployment"},
    {"v1", "Service"},
    {"autoscaling/v2", "HorizontalPodAutoscaler"},
    {"keda.sh/v1alpha1", "ScaledObject"},
    {NULL, NULL},
};

/* The parsed, defaulted spec: everything the builders need, borrowed from the isvc object. */
typedef struct spec {
    const char *image; /* from reconcile_config */
    const char *name, *ns, *uid, *storage_uri;
    int64_t generation;
    json_object *isvc;             /* the whole object, for podspec.c and autoscale.c */
    int64_t container_concurrency; /* 0 = none */
    int64_t timeout;               /* 0 = unset */
    int batcher;
    int64_t max_batch_size, max_latency_ms;
    const char *service_account;
    json_object *node_selector, *tolerations, *affinity, *resources, *env, *args;
} spec;

/* ---- small json builders; json-c allocation failures surface as NULL and are checked once ---- */

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

/* ---- spec parsing with precise errors ---- */

static const char *type_name(json_type t)
{
    switch (t) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a number";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "unknown";
}

/* *out = obj[key], NULL when absent or JSON null; an error when present with another type.
 * path is the dotted path of obj, for the message ("spec.predictor."). */
static ctl_status *get_typed(json_object *obj, const char *path, const char *key, json_type want,
                             json_object **out)
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
static ctl_status *get_string(json_object *obj, const char *path, const char *key, int required,
                              const char **out)
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
static ctl_status *get_int(json_object *obj, const char *path, const char *key, int64_t lo,
                           int64_t hi, int64_t dflt, int64_t *out)
{
    json_object *v;
    ctl_status *st = get_typed(obj, path, key, json_type_int, &v);
    *out = dflt;
    if (st || !v) return st;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return ctl_status_new(CTL_EINVAL,
                              "%s%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", path,
                              key, x, lo, hi);
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
    s->isvc = isvc;

    if (!isvc || !json_object_is_type(isvc, json_type_object))
        return ctl_status_new(CTL_EINVAL, "InferenceService: must be an object");
    if ((st = get_required(isvc, "", "metadata", json_type_object, &meta))) goto out;
    if ((st = get_string(meta, "metadata.", "name", 1, &s->name))) goto out;
    if ((st = get_string(meta, "metadata.", "namespace", 1, &s->ns))) goto out;
    if ((st = get_string(meta, "metadata.", "uid", 1, &s->uid))) goto out;
    if ((st = get_int(meta, "metadata.", "generation", 0, INT64_MAX, 0, &s->generation))) goto out;
    if (strlen(s->name) > 44) {
        st = ctl_status_new(CTL_EINVAL, "metadata.name: \"%s\" is longer than 44 characters",
                            s->name);
        goto out;
    }

    if ((st = get_required(isvc, "", "spec", json_type_object, &sp))) goto out;
    if ((st = get_required(sp, "spec.", "predictor", json_type_object, &pred))) goto out;
#define P "spec.predictor."
    if ((st = get_int(pred, P, "canaryTrafficPercent", 0, 100, 100, &(int64_t){0}))) goto out;
    if ((st = get_int(pred, P, "containerConcurrency", 0, INT32_MAX, 0, &s->container_concurrency)))
        goto out;
    if ((st = get_int(pred, P, "timeout", 1, INT32_MAX, 0, &s->timeout))) goto out;

    if ((st = get_typed(pred, P, "batcher", json_type_object, &batcher))) goto out;
    s->batcher = batcher != NULL;
    if ((st = get_int(batcher, P "batcher.", "maxBatchSize", 1, INT32_MAX, 32, &s->max_batch_size)))
        goto out;
    if ((st = get_int(batcher, P "batcher.", "maxLatency", 1, 600000, 500, &s->max_latency_ms)))
        goto out;

    if ((st = get_string(pred, P, "serviceAccountName", 0, &s->service_account))) goto out;
    if ((st = get_typed(pred, P, "nodeSelector", json_type_object, &s->node_selector))) goto out;
    if ((st = get_typed(pred, P, "tolerations", json_type_array, &s->tolerations))) goto out;
    if ((st = get_typed(pred, P, "affinity", json_type_object, &s->affinity))) goto out;

    if ((st = get_required(pred, P, "model", json_type_object, &model))) goto out;
#define M P "model."
    if ((st = get_required(model, M, "modelFormat", json_type_object, &fmt))) goto out;
    if ((st = get_string(fmt, M "modelFormat.", "name", 1, &fmt_name))) goto out;
    if (strcasecmp(fmt_name, "onnx")) {
        st = ctl_status_new(
            CTL_EINVAL, M "modelFormat.name: \"%s\" is not supported: kinfer serves onnx models",
            fmt_name);
        goto out;
    }
    if ((st = get_string(model, M, "storageUri", 1, &s->storage_uri))) goto out;
    if (!uri_scheme_ok(s->storage_uri)) {
        st = ctl_status_new(CTL_EINVAL,
                            M "storageUri: \"%s\" must start with s3://, gs://, http://, https://, "
                              "file:/// or pvc://",
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
            if ((st = get_typed(s->resources, M "resources.", keys[k], json_type_object, &m)))
                goto out;
            if (!m)
                continue; /* json-c's foreach dereferences a NULL object (found by fuzz_reconcile)
                           */
            json_object_object_foreach(m, rk, rv)
            {
                if (!json_object_is_type(rv, json_type_string) &&
                    !json_object_is_type(rv, json_type_int)) {
                    st = ctl_status_new(CTL_EINVAL,
                                        M "resources.%s.%s: must be a quantity (string or integer)",
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
static json_object *object_new(const spec *s, const char *api_version, const char *kind,
                               const char *name)
{
    json_object *o = json_object_new_object(), *md = json_object_new_object(),
                *owners = json_object_new_array(), *owner = json_object_new_object(),
                *ann = json_object_new_object();
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

/* The Deployment: selector, replicas and scaling annotation from the autoscale plan, and the pod
 * template from podspec_build() (tmpl is consumed). */
static json_object *deployment_new(const spec *s, const autoscale_plan *plan, json_object *tmpl)
{
    char name[64];
    json_object *d = object_new(s, "apps/v1", "Deployment", predictor_name(s, name, sizeof(name)));
    json_object *sp = json_object_new_object(), *sel = json_object_new_object(), *tmd = NULL;

    if (plan->replicas >= 0) put(sp, "replicas", jint(plan->replicas));
    put(json_object_object_get(json_object_object_get(d, "metadata"), "annotations"),
        RECONCILE_ANNOTATION_SCALING, jstr(plan->scaling));
    put(sel, "matchLabels", labels_new(s, 1));
    put(sp, "selector", sel);
    if (!json_object_object_get_ex(tmpl, "metadata", &tmd) || !tmd) {
        tmd = json_object_new_object();
        put(tmpl, "metadata", tmd);
    }
    put(tmd, "labels", labels_new(s, 0));
    put(sp, "template", tmpl);
    put(d, "spec", sp);
    return d;
}

static json_object *service_new(const spec *s)
{
    json_object *svc = object_new(s, "v1", "Service", s->name);
    json_object *sp = json_object_new_object(), *ports = json_object_new_array(),
                *port = json_object_new_object();
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

/* The HPA or KEDA ScaledObject of the plan (its spec is copied). */
static json_object *autoscaler_new(const spec *s, const autoscale_plan *plan)
{
    char name[64];
    json_object *o =
        object_new(s, plan->api_version, plan->kind, predictor_name(s, name, sizeof(name)));
    put(o, "spec", jx_copy(plan->spec));
    return o;
}

ctl_status *reconcile_desired(json_object *isvc, const reconcile_config *cfg,
                              json_object **children)
{
    ctl_status *st = NULL;
    json_object *out = NULL, *tmpl = NULL;
    autoscale_plan plan = {.replicas = -1};
    spec s;
    char name[64];
    *children = NULL;
    if (!cfg || !cfg->runtime_image || !*cfg->runtime_image) {
        st = ctl_status_new(CTL_EINVAL, "reconcile: runtime image not configured");
        goto out;
    }
    if ((st = spec_parse(isvc, &s))) goto out;
    s.image = cfg->runtime_image;
    if ((st = autoscale_plan_build(
             isvc, &(autoscale_config){.prometheus_address = cfg->prometheus_address},
             predictor_name(&s, name, sizeof(name)), &plan)))
        goto out;
    if ((st = podspec_build(isvc, &(podspec_config){.image = cfg->runtime_image}, &tmpl))) goto out;
    out = json_object_new_array();
    if (!out) goto nomem;
    if (json_object_array_add(out, deployment_new(&s, &plan, tmpl))) goto nomem;
    tmpl = NULL;
    if (json_object_array_add(out, service_new(&s))) goto nomem;
    if (plan.kind && json_object_array_add(out, autoscaler_new(&s, &plan))) goto nomem;
    *children = out;
    out = NULL;
    goto out;
nomem:
    st = ctl_status_new(CTL_ENOMEM, "reconcile: out of memory building children");
out:
    json_object_put(out);
    json_object_put(tmpl);
    autoscale_plan_free(&plan);
    return st;
}

ctl_status *reconcile_handover(json_object *desired_deployment, json_object *live_deployment,
                               json_object **patch)
{
    json_object *dspec = NULL, *lmeta = NULL, *lspec = NULL, *ann = NULL, *v = NULL, *dmeta = NULL,
                *name = NULL, *ns = NULL, *replicas = NULL;
    *patch = NULL;
    if (!desired_deployment || !json_object_is_type(desired_deployment, json_type_object))
        return ctl_status_new(CTL_EINVAL, "reconcile_handover: no desired Deployment");
    if (!live_deployment) return NULL;
    json_object_object_get_ex(desired_deployment, "spec", &dspec);
    if (dspec && json_object_object_get_ex(dspec, "replicas", NULL))
        return NULL; /* kinfer keeps owning it */
    json_object_object_get_ex(live_deployment, "metadata", &lmeta);
    json_object_object_get_ex(lmeta, "annotations", &ann);
    if (json_object_object_get_ex(ann, RECONCILE_ANNOTATION_SCALING, &v) && v &&
        strcmp(json_object_get_string(v), "fixed"))
        return NULL; /* already handed over (to the HPA, KEDA or the user) */
    if (!json_object_object_get_ex(live_deployment, "spec", &lspec) ||
        !json_object_object_get_ex(lspec, "replicas", &replicas) ||
        !json_object_is_type(replicas, json_type_int))
        return NULL; /* nothing to keep */
    json_object_object_get_ex(desired_deployment, "metadata", &dmeta);
    if (!json_object_object_get_ex(dmeta, "name", &name) ||
        !json_object_object_get_ex(dmeta, "namespace", &ns))
        return ctl_status_new(CTL_EINVAL,
                              "reconcile_handover: desired Deployment without name and namespace");
    json_object *p = json_object_new_object(), *md = json_object_new_object(),
                *sp = json_object_new_object();
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

char *reconcile_owner_index(json_object *obj)
{
    json_object *md = jx_get(obj, "metadata"), *refs = jx_get(md, "ownerReferences");
    const char *ns = jx_str(md, "namespace");
    if (!ns || !refs || !json_object_is_type(refs, json_type_array)) return NULL;
    for (size_t i = 0; i < json_object_array_length(refs); i++) {
        json_object *r = json_object_array_get_idx(refs, i), *ctl = jx_get(r, "controller");
        const char *kind = jx_str(r, "kind"), *av = jx_str(r, "apiVersion"),
                   *name = jx_str(r, "name");
        if (ctl && json_object_get_boolean(ctl) && kind && !strcmp(kind, "InferenceService") &&
            av && !strncmp(av, "serving.kinfer.dev/", 19) && name) {
            char *k = NULL;
            return asprintf(&k, "%s/%s", ns, name) < 0 ? NULL : k;
        }
    }
    return NULL;
}
