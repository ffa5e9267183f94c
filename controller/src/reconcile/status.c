/*
 * status: an InferenceService's .status from its observed Deployment and pods (see status.h).
 *
 * Condition model (kstatus conventions, so kubectl wait, Flux and Argo CD agree):
 *   Ready, PredictorReady  always present; True only when the Deployment applied from the current
 *                          generation is fully rolled out (every desired replica updated, ready and
 *                          available, no old replica left). Otherwise False with the most precise
 *                          reason found: a container's own failure first (OOMKilled, with the
 *                          memory limit; ModelFetchFailed, with the storage initializer's error
 *                          text), then a container waiting reason or Unschedulable (they name the
 *                          cause), then the Deployment's ReplicaFailure or
 *                          ProgressDeadlineExceeded, then generic progress reasons.
 *   Reconciling=True       present while the rollout is expected to finish on its own.
 *   Stalled=True           present while it is not: ProgressDeadlineExceeded, ReplicaFailure,
 *                          InvalidSpec, OOMKilled, ModelFetchFailed, and the back-off states in
 * which the kubelet has already retried (ImagePullBackOff, CrashLoopBackOff) or cannot start the
 *                          container without a change elsewhere (CreateContainerConfigError,
 *                          InvalidImageName). ErrImagePull and Unschedulable count as Reconciling:
 *                          they often clear by themselves (a registry hiccup, a node being added).
 * kstatus reads Reconciling before Stalled, so the two are never present together.
 *   Paused                 present only while the serving.kinfer.dev/paused annotation is: True
 *                          (PausedByAnnotation) for "true", False (IgnoredAnnotationValue) for any
 *                          other value. While paused, status_compute_paused() judges the running
 *                          Deployment on its own and holds observedGeneration and the components.
 */
#include "status.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG_MAX 1024

typedef enum phase { PHASE_READY, PHASE_PROGRESSING, PHASE_STALLED } phase;

typedef struct verdict {
    phase phase;
    const char *reason; /* static */
    char message[MSG_MAX];
    int rank; /* for choosing among pod reasons: lower wins */
} verdict;

/* Container waiting reasons worth reporting, best first; stalled says whether it is terminal.
 * Ranks: 0 is a container's own failure (OOMKilled, ModelFetchFailed: they name the cause best),
 * then these from 1, then Unschedulable. */
static const struct {
    const char *reason;
    int stalled;
} waiting_reasons[] = {
    {"CreateContainerConfigError", 1}, {"InvalidImageName", 1},
    {"ImagePullBackOff", 1},           {"ErrImagePull", 0},
    {"CrashLoopBackOff", 1},           {"CreateContainerError", 0},
    {"RunContainerError", 0},
};
#define N_WAITING          ((int)(sizeof(waiting_reasons) / sizeof(waiting_reasons[0])))
#define RANK_UNSCHEDULABLE (N_WAITING + 1)

/* An integer field, or dflt when absent or of another type. */

static void verdict_set(verdict *v, phase p, const char *reason, int rank, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void verdict_set(verdict *v, phase p, const char *reason, int rank, const char *fmt, ...)
{
    va_list ap;
    v->phase = p;
    v->reason = reason;
    v->rank = rank;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
}

/* How container c failed, or NULL: its current state when that is "terminated" with a non-zero
 * exit code, or, while it waits to be restarted, how its last run ended. A container running now,
 * or an init container that succeeded on a retry, has no failure. */
static json_object *failed_termination(json_object *c)
{
    json_object *state = jx_get(c, "state"), *t = jx_get(state, "terminated");
    if (!t && jx_get(state, "waiting")) t = jx_get(jx_get(c, "lastState"), "terminated");
    return t && jx_int(t, "exitCode", 0) ? t : NULL;
}

/* A container's own failure, which names the cause better than any waiting reason: an OOM kill
 * (with the memory limit it hit, mem_limit when known) or a failed storage initializer (with the
 * fetch error it printed: the pods' terminationMessagePolicy is FallbackToLogsOnError). */
static int container_failure(const char *pod_name, json_object *c, int init, const char *mem_limit,
                             verdict *best)
{
    json_object *t = failed_termination(c);
    const char *why = jx_str(t, "reason"), *msg = jx_str(t, "message"), *name = jx_str(c, "name");
    int64_t code = jx_int(t, "exitCode", 0), restarts = jx_int(c, "restartCount", 0);
    if (!t || best->rank <= 0) return 0;
    if (why && !strcmp(why, "OOMKilled")) {
        verdict_set(best, PHASE_STALLED, "OOMKilled", 0,
                    "pod %s container %s was killed for exceeding its memory limit%s%s (OOMKilled, "
                    "exit code %" PRId64 ", %" PRId64 " restarts)",
                    pod_name, name ? name : "?", mem_limit && !init ? " of " : "",
                    mem_limit && !init ? mem_limit : "", code, restarts);
        return 1;
    }
    if (!init) return 0;
    verdict_set(best, PHASE_STALLED, "ModelFetchFailed", 0,
                "pod %s: the storage initializer failed (exit code %" PRId64 ", %" PRId64
                " restarts): %s",
                pod_name, code, restarts,
                msg && *msg ? msg
                : why       ? why
                            : "no message");
    /* The log tail ends with a newline; a condition message reads better without it. */
    size_t n = strlen(best->message);
    while (n && (best->message[n - 1] == '\n' || best->message[n - 1] == ' '))
        best->message[--n] = 0;
    return 1;
}

/* The best (lowest-ranked) failure reason among the pods' containers and scheduling. */
static void pods_examine(json_object *pods, const char *mem_limit, verdict *best)
{
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t i = 0; pods && i < json_object_array_length(pods); i++) {
        json_object *pod = json_object_array_get_idx(pods, i), *md = jx_get(pod, "metadata"),
                    *ps = jx_get(pod, "status");
        const char *pod_name = jx_str(md, "name") ? jx_str(md, "name") : "?";
        const char *ph = jx_str(ps, "phase");
        if (jx_get(md, "deletionTimestamp")) continue; /* going away: not the current state */
        if (ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"))) continue;
        for (int l = 0; l < 2; l++) {
            json_object *cs = jx_get(ps, lists[l]);
            for (size_t j = 0;
                 cs && json_object_is_type(cs, json_type_array) && j < json_object_array_length(cs);
                 j++) {
                json_object *c = json_object_array_get_idx(cs, j),
                            *waiting = jx_get(jx_get(c, "state"), "waiting");
                const char *why = jx_str(waiting, "reason"), *msg = jx_str(waiting, "message");
                if (container_failure(pod_name, c, l == 0, mem_limit, best)) continue;
                for (int r = 0; why && r < N_WAITING; r++) {
                    if (strcmp(why, waiting_reasons[r].reason) || r + 1 >= best->rank) continue;
                    verdict_set(best,
                                waiting_reasons[r].stalled ? PHASE_STALLED : PHASE_PROGRESSING,
                                waiting_reasons[r].reason, r + 1, "pod %s container %s: %s%s%s",
                                pod_name, jx_str(c, "name") ? jx_str(c, "name") : "?", why,
                                msg ? ": " : "", msg ? msg : "");
                }
            }
        }
        json_object *sched = jx_condition(jx_get(ps, "conditions"), "PodScheduled");
        const char *sst = jx_str(sched, "status"), *sreason = jx_str(sched, "reason");
        if (sst && !strcmp(sst, "False") && sreason && !strcmp(sreason, "Unschedulable") &&
            RANK_UNSCHEDULABLE < best->rank)
            verdict_set(best, PHASE_PROGRESSING, "Unschedulable", RANK_UNSCHEDULABLE,
                        "pod %s: Unschedulable: %s", pod_name,
                        jx_str(sched, "message") ? jx_str(sched, "message") : "no message");
    }
}

/* check_generation: whether a Deployment applied from an older generation is outdated (not while
 * paused: then what runs is judged on its own). */
static void predictor_judge(json_object *isvc, json_object *dep, json_object *pods,
                            int check_generation, verdict *v)
{
    json_object *dmd = jx_get(dep, "metadata"), *ds = jx_get(dep, "status"),
                *conds = jx_get(ds, "conditions");
    const char *dname = jx_str(dmd, "name") ? jx_str(dmd, "name") : "?";
    int64_t gen = jx_int(jx_get(isvc, "metadata"), "generation", 0);
    const char *applied = jx_str(jx_get(dmd, "annotations"), "serving.kinfer.dev/generation");
    char genbuf[32];

    if (!dep) {
        verdict_set(v, PHASE_PROGRESSING, "DeploymentNotFound", 0,
                    "waiting for the predictor Deployment to be created");
        return;
    }
    snprintf(genbuf, sizeof(genbuf), "%" PRId64, gen);
    if (check_generation && (!applied || strcmp(applied, genbuf))) {
        verdict_set(v, PHASE_PROGRESSING, "DeploymentOutdated", 0,
                    "Deployment %s was applied from generation %s, the InferenceService is at %s",
                    dname, applied ? applied : "(none)", genbuf);
        return;
    }
    int64_t dgen = jx_int(dmd, "generation", 0), dobs = jx_int(ds, "observedGeneration", 0);
    int64_t want = jx_int(jx_get(dep, "spec"), "replicas", 1), total = jx_int(ds, "replicas", 0),
            updated = jx_int(ds, "updatedReplicas", 0), ready = jx_int(ds, "readyReplicas", 0),
            avail = jx_int(ds, "availableReplicas", 0);
    if (dobs < dgen) {
        verdict_set(
            v, PHASE_PROGRESSING, "DeploymentPending", 0,
            "waiting for the deployment controller to observe Deployment %s generation %" PRId64,
            dname, dgen);
        return;
    }
    if (updated >= want && total == updated && ready >= want && avail >= want) {
        verdict_set(v, PHASE_READY, "Available", 0, "%" PRId64 " of %" PRId64 " replicas ready",
                    ready, want);
        return;
    }
    /* Not done: find the most precise reason. */
    v->rank = RANK_UNSCHEDULABLE + 1;
    v->reason = NULL;
    pods_examine(pods,
                 jx_str(jx_get(jx_get(jx_get(jx_get(jx_get(isvc, "spec"), "predictor"), "model"),
                                      "resources"),
                               "limits"),
                        "memory"),
                 v);
    json_object *rf = jx_condition(conds, "ReplicaFailure"),
                *pr = jx_condition(conds, "Progressing");
    const char *rfs = jx_str(rf, "status"), *prs = jx_str(pr, "status"),
               *prr = jx_str(pr, "reason");
    if (rfs && !strcmp(rfs, "True")) {
        if (v->reason)
            v->phase = PHASE_STALLED;
        else
            verdict_set(v, PHASE_STALLED, "ReplicaFailure", 0, "Deployment %s: %s", dname,
                        jx_str(rf, "message") ? jx_str(rf, "message") : "replica failure");
    }
    if (prs && !strcmp(prs, "False") && prr && !strcmp(prr, "ProgressDeadlineExceeded")) {
        if (v->reason)
            v->phase = PHASE_STALLED;
        else
            verdict_set(v, PHASE_STALLED, "ProgressDeadlineExceeded", 0, "Deployment %s: %s", dname,
                        jx_str(pr, "message") ? jx_str(pr, "message")
                                              : "progress deadline exceeded");
    }
    if (v->reason) return;
    if (updated < want)
        verdict_set(v, PHASE_PROGRESSING, "RolloutInProgress", 0,
                    "Deployment %s: %" PRId64 " of %" PRId64 " replicas updated", dname, updated,
                    want);
    else if (total > updated)
        verdict_set(v, PHASE_PROGRESSING, "RolloutInProgress", 0,
                    "Deployment %s: %" PRId64 " old replicas pending termination", dname,
                    total - updated);
    else
        verdict_set(v, PHASE_PROGRESSING, "ReplicasNotReady", 0,
                    "Deployment %s: %" PRId64 " of %" PRId64 " replicas ready, %" PRId64
                    " available",
                    dname, ready, want, avail);
}

/* Common head of both entry points: checks arguments, starts the status object. */
static ctl_status *status_begin(json_object *isvc, const char *now, json_object **status,
                                int64_t *gen)
{
    json_object *md = jx_get(isvc, "metadata"), *addr;
    const char *name = jx_str(md, "name"), *ns = jx_str(md, "namespace");
    char url[512];
    *status = NULL;
    if (!name || !*name || !ns || !*ns)
        return ctl_status_new(
            CTL_EINVAL, "status: InferenceService without metadata.name and metadata.namespace");
    if (!now || !*now) return ctl_status_new(CTL_EINVAL, "status: no current time given");
    *gen = jx_int(md, "generation", 0);
    snprintf(url, sizeof(url), "http://%s.%s.svc.cluster.local", name, ns);
    if (!(*status = json_object_new_object()))
        return ctl_status_new(CTL_ENOMEM, "status: out of memory");
    json_object_object_add(*status, "observedGeneration", json_object_new_int64(*gen));
    json_object_object_add(*status, "url", json_object_new_string(url));
    addr = json_object_new_object();
    json_object_object_add(addr, "url", json_object_new_string(url));
    json_object_object_add(*status, "address", addr);
    return NULL;
}

static void conditions_add(json_object *status, json_object *prev_status, phase p,
                           const char *reason, const char *message, int64_t gen, const char *now)
{
    json_object *pc = jx_get(prev_status, "conditions"), *conds = json_object_new_array();
    const char *st = p == PHASE_READY ? "True" : "False";
    json_object_array_add(conds,
                          jx_condition_new(pc, "PredictorReady", st, reason, message, gen, now));
    json_object_array_add(conds, jx_condition_new(pc, "Ready", st, reason, message, gen, now));
    if (p == PHASE_PROGRESSING)
        json_object_array_add(
            conds, jx_condition_new(pc, "Reconciling", "True", reason, message, gen, now));
    if (p == PHASE_STALLED)
        json_object_array_add(conds,
                              jx_condition_new(pc, "Stalled", "True", reason, message, gen, now));
    json_object_object_add(status, "conditions", conds);
}

ctl_status *status_compute(json_object *isvc, json_object *deployment, json_object *pods,
                           json_object *prev_status, const char *now, json_object **status)
{
    ctl_status *st;
    int64_t gen;
    verdict v = {0};
    json_object *comp, *pred, *paddr, *traffic, *t;
    const char *url, *dname, *prev_ready;

    if (pods && !json_object_is_type(pods, json_type_array)) {
        *status = NULL;
        return ctl_status_new(CTL_EINVAL, "status: pods must be a JSON array");
    }
    if (deployment && !json_object_is_type(deployment, json_type_object)) {
        *status = NULL;
        return ctl_status_new(CTL_EINVAL, "status: deployment must be a JSON object");
    }
    if ((st = status_begin(isvc, now, status, &gen))) return st;
    predictor_judge(isvc, deployment, pods, 1, &v);
    conditions_add(*status, prev_status, v.phase, v.reason, v.message, gen, now);

    url = jx_str(*status, "url");
    comp = json_object_new_object();
    pred = json_object_new_object();
    json_object_object_add(pred, "url", json_object_new_string(url));
    paddr = json_object_new_object();
    json_object_object_add(paddr, "url", json_object_new_string(url));
    json_object_object_add(pred, "address", paddr);
    dname = jx_str(jx_get(deployment, "metadata"), "name");
    prev_ready =
        jx_str(jx_get(jx_get(prev_status, "components"), "predictor"), "latestReadyRevision");
    if (dname) {
        /* One revision per InferenceService until canary rollouts add a second Deployment. */
        json_object_object_add(pred, "latestCreatedRevision", json_object_new_string(dname));
        if (v.phase == PHASE_READY || prev_ready) {
            const char *r = v.phase == PHASE_READY ? dname : prev_ready;
            json_object_object_add(pred, "latestReadyRevision", json_object_new_string(r));
            json_object_object_add(pred, "latestRolledoutRevision", json_object_new_string(r));
        }
        traffic = json_object_new_array();
        t = json_object_new_object();
        json_object_object_add(t, "revisionName", json_object_new_string(dname));
        json_object_object_add(t, "percent", json_object_new_int64(100));
        json_object_object_add(t, "latestRevision", json_object_new_boolean(1));
        json_object_array_add(traffic, t);
        json_object_object_add(pred, "traffic", traffic);
    }
    json_object_object_add(comp, "predictor", pred);
    json_object_object_add(*status, "components", comp);
    return NULL;
}

ctl_status *status_compute_invalid(json_object *isvc, const char *msg, json_object *prev_status,
                                   const char *now, json_object **status)
{
    ctl_status *st;
    int64_t gen;
    if ((st = status_begin(isvc, now, status, &gen))) return st;
    conditions_add(*status, prev_status, PHASE_STALLED, "InvalidSpec", msg ? msg : "invalid spec",
                   gen, now);
    return NULL;
}

void status_rollout_conditions(json_object *status, json_object *prev_conditions, const char *now)
{
    json_object *pred = jx_get(jx_get(status, "components"), "predictor"),
                *ro = jx_get(pred, "rollout");
    json_object *conds = jx_get(status, "conditions");
    const char *phase = jx_str(ro, "phase"), *rev = jx_str(ro, "revision");
    const char *latest = jx_str(pred, "latestCreatedRevision");
    const char *type = NULL, *reason = NULL, *msg = jx_str(ro, "message");
    char text[MSG_MAX];
    if (!phase || !conds || !json_object_is_type(conds, json_type_array)) return;
    if (rev && latest && strcmp(rev, latest))
        return; /* an older revision's rollout: history, not state */
    /* The predictor's own Reconciling/Stalled (from status_compute) is about what serves now: it
     * wins. */
    if (jx_condition(conds, "Reconciling") || jx_condition(conds, "Stalled")) return;
    if (!strcmp(phase, "WaitingForCanary") || !strcmp(phase, "Progressing"))
        type = "Reconciling", reason = "RolloutProgressing";
    else if (!strcmp(phase, "Paused"))
        type = "Reconciling", reason = "RolloutPaused";
    else if (!strcmp(phase, "Failed"))
        type = "Stalled", reason = "RolloutFailed";
    else
        return;
    snprintf(text, sizeof(text), "rollout of revision %s %s at weight %" PRId64 "%%%s%s",
             rev ? rev : "(latest)", phase, jx_int(ro, "weight", 0), msg && *msg ? ": " : "",
             msg ? msg : "");
    json_object_array_add(conds, jx_condition_new(prev_conditions, type, "True", reason, text,
                                                  jx_int(status, "observedGeneration", 0), now));
}

/* ---- pause (serving.kinfer.dev/paused) ---- */

status_pause status_pause_read(json_object *isvc, const char **value)
{
    const char *v =
        jx_str(jx_get(jx_get(isvc, "metadata"), "annotations"), STATUS_ANNOTATION_PAUSED);
    if (value) *value = v;
    if (!v) return STATUS_PAUSE_OFF;
    return !strcmp(v, "true") ? STATUS_PAUSE_ON : STATUS_PAUSE_IGNORED;
}

void status_pause_condition(json_object *status, json_object *isvc, json_object *prev_conditions,
                            const char *now)
{
    const char *v = NULL;
    status_pause pm = status_pause_read(isvc, &v);
    json_object *conds = jx_get(status, "conditions");
    char msg[MSG_MAX];
    if (pm == STATUS_PAUSE_OFF || !status) return;
    if (!conds || !json_object_is_type(conds, json_type_array)) {
        conds = json_object_new_array();
        json_object_object_add(status, "conditions", conds);
    }
    if (pm == STATUS_PAUSE_ON)
        snprintf(msg, sizeof(msg),
                 "paused by the annotation " STATUS_ANNOTATION_PAUSED
                 "=\"true\": kinfer-controller applies no change "
                 "to the children and holds any rollout until the annotation is removed");
    else
        snprintf(msg, sizeof(msg),
                 "the annotation " STATUS_ANNOTATION_PAUSED
                 "=\"%.200s\" is ignored: only \"true\" pauses; the "
                 "InferenceService is reconciled as usual",
                 v);
    json_object_array_add(
        conds,
        jx_condition_new(prev_conditions, "Paused", pm == STATUS_PAUSE_ON ? "True" : "False",
                         pm == STATUS_PAUSE_ON ? "PausedByAnnotation" : "IgnoredAnnotationValue",
                         msg, jx_int(status, "observedGeneration", 0), now));
}

int64_t status_paused_since_ms(json_object *prev_status)
{
    json_object *c = jx_condition(jx_get(prev_status, "conditions"), "Paused");
    const char *st = jx_str(c, "status"), *t = jx_str(c, "lastTransitionTime");
    struct tm tm = {0};
    char z = 0;
    if (!st || strcmp(st, "True") || !t) return 0;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        (z != 'Z' && z != '.'))
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t secs = timegm(&tm);
    return secs > 0 ? (int64_t)secs * 1000 : 0;
}

/* The generation a paused InferenceService's children were last acted on: see status.h. -1: none.
 */
static int64_t acted_generation(json_object *isvc, json_object *dep, json_object *prev_status)
{
    int64_t gen = jx_int(jx_get(isvc, "metadata"), "generation", 0);
    int64_t g = jx_int(prev_status, "observedGeneration", -1);
    if (g < 0) {
        const char *a =
            jx_str(jx_get(jx_get(dep, "metadata"), "annotations"), "serving.kinfer.dev/generation");
        char *end = NULL;
        long long x = a ? strtoll(a, &end, 10) : -1;
        g = a && end != a && !*end && x >= 0 ? (int64_t)x : -1;
    }
    return g > gen ? gen : g;
}

ctl_status *status_compute_paused(json_object *isvc, json_object *deployment, json_object *pods,
                                  json_object *prev_status, const char *now, json_object **status)
{
    ctl_status *st;
    int64_t gen, acted;
    verdict v = {0};
    json_object *prev_conds = jx_get(prev_status, "conditions"),
                *comp = jx_get(prev_status, "components"), *copy = NULL;

    *status = NULL;
    if (pods && !json_object_is_type(pods, json_type_array))
        return ctl_status_new(CTL_EINVAL, "status: pods must be a JSON array");
    if (deployment && !json_object_is_type(deployment, json_type_object))
        return ctl_status_new(CTL_EINVAL, "status: deployment must be a JSON object");
    if ((st = status_begin(isvc, now, status, &gen))) return st;
    acted = acted_generation(isvc, deployment, prev_status);
    if (acted >= 0)
        json_object_object_add(*status, "observedGeneration", json_object_new_int64(acted));
    else
        json_object_object_del(*status, "observedGeneration");
    if (deployment)
        predictor_judge(isvc, deployment, pods, 0, &v);
    else
        verdict_set(
            &v, PHASE_PROGRESSING, "Paused", 0,
            "no predictor Deployment: the InferenceService was paused (" STATUS_ANNOTATION_PAUSED
            ") before one was created");
    conditions_add(*status, prev_status, v.phase, v.reason, v.message, acted >= 0 ? acted : 0, now);
    /* Copies, never shared references: prev_status belongs to the informer's cache. */
    if ((copy = jx_copy(jx_condition(prev_conds, "CanaryReady"))))
        json_object_array_add(jx_get(*status, "conditions"), copy);
    copy = NULL;
    if (comp && json_object_is_type(comp, json_type_object)) {
        if (!(copy = jx_copy(comp))) {
            json_object_put(*status);
            *status = NULL;
            return ctl_status_new(CTL_ENOMEM, "status: out of memory");
        }
        json_object_object_add(*status, "components", copy);
    } else {
        json_object *pred = jx_child(jx_child(*status, "components"), "predictor"),
                    *addr = json_object_new_object();
        const char *url = jx_str(*status, "url");
        json_object_object_add(pred, "url", json_object_new_string(url));
        json_object_object_add(addr, "url", json_object_new_string(url));
        json_object_object_add(pred, "address", addr);
    }
    status_rollout_conditions(*status, prev_conds, now);
    status_pause_condition(*status, isvc, prev_conds, now);
    return NULL;
}
