/*
 * podspec: the predictor pod template (see podspec.h).
 *
 * Layout of a pod:
 *   storage-initializer  (init, not for pvc://) `kinfer-server fetch URI /mnt/models` into the
 *                        emptyDir "model-dir"; the only container that sees storage credentials
 *                        (model.storageSecretName as envFrom, and model.env entries named AWS_* or
 *                        GOOGLE_*, which kinfer-server itself read before the init container
 * existed). kinfer-server        serves --model-dir /mnt/models (mounted read-only), or the PVC's
 * path under /mnt/pvc for pvc://claim/path (no init container, no copy). Both run as the image's
 * user 65532, non-root, read-only root file system, no privilege escalation, every capability
 * dropped, seccomp RuntimeDefault: the "restricted" Pod Security Standard. /tmp is an emptyDir
 * because the root file system is read-only. The service account token is not mounted unless
 * spec.predictor.automountServiceAccountToken is true: kinfer-server never talks to the API server.
 *
 * kinfer-server gets --device cuda when the limits ask for nvidia.com/gpu or a MIG slice, and the
 * pod then tolerates the nvidia.com/gpu taint GPU node pools carry (unless the user already does).
 */
#include "podspec.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Storage initializer resources: KServe's defaults. Fetching is I/O bound. */
#define INIT_CPU_REQUEST "100m"
#define INIT_MEM_REQUEST "100Mi"
#define INIT_CPU_LIMIT   "1"
#define INIT_MEM_LIMIT   "1Gi"

typedef struct pod_in {
    const char *name, *storage_uri, *storage_secret, *service_account, *priority_class;
    int batcher, automount_token;
    int64_t max_batch_size, max_latency_ms, container_concurrency, timeout;
    json_object *resources, *env, *args, *node_selector, *tolerations, *affinity;
} pod_in;

static json_object *jstr(const char *s)
{
    return json_object_new_string(s);
}
static json_object *jint(int64_t v)
{
    return json_object_new_int64(v);
}
static json_object *jbool(int b)
{
    return json_object_new_boolean(b);
}
static void put(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, v);
}

/* obj[key] when present, not null and of type want (else NULL, or an error when mistyped). */
static ctl_status *get(json_object *obj, const char *path, const char *key, json_type want,
                       json_object **out)
{
    json_object *v = NULL;
    *out = NULL;
    if (!obj || !json_object_object_get_ex(obj, key, &v) || !v) return NULL;
    if (!json_object_is_type(v, want))
        return ctl_status_new(CTL_EINVAL, "%s%s: has the wrong type (%s expected)", path, key,
                              want == json_type_string    ? "a string"
                              : want == json_type_int     ? "an integer"
                              : want == json_type_boolean ? "a boolean"
                              : want == json_type_array   ? "an array"
                                                          : "an object");
    *out = v;
    return NULL;
}

static ctl_status *get_str(json_object *obj, const char *path, const char *key, const char **out)
{
    json_object *v;
    ctl_status *st = get(obj, path, key, json_type_string, &v);
    *out = v && json_object_get_string_len(v) ? json_object_get_string(v) : NULL;
    return st;
}

static ctl_status *get_int(json_object *obj, const char *path, const char *key, int64_t dflt,
                           int64_t *out)
{
    json_object *v;
    ctl_status *st = get(obj, path, key, json_type_int, &v);
    *out = v ? json_object_get_int64(v) : dflt;
    return st;
}

int podspec_is_gpu_resource(const char *name)
{
    return name &&
           (!strcmp(name, "nvidia.com/gpu") || (!strncmp(name, "nvidia.com/mig-", 15) && name[15]));
}

/* A DNS-1123 subdomain (Secret and PriorityClass names). */
static int dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.') return 0;
        if ((i == 0 || i == n - 1) && !alnum) return 0;
    }
    return 1;
}

static ctl_status *pod_parse(json_object *isvc, pod_in *p)
{
    ctl_status *st = NULL;
    json_object *md, *sp, *pred, *model, *batcher, *v;
    memset(p, 0, sizeof(*p));
#define P "spec.predictor."
#define M P "model."
    if ((st = get(isvc, "", "metadata", json_type_object, &md))) return st;
    if ((st = get_str(md, "metadata.", "name", &p->name))) return st;
    if ((st = get(isvc, "", "spec", json_type_object, &sp))) return st;
    if ((st = get(sp, "spec.", "predictor", json_type_object, &pred))) return st;
    if ((st = get(pred, P, "model", json_type_object, &model))) return st;
    if ((st = get_str(model, M, "storageUri", &p->storage_uri))) return st;
    if (!p->name || !p->storage_uri)
        return ctl_status_new(CTL_EINVAL, "%s: required",
                              !p->name ? "metadata.name" : M "storageUri");
    if ((st = get_str(model, M, "storageSecretName", &p->storage_secret))) return st;
    if (p->storage_secret && !dns_subdomain(p->storage_secret))
        return ctl_status_new(CTL_EINVAL, M "storageSecretName: \"%s\" is not a valid Secret name",
                              p->storage_secret);
    if ((st = get(model, M, "resources", json_type_object, &p->resources))) return st;
    if ((st = get(model, M, "env", json_type_array, &p->env))) return st;
    if ((st = get(model, M, "args", json_type_array, &p->args))) return st;
    if ((st = get(pred, P, "batcher", json_type_object, &batcher))) return st;
    p->batcher = batcher != NULL;
    if ((st = get_int(batcher, P "batcher.", "maxBatchSize", 32, &p->max_batch_size))) return st;
    if ((st = get_int(batcher, P "batcher.", "maxLatency", 500, &p->max_latency_ms))) return st;
    if ((st = get_int(pred, P, "containerConcurrency", 0, &p->container_concurrency))) return st;
    if ((st = get_int(pred, P, "timeout", 0, &p->timeout))) return st;
    if ((st = get_str(pred, P, "serviceAccountName", &p->service_account))) return st;
    if ((st = get_str(pred, P, "priorityClassName", &p->priority_class))) return st;
    if (p->priority_class && !dns_subdomain(p->priority_class))
        return ctl_status_new(CTL_EINVAL,
                              P "priorityClassName: \"%s\" is not a valid PriorityClass name",
                              p->priority_class);
    if ((st = get(pred, P, "automountServiceAccountToken", json_type_boolean, &v))) return st;
    p->automount_token = v && json_object_get_boolean(v);
    if ((st = get(pred, P, "nodeSelector", json_type_object, &p->node_selector))) return st;
    if ((st = get(pred, P, "tolerations", json_type_array, &p->tolerations))) return st;
    if ((st = get(pred, P, "affinity", json_type_object, &p->affinity))) return st;
    if (p->resources) {
        /* Kubernetes takes extended resources (GPUs) from limits only; requests alone are refused
         * at pod creation, far from the spec that caused it. Say so here. */
        json_object *req = NULL, *lim = NULL;
        json_object_object_get_ex(p->resources, "requests", &req);
        json_object_object_get_ex(p->resources, "limits", &lim);
        if (req && json_object_is_type(req, json_type_object)) {
            json_object_object_foreach(req, k, val)
            {
                (void)val;
                if (podspec_is_gpu_resource(k) &&
                    !(lim && json_object_is_type(lim, json_type_object) &&
                      json_object_object_get_ex(lim, k, NULL)))
                    return ctl_status_new(
                        CTL_EINVAL,
                        M "resources.requests.%s: GPUs must be set in limits (requests may only "
                          "repeat the same value)",
                        k);
            }
        }
    }
#undef M
#undef P
    return NULL;
}

static int wants_gpu(const pod_in *p)
{
    json_object *lim = NULL;
    if (!p->resources || !json_object_object_get_ex(p->resources, "limits", &lim) ||
        !json_object_is_type(lim, json_type_object))
        return 0;
    json_object_object_foreach(lim, k, v)
    {
        (void)v;
        if (podspec_is_gpu_resource(k)) return 1;
    }
    return 0;
}

/* Seconds the kinfer-server container sleeps in preStop before it gets SIGTERM. A terminating
 * pod leaves the Service's EndpointSlices while it sleeps, so no new connection is still on its
 * way (or in the kernel's accept queue, where closing the listener would reset it) when the
 * server closes its port. 5 s, or half a grace period shorter than 10 s; the server's own
 * --grace-period-s is what is left of the pod's grace after the sleep. */
static int64_t prestop_sleep_s(int64_t grace)
{
    return grace >= 10 ? 5 : grace / 2;
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

/* A Kubernetes quantity ("100m", "2Gi", "1.5", "1e3", or a JSON integer) as a double; -1 when it
 * does not parse. Only used to keep defaults consistent with the user's values. */
static double quantity(json_object *q)
{
    static const struct {
        const char *suffix;
        double mult;
    } sfx[] = {{"Ki", 1024.0},
               {"Mi", 1048576.0},
               {"Gi", 1073741824.0},
               {"Ti", 1099511627776.0},
               {"Pi", 1125899906842624.0},
               {"Ei", 1152921504606846976.0},
               {"m", 1e-3},
               {"k", 1e3},
               {"M", 1e6},
               {"G", 1e9},
               {"T", 1e12},
               {"P", 1e15},
               {"E", 1e18},
               {"", 1}};
    if (json_object_is_type(q, json_type_int)) return (double)json_object_get_int64(q);
    if (!json_object_is_type(q, json_type_string)) return -1;
    const char *str = json_object_get_string(q);
    char *end = NULL;
    double v = strtod(str, &end);
    if (end == str || v < 0) return -1;
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (!strcmp(end, sfx[i].suffix)) return v * sfx[i].mult;
    return -1;
}

/* KServe's defaults (1 CPU, 2Gi) for whichever of requests/limits cpu/memory the user left out,
 * except that a defaulted request never exceeds the user's limit (it takes the limit, as Kubernetes
 * itself would) and a defaulted limit is never below the user's request (it takes the request):
 * either would make the API server refuse the Deployment. */
static json_object *resources_new(const pod_in *p)
{
    static const char *const names[] = {"cpu", "memory"}, *const dflt[] = {"1", "2Gi"};
    json_object *r = p->resources ? jx_copy(p->resources) : json_object_new_object(), *req = NULL,
                *lim = NULL;
    if (!r) return NULL;
    if (!json_object_object_get_ex(r, "requests", &req) || !req)
        put(r, "requests", req = json_object_new_object());
    if (!json_object_object_get_ex(r, "limits", &lim) || !lim)
        put(r, "limits", lim = json_object_new_object());
    for (int k = 0; k < 2; k++) {
        json_object *rq = NULL, *lm = NULL, *d = jstr(dflt[k]);
        int has_rq = json_object_object_get_ex(req, names[k], &rq),
            has_lm = json_object_object_get_ex(lim, names[k], &lm);
        double dv = quantity(d);
        if (!has_rq) {
            double lv = has_lm ? quantity(lm) : -1;
            put(req, names[k], has_lm && (lv < 0 || lv < dv) ? jx_copy(lm) : jx_copy(d));
        }
        if (!has_lm) {
            double rv = has_rq ? quantity(rq) : -1;
            put(lim, names[k], has_rq && (rv < 0 || rv > dv) ? jx_copy(rq) : jx_copy(d));
        }
        json_object_put(d);
    }
    return r;
}

static json_object *init_resources_new(void)
{
    json_object *r = json_object_new_object(), *req = json_object_new_object(),
                *lim = json_object_new_object();
    put(req, "cpu", jstr(INIT_CPU_REQUEST));
    put(req, "memory", jstr(INIT_MEM_REQUEST));
    put(lim, "cpu", jstr(INIT_CPU_LIMIT));
    put(lim, "memory", jstr(INIT_MEM_LIMIT));
    put(r, "requests", req);
    put(r, "limits", lim);
    return r;
}

static json_object *probe_new(const char *path, int period, int failures)
{
    json_object *p = json_object_new_object(), *http = json_object_new_object();
    put(http, "path", jstr(path));
    put(http, "port", jint(PODSPEC_PORT));
    put(p, "httpGet", http);
    put(p, "periodSeconds", jint(period));
    put(p, "timeoutSeconds", jint(1));
    put(p, "failureThreshold", jint(failures));
    return p;
}

/* The container-level half of the restricted profile (the pod level sets user and seccomp). */
static json_object *container_security_new(void)
{
    json_object *sc = json_object_new_object(), *caps = json_object_new_object(),
                *drop = json_object_new_array();
    put(sc, "runAsNonRoot", jbool(1));
    put(sc, "runAsUser", jint(PODSPEC_UID));
    put(sc, "runAsGroup", jint(PODSPEC_UID));
    put(sc, "allowPrivilegeEscalation", jbool(0));
    put(sc, "readOnlyRootFilesystem", jbool(1));
    json_object_array_add(drop, jstr("ALL"));
    put(caps, "drop", drop);
    put(sc, "capabilities", caps);
    return sc;
}

static json_object *pod_security_new(void)
{
    json_object *sc = json_object_new_object(), *seccomp = json_object_new_object();
    put(sc, "runAsNonRoot", jbool(1));
    put(sc, "runAsUser", jint(PODSPEC_UID));
    put(sc, "runAsGroup", jint(PODSPEC_UID));
    put(sc, "fsGroup",
        jint(PODSPEC_UID)); /* the emptyDir and PVC are writable/readable by the user */
    put(seccomp, "type", jstr("RuntimeDefault"));
    put(sc, "seccompProfile", seccomp);
    return sc;
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
    if (read_only) put(m, "readOnly", jbool(1));
    return m;
}

static int is_pvc(const pod_in *p)
{
    return !strncmp(p->storage_uri, "pvc://", 6);
}

/* The storage env vars kinfer-server reads (docs/storage.md), for the storage initializer. */
static int storage_env_name(const char *n)
{
    return !strncmp(n, "AWS_", 4) || !strncmp(n, "GOOGLE_", 7) ||
           !strcmp(n, "awsAnonymousCredential");
}

static json_object *init_container_new(const pod_in *p, const char *image)
{
    json_object *c = json_object_new_object(), *args = json_object_new_array(),
                *mounts = json_object_new_array(), *env = json_object_new_array();
    put(c, "name", jstr(PODSPEC_INIT_CONTAINER));
    put(c, "image", jstr(image));
    json_object_array_add(args, jstr("fetch"));
    json_object_array_add(args, jstr(p->storage_uri));
    json_object_array_add(args, jstr(PODSPEC_MODEL_DIR));
    put(c, "args", args);
    for (size_t i = 0; p->env && i < json_object_array_length(p->env); i++) {
        json_object *e = json_object_array_get_idx(p->env, i), *n = NULL;
        if (json_object_object_get_ex(e, "name", &n) && json_object_is_type(n, json_type_string) &&
            storage_env_name(json_object_get_string(n)))
            json_object_array_add(env, jx_copy(e));
    }
    if (json_object_array_length(env))
        put(c, "env", env);
    else
        json_object_put(env);
    if (p->storage_secret) {
        json_object *from = json_object_new_array(), *src = json_object_new_object(),
                    *ref = json_object_new_object();
        put(ref, "name", jstr(p->storage_secret));
        put(src, "secretRef", ref);
        json_object_array_add(from, src);
        put(c, "envFrom", from);
    }
    put(c, "resources", init_resources_new());
    json_object_array_add(mounts, mount_new("model-dir", PODSPEC_MODEL_DIR, 0));
    json_object_array_add(mounts, mount_new("tmp", "/tmp", 0));
    put(c, "volumeMounts", mounts);
    /* A failed fetch's error text (stderr) becomes the termination message status reports. */
    put(c, "terminationMessagePolicy", jstr("FallbackToLogsOnError"));
    put(c, "securityContext", container_security_new());
    return c;
}

/* KINFER_REVISION from the pod's revision label (downward API): kinfer-server names it in a
 * Kinfer-Revision header, so clients can count which revision answered. */
static json_object *revision_env_new(void)
{
    json_object *e = json_object_new_object(), *from = json_object_new_object(),
                *ref = json_object_new_object();
    put(ref, "fieldPath", jstr("metadata.labels['" REVISION_LABEL "']"));
    put(from, "fieldRef", ref);
    put(e, "name", jstr("KINFER_REVISION"));
    put(e, "valueFrom", from);
    return e;
}

static json_object *server_container_new(const pod_in *p, const char *image)
{
    json_object *c = json_object_new_object(), *args = json_object_new_array(),
                *env = json_object_new_array(), *ports = json_object_new_array(),
                *port = json_object_new_object(), *mounts = json_object_new_array();
    put(c, "name", jstr(PODSPEC_CONTAINER));
    put(c, "image", jstr(image));
    if (is_pvc(p)) {
        /* pvc://claim/path: the claim is mounted read-only at PODSPEC_PVC_MOUNT; serve from the
         * path. */
        const char *rest = strchr(p->storage_uri + 6, '/');
        char dir[4096];
        snprintf(dir, sizeof(dir), PODSPEC_PVC_MOUNT "%s", rest ? rest : "");
        args_add(args, "--model-dir", dir);
        json_object_array_add(mounts, mount_new("model-pvc", PODSPEC_PVC_MOUNT, 1));
    } else {
        args_add(args, "--model-dir", PODSPEC_MODEL_DIR);
        json_object_array_add(mounts, mount_new("model-dir", PODSPEC_MODEL_DIR, 1));
    }
    json_object_array_add(mounts, mount_new("tmp", "/tmp", 0));
    args_add(args, "--model-name", p->name);
    args_add_int(args, "--port", PODSPEC_PORT);
    if (wants_gpu(p)) args_add(args, "--device", "cuda");
    if (p->batcher) {
        args_add_int(args, "--max-batch-size", p->max_batch_size);
        args_add_int(args, "--max-queue-delay-us", p->max_latency_ms * 1000);
    }
    if (p->container_concurrency) args_add_int(args, "--max-queue-size", p->container_concurrency);
    int64_t grace = p->timeout ? p->timeout : PODSPEC_DEFAULT_GRACE_S,
            drain = prestop_sleep_s(grace);
    args_add_int(args, "--grace-period-s", grace - drain > 1 ? grace - drain : 1);
    for (size_t i = 0; p->args && i < json_object_array_length(p->args); i++)
        json_object_array_add(args, jx_copy(json_object_array_get_idx(p->args, i)));
    put(c, "args", args);
    for (size_t i = 0; p->env && i < json_object_array_length(p->env); i++)
        json_object_array_add(env, jx_copy(json_object_array_get_idx(p->env, i)));
    json_object_array_add(env, revision_env_new());
    put(c, "env", env);
    put(port, "name", jstr("http"));
    put(port, "containerPort", jint(PODSPEC_PORT));
    put(port, "protocol", jstr("TCP"));
    json_object_array_add(ports, port);
    put(c, "ports", ports);
    put(c, "resources", resources_new(p));
    if (drain > 0) {
        json_object *lc = json_object_new_object(), *pre = json_object_new_object(),
                    *sl = json_object_new_object();
        put(sl, "seconds", jint(drain));
        put(pre, "sleep", sl);
        put(lc, "preStop", pre);
        put(c, "lifecycle", lc);
    }
    put(c, "readinessProbe", probe_new("/v2/health/ready", 5, 3));
    put(c, "livenessProbe", probe_new("/v2/health/live", 10, 6));
    put(c, "volumeMounts", mounts);
    put(c, "terminationMessagePolicy", jstr("FallbackToLogsOnError"));
    put(c, "securityContext", container_security_new());
    return c;
}

/* The user's tolerations plus, for GPU pods, {nvidia.com/gpu Exists NoSchedule} unless a
 * toleration for that key is already there. NULL when there are none. */
static json_object *tolerations_new(const pod_in *p)
{
    json_object *t = p->tolerations ? jx_copy(p->tolerations) : json_object_new_array();
    int have = 0;
    for (size_t i = 0; t && i < json_object_array_length(t); i++) {
        json_object *k = NULL;
        if (json_object_object_get_ex(json_object_array_get_idx(t, i), "key", &k) &&
            json_object_is_type(k, json_type_string) &&
            !strcmp(json_object_get_string(k), "nvidia.com/gpu"))
            have = 1;
    }
    if (t && wants_gpu(p) && !have) {
        json_object *g = json_object_new_object();
        put(g, "key", jstr("nvidia.com/gpu"));
        put(g, "operator", jstr("Exists"));
        put(g, "effect", jstr("NoSchedule"));
        json_object_array_add(t, g);
    }
    if (t && !json_object_array_length(t)) {
        json_object_put(t);
        return NULL;
    }
    return t;
}

ctl_status *podspec_build(json_object *isvc, const podspec_config *cfg, json_object **tmpl)
{
    ctl_status *st = NULL;
    pod_in p;
    *tmpl = NULL;
    if (!cfg || !cfg->image || !*cfg->image)
        return ctl_status_new(CTL_EINVAL, "podspec: runtime image not configured");
    if (!isvc || !json_object_is_type(isvc, json_type_object))
        return ctl_status_new(CTL_EINVAL, "InferenceService: must be an object");
    if ((st = pod_parse(isvc, &p))) return st;

    json_object *t = json_object_new_object(), *md = json_object_new_object(),
                *ann = json_object_new_object(), *pod = json_object_new_object(),
                *containers = json_object_new_array(), *volumes = json_object_new_array(), *tol,
                *src;
    char port[16];
    snprintf(port, sizeof(port), "%d", PODSPEC_PORT);
    put(ann, "prometheus.io/scrape", jstr("true"));
    put(ann, "prometheus.io/port", jstr(port));
    put(ann, "prometheus.io/path", jstr("/metrics"));
    put(md, "annotations", ann);
    put(t, "metadata", md);

    if (is_pvc(&p)) {
        const char *claim = p.storage_uri + 6, *slash = strchr(claim, '/');
        src = json_object_new_object();
        put(src, "claimName",
            json_object_new_string_len(claim, slash ? (int)(slash - claim) : (int)strlen(claim)));
        put(src, "readOnly", jbool(1));
        json_object_array_add(volumes, volume_new("model-pvc", "persistentVolumeClaim", src));
    } else {
        json_object *inits = json_object_new_array();
        json_object_array_add(volumes,
                              volume_new("model-dir", "emptyDir", json_object_new_object()));
        json_object_array_add(inits, init_container_new(&p, cfg->image));
        put(pod, "initContainers", inits);
    }
    json_object_array_add(volumes, volume_new("tmp", "emptyDir", json_object_new_object()));
    json_object_array_add(containers, server_container_new(&p, cfg->image));
    put(pod, "containers", containers);
    put(pod, "volumes", volumes);
    put(pod, "securityContext", pod_security_new());
    put(pod, "automountServiceAccountToken", jbool(p.automount_token));
    if (p.service_account) put(pod, "serviceAccountName", jstr(p.service_account));
    if (p.priority_class) put(pod, "priorityClassName", jstr(p.priority_class));
    if (p.node_selector) put(pod, "nodeSelector", jx_copy(p.node_selector));
    if ((tol = tolerations_new(&p))) put(pod, "tolerations", tol);
    if (p.affinity) put(pod, "affinity", jx_copy(p.affinity));
    if (p.timeout) put(pod, "terminationGracePeriodSeconds", jint(p.timeout));
    put(t, "spec", pod);
    *tmpl = t;
    return NULL;
}
