/* The rollout driver: one step of a progressive rollout per reconcile; see canary_rollout.h. */
#include "canary_rollout.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/metrics.h"
#include "../common/strmap.h"
#include "metricsource.h"

struct canary_rollout {
    kube_client *client;
    pthread_mutex_t mu;
    metricsource *src; /* the canaries' metrics and their baselines */
    strmap *states;    /* "ns/name" -> rollout_memo*: the newest rollout state (status lags in the
                          cache) */
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

canary_rollout *canary_rollout_create(kube_client *c, const char *prometheus_address)
{
    canary_rollout *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->client = c;
    r->src = metricsource_create(prometheus_address);
    r->states = strmap_create();
    if (!r->src || !r->states) {
        canary_rollout_free(r);
        return NULL;
    }
    return r;
}

static int free_memo(void *ud, const char *k, void *v)
{
    (void)ud, (void)k;
    free(v);
    return 0;
}

void canary_rollout_free(canary_rollout *r)
{
    if (!r) return;
    metricsource_free(r->src);
    if (r->states) strmap_each(r->states, free_memo, NULL);
    strmap_free(r->states);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* The stable revision's metrics over the same interval as the canary's (same baselines, same
 * times), kept for status and Events so a reader can compare; the checks only judge the canary
 * against the policy's thresholds. keep_obs 0: only move the baseline (a new interval starts). */
static void read_stable(canary_rollout *cn, canary_plan *p, json_object *isvc, json_object *pods,
                        int keep_obs)
{
    if (!p->have_stable || !*p->stable || !strcmp(p->stable, p->latest)) return;
    rollout_obs o = {0};
    scrape_sample cur;
    char detail[256];
    if (metricsource_read(cn->src, p->key, p->ns, p->stable, isvc, pods, p->policy.interval_ms, &o,
                          &cur, detail, sizeof(detail)))
        metricsource_keep(cn->src, p->key, p->stable, &cur);
    if (keep_obs &&
        (o.success_pct.status == ROLLOUT_METRIC_OK || o.p99_ms.status == ROLLOUT_METRIC_OK)) {
        p->stable_obs = o;
        p->stable_obs.detail = NULL;
        p->stable_obs_valid = 1;
    }
}

/* "; stable revision R: 99.9% success, p99 12.0 ms" for a check's Event. */
static void stable_words(const canary_plan *p, char *buf, size_t n)
{
    int k = snprintf(buf, n, "; stable revision %s:", p->stable);
    if (k > 0 && (size_t)k < n && p->stable_obs.success_pct.status == ROLLOUT_METRIC_OK)
        k += snprintf(buf + k, n - (size_t)k, " %.2f%% success", p->stable_obs.success_pct.value);
    if (k > 0 && (size_t)k < n && p->stable_obs.p99_ms.status == ROLLOUT_METRIC_OK)
        snprintf(buf + k, n - (size_t)k, "%s p99 %.1f ms",
                 p->stable_obs.success_pct.status == ROLLOUT_METRIC_OK ? "," : "",
                 p->stable_obs.p99_ms.value);
}

/* What the last reconcile of this rollout decided, into p (when it was about p's revision).
 * Returns the pause already taken out of its clocks (epoch ms), or 0. */
static int64_t memo_load(canary_rollout *cn, canary_plan *p)
{
    int64_t resumed_from = 0;
    pthread_mutex_lock(&cn->mu);
    rollout_memo *memo = strmap_get(cn->states, p->key);
    if (memo && !strcmp(memo->revision, p->latest)) {
        resumed_from = memo->resumed_from;
        p->rollout_known = 1;
        p->state = memo->state;
        scopy(p->rollout_reason, sizeof(p->rollout_reason), memo->reason);
        scopy(p->rollout_msg, sizeof(p->rollout_msg), memo->message);
        if (memo->obs_valid) p->obs = memo->obs, p->obs_valid = 1;
        if (memo->stable_obs_valid) p->stable_obs = memo->stable_obs, p->stable_obs_valid = 1;
    }
    pthread_mutex_unlock(&cn->mu);
    return resumed_from;
}

/* Remembers what this step decided (p after the step) for the next reconcile. */
static void memo_store(canary_rollout *cn, const canary_plan *p, int64_t resumed_from)
{
    rollout_memo *memo = calloc(1, sizeof(*memo));
    if (!memo) return;
    scopy(memo->revision, sizeof(memo->revision), p->latest);
    memo->state = p->state;
    scopy(memo->reason, sizeof(memo->reason), p->rollout_reason);
    scopy(memo->message, sizeof(memo->message), p->rollout_msg);
    memo->obs = p->obs;
    memo->obs_valid = p->obs_valid;
    memo->stable_obs = p->stable_obs;
    memo->stable_obs_valid = p->stable_obs_valid;
    memo->resumed_from = resumed_from;
    pthread_mutex_lock(&cn->mu);
    free(strmap_remove(cn->states, p->key));
    if (strmap_put(cn->states, p->key, memo, NULL)) free(memo);
    pthread_mutex_unlock(&cn->mu);
}

/* Keeps the canary's newest sample as its baseline (have: cur was read), or drops both
 * revisions' baselines once the rollout has ended. */
static void keep_baselines(canary_rollout *cn, const canary_plan *p, const rollout_result *r,
                           int have, const scrape_sample *cur)
{
    if (rollout_phase_terminal(r->state.phase)) {
        metricsource_keep(cn->src, p->key, p->latest, NULL);
        if (p->have_stable) metricsource_keep(cn->src, p->key, p->stable, NULL);
    } else if (have)
        metricsource_keep(cn->src, p->key, p->latest, cur);
}

/* The Event and log line of a step that changed something. */
static void report_step(canary_rollout *cn, const canary_plan *p, json_object *isvc,
                        const rollout_result *r)
{
    int warn = !strcmp(r->reason, "CheckFailed") || !strcmp(r->reason, "RolledBack") ||
               !strcmp(r->reason, "ProgressDeadlineExceeded") ||
               !strcmp(r->reason, "MetricsUnavailable");
    char msg[520], cmp[96] = "";
    if (r->checked && p->stable_obs_valid) stable_words(p, cmp, sizeof(cmp));
    snprintf(msg, sizeof(msg), "revision %s: %s%s", p->latest, r->message, cmp);
    if (strcmp(r->reason, "Resumed") && cn->client)
        kube_record_event(cn->client, isvc, warn ? "Warning" : "Normal", r->reason,
                          msg); /* the controller's */
    log_info("rollout", "key", p->key, "revision", p->latest, "phase",
             rollout_phase_name(r->state.phase), "reason", r->reason, "message", r->message);
}

/* The rollout's gauges, and one count per check by its verdict (s: the state before the step). */
static void count_step(const canary_plan *p, const rollout_state *s, const rollout_result *r)
{
    metrics_set_rollout(p->key, rollout_phase_name(r->state.phase), r->state.weight);
    if (r->checked && r->state.failed_checks > s->failed_checks)
        metrics_count_rollout_check(p->key, "failed");
    if (r->checked && r->state.inconclusive_checks > s->inconclusive_checks)
        metrics_count_rollout_check(p->key, "inconclusive");
    if (r->checked && r->state.passed_checks > s->passed_checks)
        metrics_count_rollout_check(p->key, "passed");
}

/* When the next pass should look, in ms (0: no need). */
static int64_t next_look_ms(const rollout_result *r, int planned_weight)
{
    /* Promotion is decided by the next plan, from the status. While this plan still splits, the
     * cached status has not caught up with the Succeeded this process wrote: look again soon rather
     * than depend on that status event alone. */
    int64_t ms = r->action == ROLLOUT_ACT_PROMOTE      ? 1
                 : r->state.phase == ROLLOUT_SUCCEEDED ? 500
                                                       : r->requeue_ms;
    /* Status-only updates do not wake the controller: when the weight moved, plan again (replica
     * shares without a router) once the cache holds the status written now. */
    if (r->state.weight != planned_weight && (!ms || ms > 500)) ms = 500;
    return ms;
}

void canary_rollout_step(canary_rollout *cn, canary_plan *p, json_object *isvc, json_object *pods,
                         int64_t now_ms, int64_t *requeue_ms)
{
    int64_t resumed_from = memo_load(cn, p);
    rollout_state s = p->rollout_known ? p->state : (rollout_state){0};
    int planned_weight = p->weight; /* what this plan split replicas by (from the status) */
    rollout_obs obs = {.canary_ready = p->canary_ready};
    scrape_sample cur;
    char detail[256] = "";
    int have = 0, resumed = 0;
    /* Once per pause (a retried reconcile must not take it out twice): rollout_resume(). */
    if (p->paused_since_ms && p->paused_since_ms != resumed_from) {
        rollout_state was = s;
        s = rollout_resume(&was, p->paused_since_ms, now_ms);
        resumed = s.start_ms != was.start_ms;
        resumed_from = p->paused_since_ms;
    }
    if (rollout_check_due(&p->policy, &s, now_ms)) {
        have = metricsource_read(cn->src, p->key, p->ns, p->latest, isvc, pods,
                                 p->policy.interval_ms, &obs, &cur, detail, sizeof(detail));
        read_stable(cn, p, isvc, pods, 1);
    }
    rollout_result r = rollout_step(&p->policy, &s, &obs, now_ms);
    if (resumed && !r.checked && r.action == ROLLOUT_ACT_NONE) {
        r.reason = "Resumed";
        snprintf(r.message, sizeof(r.message),
                 "resumed after a pause at weight %d%%: the pause does not count toward "
                 "progressDeadlineSeconds; next check in %" PRId64 " ms",
                 s.weight, p->policy.interval_ms);
    }
    if ((resumed && !r.checked) || (!r.checked && r.action == ROLLOUT_ACT_SET_WEIGHT)) {
        rollout_obs ignore = {0};
        have = metricsource_read(
            cn->src, p->key, p->ns, p->latest, isvc, pods, p->policy.interval_ms, &ignore, &cur,
            detail, sizeof(detail)); /* the first interval's baseline (again after a pause) */
        read_stable(cn, p, isvc, pods, 0);
    }
    keep_baselines(cn, p, &r, have, &cur);
    if (r.checked &&
        (obs.success_pct.status == ROLLOUT_METRIC_OK || obs.p99_ms.status == ROLLOUT_METRIC_OK)) {
        p->obs = obs; /* the last values read; an inconclusive check keeps the previous ones */
        p->obs.detail = NULL;
        p->obs_valid = 1;
    }
    int changed = r.checked || r.action != ROLLOUT_ACT_NONE || r.state.phase != s.phase || resumed;
    p->state = r.state;
    p->weight = r.state.weight;
    p->rollout_ran = 1;
    if (changed) {
        scopy(p->rollout_reason, sizeof(p->rollout_reason), r.reason);
        scopy(p->rollout_msg, sizeof(p->rollout_msg), r.message);
        report_step(cn, p, isvc, &r);
    }
    memo_store(cn, p, resumed_from);
    count_step(p, &s, &r);
    *requeue_ms = next_look_ms(&r, planned_weight);
}
