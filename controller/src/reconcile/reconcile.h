/*
 * reconcile: the pure half of the reconciler. From an InferenceService object it computes the
 * children kinfer owns (Deployment, Service and, when autoscaling is on, a HorizontalPodAutoscaler)
 * as complete objects ready for server-side apply. It never talks to the API server, reads no
 * clock and no environment, so its output depends only on its input (golden-tested).
 * It deliberately does not decide how to apply, delete or compare: the runtime does that.
 */
#ifndef KINFER_CTL_RECONCILE_H
#define KINFER_CTL_RECONCILE_H

#include <json.h>

#include "../common/error.h"

typedef struct reconcile_config {
    const char *runtime_image; /* the kinfer-server image of the predictor container; required */
    /* Prometheus base URL for KEDA ScaledObject triggers (--prometheus-address); NULL: none. */
    const char *prometheus_address;
} reconcile_config;

/* The field manager kinfer uses for server-side apply. */
#define RECONCILE_FIELD_MANAGER "kinfer-controller"
/* The label on every child and pod that names its InferenceService. */
#define RECONCILE_LABEL_ISVC "serving.kinfer.dev/inferenceservice"

/* Pure: the desired children (Deployment, Service, HPA...) of an InferenceService as full objects
 * ready for server-side apply (apiVersion, kind, metadata incl. ownerReferences controller=true,
 * labels, spec). *children is a new json array owned by the caller (json_object_put).
 * On error *children is NULL and the status (CTL_EINVAL) names the offending field, e.g.
 * "spec.predictor.model.storageUri: required". */
ctl_status *reconcile_desired(json_object *isvc, const reconcile_config *cfg,
                              json_object **children) __attribute__((warn_unused_result));

/* Pure: the index of an owned child, "ns/name" of the kinfer InferenceService
 * (serving.kinfer.dev/...) that is its controller in metadata.ownerReferences; NULL when it has
 * none (a KServe InferenceService's children are not ours). Newly allocated, the caller frees it.
 * The informers of children and routing objects index by it. */
char *reconcile_owner_index(json_object *obj);

/* The field manager of the replica handover (see reconcile_handover). */
#define RECONCILE_HANDOVER_MANAGER "kinfer-handover"
/* On the Deployment: "fixed" when kinfer applied spec.replicas; otherwise the autoscaler class that
 * owns them ("hpa", "keda", "external", "none"; see autoscale.h). */
#define RECONCILE_ANNOTATION_SCALING "serving.kinfer.dev/scaling"

/* Pure: the replica handover when an InferenceService switches from fixed replicas to autoscaling.
 * Until then kinfer's field manager owns the Deployment's spec.replicas; an apply that simply
 * leaves the field out would make the API server remove it and default it to 1 (scaling a busy
 * service down) before the HPA acts. So when desired_deployment (from reconcile_desired) has no
 * spec.replicas and live_deployment (the observed one, may be NULL) was last applied with fixed
 * replicas, *patch is the object to server-side apply FIRST, under RECONCILE_HANDOVER_MANAGER
 * (force is harmless: the value is the live one): spec.replicas at its live value. That manager
 * then co-owns the field, kinfer's apply drops its claim, and the value stays until the HPA changes
 * it (the documented "transferring ownership" procedure of server-side apply). *patch is NULL when
 * no handover is needed; otherwise new, owned by the caller. */
ctl_status *reconcile_handover(json_object *desired_deployment, json_object *live_deployment,
                               json_object **patch) __attribute__((warn_unused_result));

/* The kinds reconcile_desired() may emit, NULL-terminated, as "apiVersion/kind" pairs in apply
 * order; the runtime uses it to know which child types to watch and prune. Static storage. */
extern const char *const reconcile_child_kinds[][2];

#endif
