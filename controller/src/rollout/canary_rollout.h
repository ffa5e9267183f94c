/*
 * canary_rollout: the progressive-rollout driver. One step per reconcile of a split canary plan
 * (canary_plan.h): read the canary's and the stable revision's metrics when a check is due,
 * decide with rollout_step() (rollout.h, pure), remember the decision (status lags in the
 * cache), record Events and metrics. It owns the controller-wide memory of running rollouts and
 * their metric baselines; it does not route, apply or prune (canary.c does), and it never
 * calls back into canary.c.
 */
#ifndef KINFER_CTL_CANARY_ROLLOUT_H
#define KINFER_CTL_CANARY_ROLLOUT_H

#include <json.h>
#include <stdint.h>

#include "../kube/kube.h"
#include "canary_plan.h"

typedef struct canary_rollout canary_rollout;

/* c: where Events go (borrowed; may be NULL in tests: no Events). prometheus_address: as
 * metricsource_create() (copied; NULL: read the pods). NULL on out of memory. */
canary_rollout *canary_rollout_create(kube_client *c, const char *prometheus_address);
void canary_rollout_free(canary_rollout *r); /* NULL is a no-op */
/* Runs one step of p's progressive rollout at now_ms (epoch ms) and updates p (state, weight,
 * observations, reason). *requeue_ms: when the rollout wants the next pass (0: no need).
 * Thread-safe across keys; one worker owns a key at a time. */
void canary_rollout_step(canary_rollout *r, canary_plan *p, json_object *isvc, json_object *pods,
                         int64_t now_ms, int64_t *requeue_ms);

#endif
