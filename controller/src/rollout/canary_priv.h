/*
 * Private to canary.c and canary_rollout.c: the canary module's state and plan, shared so the
 * rollout driver (canary_rollout.c) can live in its own file. Nothing else includes this.
 */
#ifndef KINFER_CTL_CANARY_PRIV_H
#define KINFER_CTL_CANARY_PRIV_H

#include <pthread.h>
#include <stdio.h>

#include "canary.h"
#include "../kube/informer.h"
#include "metricsource.h"
#include "revision.h"
#include "rollout.h"
#include "routing.h"
#include "../common/strmap.h"

enum { CI_ROUTE, CI_VS, CI_COUNT };

struct canary {
    kube_client *client;
    canary_config cfg;
    char *gateway, *prometheus, *ns;
    informer *inf[CI_COUNT]; /* NULL when the API is not served */
    void (*enqueue)(void *, const char *);
    void *ud;
    pthread_mutex_t mu;
    metricsource *src; /* the canaries' metrics and their baselines */
    strmap *states;    /* "ns/name" -> rollout_memo*: the newest rollout state (status lags in the cache) */
};

/* What the last reconcile of a rollout decided. One worker owns a key at a time, so this is never
 * older than the status it wrote; after a restart the status is the only source. */
typedef struct rollout_memo {
    char revision[REVISION_NAME_MAX];
    rollout_state state;
    char reason[64];
    char message[320];
    rollout_obs obs, stable_obs;
    int obs_valid, stable_obs_valid;
    int64_t resumed_from; /* the pause (its start, epoch ms) already taken out of the state */
} rollout_memo;

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
    char prev_ready[REVISION_NAME_MAX], prev_rolled[REVISION_NAME_MAX], prev_previous[REVISION_NAME_MAX];
    json_object *prev_conditions; /* owned copy */
    char note[256];               /* why a canary was not possible */
    int64_t paused_since_ms;      /* canary_plan_resume(): the pause that just ended, or 0 */
};

static inline void scopy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

/* Records an Event on the InferenceService (logged when it cannot be recorded). canary.c. */
void canary_event(canary *cn, json_object *isvc, const char *type, const char *reason, const char *msg);
/* Runs one step of p's progressive rollout at now_ms: reads the canary's (and, for comparison,
 * the stable revision's) metrics when a check is due, decides with rollout_step(), keeps the
 * result in cn->states, records Events and metrics, and sets *requeue_ms. canary_rollout.c. */
void canary_run_rollout(canary *cn, canary_plan *p, json_object *isvc, json_object *pods, int64_t now_ms,
                        int64_t *requeue_ms);

#endif
