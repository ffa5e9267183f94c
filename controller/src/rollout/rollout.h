/*
 * rollout: automatic progressive delivery as a pure state machine. Given the policy
 * (spec.predictor.rollout), the state so far (kept in status, so a controller restart resumes
 * it), what was observed of the canary now (ready or not, success rate, p99 latency) and the
 * time, rollout_step() returns the next state and one action for the caller: set the canary's
 * traffic weight, promote it, or roll back to the previous revision.
 *
 * Rules: a canary receives traffic only once Ready. Each `interval` one check is made: every
 * configured metric within bounds advances to the next step weight (after the last step the
 * canary is promoted); a metric out of bounds is a failed check, and `threshold` failed checks
 * roll back. A metric that could not be read or had no requests is neither: the check is
 * inconclusive, counted apart, and the weight holds (Paused). The progress deadline bounds the
 * whole rollout: when it passes before promotion the rollout fails and rolls back, so no rollout
 * stays in progress forever. Blue/green is the same machine with every step weight 0 (no traffic
 * while the pre-promotion checks run) followed by a switch of all traffic.
 * It reads no clock and does no I/O; rollout_policy_parse() reads the spec.
 */
#ifndef KINFER_CTL_ROLLOUT_H
#define KINFER_CTL_ROLLOUT_H

#include <json.h>
#include <stdint.h>

#include "../common/error.h"

#define ROLLOUT_MAX_STEPS 32

typedef enum rollout_phase {
    ROLLOUT_IDLE = 0,    /* not started */
    ROLLOUT_WAITING,     /* canary not Ready yet: no traffic */
    ROLLOUT_PROGRESSING, /* stepping through the weights */
    ROLLOUT_PAUSED,      /* the last check was inconclusive: weight held */
    ROLLOUT_SUCCEEDED,   /* promoted */
    ROLLOUT_FAILED,      /* rolled back */
} rollout_phase;

typedef struct rollout_policy {
    int steps[ROLLOUT_MAX_STEPS]; /* canary weights, ascending; blue/green: all 0 */
    int nsteps;                   /* >= 1 */
    int blue_green;
    int64_t interval_ms; /* > 0 */
    int64_t deadline_ms; /* > 0: the whole rollout must end within it */
    int threshold;       /* >= 1 failed checks roll back */
    int check_success;   /* successRate configured */
    double min_success_pct;
    int check_latency; /* latencyP99 configured */
    double max_p99_ms;
} rollout_policy;

typedef struct rollout_state {
    rollout_phase phase;
    int step;   /* index into policy.steps of the current weight */
    int weight; /* the canary's weight now, 0..100 */
    int failed_checks, inconclusive_checks, passed_checks;
    int64_t start_ms, last_check_ms; /* epoch ms; 0: not yet */
} rollout_state;

typedef enum rollout_metric_status {
    ROLLOUT_METRIC_OK,
    ROLLOUT_METRIC_NODATA,
    ROLLOUT_METRIC_ERROR
} rollout_metric_status;

typedef struct rollout_metric {
    rollout_metric_status status;
    double value;
} rollout_metric;

typedef struct rollout_obs {
    int canary_ready;
    rollout_metric success_pct; /* over the last interval */
    rollout_metric p99_ms;
    const char *detail; /* why a metric is missing (for the message); may be NULL */
} rollout_obs;

typedef enum rollout_action {
    ROLLOUT_ACT_NONE,
    ROLLOUT_ACT_SET_WEIGHT, /* route state.weight to the canary */
    ROLLOUT_ACT_PROMOTE,    /* the canary becomes the rolled-out revision */
    ROLLOUT_ACT_ROLLBACK,   /* all traffic back to the previous revision */
} rollout_action;

typedef struct rollout_result {
    rollout_state state;
    rollout_action action;
    int checked;        /* 1 when obs metrics were evaluated (the caller starts a new interval) */
    const char *reason; /* static CamelCase word for Events and conditions */
    char message[320];
    int64_t requeue_ms; /* call again after this long; 0 when finished */
} rollout_result;

/* Pure: reads spec.predictor.rollout (rollout may be NULL: *present = 0). Errors (CTL_EINVAL)
 * name the field, e.g. "spec.predictor.rollout.stepWeights: must be ascending". */
ctl_status *rollout_policy_parse(json_object *rollout, rollout_policy *p, int *present)
    __attribute__((warn_unused_result));

/* Pure: one step of the state machine at time now_ms (epoch ms). obs is only read when a check
 * is due (rollout_check_due()), and may be NULL otherwise. */
rollout_result rollout_step(const rollout_policy *p, const rollout_state *s, const rollout_obs *obs,
                            int64_t now_ms);

/* Whether rollout_step() at now_ms would evaluate metrics (so the caller scrapes only then). */
int rollout_check_due(const rollout_policy *p, const rollout_state *s, int64_t now_ms);

/* Pure: the state of a rollout held by a pause (serving.kinfer.dev/paused) that began at
 * paused_since_ms, resumed at now_ms. The paused time never counts: start_ms moves forward by the
 * length of the pause (counted from start_ms when the rollout started later), so the progress
 * deadline (start_ms + deadline_ms) excludes it, and a rollout with checks under way restarts its
 * check interval (last_check_ms = now_ms): the first check after the pause judges one whole
 * interval of unpaused traffic, and no check is counted for the paused time. Idle and finished
 * rollouts, and a pause that did not end after it began, are returned unchanged. */
rollout_state rollout_resume(const rollout_state *s, int64_t paused_since_ms, int64_t now_ms);

/* "Progressing", "Succeeded", ... and back; parse returns -1 for an unknown name. */
const char *rollout_phase_name(rollout_phase ph);
int rollout_phase_parse(const char *name);
/* Nonzero for Succeeded and Failed. */
int rollout_phase_terminal(rollout_phase ph);

#endif
