/* Traffic-splitting objects; see routing.h. */
#include "routing.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../reconcile/reconcile.h"

const kube_resource routing_res_httproutes = {"gateway.networking.k8s.io", "v1", "httproutes",
                                              "HTTPRoute", 1};
const kube_resource routing_res_virtualservices = {"networking.istio.io", "v1", "virtualservices",
                                                   "VirtualService", 1};

static const char *const mode_names[] = {"none", "gateway", "istio"};

int routing_mode_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, mode_names[i])) return i;
    return -1;
}

const char *routing_mode_name(routing_mode m)
{
    return (unsigned)m < 3 ? mode_names[m] : "unknown";
}

static ctl_status *want_array(json_object *v, const char *path)
{
    if (v && !json_object_is_type(v, json_type_array))
        return ctl_status_new(CTL_EINVAL, "%s: must be an array", path);
    return NULL;
}

ctl_status *routing_spec_parse(json_object *spec, routing_mode dflt, const char *default_gateway,
                               routing_spec *out)
{
    ctl_status *st;
    json_object *r = jx_get(spec, "routing"), *gw = jx_get(r, "gateway"), *is = jx_get(r, "istio");
    memset(out, 0, sizeof(*out));
    if (r && !json_object_is_type(r, json_type_object))
        return ctl_status_new(CTL_EINVAL, "spec.routing: must be an object");
    if (gw && is)
        return ctl_status_new(CTL_EINVAL, "spec.routing: gateway and istio are mutually exclusive");
    out->mode = gw ? ROUTING_GATEWAY : is ? ROUTING_ISTIO : dflt;
    if (r && !gw && !is && jx_get(r, "none")) out->mode = ROUTING_NONE;
    out->parent_refs = jx_get(gw, "parentRefs");
    out->hostnames = jx_get(gw, "hostnames");
    out->hosts = jx_get(is, "hosts");
    out->gateways = jx_get(is, "gateways");
    if ((st = want_array(out->parent_refs, "spec.routing.gateway.parentRefs")) ||
        (st = want_array(out->hostnames, "spec.routing.gateway.hostnames")) ||
        (st = want_array(out->hosts, "spec.routing.istio.hosts")) ||
        (st = want_array(out->gateways, "spec.routing.istio.gateways")))
        return st;
    if (out->mode == ROUTING_GATEWAY &&
        (!out->parent_refs || !json_object_array_length(out->parent_refs))) {
        if (!default_gateway || !*default_gateway)
            return ctl_status_new(
                CTL_EINVAL, "spec.routing.gateway.parentRefs: required (the controller has no "
                            "--default-gateway)");
        snprintf(out->default_parent, sizeof(out->default_parent), "%s", default_gateway);
    }
    return NULL;
}

static json_object *metadata_new(json_object *isvc, const char *kind_unused)
{
    (void)kind_unused;
    json_object *md = jx_get(isvc, "metadata"), *m = json_object_new_object(),
                *labels = json_object_new_object(), *ann = json_object_new_object(),
                *owners = json_object_new_array(), *o = json_object_new_object();
    json_object *gen = jx_get(md, "generation");
    char g[32];
    json_object_object_add(m, "name", json_object_new_string(jx_str(md, "name")));
    json_object_object_add(m, "namespace", json_object_new_string(jx_str(md, "namespace")));
    json_object_object_add(labels, RECONCILE_LABEL_ISVC,
                           json_object_new_string(jx_str(md, "name")));
    json_object_object_add(labels, "app.kubernetes.io/managed-by",
                           json_object_new_string(RECONCILE_FIELD_MANAGER));
    json_object_object_add(labels, "app.kubernetes.io/part-of", json_object_new_string("kinfer"));
    json_object_object_add(m, "labels", labels);
    snprintf(g, sizeof(g), "%" PRId64, gen ? json_object_get_int64(gen) : (int64_t)0);
    json_object_object_add(ann, "serving.kinfer.dev/generation", json_object_new_string(g));
    json_object_object_add(m, "annotations", ann);
    json_object_object_add(o, "apiVersion", json_object_new_string("serving.kinfer.dev/v1beta1"));
    json_object_object_add(o, "kind", json_object_new_string("InferenceService"));
    json_object_object_add(o, "name", json_object_new_string(jx_str(md, "name")));
    json_object_object_add(o, "uid", json_object_new_string(jx_str(md, "uid")));
    json_object_object_add(o, "controller", json_object_new_boolean(1));
    json_object_object_add(o, "blockOwnerDeletion", json_object_new_boolean(1));
    json_object_array_add(owners, o);
    json_object_object_add(m, "ownerReferences", owners);
    return m;
}

static json_object *httproute_new(const routing_spec *rs, json_object *isvc,
                                  const routing_backend *b, int nb)
{
    json_object *o = json_object_new_object(), *sp = json_object_new_object(),
                *rules = json_object_new_array(), *rule = json_object_new_object(),
                *refs = json_object_new_array();
    json_object_object_add(o, "apiVersion", json_object_new_string("gateway.networking.k8s.io/v1"));
    json_object_object_add(o, "kind", json_object_new_string("HTTPRoute"));
    json_object_object_add(o, "metadata", metadata_new(isvc, "HTTPRoute"));
    if (rs->parent_refs && json_object_array_length(rs->parent_refs)) {
        json_object_object_add(sp, "parentRefs", jx_copy(rs->parent_refs));
    } else {
        json_object *prs = json_object_new_array(), *pr = json_object_new_object();
        const char *slash = strchr(rs->default_parent, '/');
        if (slash) {
            json_object_object_add(
                pr, "namespace",
                json_object_new_string_len(rs->default_parent, (int)(slash - rs->default_parent)));
            json_object_object_add(pr, "name", json_object_new_string(slash + 1));
        } else
            json_object_object_add(pr, "name", json_object_new_string(rs->default_parent));
        json_object_array_add(prs, pr);
        json_object_object_add(sp, "parentRefs", prs);
    }
    if (rs->hostnames && json_object_array_length(rs->hostnames))
        json_object_object_add(sp, "hostnames", jx_copy(rs->hostnames));
    for (int i = 0; i < nb; i++) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "name", json_object_new_string(b[i].service));
        json_object_object_add(r, "port", json_object_new_int(80));
        json_object_object_add(r, "weight", json_object_new_int(b[i].weight));
        json_object_array_add(refs, r);
    }
    json_object_object_add(rule, "backendRefs", refs);
    json_object_array_add(rules, rule);
    json_object_object_add(sp, "rules", rules);
    json_object_object_add(o, "spec", sp);
    return o;
}

static json_object *virtualservice_new(const routing_spec *rs, json_object *isvc,
                                       const routing_backend *b, int nb)
{
    json_object *md = jx_get(isvc, "metadata");
    const char *name = jx_str(md, "name"), *ns = jx_str(md, "namespace");
    json_object *o = json_object_new_object(), *sp = json_object_new_object(),
                *http = json_object_new_array(), *h = json_object_new_object(),
                *route = json_object_new_array();
    char host[320];
    json_object_object_add(o, "apiVersion", json_object_new_string("networking.istio.io/v1"));
    json_object_object_add(o, "kind", json_object_new_string("VirtualService"));
    json_object_object_add(o, "metadata", metadata_new(isvc, "VirtualService"));
    if (rs->hosts && json_object_array_length(rs->hosts)) {
        json_object_object_add(sp, "hosts", jx_copy(rs->hosts));
    } else {
        json_object *hosts = json_object_new_array();
        snprintf(host, sizeof(host), "%s.%s.svc.cluster.local", name, ns);
        json_object_array_add(hosts, json_object_new_string(host));
        json_object_object_add(sp, "hosts", hosts);
    }
    if (rs->gateways && json_object_array_length(rs->gateways))
        json_object_object_add(sp, "gateways", jx_copy(rs->gateways));
    for (int i = 0; i < nb; i++) {
        json_object *r = json_object_new_object(), *d = json_object_new_object(),
                    *port = json_object_new_object();
        snprintf(host, sizeof(host), "%s.%s.svc.cluster.local", b[i].service, ns);
        json_object_object_add(d, "host", json_object_new_string(host));
        json_object_object_add(port, "number", json_object_new_int(80));
        json_object_object_add(d, "port", port);
        json_object_object_add(r, "destination", d);
        json_object_object_add(r, "weight", json_object_new_int(b[i].weight));
        json_object_array_add(route, r);
    }
    json_object_object_add(h, "route", route);
    json_object_array_add(http, h);
    json_object_object_add(sp, "http", http);
    json_object_object_add(o, "spec", sp);
    return o;
}

ctl_status *routing_render(const routing_spec *rs, json_object *isvc, const routing_backend *b,
                           int nb, json_object **obj)
{
    json_object *md = jx_get(isvc, "metadata");
    int sum = 0;
    *obj = NULL;
    if (rs->mode == ROUTING_NONE) return NULL;
    if (!jx_str(md, "name") || !jx_str(md, "namespace") || !jx_str(md, "uid"))
        return ctl_status_new(CTL_EINVAL,
                              "routing: InferenceService without name, namespace and uid");
    if (nb < 1 || nb > 2)
        return ctl_status_new(CTL_EINVAL, "routing: %d backends (want 1 or 2)", nb);
    for (int i = 0; i < nb; i++) {
        if (!b[i].service || b[i].weight < 0 || b[i].weight > 100)
            return ctl_status_new(
                CTL_EINVAL, "routing: backend %d has no service or a weight outside 0..100", i);
        sum += b[i].weight;
    }
    if (sum != 100) return ctl_status_new(CTL_EINVAL, "routing: weights sum to %d, not 100", sum);
    *obj = rs->mode == ROUTING_GATEWAY ? httproute_new(rs, isvc, b, nb)
                                       : virtualservice_new(rs, isvc, b, nb);
    return *obj ? NULL : ctl_status_new(CTL_ENOMEM, "routing: out of memory");
}
