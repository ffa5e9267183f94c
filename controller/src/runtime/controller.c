/* Controller runtime: informers -> workqueue -> workers; see controller.h. */
#include "controller.h"
#include "../common/clock.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "applied.h"
#include "../rollout/canary.h"
#include "../kube/informer.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "podcache.h"
#include "../rollout/revision.h"
#include "../reconcile/status.h"
#include "workqueue.h"

enum { INF_ISVC, INF_DEPLOY, INF_SVC, INF_HPA, INF_POD, INF_COUNT };

struct controller {
    kube_client *client;
    char *ns, *image, *prometheus;
    int nworkers;
    reconcile_config rc;
    informer *inf[INF_COUNT];
    canary *canary;   /* revisions, routing objects, rollouts */
    applied *applied; /* last applies, to skip those that would change nothing */
    workqueue *q;
    pthread_t *workers;
    int started;
    atomic_int stopping;
};

/* Index of a pod: "ns/<value of the inferenceservice label>". */
static char *pod_index(json_object *obj)
{
    json_object *md = jx_get(obj, "metadata");
    const char *ns = jx_str(md, "namespace"),
               *v = jx_str(jx_get(md, "labels"), RECONCILE_LABEL_ISVC);
    char *k = NULL;
    if (!ns || !v || !*v) return NULL;
    return asprintf(&k, "%s/%s", ns, v) < 0 ? NULL : k;
}

/* A cached child keeps what prune, applied_current, the handover and the canary read: identity,
 * resourceVersion, generation, annotations and the revision label. The informer has already
 * taken its index from the ownerReferences, so they, the uid and the other labels (a third of
 * each object) need not stay in memory. */
static void trim_child(json_object *obj)
{
    json_object *md = jx_get(obj, "metadata"), *labels = jx_get(md, "labels"),
                *rev = jx_get(labels, REVISION_LABEL);
    applied_mark(obj);
    if (!md) return;
    json_object_object_del(md, "ownerReferences");
    json_object_object_del(md, "uid");
    json_object_object_del(md, "creationTimestamp");
    if (labels) {
        json_object *keep = json_object_new_object();
        if (rev) json_object_object_add(keep, REVISION_LABEL, json_object_get(rev));
        json_object_object_add(md, "labels", keep); /* frees the old labels (and rev's old ref) */
    }
}

/* The Deployment cache also keeps status and spec.replicas (what status_compute and the canary
 * read, so a reconcile that skips the apply can use the cached copy) but not the pod template. */
static void trim_deployment(json_object *obj)
{
    json_object *spec = jx_get(obj, "spec"), *rep = jx_get(spec, "replicas"),
                *conds = jx_get(jx_get(obj, "status"), "conditions");
    trim_child(obj);
    for (size_t i = 0; conds && json_object_is_type(conds, json_type_array) &&
                       i < json_object_array_length(conds);
         i++) {
        json_object *c = json_object_array_get_idx(
            conds, i); /* status_compute reads type, status, reason, message */
        if (json_object_is_type(c, json_type_object)) {
            json_object_object_del(c, "lastUpdateTime");
            json_object_object_del(c, "lastTransitionTime");
        }
    }
    if (!spec) return;
    json_object *slim = json_object_new_object();
    if (rep) json_object_object_add(slim, "replicas", json_object_get(rep));
    json_object_object_add(obj, "spec", slim);
}

static void on_isvc(void *ud, informer_event ev, const char *key, const char *index)
{
    (void)index;
    /* A new InferenceService's first pass (its children) goes before refreshes of others' status:
     * in a burst of creates those refreshes are many, and FIFO queued every first pass behind them.
     */
    if (ev == INFORMER_ADD)
        workqueue_add_first(((controller *)ud)->q, key);
    else
        workqueue_add(((controller *)ud)->q, key);
}

static void on_owned(void *ud, informer_event ev, const char *key, const char *index)
{
    (void)ev, (void)key;
    workqueue_add(((controller *)ud)->q, index);
}

static void enqueue_key(void *ud, const char *key)
{
    workqueue_add(((controller *)ud)->q, key);
}

size_t controller_queue_depth(void *ud)
{
    controller *ctl = ud;
    return ctl && ctl->q ? workqueue_len(ctl->q) : 0;
}

ctl_status *controller_create(kube_client *c, const controller_config *cfg, controller **out)
{
    ctl_status *st = NULL;
    *out = NULL;
    if (cfg->workers < 1) return ctl_status_new(CTL_EINVAL, "workers must be at least 1");
    if (!cfg->reconcile.runtime_image || !*cfg->reconcile.runtime_image)
        return ctl_status_new(CTL_EINVAL, "runtime image required");
    controller *ctl = calloc(1, sizeof(*ctl));
    if (!ctl) return ctl_status_new(CTL_ENOMEM, "controller");
    ctl->client = c;
    ctl->nworkers = cfg->workers;
    ctl->ns = strdup(cfg->namespace ? cfg->namespace : "");
    ctl->image = strdup(cfg->reconcile.runtime_image);
    ctl->rc.runtime_image = ctl->image;
    if (cfg->reconcile.prometheus_address && *cfg->reconcile.prometheus_address &&
        !(ctl->prometheus = strdup(cfg->reconcile.prometheus_address))) {
        st = ctl_status_new(CTL_ENOMEM, "controller");
        goto out;
    }
    ctl->rc.prometheus_address = ctl->prometheus;
    /* One pooled connection per concurrent request: every worker, every watch (ours, plus the
     * canary's two routing types) and two spare. A smaller pool closed a connection after nearly
     * every request under load, so each apply paid a TCP and TLS handshake on both ends. */
    kube_client_set_max_connections(c, (long)cfg->workers + INF_COUNT + 2 + 2);
    ctl->q = workqueue_create(5, 1000 * 1000);
    ctl->applied = applied_create();
    ctl->workers = calloc((size_t)cfg->workers, sizeof(pthread_t));
    if (!ctl->ns || !ctl->image || !ctl->q || !ctl->workers || !ctl->applied) {
        st = ctl_status_new(CTL_ENOMEM, "controller");
        goto out;
    }
    static const kube_resource *const res[INF_COUNT] = {&kube_res_inferenceservices,
                                                        &kube_res_deployments, &kube_res_services,
                                                        &kube_res_hpas, &kube_res_pods};
    /* Children are cached only to find and prune them, pods only for status: neither needs its
     * spec, which is most of each object. */
    static const char *const drop_children[] = {"spec", "status", NULL},
                             *const drop_pods[] = {"spec", NULL},
                             *const quiet_isvc[] = {"status.conditions",
                                                    "status.observedGeneration", NULL};
    for (int i = 0; i < INF_COUNT; i++) {
        informer_config ic = {
            .drop_fields = i == INF_ISVC || i == INF_DEPLOY ? NULL
                           : i == INF_POD                   ? drop_pods
                                                            : drop_children,
            .trim = i == INF_DEPLOY ? trim_deployment
                    : i == INF_POD  ? podcache_trim
                    : i == INF_ISVC ? NULL
                                    : trim_child,
            /* Status is what this controller writes: its own condition updates must not wake
             * it again. status.components stays significant: the canary keeps its revisions
             * and rollout there and needs a pass after it changes them. */
            .quiet_fields = i == INF_ISVC ? quiet_isvc : NULL,
            .res = res[i],
            .namespace = ctl->ns,
            /* Children and pods carry the label; selecting on it keeps unrelated objects off the
               wire. */
            .label_selector = i == INF_ISVC ? NULL : RECONCILE_LABEL_ISVC,
            .index = i == INF_ISVC  ? NULL
                     : i == INF_POD ? pod_index
                                    : reconcile_owner_index,
            .handler = i == INF_ISVC ? on_isvc : on_owned,
            .ud = ctl,
        };
        if ((st = informer_create(c, &ic, &ctl->inf[i]))) goto out;
    }
    canary_config cc = {.default_routing = cfg->default_routing,
                        .default_gateway = cfg->default_gateway,
                        .prometheus_address = cfg->reconcile.prometheus_address};
    if ((st = canary_create(c, ctl->ns, &cc, enqueue_key, ctl, &ctl->canary))) goto out;
out:
    if (st)
        controller_free(ctl);
    else
        *out = ctl;
    return st;
}

/* The Ready condition's status in a status object ("True"/"False"/"Unknown"), or "". */
static const char *ready_of(json_object *status)
{
    const char *s = jx_str(jx_condition(jx_get(status, "conditions"), "Ready"), "status");
    return s ? s : "";
}

/* Events (and the log line) for a change of the Paused condition that was just written: Paused,
 * Resumed, or a Warning for an annotation value that does not pause, once per value. */
static void pause_events(controller *ctl, json_object *isvc, json_object *prev, json_object *status)
{
    json_object *was = jx_condition(jx_get(prev, "conditions"), "Paused"),
                *now = jx_condition(jx_get(status, "conditions"), "Paused"),
                *md = jx_get(isvc, "metadata");
    const char *ws = jx_str(was, "status"), *ns = jx_str(now, "status"), *name = jx_str(md, "name");
    int was_on = ws && !strcmp(ws, "True"), is_on = ns && !strcmp(ns, "True");
    char msg[400];
    if (!was_on && is_on) {
        kube_record_event(ctl->client, isvc, "Normal", "Paused", jx_str(now, "message"));
        log_info("paused", "namespace", jx_str(md, "namespace"), "name", name);
    } else if (was_on && !is_on) {
        snprintf(msg, sizeof(msg),
                 STATUS_ANNOTATION_PAUSED " is no longer \"true\": generation %" PRId64 " applied",
                 jx_int(md, "generation", 0));
        kube_record_event(ctl->client, isvc, "Normal", "Resumed", msg);
        log_info("resumed", "namespace", jx_str(md, "namespace"), "name", name);
    } else if (now && !is_on &&
               !(was && jx_str(was, "message") && jx_str(now, "message") &&
                 !strcmp(jx_str(was, "message"), jx_str(now, "message")))) {
        kube_record_event(ctl->client, isvc, "Warning", "PauseAnnotationIgnored",
                          jx_str(now, "message"));
        log_warn("pause annotation ignored", "namespace", jx_str(md, "namespace"), "name", name,
                 "message", jx_str(now, "message"));
    }
}

/* Writes status through server-side apply on /status when it differs from prev. */
static ctl_status *write_status(controller *ctl, json_object *isvc, json_object *prev,
                                json_object *status)
{
    if (prev && json_object_equal(prev, status)) return NULL;
    json_object *md = jx_get(isvc, "metadata");
    json_object *o = json_object_new_object(), *m = json_object_new_object();
    json_object_object_add(o, "apiVersion", json_object_new_string(jx_str(isvc, "apiVersion")));
    json_object_object_add(o, "kind", json_object_new_string(jx_str(isvc, "kind")));
    json_object_object_add(m, "name", json_object_new_string(jx_str(md, "name")));
    json_object_object_add(m, "namespace", json_object_new_string(jx_str(md, "namespace")));
    json_object_object_add(o, "metadata", m);
    json_object_object_add(o, "status", json_object_get(status));
    ctl_status *st = kube_apply(ctl->client, &kube_res_inferenceservices, jx_str(md, "namespace"),
                                jx_str(md, "name"), "status", o, NULL, NULL);
    json_object_put(o);
    /* 404: deleted meanwhile, nothing left to report on */
    st = ctl_status_ignore_http(st, 404);
    if (!st) {
        const char *was = ready_of(prev), *now = ready_of(status);
        pause_events(ctl, isvc, prev, status);
        if (strcmp(was, now) && *now) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Ready is %s (was %s)", now, *was ? was : "unset");
            kube_record_event(ctl->client, isvc,
                              !strcmp(now, "False") && !strcmp(was, "True") ? "Warning" : "Normal",
                              !strcmp(now, "True") ? "Ready" : "NotReady", msg);
        }
    }
    return st;
}

/* Deletes children of the types we watch that the owner no longer wants. */
static ctl_status *prune(controller *ctl, const char *key, json_object *children)
{
    static const int kinds[] = {INF_DEPLOY, INF_SVC, INF_HPA};
    ctl_status *st = NULL;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && !st; k++) {
        json_object *have = informer_list_index(ctl->inf[kinds[k]], key);
        for (size_t i = 0; have && i < json_object_array_length(have) && !st; i++) {
            json_object *o = json_object_array_get_idx(have, i), *md = jx_get(o, "metadata");
            const char *kind = jx_str(o, "kind"), *name = jx_str(md, "name");
            if (!name || jx_find_named(children, kind, name)) continue;
            st = kube_delete(ctl->client, kube_resource_for(jx_str(o, "apiVersion"), kind),
                             jx_str(md, "namespace"), name);
            st = ctl_status_ignore_http(st, 404);
            if (!st) log_info("pruned child", "key", key, "kind", kind, "name", name);
        }
        json_object_put(have);
    }
    return st;
}

/* ScaledObjects are not watched (the KEDA CRD may not be installed), so the cached Deployment's
 * scaling annotation is what remembers that one was applied: a Deployment marked "keda" whose
 * ScaledObject (same name) is no longer desired gets it deleted. Runs before the Deployment is
 * applied (which rewrites the mark), so a failed delete is retried. */
static ctl_status *prune_scaledobjects(controller *ctl, const char *key, json_object *children)
{
    ctl_status *st = NULL;
    const kube_resource *so = kube_resource_for("keda.sh/v1alpha1", "ScaledObject");
    json_object *have = informer_list_index(ctl->inf[INF_DEPLOY], key);
    for (size_t i = 0; so && have && i < json_object_array_length(have) && !st; i++) {
        json_object *md = jx_get(json_object_array_get_idx(have, i), "metadata");
        const char *name = jx_str(md, "name"),
                   *scaling = jx_str(jx_get(md, "annotations"), RECONCILE_ANNOTATION_SCALING);
        if (!name || !scaling || strcmp(scaling, "keda") ||
            jx_find_named(children, "ScaledObject", name))
            continue;
        st = ctl_status_ignore_http(kube_delete(ctl->client, so, jx_str(md, "namespace"), name),
                                    404);
        if (!st) log_info("pruned child", "key", key, "kind", "ScaledObject", "name", name);
    }
    json_object_put(have);
    return st ? ctl_status_wrap(st, "delete ScaledObject of %s", key) : NULL;
}

/* Fixed replicas -> HPA: before kinfer's apply drops spec.replicas, a second field manager takes
 * the live value (reconcile_handover) so the Deployment is never defaulted to 1 in between.
 * The cache keeps no spec, so the live object is fetched, and only when the cached annotations
 * say the replicas may still be ours. */
static ctl_status *handover(controller *ctl, json_object *desired, const char *ns, const char *name)
{
    json_object *spec = jx_get(desired, "spec"), *cached = NULL, *live = NULL, *patch = NULL;
    ctl_status *st = NULL;
    if (spec && jx_get(spec, "replicas")) return NULL; /* kinfer keeps owning replicas */
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    cached = informer_get(ctl->inf[INF_DEPLOY], key);
    const char *scaling =
        jx_str(jx_get(jx_get(cached, "metadata"), "annotations"), RECONCILE_ANNOTATION_SCALING);
    if (!cached || (scaling && strcmp(scaling, "fixed")))
        goto out; /* new, or already handed over */
    if ((st = kube_get(ctl->client, &kube_res_deployments, ns, name, &live))) {
        st = ctl_status_ignore_http(st, 404);
        goto out;
    }
    if ((st = reconcile_handover(desired, live, &patch)) || !patch) goto out;
    st = kube_apply_as(ctl->client, &kube_res_deployments, ns, name, NULL, patch,
                       RECONCILE_HANDOVER_MANAGER, NULL, NULL);
    if (!st) log_info("replicas handed over to the HPA", "deployment", key);
out:
    json_object_put(cached);
    json_object_put(live);
    json_object_put(patch);
    return st ? ctl_status_wrap(st, "replica handover of %s", key) : NULL;
}

/* Paused (status.h): no apply, delete or prune; only the status, from the cached Deployment and
 * pods as they run. The spec is not read, so a paused object reports no InvalidSpec either. */
static ctl_status *sync_paused(controller *ctl, const char *key, json_object *isvc,
                               json_object *prev, const char *now)
{
    json_object *md = jx_get(isvc, "metadata"), *dep = NULL, *pods = NULL, *status = NULL;
    ctl_status *st = NULL;
    char dkey[600];
    snprintf(dkey, sizeof(dkey), "%s/%s-predictor", jx_str(md, "namespace"), jx_str(md, "name"));
    dep = informer_get(ctl->inf[INF_DEPLOY], dkey);
    if (!(pods = informer_list_index(ctl->inf[INF_POD], key))) {
        st = ctl_status_new(CTL_ENOMEM, "pods of %s", key);
        goto out;
    }
    if ((st = status_compute_paused(isvc, dep, pods, prev, now, &status))) goto out;
    st = write_status(ctl, isvc, prev, status);
    log_debug("paused: children left as they are", "key", key);
out:
    json_object_put(dep);
    json_object_put(pods);
    json_object_put(status);
    return st;
}

/* What one pass asks of the queue, beside an error (controller-runtime's reconcile.Result). The
 * worker's switch (handle_result) is the only place that turns it into a queue operation. */
typedef struct reconcile_result {
    int requeue;      /* queue again now, in the normal lane (others' first passes go first) */
    int64_t after_ms; /* > 0: queue again after this long (a rollout's next check) */
} reconcile_result;

/* One pass over one key: what the steps of sync_key share. Borrowed: key, ns, isvc, prev. */
typedef struct pass {
    const char *key, *ns;
    json_object *isvc, *prev; /* the cached InferenceService and its status */
    json_object *children, *deployment, *pods, *status;
    canary_plan *plan;
    char now[40];
    char made[600]; /* "Created Deployment a, Service b, ..." */
    int created_any;
} pass;

/* A bad spec will not fix itself: report it in status, and do not retry until it changes. */
static ctl_status *report_invalid(controller *ctl, pass *p, ctl_status *bad)
{
    ctl_status *st =
        status_compute_invalid(p->isvc, ctl_status_msg(bad), p->prev, p->now, &p->status);
    if (!st) status_pause_condition(p->status, p->isvc, jx_get(p->prev, "conditions"), p->now);
    if (!st && !(p->prev && json_object_equal(p->prev, p->status)))
        kube_record_event(ctl->client, p->isvc, "Warning", "InvalidSpec", ctl_status_msg(bad));
    if (!st) st = write_status(ctl, p->isvc, p->prev, p->status);
    log_warn("invalid spec", "key", p->key, "error", ctl_status_msg(bad));
    ctl_status_free(bad);
    return st;
}

/* The desired children, and the canary's plan for them: the children of the previous revision
 * too while a canary runs (canary.h). */
static ctl_status *plan_children(controller *ctl, pass *p)
{
    ctl_status *st = reconcile_desired(p->isvc, &ctl->rc, &p->children);
    if (!st) {
        json_object *deps = informer_list_index(ctl->inf[INF_DEPLOY], p->key);
        st = canary_plan_new(canary_get_config(ctl->canary), p->isvc, &ctl->rc, deps, &p->children,
                             &p->plan);
        json_object_put(deps);
    }
    return st;
}

/* The informer that caches children of resource r, or NULL (not watched). */
static informer *cache_of(controller *ctl, const kube_resource *r)
{
    return r == &kube_res_deployments ? ctl->inf[INF_DEPLOY]
           : r == &kube_res_services  ? ctl->inf[INF_SVC]
           : r == &kube_res_hpas      ? ctl->inf[INF_HPA]
                                      : NULL;
}

/* Keeps what the canary and status need of one child as it now is (cached or just applied):
 * the plan observes it, and the first Deployment is held for status_compute. Takes obj. */
static void keep_child(pass *p, const kube_resource *r, json_object *obj, int trim)
{
    canary_plan_observe(p->plan, obj);
    if (r == &kube_res_deployments && !p->deployment) {
        /* Held through the status write: the cache's shape (what status_compute reads) is a
         * tenth of the full answer with its pod template and managedFields. */
        if (trim) trim_deployment(obj);
        p->deployment = obj;
    } else {
        json_object_put(obj);
    }
}

/* Server-side applies child i of p->children, unless its cached copy is as we last applied it. */
static ctl_status *apply_child(controller *ctl, pass *p, size_t i)
{
    json_object *c = json_object_array_get_idx(p->children, i), *out = NULL;
    const char *av = jx_str(c, "apiVersion"), *kind = jx_str(c, "kind"),
               *name = jx_str(jx_get(c, "metadata"), "name"),
               *cns = jx_str(jx_get(c, "metadata"), "namespace");
    const kube_resource *r = kube_resource_for(av, kind);
    ctl_status *st = NULL;
    if (!r || !name)
        return ctl_status_new(CTL_EINTERNAL, "child %zu (%s %s) has no known resource or name", i,
                              av ? av : "?", kind ? kind : "?");
    char hash[17], akey[600], ckey[520];
    informer *cache = cache_of(ctl, r);
    if (!cns) cns = p->ns;
    snprintf(ckey, sizeof(ckey), "%s/%s", cns, name);
    snprintf(akey, sizeof(akey), "%s %s", kind, ckey);
    applied_stamp(c, hash);
    if (cache) {
        /* Unchanged since our last apply, by us or anyone: applying again would change
         * nothing, yet costs a round trip through admission and field management. */
        json_object *cached = informer_get(cache, ckey);
        if (applied_current(ctl->applied, akey, hash, cached)) {
            keep_child(p, r, cached, 0);
            return NULL;
        }
        json_object_put(cached);
    }
    if (r == &kube_res_deployments && (st = handover(ctl, c, cns, name))) return st;
    int created = 0;
    if ((st = kube_apply(ctl->client, r, cns, name, NULL, c, &out, &created))) {
        applied_forget(ctl->applied, akey);
        return ctl_status_wrap(st, "apply %s %s", kind, name);
    }
    applied_record(ctl->applied, akey, hash, out);
    if (created) {
        size_t n = strlen(p->made);
        p->created_any = 1;
        snprintf(p->made + n, sizeof(p->made) - n, "%s%s %s", n ? ", " : "Created ", kind, name);
        log_info("created child", "key", p->key, "kind", kind, "name", name);
    }
    keep_child(p, r, out, 1);
    return NULL;
}

/* One Event for the children this pass created, not one each: a new InferenceService's first
 * pass creates three, and under a burst of creates those event writes were over a quarter of
 * this controller's requests. */
static void report_created(controller *ctl, pass *p)
{
    if (!*p->made) return;
    kube_record_event(ctl->client, p->isvc, "Normal", "Created", p->made);
    *p->made = 0;
}

/* Routing objects and the rollout's step (canary.h), then pruning of what is no longer wanted. */
static ctl_status *route_and_prune(controller *ctl, pass *p, reconcile_result *res)
{
    ctl_status *st = NULL;
    int64_t requeue_ms = 0;
    if (!(p->pods = informer_list_index(ctl->inf[INF_POD], p->key)))
        return ctl_status_new(CTL_ENOMEM, "pods of %s", p->key);
    canary_plan_resume(p->plan, status_paused_since_ms(p->prev)); /* 0 unless this ends a pause */
    if ((st = canary_plan_route(ctl->canary, p->plan, p->isvc, p->pods, p->children,
                                clock_wall_ms(), &requeue_ms)))
        return st;
    if (requeue_ms > 0) res->after_ms = requeue_ms; /* the rollout's next check */
    return prune(ctl, p->key, p->children);
}

/* The status from what the children and pods look like now, written when it changed. */
static ctl_status *report_status(controller *ctl, pass *p, reconcile_result *res)
{
    ctl_status *st = status_compute(p->isvc, p->deployment, p->pods, p->prev, p->now, &p->status);
    if (st) return st;
    canary_plan_status(p->plan, p->status, p->now);
    status_pause_condition(p->status, p->isvc, jx_get(p->prev, "conditions"),
                           p->now); /* an ignored value */
    if (p->created_any && workqueue_len_first(ctl->q)) {
        /* Other new InferenceServices wait for their first pass. In a burst of creates the API
         * server's throughput is what bounds how soon every one has its children, so this one's
         * status write (and its Ready event) waits until they are done: the key goes back to the
         * normal lane, and that pass reports whatever the children have reached by then. */
        res->requeue = 1;
        return NULL;
    }
    return write_status(ctl, p->isvc, p->prev, p->status);
}

/* One pass over key: desired children -> apply -> route/rollout -> prune -> status. Decides
 * nothing about the queue itself: what it wants is in *res, and the worker acts on it. */
static ctl_status *sync_key(controller *ctl, const char *key, json_object **isvc_out,
                            reconcile_result *res)
{
    ctl_status *st = NULL;
    pass p = {.key = key, .isvc = informer_get(ctl->inf[INF_ISVC], key)};
    *isvc_out = p.isvc;
    if (!p.isvc || jx_get(jx_get(p.isvc, "metadata"), "deletionTimestamp")) {
        /* deleted: its children are garbage-collected through ownerReferences */
        metrics_set_paused(key, 0);
        return NULL;
    }
    p.ns = jx_str(jx_get(p.isvc, "metadata"), "namespace");
    p.prev = jx_get(p.isvc, "status");
    kube_format_time(p.now, sizeof(p.now), 0);
    int paused = status_pause_read(p.isvc, NULL) == STATUS_PAUSE_ON;
    metrics_set_paused(key,
                       paused); /* every pass: a restarted controller has not seen the transition */
    if (paused) return sync_paused(ctl, key, p.isvc, p.prev, p.now);
    if ((st = plan_children(ctl, &p))) {
        if (ctl_status_code(st) == CTL_EINVAL) st = report_invalid(ctl, &p, st);
        goto out;
    }
    if ((st = prune_scaledobjects(ctl, key, p.children))) goto out;
    for (size_t i = 0; i < json_object_array_length(p.children); i++)
        if ((st = apply_child(ctl, &p, i))) goto out;
    report_created(
        ctl, &p); /* before the status write and its Ready event, in the order things happened */
    if ((st = route_and_prune(ctl, &p, res))) goto out;
    st = report_status(ctl, &p, res);
out:
    report_created(ctl, &p); /* here when a later apply failed */
    canary_plan_free(p.plan);
    json_object_put(p.children);
    json_object_put(p.deployment);
    json_object_put(p.pods);
    json_object_put(p.status);
    return st;
}

/* The one place that decides what happens to a key after a pass (controller-runtime's
 * reconcileHandler): an error retries with the key's backoff; otherwise its failures are
 * forgotten and it is queued again only if the pass asked for it. */
static void handle_result(controller *ctl, const char *key, json_object *isvc, ctl_status *st,
                          reconcile_result res, double dt)
{
    enum { DONE, ERROR, REQUEUE, REQUEUE_AFTER } what;
    what = st ? ERROR : res.requeue ? REQUEUE : res.after_ms > 0 ? REQUEUE_AFTER : DONE;
    metrics_observe_reconcile(what == ERROR ? "error" : "success", dt);
    switch (what) {
    case ERROR: {
        unsigned fails = workqueue_failures(ctl->q, key);
        log_error("reconcile failed", "key", key, "error", ctl_status_msg(st));
        /* Events for the 1st, 2nd, 4th, 8th... failure: visible without flooding. */
        if (isvc && (fails & (fails + 1)) == 0 && ctl_status_code(st) != CTL_ECANCELED)
            kube_record_event(ctl->client, isvc, "Warning", "ReconcileError", ctl_status_msg(st));
        workqueue_add_rate_limited(ctl->q, key);
        return;
    }
    case REQUEUE: /* a pass that runs now computes the rollout's next check again */
        workqueue_forget(ctl->q, key);
        workqueue_add(ctl->q, key);
        break;
    case REQUEUE_AFTER:
        workqueue_forget(ctl->q, key);
        workqueue_add_after(ctl->q, key, (uint64_t)res.after_ms);
        break;
    case DONE:
        workqueue_forget(ctl->q, key);
        break;
    }
    log_debug("reconciled", "key", key);
}

static void *worker(void *arg)
{
    controller *ctl = arg;
    /* Reconciling from a half-filled cache would prune children that are merely not listed yet. */
    while (!controller_synced(ctl) && !atomic_load(&ctl->stopping)) usleep(50 * 1000);
    for (;;) {
        char *key = workqueue_get(ctl->q);
        if (!key) break;
        double t0 = clock_mono_s();
        json_object *isvc = NULL;
        reconcile_result res = {0};
        ctl_status *st = sync_key(ctl, key, &isvc, &res);
        handle_result(ctl, key, isvc, st, res, clock_mono_s() - t0);
        ctl_status_free(st);
        json_object_put(isvc);
        workqueue_done(ctl->q, key);
        free(key);
    }
    return NULL;
}

ctl_status *controller_start(controller *ctl)
{
    ctl_status *st = NULL;
    if (ctl->started) return ctl_status_new(CTL_EINVAL, "controller already started");
    metrics_set_depth_source(controller_queue_depth, ctl);
    for (int i = 0; i < INF_COUNT; i++)
        if ((st = informer_start(ctl->inf[i]))) goto out;
    if ((st = canary_start(ctl->canary))) goto out;
    ctl->started = 1;
    for (int w = 0; w < ctl->nworkers; w++) {
        int e = pthread_create(&ctl->workers[w], NULL, worker, ctl);
        if (e) {
            st = ctl_status_new(CTL_EINTERNAL, "worker thread: %s", strerror(e));
            ctl->nworkers = w; /* join only those that exist */
            goto out;
        }
    }
    log_info("controller started", "namespace", *ctl->ns ? ctl->ns : "(all)");
out:
    if (st) controller_stop(ctl);
    return st;
}

int controller_synced(controller *ctl)
{
    for (int i = 0; i < INF_COUNT; i++)
        if (!ctl->inf[i] || !informer_synced(ctl->inf[i])) return 0;
    return canary_synced(ctl->canary);
}

void controller_stop(controller *ctl)
{
    if (!ctl || atomic_exchange(&ctl->stopping, 1)) return;
    if (ctl->q) workqueue_shutdown(ctl->q);
    if (ctl->started)
        for (int w = 0; w < ctl->nworkers; w++) pthread_join(ctl->workers[w], NULL);
    for (int i = 0; i < INF_COUNT; i++)
        informer_request_stop(ctl->inf[i]); /* all at once, then join */
    for (int i = 0; i < INF_COUNT; i++) informer_stop(ctl->inf[i]);
    canary_stop(ctl->canary);
    metrics_set_depth_source(NULL, NULL);
    if (ctl->started) log_info("controller stopped");
}

void controller_free(controller *ctl)
{
    if (!ctl) return;
    controller_stop(ctl);
    for (int i = 0; i < INF_COUNT; i++) informer_free(ctl->inf[i]);
    canary_free(ctl->canary);
    applied_free(ctl->applied);
    workqueue_free(ctl->q);
    free(ctl->workers);
    free(ctl->ns);
    free(ctl->image);
    free(ctl->prometheus);
    free(ctl);
}
