/*
 * The controller runtime: informers on InferenceServices and on their children (Deployments,
 * Services, HPAs, found by their controller ownerReference) and pods (by the
 * serving.kinfer.dev/inferenceservice label), a rate-limited workqueue of InferenceService keys,
 * and N workers. A worker server-side applies what reconcile_desired() returns (skipping children
 * whose cached copy is as last applied, see applied.h), deletes owned
 * children it no longer returns, computes status with status_compute() from the applied
 * Deployment and the cached pods, writes /status only when it changed, and records Events
 * (children created, Ready transitions, errors). Deciding what the children look like is
 * reconcile.c's job, not this module's. An InferenceService annotated serving.kinfer.dev/paused:
 * "true" is only reported on (status_compute_paused() from the cached Deployment and pods): no
 * apply, delete or prune, and its rollout holds; Paused/Resumed Events mark the transitions.
 */
#ifndef KINFER_CTL_CONTROLLER_H
#define KINFER_CTL_CONTROLLER_H

#include "../common/error.h"
#include "../kube/kube.h"
#include "../reconcile/reconcile.h"
#include "../rollout/routing.h"

typedef struct controller controller;

typedef struct controller_config {
    const char *namespace; /* NULL or "": all namespaces */
    int workers;           /* >= 1 */
    reconcile_config reconcile;
    routing_mode
        default_routing; /* for InferenceServices without spec.routing (--default-routing) */
    const char
        *default_gateway; /* "namespace/name" parentRef for gateway routing (--default-gateway) */
} controller_config;

/* Strings in cfg are copied. The client must outlive the controller. */
ctl_status *controller_create(kube_client *c, const controller_config *cfg, controller **out)
    __attribute__((warn_unused_result));
/* Starts the informers, then the workers (which wait for the caches to sync first). */
ctl_status *controller_start(controller *ctl) __attribute__((warn_unused_result));
/* Nonzero once every informer has listed once. */
int controller_synced(controller *ctl);
/* Stops taking keys, waits for in-flight reconciles to finish, stops the informers. Idempotent. */
void controller_stop(controller *ctl);
void controller_free(controller *ctl); /* stops first; NULL is a no-op */
/* The workqueue depth (for metrics). */
size_t controller_queue_depth(void *ctl);

#endif
