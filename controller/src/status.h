/*
 * status: the pure computation of an InferenceService's .status from what the controller
 * observed (its Deployment and pods). It follows kstatus conventions so that kubectl wait,
 * Argo CD and Flux read it: status.observedGeneration, a "Ready" condition (with
 * "PredictorReady" under it), and "Reconciling"/"Stalled" abnormal-true conditions present
 * only while they hold. It reads no clock: the caller passes `now`.
 * It does not write anything to the API server; the runtime PUTs the result to /status.
 */
#ifndef KINFER_CTL_STATUS_H
#define KINFER_CTL_STATUS_H

#include <json.h>

#include "error.h"

/* Pure: the new .status of isvc from its observed Deployment (may be NULL) and its pods (json array,
 * may be empty or NULL), the previous status (may be NULL) and the current time (RFC3339).
 * lastTransitionTime is kept when a condition's status is unchanged.
 * *status is new, owned by the caller (json_object_put). */
ctl_status *status_compute(json_object *isvc, json_object *deployment, json_object *pods, json_object *prev_status,
                           const char *now, json_object **status) __attribute__((warn_unused_result));

/* Pure: the .status for an InferenceService whose spec reconcile_desired() rejected: Ready False,
 * Stalled True, reason "InvalidSpec", message `msg`. Same ownership and time rules. */
ctl_status *status_compute_invalid(json_object *isvc, const char *msg, json_object *prev_status, const char *now,
                                   json_object **status) __attribute__((warn_unused_result));

/* Pure: adds to status.conditions what a progressive rollout (status.components.predictor.rollout,
 * written by canary_plan_status) means to kstatus: Reconciling=True (RolloutProgressing,
 * RolloutPaused) while it moves, Stalled=True (RolloutFailed) once it failed and was rolled back.
 * Nothing when the rollout is of an older revision than latestCreatedRevision, or when status_compute
 * already set Reconciling or Stalled for the predictor (never both). Ready is left as it is.
 * prev_conditions (may be NULL) keeps lastTransitionTime. */
void status_rollout_conditions(json_object *status, json_object *prev_conditions, const char *now);

#endif
