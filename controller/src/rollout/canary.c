/* Revisions, traffic splitting and rollouts; see canary.h. */
#include "canary.h"
#include "../common/jsonx.h"
#include "../reconcile/autoscale.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kube/informer.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "revision.h"
#include "rollout.h"
#include "metricsource.h"
#include "scrape.h"
#include "../reconcile/status.h"
#include "../common/strmap.h"

#include "canary_plan.h"
#include "canary_rollout.h"

enum { CI_ROUTE, CI_VS, CI_COUNT };

struct canary {
    kube_client *client;
    canary_config cfg;
    char *gateway, *prometheus, *ns;
    informer *inf[CI_COUNT]; /* NULL when the API is not served */
    void (*enqueue)(void *, const char *);
    void *ud;
    canary_rollout *rollouts; /* running rollouts: their memory and metric baselines */
};

/* ---- json helpers ---- */

/* The revision label on the object and on its pod template, if it has one. */
static void label_revision(json_object *o, const char *rev)
{
    json_object *md = jx_child(o, "metadata");
    jx_set_str(jx_child(md, "labels"), REVISION_LABEL, rev);
    json_object *tmpl = jx_get(jx_get(o, "spec"), "template");
    if (tmpl) jx_set_str(jx_child(jx_child(tmpl, "metadata"), "labels"), REVISION_LABEL, rev);
}

static void annotate(json_object *o, const char *k, const char *v)
{
    jx_set_str(jx_child(jx_child(o, "metadata"), "annotations"), k, v);
}

static void rename_obj(json_object *o, const char *name)
{
    jx_set_str(jx_child(o, "metadata"), "name", name);
}

static json_object *find_kind(json_object *arr, const char *kind)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        const char *k = jx_str(c, "kind");
        if (k && !strcmp(k, kind)) return c;
    }
    return NULL;
}

/* Each revision has its own autoscaler: an HPA or a KEDA ScaledObject (autoscale.h). */

static json_object *find_scaler(json_object *arr)
{
    json_object *h = find_kind(arr, "HorizontalPodAutoscaler");
    return h ? h : find_kind(arr, "ScaledObject");
}

/* The current revision's Deployment/autoscaler as the canary's: named after the revision, selecting
 * it. */
static json_object *as_canary(json_object *o, const char *rev)
{
    json_object *c = jx_copy(o);
    const char *kind = jx_str(c, "kind");
    rename_obj(c, rev);
    if (kind && !strcmp(kind, "Deployment"))
        jx_set_str(jx_child(jx_child(jx_child(c, "spec"), "selector"), "matchLabels"),
                   REVISION_LABEL, rev);
    if (autoscale_is_scaler(kind))
        jx_set_str(jx_child(jx_get(c, "spec"), "scaleTargetRef"), "name", rev);
    return c;
}

/* A per-revision Service: the entry Service's shape, named after the revision, selecting it. */
static json_object *service_for_revision(json_object *entry, const char *rev)
{
    json_object *s = jx_copy(entry);
    rename_obj(s, rev);
    label_revision(s, rev);
    jx_set_str(jx_child(jx_child(s, "spec"), "selector"), REVISION_LABEL, rev);
    return s;
}

/* ---- time ---- */

static void format_ms(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ms % 1000));
}

static int64_t parse_ms(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *dot = strchr(s, '.');
    if (dot) ms = atoi(dot + 1);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ---- the plan ---- */

/* The metric values a status shows under these keys; 0 when it shows neither. */
static int obs_read(json_object *ro, const char *rate_key, const char *p99_key, rollout_obs *o)
{
    json_object *sr = jx_get(ro, rate_key), *lat = jx_get(ro, p99_key);
    if (!sr && !lat) return 0;
    o->success_pct = (rollout_metric){sr ? ROLLOUT_METRIC_OK : ROLLOUT_METRIC_NODATA,
                                      sr ? json_object_get_double(sr) : 0};
    o->p99_ms = (rollout_metric){lat ? ROLLOUT_METRIC_OK : ROLLOUT_METRIC_NODATA,
                                 lat ? json_object_get_double(lat) : 0};
    return 1;
}

static void read_rollout_state(canary_plan *p, json_object *ro)
{
    int ph = rollout_phase_parse(jx_str(ro, "phase"));
    const char *rev = jx_str(ro, "revision");
    if (!ro || !rev || strcmp(rev, p->latest) || ph < 0) return;
    p->rollout_known = 1;
    p->state = (rollout_state){.phase = (rollout_phase)ph,
                               .step = (int)jx_int(ro, "step", 0),
                               .weight = (int)jx_int(ro, "weight", 0),
                               .failed_checks = (int)jx_int(ro, "failedChecks", 0),
                               .inconclusive_checks = (int)jx_int(ro, "inconclusiveChecks", 0),
                               .passed_checks = (int)jx_int(ro, "passedChecks", 0),
                               .start_ms = parse_ms(jx_str(ro, "startTime")),
                               .last_check_ms = parse_ms(jx_str(ro, "lastCheckTime"))};
    scopy(p->rollout_reason, sizeof(p->rollout_reason), jx_str(ro, "reason"));
    scopy(p->rollout_msg, sizeof(p->rollout_msg), jx_str(ro, "message"));
    p->obs_valid = obs_read(ro, "successRatePercent", "latencyP99Milliseconds", &p->obs);
    p->stable_obs_valid =
        obs_read(ro, "stableSuccessRatePercent", "stableLatencyP99Milliseconds", &p->stable_obs);
}

/* Builds the previous revision's children from its recorded predictor spec; NULL (with p->note)
 * when that is not possible. */
static json_object *stable_children(canary_plan *p, json_object *isvc, const reconcile_config *rc,
                                    const char *spec_text)
{
    json_object *old = jx_copy(isvc), *pred = spec_text ? json_tokener_parse(spec_text) : NULL,
                *out = NULL;
    ctl_status *st = NULL;
    if (!old || !pred || !json_object_is_type(pred, json_type_object)) {
        snprintf(p->note, sizeof(p->note), "Deployment %s records no predictor spec of revision %s",
                 p->stable_dep, p->stable);
        goto out;
    }
    json_object_object_add(jx_child(old, "spec"), "predictor", pred);
    pred = NULL;
    if ((st = reconcile_desired(old, rc, &out))) {
        snprintf(p->note, sizeof(p->note), "revision %s cannot be rebuilt: %s", p->stable,
                 ctl_status_msg(st));
        ctl_status_free(st);
        out = NULL;
    }
out:
    json_object_put(pred);
    json_object_put(old);
    return out;
}

/* The plan's identity and what the previous status recorded; parses spec.routing and
 * spec.predictor.rollout (CTL_EINVAL names the field). */
static ctl_status *plan_init(canary_plan *p, const canary_config *cfg, json_object *isvc)
{
    json_object *md = jx_get(isvc, "metadata"), *spec = jx_get(isvc, "spec");
    json_object *ps = jx_get(jx_get(jx_get(isvc, "status"), "components"), "predictor");
    ctl_status *st;
    scopy(p->name, sizeof(p->name), jx_str(md, "name"));
    scopy(p->ns, sizeof(p->ns), jx_str(md, "namespace"));
    snprintf(p->key, sizeof(p->key), "%s/%s", p->ns, p->name);
    snprintf(p->stable_dep, sizeof(p->stable_dep), "%s-predictor", p->name);
    p->weight_eff = 100;
    p->prev_conditions = jx_copy(jx_get(jx_get(isvc, "status"), "conditions"));
    scopy(p->prev_ready, sizeof(p->prev_ready), jx_str(ps, "latestReadyRevision"));
    scopy(p->prev_rolled, sizeof(p->prev_rolled), jx_str(ps, "latestRolledoutRevision"));
    scopy(p->prev_previous, sizeof(p->prev_previous), jx_str(ps, "previousRolledoutRevision"));
    if ((st = routing_spec_parse(spec, cfg->default_routing, cfg->default_gateway, &p->rs)))
        return st;
    return rollout_policy_parse(jx_get(jx_get(spec, "predictor"), "rollout"), &p->policy,
                                &p->has_rollout);
}

/* What the cached Deployments say: the stable revision (its label), the previous one, and whether
 * the canary's Deployment exists. Returns the stable revision's recorded predictor spec (borrowed
 * from deployments), or NULL. */
static const char *plan_read_deployments(canary_plan *p, json_object *deployments)
{
    const char *stable_spec = NULL;
    for (size_t i = 0; deployments && i < json_object_array_length(deployments); i++) {
        json_object *d = json_object_array_get_idx(deployments, i), *dmd = jx_get(d, "metadata");
        const char *dn = jx_str(dmd, "name");
        if (!dn) continue;
        if (!strcmp(dn, p->stable_dep)) {
            const char *r = jx_str(jx_get(dmd, "labels"), REVISION_LABEL);
            if (r) {
                p->have_stable = 1;
                scopy(p->stable, sizeof(p->stable), r);
            }
            stable_spec = jx_str(jx_get(dmd, "annotations"), REVISION_ANNOTATION_SPEC);
            scopy(p->stable_prev, sizeof(p->stable_prev),
                  jx_str(jx_get(dmd, "annotations"), REVISION_ANNOTATION_PREVIOUS));
        } else if (!strcmp(dn, p->latest)) {
            p->canary_seen = 1;
        }
    }
    return stable_spec;
}

/* A split: the stable revision's Deployment and autoscaler (rebuilt from its spec, old), the
 * canary's (the current ones, renamed), a Service per revision, into res. */
static void plan_split(canary_plan *p, json_object *children, json_object *old,
                       const char *stable_spec, int ctp, json_object *res)
{
    json_object *dep = find_kind(children, "Deployment"), *entry = find_kind(children, "Service");
    json_object *sdep = jx_copy(find_kind(old, "Deployment")), *shpa = jx_copy(find_scaler(old)),
                *hpa = find_scaler(children);
    char re[REVISION_NAME_MAX + 32];
    p->split = 1;
    p->weight = p->has_rollout ? (p->rollout_known ? p->state.weight : 0) : ctp;
    label_revision(sdep, p->stable);
    annotate(sdep, REVISION_ANNOTATION_SPEC, stable_spec);
    if (*p->stable_prev) annotate(sdep, REVISION_ANNOTATION_PREVIOUS, p->stable_prev);
    json_object *cdep = as_canary(dep, p->latest), *chpa = hpa ? as_canary(hpa, p->latest) : NULL;
    if (shpa) label_revision(shpa, p->stable);
    if (chpa) label_revision(chpa, p->latest);
    snprintf(re, sizeof(re), "%s-[a-z0-9]+-[a-z0-9]+",
             p->stable_dep); /* not "<revision>-<hash>-<id>" */
    if (shpa) autoscale_scope_query(shpa, p->name, re);
    snprintf(re, sizeof(re), "%s-.*", p->latest);
    if (chpa) autoscale_scope_query(chpa, p->name, re);
    if (p->rs.mode == ROUTING_NONE) {
        autoscale_scale_to_weight(sdep, 100 - p->weight);
        autoscale_scale_to_weight(cdep, p->weight);
        if (shpa) autoscale_scale_to_weight(shpa, 100 - p->weight);
        if (chpa) autoscale_scale_to_weight(chpa, p->weight);
    }
    json_object_array_add(res, sdep);
    json_object_array_add(res, cdep);
    json_object_array_add(res, service_for_revision(entry, p->stable));
    json_object_array_add(res, service_for_revision(entry, p->latest));
    if (shpa) json_object_array_add(res, shpa);
    if (chpa) json_object_array_add(res, chpa);
    /* other kinds (none today) go with the current spec */
    for (size_t i = 0; i < json_object_array_length(children); i++) {
        json_object *c = json_object_array_get_idx(children, i);
        const char *k = jx_str(c, "kind");
        if (k && strcmp(k, "Deployment") && strcmp(k, "Service") && !autoscale_is_scaler(k))
            json_object_array_add(res, jx_copy(c));
    }
    p->entry_service = jx_copy(entry);
}

/* No split: the children as they are (the stable Deployment rolls to this revision), and while
 * a promotion runs the canary's Deployment and autoscaler too, into res. */
static void plan_single(canary_plan *p, json_object *children, json_object *res)
{
    json_object *dep = find_kind(children, "Deployment");
    if (p->differs)
        annotate(dep, REVISION_ANNOTATION_PREVIOUS, p->stable);
    else if (*p->stable_prev)
        annotate(dep, REVISION_ANNOTATION_PREVIOUS, p->stable_prev);
    for (size_t i = 0; i < json_object_array_length(children); i++)
        json_object_array_add(res, jx_copy(json_object_array_get_idx(children, i)));
    if (!p->canary_seen) return;
    /* Promotion: the stable Deployment rolls to this revision; the canary keeps serving until then.
     */
    json_object *hpa = find_scaler(children);
    p->promoting = 1;
    json_object_array_add(res, as_canary(dep, p->latest));
    if (hpa) {
        json_object *chpa = as_canary(hpa, p->latest);
        char re[REVISION_NAME_MAX + 8];
        snprintf(re, sizeof(re), "%s-.*", p->latest);
        label_revision(chpa, p->latest);
        autoscale_scope_query(chpa, p->name, re);
        json_object_array_add(res, chpa);
    }
}

ctl_status *canary_plan_new(const canary_config *cfg, json_object *isvc, const reconcile_config *rc,
                            json_object *deployments, json_object **children, canary_plan **out)
{
    ctl_status *st = NULL;
    json_object *pred = jx_get(jx_get(isvc, "spec"), "predictor"), *res = NULL, *old = NULL;
    json_object *ps = jx_get(jx_get(jx_get(isvc, "status"), "components"), "predictor");
    *out = NULL;
    canary_plan *p = calloc(1, sizeof(*p));
    if (!p) return ctl_status_new(CTL_ENOMEM, "canary: out of memory");
    if ((st = plan_init(p, cfg, isvc))) goto out;
    json_object *dep = find_kind(*children, "Deployment"), *entry = find_kind(*children, "Service");
    if (!dep || !entry) {
        st = ctl_status_new(CTL_EINTERNAL,
                            "canary: reconcile_desired gave no Deployment or Service");
        goto out;
    }
    if ((st = revision_name(p->name, jx_get(jx_get(dep, "spec"), "template"), p->latest,
                            sizeof(p->latest))))
        goto out;
    label_revision(dep, p->latest);
    annotate(dep, REVISION_ANNOTATION_SPEC,
             json_object_to_json_string_ext(pred, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
    const char *stable_spec = plan_read_deployments(p, deployments);
    read_rollout_state(p, jx_get(ps, "rollout"));
    json_object *ctpv = jx_get(pred, "canaryTrafficPercent");
    int has_ctp = ctpv && json_object_is_type(ctpv, json_type_int);
    int ctp = has_ctp ? (int)json_object_get_int64(ctpv) : 100;
    int rollout_done = p->has_rollout && p->rollout_known && p->state.phase == ROLLOUT_SUCCEEDED;
    int differs = p->differs = p->have_stable && strcmp(p->stable, p->latest);
    int want_split = differs && (p->has_rollout ? !rollout_done : has_ctp && ctp < 100);
    if (!(res = json_object_new_array())) {
        st = ctl_status_new(CTL_ENOMEM, "canary: out of memory");
        goto out;
    }
    if (want_split && (old = stable_children(p, isvc, rc, stable_spec)))
        plan_split(p, *children, old, stable_spec, ctp, res);
    else
        plan_single(p, *children, res);
    json_object_put(*children);
    *children = res;
    res = NULL;
out:
    json_object_put(res);
    json_object_put(old);
    if (st)
        canary_plan_free(p);
    else
        *out = p;
    return st;
}

static int deployment_ready(json_object *d)
{
    json_object *md = jx_get(d, "metadata"), *sp = jx_get(d, "spec"), *s = jx_get(d, "status");
    int64_t want = jx_int(sp, "replicas", 1);
    return want >= 1 && jx_int(s, "observedGeneration", 0) >= jx_int(md, "generation", 1) &&
           jx_int(s, "updatedReplicas", 0) >= want &&
           jx_int(s, "replicas", 0) == jx_int(s, "updatedReplicas", 0) &&
           jx_int(s, "readyReplicas", 0) >= want && jx_int(s, "availableReplicas", 0) >= want;
}

void canary_plan_observe(canary_plan *p, json_object *applied)
{
    const char *kind = jx_str(applied, "kind"), *name = jx_str(jx_get(applied, "metadata"), "name");
    if (!p || !kind || !name || strcmp(kind, "Deployment")) return;
    if (!strcmp(name, p->stable_dep))
        p->stable_ready = deployment_ready(applied);
    else if (!strcmp(name, p->latest))
        p->canary_ready = deployment_ready(applied);
}

void canary_plan_resume(canary_plan *p, int64_t paused_since_ms)
{
    if (p) p->paused_since_ms = paused_since_ms;
}

const char *canary__plan_latest(const canary_plan *p)
{
    return p->latest;
}
const char *canary__plan_stable(const canary_plan *p)
{
    return p->have_stable ? p->stable : NULL;
}
int canary__plan_split(const canary_plan *p)
{
    return p->split;
}
int canary__plan_weight(const canary_plan *p)
{
    return p->split ? p->weight_eff : 100;
}

void canary_plan_free(canary_plan *p)
{
    if (!p) return;
    json_object_put(p->entry_service);
    json_object_put(p->prev_conditions);
    free(p);
}

/* ---- status (pure) ---- */

static json_object *traffic_new(const char *rev, int percent, int latest, const char *tag)
{
    json_object *t = json_object_new_object();
    jx_set_str(t, "revisionName", rev);
    json_object_object_add(t, "percent", json_object_new_int(percent));
    json_object_object_add(t, "latestRevision", json_object_new_boolean(latest));
    if (tag) jx_set_str(t, "tag", tag);
    return t;
}

/* status.components.predictor.rollout: the rollout's phase, weight, checks and last values. */
static json_object *rollout_status_new(const canary_plan *p)
{
    json_object *ro = json_object_new_object();
    char t[80];
    jx_set_str(ro, "revision", p->latest);
    jx_set_str(ro, "phase", rollout_phase_name(p->state.phase));
    json_object_object_add(ro, "weight", json_object_new_int(p->state.weight));
    json_object_object_add(ro, "step", json_object_new_int(p->state.step));
    json_object_object_add(ro, "passedChecks", json_object_new_int(p->state.passed_checks));
    json_object_object_add(ro, "failedChecks", json_object_new_int(p->state.failed_checks));
    json_object_object_add(ro, "inconclusiveChecks",
                           json_object_new_int(p->state.inconclusive_checks));
    if (p->state.start_ms) {
        format_ms(p->state.start_ms, t, sizeof(t));
        jx_set_str(ro, "startTime", t);
    }
    if (p->state.last_check_ms) {
        format_ms(p->state.last_check_ms, t, sizeof(t));
        jx_set_str(ro, "lastCheckTime", t);
    }
    if (*p->rollout_reason) jx_set_str(ro, "reason", p->rollout_reason);
    if (*p->rollout_msg) jx_set_str(ro, "message", p->rollout_msg);
    if (p->obs_valid && p->obs.success_pct.status == ROLLOUT_METRIC_OK)
        json_object_object_add(
            ro, "successRatePercent",
            json_object_new_double((double)(int64_t)(p->obs.success_pct.value * 100 + 0.5) / 100));
    if (p->obs_valid && p->obs.p99_ms.status == ROLLOUT_METRIC_OK)
        json_object_object_add(
            ro, "latencyP99Milliseconds",
            json_object_new_double((double)(int64_t)(p->obs.p99_ms.value * 10 + 0.5) / 10));
    if (p->stable_obs_valid && p->stable_obs.success_pct.status == ROLLOUT_METRIC_OK)
        json_object_object_add(
            ro, "stableSuccessRatePercent",
            json_object_new_double((double)(int64_t)(p->stable_obs.success_pct.value * 100 + 0.5) /
                                   100));
    if (p->stable_obs_valid && p->stable_obs.p99_ms.status == ROLLOUT_METRIC_OK)
        json_object_object_add(
            ro, "stableLatencyP99Milliseconds",
            json_object_new_double((double)(int64_t)(p->stable_obs.p99_ms.value * 10 + 0.5) / 10));
    return ro;
}

void canary_plan_status(const canary_plan *p, json_object *status, const char *now)
{
    json_object *pred = jx_child(jx_child(status, "components"), "predictor"),
                *traffic = json_object_new_array();
    const char *ready = NULL, *rolled = NULL, *previous = NULL;
    int64_t gen = jx_int(status, "observedGeneration", 0);
    jx_set_str(pred, "latestCreatedRevision", p->latest);
    if (p->split) {
        ready = p->canary_ready   ? p->latest
                : *p->prev_ready  ? p->prev_ready
                : p->stable_ready ? p->stable
                                  : NULL;
        rolled = previous =
            p->stable; /* as KServe: the revision serving the non-canary share is both */
        json_object_array_add(traffic, traffic_new(p->stable, 100 - p->weight_eff, 0, "prev"));
        json_object_array_add(traffic, traffic_new(p->latest, p->weight_eff, 1, "latest"));
    } else {
        ready = p->stable_ready ? p->latest : *p->prev_ready ? p->prev_ready : NULL;
        if (p->stable_ready) {
            rolled = p->latest;
            previous = p->differs ? p->stable : *p->stable_prev ? p->stable_prev : NULL;
        } else {
            rolled = *p->prev_rolled ? p->prev_rolled : NULL;
            previous = *p->prev_previous ? p->prev_previous : NULL;
        }
        json_object_array_add(traffic, traffic_new(p->latest, 100, 1, NULL));
    }
    json_object_object_del(pred, "latestReadyRevision");
    json_object_object_del(pred, "latestRolledoutRevision");
    json_object_object_del(pred, "previousRolledoutRevision");
    if (ready) jx_set_str(pred, "latestReadyRevision", ready);
    if (rolled) jx_set_str(pred, "latestRolledoutRevision", rolled);
    if (previous) jx_set_str(pred, "previousRolledoutRevision", previous);
    json_object_object_add(pred, "traffic", traffic);

    if (p->split) {
        json_object *conds = jx_get(status, "conditions");
        char msg[400];
        if (!conds) {
            conds = json_object_new_array();
            json_object_object_add(status, "conditions", conds);
        }
        snprintf(msg, sizeof(msg), "canary revision %s %s; it takes %d%% of the traffic", p->latest,
                 p->canary_ready ? "is Ready" : "is not Ready yet", p->weight_eff);
        json_object_array_add(
            conds,
            jx_condition_new(p->prev_conditions, "CanaryReady", p->canary_ready ? "True" : "False",
                             p->canary_ready ? "CanaryReady" : "CanaryNotReady", msg, gen, now));
    }
    if (p->has_rollout && (p->split || p->rollout_known || p->rollout_ran)) {
        json_object *ro = rollout_status_new(p);
        json_object_object_add(pred, "rollout", ro);
        status_rollout_conditions(status, p->prev_conditions,
                                  now); /* kstatus: Reconciling/Stalled */
    }
}

/* ---- the controller-wide part ---- */

static void on_route(void *ud, informer_event ev, const char *key, const char *index)
{
    canary *cn = ud;
    (void)ev, (void)key;
    if (cn->enqueue) cn->enqueue(cn->ud, index);
}

ctl_status *canary_create(kube_client *c, const char *ns, const canary_config *cfg,
                          void (*enqueue)(void *, const char *), void *ud, canary **out)
{
    static const kube_resource *const res[CI_COUNT] = {&routing_res_httproutes,
                                                       &routing_res_virtualservices};
    static const char *const drop[] = {"spec", "status", NULL};
    ctl_status *st = NULL;
    *out = NULL;
    canary *cn = calloc(1, sizeof(*cn));
    if (!cn) return ctl_status_new(CTL_ENOMEM, "canary");
    cn->client = c;
    cn->cfg = *cfg;
    cn->enqueue = enqueue;
    cn->ud = ud;
    cn->ns = strdup(ns ? ns : "");
    cn->gateway = cfg->default_gateway ? strdup(cfg->default_gateway) : NULL;
    cn->prometheus = cfg->prometheus_address ? strdup(cfg->prometheus_address) : NULL;
    cn->cfg.default_gateway = cn->gateway;
    cn->cfg.prometheus_address = cn->prometheus;
    cn->rollouts = canary_rollout_create(c, cfg->prometheus_address);
    if (!cn->ns || !cn->rollouts) {
        st = ctl_status_new(CTL_ENOMEM, "canary");
        goto out;
    }
    for (int i = 0; c && i < CI_COUNT; i++) {
        json_object *probe = NULL;
        ctl_status *ps = kube_list(c, res[i], cn->ns, RECONCILE_LABEL_ISVC, 1, NULL, &probe);
        json_object_put(probe);
        /* Not served (CRDs absent) or not allowed (the chart grants it per backend): leave that
         * backend out rather than wait forever for an informer that can never sync. */
        if (ps && (ctl_status_http(ps) == 404 || ctl_status_http(ps) == 403)) {
            log_warn(ctl_status_http(ps) == 404
                         ? "routing API not served; that routing backend is unavailable"
                         : "routing API forbidden by RBAC; that routing backend is unavailable",
                     "resource", res[i]->resource, "group", res[i]->group);
            ctl_status_free(ps);
            continue;
        }
        ctl_status_free(ps); /* other errors: the informer retries */
        informer_config ic = {.res = res[i],
                              .namespace = cn->ns,
                              .label_selector = RECONCILE_LABEL_ISVC,
                              .index = reconcile_owner_index,
                              .handler = on_route,
                              .ud = cn,
                              .drop_fields = drop};
        if ((st = informer_create(c, &ic, &cn->inf[i]))) goto out;
    }
out:
    if (st)
        canary_free(cn);
    else
        *out = cn;
    return st;
}

ctl_status *canary_start(canary *cn)
{
    ctl_status *st = NULL;
    for (int i = 0; i < CI_COUNT && !st; i++)
        if (cn->inf[i]) st = informer_start(cn->inf[i]);
    return st;
}

int canary_synced(canary *cn)
{
    for (int i = 0; cn && i < CI_COUNT; i++)
        if (cn->inf[i] && !informer_synced(cn->inf[i]) && !informer_unavailable(cn->inf[i]))
            return 0;
    return 1;
}

void canary_stop(canary *cn)
{
    for (int i = 0; cn && i < CI_COUNT; i++)
        if (cn->inf[i]) informer_request_stop(cn->inf[i]);
    for (int i = 0; cn && i < CI_COUNT; i++)
        if (cn->inf[i]) informer_stop(cn->inf[i]);
}

void canary_free(canary *cn)
{
    if (!cn) return;
    canary_stop(cn);
    for (int i = 0; i < CI_COUNT; i++) informer_free(cn->inf[i]);
    canary_rollout_free(cn->rollouts);
    free(cn->ns);
    free(cn->gateway);
    free(cn->prometheus);
    free(cn);
}

const canary_config *canary_get_config(canary *cn)
{
    return &cn->cfg;
}

/* ---- routing and rollout (talks to the API server and the canary's pods) ---- */

static ctl_status *apply_one(canary *cn, json_object *isvc, const kube_resource *res,
                             json_object *obj, json_object *children)
{
    const char *name = jx_str(jx_get(obj, "metadata"), "name"),
               *ns = jx_str(jx_get(obj, "metadata"), "namespace");
    int created = 0;
    ctl_status *st = kube_apply(cn->client, res, ns, name, NULL, obj, NULL, &created);
    if (st) return ctl_status_wrap(st, "apply %s %s", res->kind, name);
    if (created) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Created %s %s", res->kind, name);
        kube_record_event(cn->client, isvc, "Normal", "Created", msg);
    }
    json_object_array_add(children, json_object_get(obj));
    return NULL;
}

/* Deletes routing objects of key that are not in children. */
static ctl_status *prune_routes(canary *cn, const char *key, json_object *children)
{
    ctl_status *st = NULL;
    for (int i = 0; i < CI_COUNT && !st; i++) {
        if (!cn->inf[i]) continue;
        json_object *have = informer_list_index(cn->inf[i], key);
        for (size_t j = 0; have && j < json_object_array_length(have) && !st; j++) {
            json_object *o = json_object_array_get_idx(have, j), *md = jx_get(o, "metadata");
            const char *kind = jx_str(o, "kind"), *name = jx_str(md, "name");
            if (!name || jx_find_named(children, kind, name)) continue;
            st = kube_delete(cn->client,
                             i == CI_ROUTE ? &routing_res_httproutes : &routing_res_virtualservices,
                             jx_str(md, "namespace"), name);
            st = ctl_status_ignore_http(st, 404);
            if (!st) log_info("pruned routing object", "key", key, "kind", kind, "name", name);
        }
        json_object_put(have);
    }
    return st;
}

ctl_status *canary_plan_route(canary *cn, canary_plan *p, json_object *isvc, json_object *pods,
                              json_object *children, int64_t now_ms, int64_t *requeue_ms)
{
    ctl_status *st = NULL;
    json_object *route = NULL, *svc = NULL;
    *requeue_ms = 0;
    if (p->split && p->has_rollout)
        canary_rollout_step(cn->rollouts, p, isvc, pods, now_ms, requeue_ms);
    p->weight_eff = p->split ? (p->canary_ready ? p->weight : 0) : 100;
    if (p->split) {
        /* The entry Service: both revisions only when there is no router and both take traffic. */
        svc = jx_copy(p->entry_service);
        json_object *sel = jx_child(jx_child(svc, "spec"), "selector");
        if (p->weight_eff == 100)
            jx_set_str(sel, REVISION_LABEL, p->latest);
        else if (p->weight_eff == 0 || p->rs.mode != ROUTING_NONE)
            jx_set_str(sel, REVISION_LABEL, p->stable);
        if ((st = apply_one(cn, isvc, &kube_res_services, svc, children))) goto out;
    }
    if (p->rs.mode != ROUTING_NONE) {
        routing_backend b[2];
        int nb = 0;
        const kube_resource *res =
            p->rs.mode == ROUTING_GATEWAY ? &routing_res_httproutes : &routing_res_virtualservices;
        if (!cn->inf[p->rs.mode == ROUTING_GATEWAY ? CI_ROUTE : CI_VS]) {
            st = ctl_status_new(
                CTL_EINVAL,
                "spec.routing: %s.%s/%s is not served by the API server or not allowed to "
                "kinfer-controller (install its CRDs, grant RBAC, or choose another routing)",
                res->resource, res->group, res->version);
            goto out;
        }
        if (p->split) {
            b[nb++] = (routing_backend){p->stable, 100 - p->weight_eff};
            b[nb++] = (routing_backend){p->latest, p->weight_eff};
        } else {
            b[nb++] = (routing_backend){
                p->name, 100}; /* the entry Service: a rolling update as without canaries */
        }
        if ((st = routing_render(&p->rs, isvc, b, nb, &route))) goto out;
        if ((st = apply_one(cn, isvc, res, route, children))) goto out;
    }
    if ((st = prune_routes(cn, p->key, children))) goto out;
    if (p->promoting && p->stable_ready) {
        /* Promoted: the stable Deployment runs this revision and is Ready; let pruning remove the
         * canary. */
        for (size_t i = json_object_array_length(children); i-- > 0;) {
            const char *n =
                jx_str(jx_get(json_object_array_get_idx(children, i), "metadata"), "name");
            const char *k = jx_str(json_object_array_get_idx(children, i), "kind");
            if (!n || !k || strcmp(n, p->latest) ||
                (strcmp(k, "Deployment") && !autoscale_is_scaler(k)))
                continue;
            if (!strcmp(k, "ScaledObject")) {
                /* Not watched, so not pruned with the rest: delete it here (404: already gone). */
                const char *ns =
                    jx_str(jx_get(json_object_array_get_idx(children, i), "metadata"), "namespace");
                st = kube_delete(cn->client, kube_resource_for("keda.sh/v1alpha1", "ScaledObject"),
                                 ns ? ns : p->ns, n);
                st = ctl_status_ignore_http(st, 404);
                if (st) {
                    st = ctl_status_wrap(st, "delete ScaledObject %s", n);
                    goto out;
                }
            }
            json_object_array_del_idx(children, i, 1);
        }
        char msg[300];
        snprintf(msg, sizeof(msg), "revision %s rolled out to Deployment %s; canary removed",
                 p->latest, p->stable_dep);
        kube_record_event(cn->client, isvc, "Normal", "Promoted", msg);
    }
    if (p->split && !*requeue_ms && !p->canary_ready)
        *requeue_ms = 0; /* Deployment events requeue us */
out:
    json_object_put(route);
    json_object_put(svc);
    return st;
}
