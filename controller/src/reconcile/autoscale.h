/*
 * autoscale: who owns a predictor's replica count, as a pure function of the InferenceService.
 * The annotation serving.kinfer.dev/autoscalerClass picks the autoscaler:
 *   hpa (default)  an autoscaling/v2 HorizontalPodAutoscaler when maxReplicas > minReplicas, else
 *                  kinfer sets the Deployment's replicas itself (minReplicas must be >= 1);
 *   keda           a KEDA ScaledObject (keda.sh/v1alpha1) with a Prometheus trigger (cpu/memory
 *                  triggers for those metrics); minReplicas 0 (scale to zero) is allowed only here;
 *   external, none kinfer creates no autoscaler and never sets replicas: the user (kubectl scale)
 *                  or the user's own autoscaler owns them.
 * It builds the autoscaler's spec and says what the Deployment's replicas should be; names,
 * labels and ownerReferences are reconcile.c's. See docs/autoscaling.md.
 */
#ifndef KINFER_CTL_AUTOSCALE_H
#define KINFER_CTL_AUTOSCALE_H

#include <json.h>
#include <stdint.h>

#include "../common/error.h"

#define AUTOSCALE_ANNOTATION_CLASS "serving.kinfer.dev/autoscalerClass"
/* Read when kinfer's own annotation is absent, so KServe manifests keep their choice. */
#define AUTOSCALE_ANNOTATION_CLASS_KSERVE "serving.kserve.io/autoscalerClass"

typedef enum autoscale_class {
    AUTOSCALE_HPA,
    AUTOSCALE_KEDA,
    AUTOSCALE_EXTERNAL,
    AUTOSCALE_NONE
} autoscale_class;

typedef struct autoscale_config {
    /* Prometheus base URL for KEDA's prometheus triggers (kinfer-controller --prometheus-address);
     * NULL or "": keda with rps, concurrency or queueDepth is refused with a message saying so. */
    const char *prometheus_address;
} autoscale_config;

/* What autoscale_plan_build decided. Strings are static; spec is owned by the plan. */
typedef struct autoscale_plan {
    autoscale_class cls;
    /* The value of the Deployment annotation serving.kinfer.dev/scaling: "fixed" when kinfer
     * sets spec.replicas, otherwise the class name ("hpa", "keda", "external", "none"). */
    const char *scaling;
    int64_t replicas; /* the Deployment's spec.replicas when scaling is "fixed", else -1 */
    const char *api_version, *kind; /* the autoscaler object to apply; NULL when there is none */
    json_object *spec;              /* its spec (scaleTargetRef names target); NULL when none */
} autoscale_plan;

/* Pure: the plan for isvc (borrowed), whose predictor Deployment is named `target`.
 * On a bad spec: CTL_EINVAL naming the field (e.g. "spec.predictor.minReplicas: 0 (scale to zero)
 * needs the annotation serving.kinfer.dev/autoscalerClass: keda ...") and *out zeroed.
 * Free with autoscale_plan_free (also after an error: harmless). */
ctl_status *autoscale_plan_build(json_object *isvc, const autoscale_config *cfg, const char *target,
                                 autoscale_plan *out) __attribute__((warn_unused_result));
void autoscale_plan_free(autoscale_plan *p);

/* The class name ("hpa", ...), static. */
const char *autoscale_class_name(autoscale_class c);

/* Per-revision scaling while two revisions share traffic (used by canary.c). */
/* Replicas of a revision with weight w (0..100) out of n (>= 1), at least 1. */
int64_t autoscale_share(int64_t n, int w);
/* 1 for an autoscaler kind kinfer renders: HorizontalPodAutoscaler or ScaledObject. */
int autoscale_is_scaler(const char *kind);
/* Restricts a ScaledObject's Prometheus queries (a sum over model's series) to pods matching
 * pod_re, so that a revision scales on its own load, not on the sum across both. */
void autoscale_scope_query(json_object *so, const char *model, const char *pod_re);
/* A Deployment's fixed replicas, or an HPA's / ScaledObject's bounds, scaled to weight w, for
 * routing none (replica counts approximate the traffic split). */
void autoscale_scale_to_weight(json_object *o, int w);

#endif
