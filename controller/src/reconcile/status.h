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
#include <stdint.h>

#include "../common/error.h"

/* The annotation that pauses an InferenceService (docs/operations.md, "Pausing an
 * InferenceService"). */
#define STATUS_ANNOTATION_PAUSED "serving.kinfer.dev/paused"

typedef enum status_pause {
    STATUS_PAUSE_OFF,     /* no annotation */
    STATUS_PAUSE_ON,      /* exactly "true" */
    STATUS_PAUSE_IGNORED, /* any other value ("false", "yes", "True", ""): not a pause */
} status_pause;

/* Pure: the new .status of isvc from its observed Deployment (may be NULL) and its pods (json
 * array, may be empty or NULL), the previous status (may be NULL) and the current time (RFC3339).
 * lastTransitionTime is kept when a condition's status is unchanged.
 * *status is new, owned by the caller (json_object_put). */
ctl_status *status_compute(json_object *isvc, json_object *deployment, json_object *pods,
                           json_object *prev_status, const char *now, json_object **status)
    __attribute__((warn_unused_result));

/* Pure: the .status for an InferenceService whose spec reconcile_desired() rejected: Ready False,
 * Stalled True, reason "InvalidSpec", message `msg`. Same ownership and time rules. */
ctl_status *status_compute_invalid(json_object *isvc, const char *msg, json_object *prev_status,
                                   const char *now, json_object **status)
    __attribute__((warn_unused_result));

/* Pure: adds to status.conditions what a progressive rollout (status.components.predictor.rollout,
 * written by canary_plan_status) means to kstatus: Reconciling=True (RolloutProgressing,
 * RolloutPaused) while it moves, Stalled=True (RolloutFailed) once it failed and was rolled back.
 * Nothing when the rollout is of an older revision than latestCreatedRevision, or when
 * status_compute already set Reconciling or Stalled for the predictor (never both). Ready is left
 * as it is. prev_conditions (may be NULL) keeps lastTransitionTime. */
void status_rollout_conditions(json_object *status, json_object *prev_conditions, const char *now);

/* Pure: whether isvc is paused by STATUS_ANNOTATION_PAUSED. Only the exact value "true" pauses
 * (what the Argo CD health script reads as Suspended); *value (may be NULL) gets the annotation's
 * value, borrowed from isvc, or NULL when absent. */
status_pause status_pause_read(json_object *isvc, const char **value);

/* Pure: the .status of a paused InferenceService, whose children the controller leaves alone.
 * deployment is the observed predictor Deployment (may be NULL), pods as for status_compute().
 * Ready/PredictorReady (and Reconciling/Stalled) describe that Deployment as it runs, judged on its
 * own: a spec change made while paused does not make it "outdated". status.observedGeneration is
 * the last generation acted on: prev_status's, else the generation the Deployment was applied from,
 * else absent, and never the current generation unless that one was applied, so kstatus reports
 * InProgress for an unapplied change. status.components and the CanaryReady condition are kept
 * from prev_status as the last reconcile left them (a rollout holds its weight); a rollout moving
 * still adds its Reconciling (status_rollout_conditions), and the Paused condition is added
 * (status_pause_condition). Same ownership and time rules as status_compute(). */
ctl_status *status_compute_paused(json_object *isvc, json_object *deployment, json_object *pods,
                                  json_object *prev_status, const char *now, json_object **status)
    __attribute__((warn_unused_result));

/* Pure: adds to status.conditions the Paused condition status_pause_read(isvc) calls for: True with
 * reason PausedByAnnotation while paused, False with reason IgnoredAnnotationValue when the
 * annotation holds another value, none otherwise (a resumed object carries no Paused condition).
 * prev_conditions (may be NULL) keeps lastTransitionTime, which is when the pause began. */
void status_pause_condition(json_object *status, json_object *isvc, json_object *prev_conditions,
                            const char *now);

/* Pure: when the pause recorded in prev_status began, in epoch ms (its Paused=True condition's
 * lastTransitionTime); 0 when prev_status records no pause or the time does not parse. */
int64_t status_paused_since_ms(json_object *prev_status);

#endif
