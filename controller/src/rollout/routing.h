/*
 * routing: the object that splits an InferenceService's traffic between its revisions, by
 * backend. gateway: a Gateway API HTTPRoute (gateway.networking.k8s.io/v1) attached to
 * spec.routing.gateway.parentRefs with weighted backendRefs to the per-revision Services.
 * istio: an Istio VirtualService (networking.istio.io/v1) with weighted destinations.
 * none: no object; the InferenceService's own Service selects the pods and the caller splits
 * replicas instead. The object is named after the InferenceService, labelled with it and owned by
 * it (controller: true). Rendering is pure and golden-tested; routing_spec_parse() reads
 * spec.routing with the controller's default.
 */
#ifndef KINFER_CTL_ROUTING_H
#define KINFER_CTL_ROUTING_H

#include <json.h>

#include "../common/error.h"
#include "../kube/kube.h"

typedef enum routing_mode { ROUTING_NONE, ROUTING_GATEWAY, ROUTING_ISTIO } routing_mode;

extern const kube_resource routing_res_httproutes, routing_res_virtualservices;

typedef struct routing_spec {
    routing_mode mode;
    json_object *parent_refs, *hostnames; /* gateway (borrowed) */
    json_object *hosts, *gateways; /* istio (borrowed); hosts NULL: the Service's cluster name */
    char default_parent[256]; /* "ns/name" from the controller flag when parentRefs is absent */
} routing_spec;

typedef struct routing_backend {
    const char *service; /* per-revision Service name (= revision name) */
    int weight;          /* 0..100 */
} routing_backend;

/* "gateway", "istio", "none" -> mode; -1 otherwise. */
int routing_mode_parse(const char *s);
const char *routing_mode_name(routing_mode m);

/* Pure: spec.routing of spec (may be absent: the default mode applies). default_gateway is
 * "namespace/name" or NULL; gateway mode without parentRefs and without it is CTL_EINVAL. */
ctl_status *routing_spec_parse(json_object *spec, routing_mode dflt, const char *default_gateway,
                               routing_spec *out) __attribute__((warn_unused_result));

/* Pure: the routing object of isvc (needs metadata name, namespace, uid, generation) for backends
 * (1 or 2, weights summing to 100). *obj is NULL for ROUTING_NONE, else new (caller owns). */
ctl_status *routing_render(const routing_spec *rs, json_object *isvc, const routing_backend *b,
                           int nb, json_object **obj) __attribute__((warn_unused_result));

#endif
