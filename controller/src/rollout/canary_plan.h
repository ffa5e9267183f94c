/*
 * The body of a canary plan, shared by canary.c (which builds it) and the rollout driver
 * (canary_rollout.c, which steps it). Only those two include this; everyone else sees the
 * opaque canary_plan of canary.h. It includes neither canary.h nor canary_rollout.h, so both
 * files depend on it and never on each other.
 */
#ifndef KINFER_CTL_CANARY_PLAN_H
#define KINFER_CTL_CANARY_PLAN_H

#include <json.h>
#include <stdint.h>
#include <stdio.h>

#include "revision.h"
#include "rollout.h"
#include "routing.h"

typedef struct canary_plan canary_plan;

struct canary_plan {
    routing_spec rs;
    char name[64], ns[256], key[320];
    char latest[REVISION_NAME_MAX], stable[REVISION_NAME_MAX], stable_prev[REVISION_NAME_MAX];
    char stable_dep[80];
    int have_stable, differs, split, promoting, stable_ready, canary_ready, canary_seen;
    int weight;     /* the canary's target weight (split) */
    int weight_eff; /* after readiness: what the routing got */
    int has_rollout, rollout_ran, rollout_known;
    rollout_policy policy;
    rollout_state state;
    char rollout_reason[64]; /* the last transition's reason, kept from the status between passes */
    char rollout_msg[320];
    rollout_obs obs;
    int obs_valid;
    rollout_obs stable_obs; /* the stable revision over the same interval: shown, never decides */
    int stable_obs_valid;
    json_object *entry_service; /* split: applied by canary_plan_route() */
    char prev_ready[REVISION_NAME_MAX], prev_rolled[REVISION_NAME_MAX],
        prev_previous[REVISION_NAME_MAX];
    json_object *prev_conditions; /* owned copy */
    char note[256];               /* why a canary was not possible */
    int64_t paused_since_ms;      /* canary_plan_resume(): the pause that just ended, or 0 */
};

static inline void scopy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

#endif
