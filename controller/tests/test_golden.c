/* The golden files themselves, read from disk: what each must contain, whatever code wrote it.
 *
 * The goldens under controller/tests/golden are written by the code under test
 * (KINFER_UPDATE_GOLDEN=1), so a wrong one accepted by mistake makes the golden tests pass for
 * good. These checks hold the goldens to the promises the docs make: children owned by their
 * InferenceService (one controller reference with its uid), the restricted security context on
 * every container, the server's probes, port and flags, the model's path through the storage
 * initializer or the PVC, the autoscaler's target and bounds, routing weights that add up to 100,
 * and a Ready status. Every file in the golden directory is checked; a new kind of golden needs
 * its check here. checks_catch_a_wrong_golden shows that each check fails on a changed golden. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

/* A check's failure: the message, and a jump back to the check's caller (run_check), so a test
 * can also assert that a check fails. */
static jmp_buf bad_jump;
static char bad_msg[512];
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(bad_msg, sizeof(bad_msg), __VA_ARGS__);                                           \
        longjmp(bad_jump, 1);                                                                      \
    } while (0)

/* obj at a dotted path ("spec.template.spec"; "\\." is a dot inside a key), or NULL. */
static json_object *at(json_object *o, const char *path)
{
    char key[256];
    while (o && *path) {
        size_t n = 0;
        for (; *path && *path != '.'; path++) {
            if (*path == '\\' && path[1]) path++;
            if (n + 1 < sizeof(key)) key[n++] = *path;
        }
        key[n] = 0;
        if (*path == '.') path++;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &o))
            return NULL;
    }
    return o;
}

static const char *str_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

#define assert_str_at(o, path, want)                                                               \
    do {                                                                                           \
        const char *got_ = str_at(o, path);                                                        \
        if (!got_ || strcmp(got_, want))                                                           \
            BAD("%s: %s is %s, want %s", file, path, got_ ? got_ : "missing", want);               \
    } while (0)

static int bool_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static int int_at(json_object *o, const char *path, int dflt)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_int) ? json_object_get_int(v) : dflt;
}

/* The value after flag in a container's args, or NULL. */
static const char *arg_after(json_object *c, const char *flag)
{
    json_object *args = at(c, "args");
    size_t n = args ? json_object_array_length(args) : 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!strcmp(json_object_get_string(json_object_array_get_idx(args, i)), flag))
            return json_object_get_string(json_object_array_get_idx(args, i + 1));
    return NULL;
}

static json_object *container_named(json_object *list, const char *name)
{
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        json_object *c = json_object_array_get_idx(list, i);
        const char *n = str_at(c, "name");
        if (n && !strcmp(n, name)) return c;
    }
    return NULL;
}

/* The restricted Pod Security Standard on one container. */
static void check_container_security(const char *file, json_object *c)
{
    const char *name = str_at(c, "name");
    if (bool_at(c, "securityContext.runAsNonRoot") != 1 ||
        bool_at(c, "securityContext.readOnlyRootFilesystem") != 1 ||
        bool_at(c, "securityContext.allowPrivilegeEscalation") != 0)
        BAD("%s: container %s: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation",
            file, name);
    json_object *drop = at(c, "securityContext.capabilities.drop");
    int all = 0;
    for (size_t i = 0; drop && i < json_object_array_length(drop); i++)
        all |= !strcmp(json_object_get_string(json_object_array_get_idx(drop, i)), "ALL");
    if (!all || at(c, "securityContext.capabilities.add"))
        BAD("%s: container %s: capabilities must drop ALL and add none", file, name);
    if (bool_at(c, "securityContext.privileged") == 1)
        BAD("%s: container %s is privileged", file, name);
}

static void check_probe(const char *file, json_object *c, const char *probe, const char *path)
{
    char p[64];
    snprintf(p, sizeof(p), "%s.httpGet.path", probe);
    assert_str_at(c, p, path);
    snprintf(p, sizeof(p), "%s.httpGet.port", probe);
    if (int_at(c, p, -1) != 8080) BAD("%s: %s is not on port 8080", file, probe);
}

/* A predictor pod template ({metadata, spec}) rendered from isvc. */
static void check_pod_template(const char *file, json_object *tmpl, json_object *isvc)
{
    json_object *spec = at(tmpl, "spec");
    const char *name = str_at(isvc, "metadata.name"),
               *uri = str_at(isvc, "spec.predictor.model.storageUri");
    assert_non_null(spec);
    if (bool_at(spec, "securityContext.runAsNonRoot") != 1)
        BAD("%s: pod securityContext.runAsNonRoot", file);
    assert_str_at(spec, "securityContext.seccompProfile.type", "RuntimeDefault");
    if (bool_at(spec, "automountServiceAccountToken") !=
        (bool_at(isvc, "spec.predictor.automountServiceAccountToken") == 1))
        BAD("%s: automountServiceAccountToken differs from the spec's (default false)", file);
    if (bool_at(spec, "hostNetwork") == 1 || bool_at(spec, "hostPID") == 1)
        BAD("%s: host namespaces", file);
    const char *lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        json_object *cs = at(spec, lists[l]);
        for (size_t i = 0; cs && i < json_object_array_length(cs); i++)
            check_container_security(file, json_object_array_get_idx(cs, i));
    }
    json_object *srv = container_named(at(spec, "containers"), "kinfer-server");
    if (!srv) BAD("%s: no kinfer-server container", file);
    check_probe(file, srv, "readinessProbe", "/v2/health/ready");
    check_probe(file, srv, "livenessProbe", "/v2/health/live");
    const char *v = arg_after(srv, "--model-name");
    if (!v || strcmp(v, name)) BAD("%s: --model-name %s, want %s", file, v ? v : "missing", name);
    if (!(v = arg_after(srv, "--port")) || strcmp(v, "8080")) BAD("%s: --port is not 8080", file);
    if (int_at(at(srv, "ports") ? json_object_array_get_idx(at(srv, "ports"), 0) : NULL,
               "containerPort", -1) != 8080)
        BAD("%s: containerPort is not 8080", file);
    assert_str_at(tmpl, "metadata.annotations.prometheus\\.io/scrape", "true");
    const char *dir = arg_after(srv, "--model-dir");
    json_object *init = container_named(at(spec, "initContainers"), "storage-initializer");
    if (!strncmp(uri, "pvc://", 6)) {
        /* pvc://CLAIM/PATH: the claim mounted read-only, no download */
        const char *path = strchr(uri + 6, '/');
        char want[256];
        snprintf(want, sizeof(want), "/mnt/pvc%s", path ? path : "");
        if (init) BAD("%s: a PVC model needs no storage initializer", file);
        if (!dir || strcmp(dir, want))
            BAD("%s: --model-dir %s, want %s", file, dir ? dir : "missing", want);
    } else {
        json_object *args = at(init, "args");
        if (!init || !args || json_object_array_length(args) != 3 ||
            strcmp(json_object_get_string(json_object_array_get_idx(args, 0)), "fetch") ||
            strcmp(json_object_get_string(json_object_array_get_idx(args, 1)), uri) ||
            strcmp(json_object_get_string(json_object_array_get_idx(args, 2)), "/mnt/models"))
            BAD("%s: want a storage-initializer running `fetch %s /mnt/models`", file, uri);
        if (!dir || strcmp(dir, "/mnt/models")) BAD("%s: --model-dir is not /mnt/models", file);
        json_object *mounts = at(srv, "volumeMounts");
        int ro = 0;
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
            json_object *m = json_object_array_get_idx(mounts, i);
            ro |= !strcmp(str_at(m, "mountPath"), "/mnt/models") && bool_at(m, "readOnly") == 1;
        }
        if (!ro) BAD("%s: the server must mount /mnt/models read-only", file);
    }
    /* a GPU asked for in the limits runs the CUDA backend */
    json_object *limits = at(isvc, "spec.predictor.model.resources.limits");
    int gpu = 0;
    if (limits) {
        json_object_object_foreach(limits, k, val)
        {
            (void)val;
            gpu |= !strncmp(k, "nvidia.com/", 11);
        }
    }
    v = arg_after(srv, "--device");
    if (gpu != (v && !strcmp(v, "cuda"))) BAD("%s: --device cuda iff a GPU is in the limits", file);
}

/* metadata of a child of isvc: its namespace, labels, and one controller reference to it. */
static void check_owned(const char *file, json_object *child, json_object *isvc)
{
    const char *name = str_at(isvc, "metadata.name");
    assert_str_at(child, "metadata.namespace", str_at(isvc, "metadata.namespace"));
    assert_str_at(child, "metadata.labels.serving\\.kinfer\\.dev/inferenceservice", name);
    assert_str_at(child, "metadata.labels.app\\.kubernetes\\.io/managed-by", "kinfer-controller");
    json_object *refs = at(child, "metadata.ownerReferences");
    if (!refs || json_object_array_length(refs) != 1)
        BAD("%s: want exactly one owner reference", file);
    json_object *r = json_object_array_get_idx(refs, 0);
    assert_str_at(r, "apiVersion", "serving.kinfer.dev/v1beta1");
    assert_str_at(r, "kind", "InferenceService");
    assert_str_at(r, "name", name);
    assert_str_at(r, "uid", str_at(isvc, "metadata.uid"));
    if (bool_at(r, "controller") != 1 || bool_at(r, "blockOwnerDeletion") != 1)
        BAD("%s: the owner reference must be the controller and block owner deletion", file);
}

/* An HPA's or ScaledObject's target and bounds (the spec's, where it gives them). */
static void check_scaler(const char *file, json_object *o, json_object *isvc)
{
    char dep[160];
    snprintf(dep, sizeof(dep), "%s-predictor", str_at(isvc, "metadata.name"));
    const char *kind = str_at(o, "kind");
    assert_str_at(o, "spec.scaleTargetRef.name", dep);
    int keda = kind && !strcmp(kind, "ScaledObject");
    if (!keda) assert_str_at(o, "spec.scaleTargetRef.kind", "Deployment");
    int min = int_at(isvc, "spec.predictor.minReplicas", -1),
        max = int_at(isvc, "spec.predictor.maxReplicas", -1);
    const char *kmin = keda ? "spec.minReplicaCount" : "spec.minReplicas";
    const char *kmax = keda ? "spec.maxReplicaCount" : "spec.maxReplicas";
    if (min >= 0 && int_at(o, kmin, -2) != min) BAD("%s: %s is not the spec's %d", file, kmin, min);
    if (max >= 0 && int_at(o, kmax, -2) != max) BAD("%s: %s is not the spec's %d", file, kmax, max);
    if (int_at(o, kmax, 0) < int_at(o, kmin, keda ? 0 : 1)) BAD("%s: max replicas below min", file);
}

static const char *file; /* for the messages */

static void check_reconcile(const char *in, const char *out)
{
    json_object *isvc = golden_load(in), *children = golden_load(out);
    const char *name = str_at(isvc, "metadata.name");
    char dep_name[160];
    snprintf(dep_name, sizeof(dep_name), "%s-predictor", name);
    json_object *dep = NULL, *svc = NULL;
    assert_true(json_object_is_type(children, json_type_array));
    for (size_t i = 0; i < json_object_array_length(children); i++) {
        json_object *c = json_object_array_get_idx(children, i);
        const char *kind = str_at(c, "kind");
        check_owned(file, c, isvc);
        if (!strcmp(kind, "Deployment"))
            dep = c;
        else if (!strcmp(kind, "Service"))
            svc = c;
        else if (!strcmp(kind, "HorizontalPodAutoscaler"))
            check_scaler(file, c, isvc);
        else
            BAD("%s: unexpected child kind %s", file, kind);
    }
    if (!dep || !svc) BAD("%s: want a Deployment and a Service", file);
    assert_str_at(dep, "metadata.name", dep_name);
    assert_str_at(svc, "metadata.name", name);
    check_pod_template(file, at(dep, "spec.template"), isvc);
    /* the Deployment's selector and the Service's select the template's pods */
    json_object *tl = at(dep, "spec.template.metadata.labels");
    json_object *sels[] = {at(dep, "spec.selector.matchLabels"), at(svc, "spec.selector")};
    for (int s = 0; s < 2; s++) {
        if (!sels[s] || !json_object_object_length(sels[s])) BAD("%s: empty selector", file);
        json_object_object_foreach(sels[s], k, v)
        {
            json_object *l = NULL;
            if (!json_object_object_get_ex(tl, k, &l) ||
                strcmp(json_object_get_string(l), json_object_get_string(v)))
                BAD("%s: selector %s=%s does not match the pod template", file, k,
                    json_object_get_string(v));
        }
    }
    json_object_put(isvc);
    json_object_put(children);
}

static void check_podspec(const char *in, const char *out)
{
    json_object *isvc = golden_load(in), *tmpl = golden_load(out);
    check_pod_template(file, tmpl, isvc);
    json_object_put(isvc);
    json_object_put(tmpl);
}

static void check_autoscale(const char *in, const char *out)
{
    json_object *isvc = golden_load(in), *o = golden_load(out);
    const char *scaling = str_at(o, "scaling"), *kind = str_at(o, "kind");
    int min = int_at(isvc, "spec.predictor.minReplicas", 1), r = int_at(o, "replicas", -2);
    if (!scaling) BAD("%s: no scaling", file);
    if (!strcmp(scaling, "hpa") || !strcmp(scaling, "keda")) {
        if (!kind ||
            strcmp(kind, !strcmp(scaling, "hpa") ? "HorizontalPodAutoscaler" : "ScaledObject"))
            BAD("%s: scaling %s renders %s", file, scaling, kind ? kind : "nothing");
        check_scaler(file, o, isvc);
        if (r != -1) BAD("%s: the Deployment's replicas are the scaler's, not %d", file, r);
    } else {
        /* fixed: kinfer sets the spec's replicas; external and none: something else owns them */
        if (kind) BAD("%s: scaling %s renders a %s", file, scaling, kind);
        if (!strcmp(scaling, "fixed") ? r != min : r != -1)
            BAD("%s: scaling %s with replicas %d", file, scaling, r);
    }
    json_object_put(isvc);
    json_object_put(o);
}

/* test_routing.c renders iris in ml (uid u-1, generation 3) with the backends named here. */
static void check_routing(const char *rel, int split)
{
    json_object *o = golden_load(rel),
                *isvc = json_tokener_parse(
                    "{\"metadata\":{\"name\":\"iris\",\"namespace\":\"ml\",\"uid\":\"u-1\"}}");
    check_owned(file, o, isvc);
    assert_str_at(o, "metadata.name", "iris");
    const char *kind = str_at(o, "kind");
    int http = !strcmp(kind, "HTTPRoute");
    json_object *rules = at(o, http ? "spec.rules" : "spec.http");
    if (!rules || json_object_array_length(rules) != 1) BAD("%s: want one rule", file);
    json_object *refs = at(json_object_array_get_idx(rules, 0), http ? "backendRefs" : "route");
    int sum = 0, n = refs ? (int)json_object_array_length(refs) : 0;
    for (int i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(refs, i);
        int w = int_at(b, "weight", -1);
        if (w < 0 || w > 100) BAD("%s: backend %d has weight %d", file, i, w);
        sum += w;
        int port = http ? int_at(b, "port", -1) : int_at(b, "destination.port.number", -1);
        if (port != 80) BAD("%s: backend %d is not on the Service port 80", file, i);
    }
    if (sum != 100 || n != (split ? 2 : 1))
        BAD("%s: %d backends with weights summing to %d", file, n, sum);
    if (split) {
        const char *b0 =
            str_at(json_object_array_get_idx(refs, 0), http ? "name" : "destination.host");
        if (!b0 || strncmp(b0, "iris-predictor-11111111", 23) ||
            int_at(json_object_array_get_idx(refs, 0), "weight", -1) != 80)
            BAD("%s: the first backend must be iris-predictor-11111111 at 80", file);
    }
    json_object_put(o);
    json_object_put(isvc);
}

static void check_status(const char *rel)
{
    json_object *s = golden_load(rel), *conds = at(s, "conditions"), *ready = NULL;
    for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
        const char *t = str_at(json_object_array_get_idx(conds, i), "type");
        if (t && !strcmp(t, "Ready")) ready = json_object_array_get_idx(conds, i);
    }
    if (!ready) BAD("%s: no Ready condition", file);
    assert_str_at(ready, "status", "True");
    if (int_at(ready, "observedGeneration", -1) != int_at(s, "observedGeneration", -2))
        BAD("%s: Ready's observedGeneration differs from the status'", file);
    json_object *traffic = at(s, "components.predictor.traffic");
    int sum = 0;
    for (size_t i = 0; traffic && i < json_object_array_length(traffic); i++)
        sum += int_at(json_object_array_get_idx(traffic, i), "percent", 0);
    if (sum != 100) BAD("%s: traffic sums to %d%%", file, sum);
    json_object_put(s);
}

/* Every file under golden/<dir>/ that ends in suffix, by name. */
static int list_dir(const char *dir, const char *suffix, char names[][128], int max)
{
    char path[512];
    const char *root = getenv("KINFER_GOLDEN_DIR");
    snprintf(path, sizeof(path), "%s/%s", root && *root ? root : "controller/tests/golden", dir);
    DIR *d = opendir(path);
    if (!d) fail_msg("cannot list %s (run from the repository root)", path);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= sl || strcmp(e->d_name + l - sl, suffix)) continue;
        assert_true(n < max && l < 128);
        memcpy(names[n++], e->d_name, l + 1); /* l < 128, checked above */
    }
    closedir(d);
    return n;
}

/* Each *.out.json of dir with its *.in.json, through check. */
static void each_pair(const char *dir, void (*check)(const char *, const char *), int want_at_least)
{
    char names[64][128], in[300], out[300];
    int n = list_dir(dir, ".out.json", names, 64);
    assert_true(n >= want_at_least);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]) - strlen(".out.json");
        snprintf(out, sizeof(out), "%s/%.127s", dir, names[i]);
        snprintf(in, sizeof(in), "%s/%.*s.in.json", dir, (int)l, names[i]);
        file = out;
        if (setjmp(bad_jump)) fail_msg("%s", bad_msg);
        check(in, out);
    }
}

static void golden_reconcile_children(void **state)
{
    (void)state;
    each_pair("reconcile", check_reconcile, 5);
}

static void golden_pod_templates(void **state)
{
    (void)state;
    each_pair("podspec", check_podspec, 5);
}

static void golden_autoscalers(void **state)
{
    (void)state;
    each_pair("autoscale", check_autoscale, 10);
}

static void golden_routes_and_status(void **state)
{
    (void)state;
    static const struct {
        const char *rel;
        int split;
    } routes[] = {{"routing/httproute-split.json", 1},
                  {"routing/httproute-default.json", 0},
                  {"routing/virtualservice-mesh.json", 1},
                  {"routing/virtualservice-gateway.json", 1}};
    char names[64][128];
    int n = list_dir("routing", ".json", names, 64);
    assert_int_equal(
        n, (int)(sizeof(routes) / sizeof(routes[0]))); /* a new golden needs its check here */
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        file = routes[i].rel;
        if (setjmp(bad_jump)) fail_msg("%s", bad_msg);
        check_routing(routes[i].rel, routes[i].split);
    }
    assert_int_equal(list_dir("status", ".json", names, 64), 1);
    file = "status/ready.out.json";
    if (setjmp(bad_jump)) fail_msg("%s", bad_msg);
    check_status(file);
}

/* The checks can fail: a good golden, changed in one place at a time, is caught with a message
 * naming what is wrong. */
static const char *pod_template_error(json_object *tmpl, json_object *isvc)
{
    if (setjmp(bad_jump)) return bad_msg;
    check_pod_template("mutated podspec/plain.out.json", tmpl, isvc);
    return NULL;
}

static void checks_catch_a_wrong_golden(void **state)
{
    (void)state;
    static const struct {
        const char *path, *key, *value, *message;
    } cases[] = {
        {"spec.containers.0.securityContext", "readOnlyRootFilesystem", "false",
         "readOnlyRootFilesystem"},
        {"spec.initContainers.0.securityContext", "runAsNonRoot", "false", "runAsNonRoot"},
        {"spec.containers.0.securityContext.capabilities", "drop", "[\"NET_RAW\"]", "drop ALL"},
        {"spec.containers.0.securityContext.capabilities", "add", "[\"NET_ADMIN\"]", "add none"},
        {"spec.securityContext", "runAsNonRoot", "false", "pod securityContext"},
        {"spec.containers.0.readinessProbe.httpGet", "path", "\"/v2/health/live\"",
         "/v2/health/ready"},
        {"spec.containers.0.livenessProbe.httpGet", "port", "9090", "port 8080"},
        {"spec.containers.0", "args",
         "[\"--model-dir\",\"/mnt/models\",\"--model-name\",\"other\",\"--port\",\"8080\"]",
         "--model-name other"},
        {"spec.initContainers.0", "args", "[\"fetch\",\"s3://models/other\",\"/mnt/models\"]",
         "fetch s3://models/iris"},
        {"spec", "automountServiceAccountToken", "true", "automountServiceAccountToken"},
    };
    json_object *isvc = golden_load("podspec/plain.in.json");
    json_object *good = golden_load("podspec/plain.out.json");
    assert_null(pod_template_error(good, isvc));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *t = golden_load("podspec/plain.out.json"), *parent = NULL;
        /* "containers.0": the path's array steps */
        char buf[128], *save = NULL;
        snprintf(buf, sizeof(buf), "%s", cases[i].path);
        parent = t;
        for (char *k = strtok_r(buf, ".", &save); k && parent; k = strtok_r(NULL, ".", &save))
            parent = json_object_is_type(parent, json_type_array)
                         ? json_object_array_get_idx(parent, (size_t)atoi(k))
                         : json_object_object_get(parent, k);
        assert_non_null(parent);
        json_object_object_add(parent, cases[i].key, json_tokener_parse(cases[i].value));
        const char *err = pod_template_error(t, isvc);
        if (!err || !strstr(err, cases[i].message))
            fail_msg("%s.%s = %s: want an error naming %s, got %s", cases[i].path, cases[i].key,
                     cases[i].value, cases[i].message, err ? err : "none");
        json_object_put(t);
    }
    /* a child owned by another uid, or not as its controller */
    json_object *in = golden_load("reconcile/minimal.in.json");
    for (int m = 0; m < 2; m++) {
        json_object *children = golden_load("reconcile/minimal.out.json");
        json_object *ref = json_object_array_get_idx(
            at(json_object_array_get_idx(children, 1), "metadata.ownerReferences"), 0);
        json_object_object_add(ref, m ? "controller" : "uid",
                               m ? json_object_new_boolean(0) : json_object_new_string("u-9"));
        const char *err = NULL;
        if (setjmp(bad_jump))
            err = bad_msg;
        else
            check_owned("mutated reconcile/minimal.out.json",
                        json_object_array_get_idx(children, 1), in);
        if (!err || !strstr(err, m ? "controller" : "uid"))
            fail_msg("owner reference mutation %d not caught: %s", m, err ? err : "none");
        json_object_put(children);
    }
    json_object_put(in);
    json_object_put(good);
    json_object_put(isvc);
}

int test_golden_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_reconcile_children),   cmocka_unit_test(golden_pod_templates),
        cmocka_unit_test(golden_autoscalers),          cmocka_unit_test(golden_routes_and_status),
        cmocka_unit_test(checks_catch_a_wrong_golden),
    };
    return cmocka_run_group_tests_name("golden", tests, NULL, NULL);
}
