/* The progressive-delivery state machine; see rollout.h. */
#include "rollout.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P "spec.predictor.rollout."

static const char *const phase_names[] = {"Idle",   "WaitingForCanary", "Progressing",
                                          "Paused", "Succeeded",        "Failed"};

const char *rollout_phase_name(rollout_phase ph)
{
    return (unsigned)ph < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[ph]
                                                                       : "Unknown";
}

int rollout_phase_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
        if (!strcmp(name, phase_names[i])) return (int)i;
    return -1;
}

int rollout_phase_terminal(rollout_phase ph)
{
    return ph == ROLLOUT_SUCCEEDED || ph == ROLLOUT_FAILED;
}

/* ---- policy ---- */

static ctl_status *int_field(json_object *o, const char *path, const char *k, int64_t lo,
                             int64_t hi, int64_t dflt, int64_t *out)
{
    json_object *v = jx_get(o, k);
    *out = dflt;
    if (!v) return NULL;
    if (!json_object_is_type(v, json_type_int))
        return ctl_status_new(CTL_EINVAL, "%s%s: must be an integer", path, k);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return ctl_status_new(CTL_EINVAL,
                              "%s%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", path,
                              k, x, lo, hi);
    *out = x;
    return NULL;
}

static ctl_status *num_field(json_object *o, const char *path, const char *k, double lo, double hi,
                             double *out, int *present)
{
    json_object *v = jx_get(o, k);
    *present = 0;
    if (!v) return NULL;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return ctl_status_new(CTL_EINVAL, "%s%s: must be a number", path, k);
    double x = json_object_get_double(v);
    if (!(x >= lo && x <= hi))
        return ctl_status_new(CTL_EINVAL, "%s%s: %g is out of range [%g, %g]", path, k, x, lo, hi);
    *out = x;
    *present = 1;
    return NULL;
}

/* "30s", "2m" -> ms; -1 when malformed. Seconds at least: a shorter check interval would
 * turn the requeue-after into a busy loop of reconciles and scrapes. */
static int64_t duration_ms(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0 || v > 86400000LL) return -1;
    if (!strcmp(end, "s")) return v * 1000;
    if (!strcmp(end, "m")) return v * 60000;
    return -1;
}

ctl_status *rollout_policy_parse(json_object *r, rollout_policy *p, int *present)
{
    ctl_status *st = NULL;
    json_object *v, *sw = jx_get(r, "stepWeights"), *bg = jx_get(r, "blueGreen"), *m;
    int64_t x, step = 0, maxw;
    memset(p, 0, sizeof(*p));
    *present = r != NULL && !json_object_is_type(r, json_type_null);
    if (!*present) return NULL;
    if (!json_object_is_type(r, json_type_object))
        return ctl_status_new(CTL_EINVAL, "spec.predictor.rollout: must be an object");
    if ((st = int_field(r, P, "stepWeight", 1, 100, 0, &step))) return st;
    if ((st = int_field(r, P, "maxWeight", 1, 100, 100, &maxw))) return st;
    int kinds = (sw != NULL) + (step != 0) + (bg != NULL);
    if (kinds != 1)
        return ctl_status_new(
            CTL_EINVAL,
            "spec.predictor.rollout: exactly one of stepWeights, stepWeight or blueGreen "
            "must be set");
    if (sw) {
        if (!json_object_is_type(sw, json_type_array) || !json_object_array_length(sw))
            return ctl_status_new(CTL_EINVAL, P "stepWeights: must be a non-empty array");
        if (json_object_array_length(sw) > ROLLOUT_MAX_STEPS)
            return ctl_status_new(CTL_EINVAL, P "stepWeights: at most %d steps", ROLLOUT_MAX_STEPS);
        for (size_t i = 0; i < json_object_array_length(sw); i++) {
            v = json_object_array_get_idx(sw, i);
            if (!json_object_is_type(v, json_type_int))
                return ctl_status_new(CTL_EINVAL, P "stepWeights[%zu]: must be an integer", i);
            x = json_object_get_int64(v);
            if (x < 1 || x > 100)
                return ctl_status_new(
                    CTL_EINVAL, P "stepWeights[%zu]: %" PRId64 " is out of range [1, 100]", i, x);
            if (i && x <= p->steps[i - 1])
                return ctl_status_new(CTL_EINVAL, P "stepWeights: must be ascending");
            p->steps[p->nsteps++] = (int)x;
        }
    } else if (step) {
        if (step > maxw)
            return ctl_status_new(
                CTL_EINVAL, P "stepWeight: %" PRId64 " is above maxWeight %" PRId64, step, maxw);
        for (int64_t w = step; w <= maxw && p->nsteps < ROLLOUT_MAX_STEPS; w += step)
            p->steps[p->nsteps++] = (int)w;
    } else {
        json_object *pre = jx_get(bg, "prePromotionAnalysis");
        if ((st = int_field(pre, P "blueGreen.prePromotionAnalysis.", "checks", 1,
                            ROLLOUT_MAX_STEPS, 1, &x)))
            return st;
        p->blue_green = 1;
        p->nsteps = (int)x; /* steps[] stay 0: no traffic until promotion */
    }
    const char *iv = json_object_get_string(jx_get(r, "interval"));
    if (jx_get(r, "interval") && !json_object_is_type(jx_get(r, "interval"), json_type_string))
        return ctl_status_new(CTL_EINVAL, P "interval: must be a string like 30s");
    p->interval_ms = iv ? duration_ms(iv) : 60000;
    if (p->interval_ms < 0)
        return ctl_status_new(CTL_EINVAL, P "interval: \"%s\" is not a duration like 30s or 2m",
                              iv);
    if ((st = int_field(r, P, "threshold", 1, 1000, 5, &x))) return st;
    p->threshold = (int)x;
    if ((st = int_field(r, P, "progressDeadlineSeconds", 1, 86400 * 7, 600, &x))) return st;
    p->deadline_ms = x * 1000;
    m = jx_get(r, "metrics");
    if ((st = num_field(jx_get(m, "successRate"), P "metrics.successRate.", "minPercent", 0, 100,
                        &p->min_success_pct, &p->check_success)))
        return st;
    if ((st = num_field(jx_get(m, "latencyP99"), P "metrics.latencyP99.", "maxMilliseconds", 0,
                        3.6e6, &p->max_p99_ms, &p->check_latency)))
        return st;
    return NULL;
}

/* ---- the machine ---- */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int rollout_check_due(const rollout_policy *p, const rollout_state *s, int64_t now_ms)
{
    if (s->phase != ROLLOUT_PROGRESSING && s->phase != ROLLOUT_PAUSED) return 0;
    if (now_ms - s->start_ms >= p->deadline_ms) return 0;
    return now_ms >= s->last_check_ms + p->interval_ms;
}

static void say(rollout_result *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(rollout_result *r, const char *reason, const char *fmt, ...)
{
    va_list ap;
    r->reason = reason;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

/* Time until the next thing can happen: the next check or the deadline, whichever is first. */
static int64_t next_wake(const rollout_policy *p, const rollout_state *s, int64_t now_ms)
{
    int64_t to_deadline = s->start_ms + p->deadline_ms - now_ms;
    int64_t to_check = s->phase == ROLLOUT_WAITING ? min64(p->interval_ms, 1000)
                                                   : s->last_check_ms + p->interval_ms - now_ms;
    int64_t w = min64(to_deadline, to_check);
    return w < 1 ? 1 : w;
}

static void begin_traffic(const rollout_policy *p, rollout_result *r, int64_t now_ms)
{
    r->state.phase = ROLLOUT_PROGRESSING;
    r->state.step = 0;
    r->state.weight = p->steps[0];
    r->state.last_check_ms = now_ms;
    r->action = ROLLOUT_ACT_SET_WEIGHT;
    if (p->blue_green)
        say(r, "CanaryReady",
            "canary Ready; pre-promotion analysis: %d check(s), every %" PRId64 " ms, no traffic",
            p->nsteps, p->interval_ms);
    else
        say(r, "CanaryReady", "canary Ready; weight %d%%", r->state.weight);
}

/* Evaluates the configured metrics: 1 pass, 0 inconclusive, -1 fail; why gets the explanation. */
static int judge(const rollout_policy *p, const rollout_obs *o, char *why, size_t n)
{
    int missing = 0, failed = 0;
    size_t w = 0;
    why[0] = 0;
#define ADD(...) (w += (size_t)snprintf(why + (w < n ? w : n), w < n ? n - w : 0, __VA_ARGS__))
    if (!o->canary_ready) {
        ADD("canary not Ready");
        return 0;
    }
    if (p->check_success) {
        if (o->success_pct.status != ROLLOUT_METRIC_OK) {
            missing = 1;
            ADD("%ssuccess rate %s", w ? "; " : "",
                o->success_pct.status == ROLLOUT_METRIC_NODATA ? "has no data" : "unreadable");
        } else if (o->success_pct.value < p->min_success_pct) {
            failed = 1;
            ADD("%ssuccess rate %.2f%% < %.2f%%", w ? "; " : "", o->success_pct.value,
                p->min_success_pct);
        } else
            ADD("%ssuccess rate %.2f%%", w ? "; " : "", o->success_pct.value);
    }
    if (p->check_latency) {
        if (o->p99_ms.status != ROLLOUT_METRIC_OK) {
            missing = 1;
            ADD("%slatency p99 %s", w ? "; " : "",
                o->p99_ms.status == ROLLOUT_METRIC_NODATA ? "has no data" : "unreadable");
        } else if (o->p99_ms.value > p->max_p99_ms) {
            failed = 1;
            ADD("%slatency p99 %.1f ms > %.1f ms", w ? "; " : "", o->p99_ms.value, p->max_p99_ms);
        } else
            ADD("%slatency p99 %.1f ms", w ? "; " : "", o->p99_ms.value);
    }
    if (missing && o->detail) ADD(" (%s)", o->detail);
#undef ADD
    return failed ? -1 : missing ? 0 : 1;
}

rollout_result rollout_step(const rollout_policy *p, const rollout_state *s, const rollout_obs *obs,
                            int64_t now_ms)
{
    rollout_result r = {.state = *s, .action = ROLLOUT_ACT_NONE, .reason = "", .message = ""};
    rollout_obs none = {0};
    char why[200];
    if (!obs) obs = &none;
    if (rollout_phase_terminal(s->phase)) {
        say(&r, s->phase == ROLLOUT_SUCCEEDED ? "Promoted" : "RolledBack", "rollout %s",
            s->phase == ROLLOUT_SUCCEEDED ? "succeeded" : "failed");
        return r;
    }
    if (s->phase == ROLLOUT_IDLE) {
        r.state = (rollout_state){.phase = ROLLOUT_WAITING, .start_ms = now_ms};
        if (obs->canary_ready)
            begin_traffic(p, &r, now_ms);
        else
            say(&r, "WaitingForCanary", "rollout started; waiting for the canary to be Ready");
        r.requeue_ms = next_wake(p, &r.state, now_ms);
        return r;
    }
    if (now_ms - s->start_ms >= p->deadline_ms) {
        r.state.phase = ROLLOUT_FAILED;
        r.state.weight = 0;
        r.action = ROLLOUT_ACT_ROLLBACK;
        say(&r, "ProgressDeadlineExceeded",
            "not promoted within %" PRId64
            " s (%d passed, %d failed, %d inconclusive checks, weight was %d%%); rolled back",
            p->deadline_ms / 1000, s->passed_checks, s->failed_checks, s->inconclusive_checks,
            s->weight);
        return r;
    }
    if (s->phase == ROLLOUT_WAITING) {
        if (obs->canary_ready)
            begin_traffic(p, &r, now_ms);
        else
            say(&r, "WaitingForCanary", "waiting for the canary to be Ready");
        r.requeue_ms = next_wake(p, &r.state, now_ms);
        return r;
    }
    if (!rollout_check_due(p, s, now_ms)) {
        say(&r, "Waiting", "next check in %" PRId64 " ms",
            s->last_check_ms + p->interval_ms - now_ms);
        r.requeue_ms = next_wake(p, s, now_ms);
        return r;
    }
    r.checked = 1;
    r.state.last_check_ms = now_ms;
    int v = judge(p, obs, why, sizeof(why));
    if (v < 0) {
        r.state.failed_checks++;
        if (r.state.failed_checks >= p->threshold) {
            r.state.phase = ROLLOUT_FAILED;
            r.state.weight = 0;
            r.action = ROLLOUT_ACT_ROLLBACK;
            say(&r, "RolledBack", "check failed (%s): %d of %d failed checks; rolled back", why,
                r.state.failed_checks, p->threshold);
            return r;
        }
        r.state.phase = ROLLOUT_PROGRESSING;
        say(&r, "CheckFailed", "check failed (%s): %d of %d failed checks; weight stays %d%%", why,
            r.state.failed_checks, p->threshold, r.state.weight);
    } else if (v == 0) {
        r.state.inconclusive_checks++;
        r.state.phase = ROLLOUT_PAUSED;
        say(&r, "MetricsUnavailable",
            "check inconclusive (%s): paused at weight %d%% (%d inconclusive so far)", why,
            r.state.weight, r.state.inconclusive_checks);
    } else {
        r.state.passed_checks++;
        r.state.phase = ROLLOUT_PROGRESSING;
        if (s->step + 1 >= p->nsteps) {
            r.state.phase = ROLLOUT_SUCCEEDED;
            r.state.step = p->nsteps;
            r.state.weight = 100;
            r.action = ROLLOUT_ACT_PROMOTE;
            say(&r, "Promoted", "check passed (%s): %d check(s) passed; promoted",
                why[0] ? why : "no metrics configured", r.state.passed_checks);
            return r;
        }
        r.state.step = s->step + 1;
        r.state.weight = p->steps[r.state.step];
        r.action = ROLLOUT_ACT_SET_WEIGHT;
        say(&r, "StepPassed", "check passed (%s): weight %d%% -> %d%%",
            why[0] ? why : "no metrics configured", s->weight, r.state.weight);
    }
    r.requeue_ms = next_wake(p, &r.state, now_ms);
    return r;
}

rollout_state rollout_resume(const rollout_state *s, int64_t paused_since_ms, int64_t now_ms)
{
    rollout_state r = *s;
    if (s->phase == ROLLOUT_IDLE || rollout_phase_terminal(s->phase) || !s->start_ms) return r;
    int64_t from = paused_since_ms > s->start_ms ? paused_since_ms : s->start_ms;
    if (paused_since_ms <= 0 || now_ms <= from) return r;
    r.start_ms = s->start_ms + (now_ms - from);
    if (s->phase == ROLLOUT_PROGRESSING || s->phase == ROLLOUT_PAUSED) r.last_check_ms = now_ms;
    return r;
}
