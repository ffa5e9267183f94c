/*
 * canary: revisions, traffic splitting and progressive delivery for the controller (KServe's
 * serverless canary semantics, without Knative). One reconcile of an InferenceService goes:
 *
 *   reconcile_desired() -> canary_plan_new() -> apply children, canary_plan_observe() each
 *   -> canary_plan_route() -> prune -> status_compute() -> canary_plan_status()
 *
 * The stable Deployment "<name>-predictor" runs the last rolled-out revision and records it in
 * its labels (serving.kinfer.dev/revision) and annotations (the predictor spec it was built from,
 * and the revision before it), so the previous revision is rebuilt from the cluster after a
 * controller restart, never from memory. When the predictor's pod template changes while
 * spec.predictor.canaryTrafficPercent (< 100) or spec.predictor.rollout is set, the new revision
 * runs beside it as its own Deployment, Service and HPA/ScaledObject named after the revision, and
 * traffic is split by weight (HTTPRoute, VirtualService, or replica counts with no router).
 * Otherwise the stable Deployment rolls to the new template (a rolling update, as without
 * canaries). Promotion is that same rolling update; the canary is removed once the stable is Ready.
 * Traffic goes only to a Ready revision.
 *
 * canary_plan_new() and canary_plan_status() are pure; canary_plan_route() talks to the API
 * server (routing objects, Events), reads canary metrics and runs rollout_step().
 */
#ifndef KINFER_CTL_CANARY_H
#define KINFER_CTL_CANARY_H

#include <json.h>
#include <stdint.h>

#include "../common/error.h"
#include "../kube/kube.h"
#include "metricsource.h"
#include "../reconcile/reconcile.h"
#include "routing.h"

/* Testing/ops hook: on the InferenceService, "serving.kinfer.dev/metrics-endpoints-<hash8>" =
 * comma-separated kinfer-server base URLs to read revision <...>-predictor-<hash8>'s metrics from,
 * instead of its pods' IPs (port 8080) or Prometheus. */
#define CANARY_ANNOTATION_ENDPOINTS METRICSOURCE_ANNOTATION_ENDPOINTS

typedef struct canary canary;
typedef struct canary_plan canary_plan;

typedef struct canary_config {
    routing_mode default_routing;
    const char *default_gateway;    /* "namespace/name" parentRef for gateway mode, or NULL */
    const char *prometheus_address; /* http://host:port, or NULL: scrape pods directly */
} canary_config;

/* The controller-wide part: informers on HTTPRoutes and VirtualServices owned by InferenceServices
 * (each only when its API is served), whose changes call enqueue(ud, "ns/isvc"), and the metric
 * baselines of running rollouts. Strings are copied. */
ctl_status *canary_create(kube_client *c, const char *ns, const canary_config *cfg,
                          void (*enqueue)(void *, const char *), void *ud, canary **out)
    __attribute__((warn_unused_result));
ctl_status *canary_start(canary *cn) __attribute__((warn_unused_result));
int canary_synced(canary *cn);
void canary_stop(canary *cn);
void canary_free(canary *cn); /* NULL is a no-op */
const canary_config *canary_get_config(canary *cn);

/* Pure: rewrites *children (from reconcile_desired, replaced by a new array the caller owns) into
 * the children of every revision to apply now, and returns the plan (caller frees). deployments:
 * the InferenceService's cached Deployments (metadata is enough). CTL_EINVAL for a bad
 * spec.routing or spec.predictor.rollout. */
ctl_status *canary_plan_new(const canary_config *cfg, json_object *isvc, const reconcile_config *rc,
                            json_object *deployments, json_object **children, canary_plan **out)
    __attribute__((warn_unused_result));
/* Tells the plan what one applied child looks like now (the apply response): readiness of the
 * revisions' Deployments. */
void canary_plan_observe(canary_plan *p, json_object *applied);
/* The first reconciles after a pause (serving.kinfer.dev/paused) that began at paused_since_ms
 * (epoch ms; status_paused_since_ms()): canary_plan_route() takes the paused time out of the
 * rollout's clocks (rollout_resume()) and reads a fresh metrics baseline, once per pause. */
void canary_plan_resume(canary_plan *p, int64_t paused_since_ms);
/* After the children are applied: runs the rollout (if any) at now_ms, applies the entry Service
 * and the routing object, deletes routing objects no longer wanted, records Events and metrics,
 * and appends what it applied to children (so that pruning keeps it). During a promotion the
 * canary's children are removed from children once the stable Deployment is Ready, so pruning
 * deletes them. *requeue_ms: when to reconcile again (0: no need). pods: the cached pods. */
ctl_status *canary_plan_route(canary *cn, canary_plan *p, json_object *isvc, json_object *pods,
                              json_object *children, int64_t now_ms, int64_t *requeue_ms)
    __attribute__((warn_unused_result));
/* Pure: sets status.components.predictor's revisions, traffic and rollout, and the CanaryReady
 * condition, in status (from status_compute()). now: RFC 3339. */
void canary_plan_status(const canary_plan *p, json_object *status, const char *now);
void canary_plan_free(canary_plan *p); /* NULL is a no-op */

/* Internal (double underscore), exposed for tests. */
const char *canary__plan_latest(const canary_plan *p);
const char *canary__plan_stable(const canary_plan *p); /* NULL without a previous revision */
int canary__plan_split(const canary_plan *p);          /* 1 while two revisions share traffic */
int canary__plan_weight(const canary_plan *p);         /* the canary's effective weight */

#endif
