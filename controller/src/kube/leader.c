/* Lease-based leader election; see leader.h. */
#include "leader.h"
#include "../common/clock.h"
#include "../common/jsonx.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/metrics.h"

struct leader {
    kube_client *client;
    char *ns, *name, *identity;
    int64_t duration_ms, deadline_ms, retry_ms;
    char observed[512]; /* holder + renewTime last seen */
    int64_t observed_ms;
    atomic_int is_leader, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t renew_thread;
    int renewing;
    void (*on_lost)(void *);
    void *ud;
    unsigned seed;
};

ctl_status *leader_config_check(const leader_config *cfg)
{
    if (!cfg->namespace || !*cfg->namespace)
        return ctl_status_new(CTL_EINVAL, "leader election needs a lease namespace");
    if (!cfg->name || !*cfg->name || !cfg->identity || !*cfg->identity)
        return ctl_status_new(CTL_EINVAL, "leader election needs a lease name and identity");
    if (cfg->retry_period_ms <= 0)
        return ctl_status_new(CTL_EINVAL, "retry period must be positive");
    if (cfg->renew_deadline_ms <= cfg->retry_period_ms)
        return ctl_status_new(
            CTL_EINVAL, "renew deadline (%lld ms) must be longer than the retry period (%lld ms)",
            (long long)cfg->renew_deadline_ms, (long long)cfg->retry_period_ms);
    if (cfg->lease_duration_ms <= cfg->renew_deadline_ms)
        return ctl_status_new(
            CTL_EINVAL, "lease duration (%lld ms) must be longer than the renew deadline (%lld ms)",
            (long long)cfg->lease_duration_ms, (long long)cfg->renew_deadline_ms);
    if (cfg->lease_duration_ms < 1000)
        return ctl_status_new(CTL_EINVAL, "lease duration must be at least 1s");
    return NULL;
}

ctl_status *leader_create(kube_client *c, const leader_config *cfg, leader **out)
{
    *out = NULL;
    ctl_status *st = leader_config_check(cfg);
    if (st) return st;
    leader *le = calloc(1, sizeof(*le));
    if (!le) return ctl_status_new(CTL_ENOMEM, "leader");
    le->client = c;
    le->ns = strdup(cfg->namespace);
    le->name = strdup(cfg->name);
    le->identity = strdup(cfg->identity);
    le->duration_ms = cfg->lease_duration_ms;
    le->deadline_ms = cfg->renew_deadline_ms;
    le->retry_ms = cfg->retry_period_ms;
    le->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)le;
    pthread_mutex_init(&le->mu, NULL);
    pthread_cond_init(&le->cv, NULL);
    if (!le->ns || !le->name || !le->identity) {
        leader_free(le);
        return ctl_status_new(CTL_ENOMEM, "leader");
    }
    *out = le;
    return NULL;
}

int leader__may_acquire(json_object *lease, const char *identity, int64_t now_ms,
                        char *observed_record, size_t record_len, int64_t *observed_ms)
{
    json_object *spec = jx_obj(lease, "spec");
    const char *holder = jx_str(spec, "holderIdentity"), *renew = jx_str(spec, "renewTime");
    int64_t dur_s = jx_int(spec, "leaseDurationSeconds", 0);
    char rec[512];
    snprintf(rec, sizeof(rec), "%s|%s|%lld", holder ? holder : "", renew ? renew : "",
             (long long)dur_s);
    if (strcmp(rec, observed_record)) { /* the record moved: restart our local countdown */
        snprintf(observed_record, record_len, "%s", rec);
        *observed_ms = now_ms;
    }
    if (!holder || !*holder || !strcmp(holder, identity)) return 1;
    return now_ms - *observed_ms >= dur_s * 1000;
}

/* One attempt to take or renew the Lease. NULL on success; CTL_EAPI 409 when someone else won. */
static ctl_status *try_acquire_or_renew(leader *le)
{
    ctl_status *st = NULL;
    json_object *lease = NULL, *out = NULL;
    char now[40];
    kube_format_time(now, sizeof(now), 1);
    int64_t dur_s = (le->duration_ms + 999) / 1000;
    /* 404: no Lease yet (lease stays NULL), so create it. */
    st = ctl_status_ignore_http(kube_get(le->client, &kube_res_leases, le->ns, le->name, &lease),
                                404);
    if (!st && !lease) {
        json_object *o = json_object_new_object(), *m = json_object_new_object(),
                    *s = json_object_new_object();
        json_object_object_add(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
        json_object_object_add(o, "kind", json_object_new_string("Lease"));
        json_object_object_add(m, "name", json_object_new_string(le->name));
        json_object_object_add(m, "namespace", json_object_new_string(le->ns));
        json_object_object_add(o, "metadata", m);
        json_object_object_add(s, "holderIdentity", json_object_new_string(le->identity));
        json_object_object_add(s, "leaseDurationSeconds", json_object_new_int64(dur_s));
        json_object_object_add(s, "acquireTime", json_object_new_string(now));
        json_object_object_add(s, "renewTime", json_object_new_string(now));
        json_object_object_add(s, "leaseTransitions", json_object_new_int(0));
        json_object_object_add(o, "spec", s);
        st = kube_create(le->client, &kube_res_leases, le->ns, o, &out);
        json_object_put(o);
        goto done;
    }
    if (st) goto out;
    if (!leader__may_acquire(lease, le->identity, clock_mono_ms(), le->observed,
                             sizeof(le->observed), &le->observed_ms)) {
        st = ctl_status_new(CTL_EAPI, "lease %s/%s is held by %s", le->ns, le->name,
                            jx_str(jx_obj(lease, "spec"), "holderIdentity"));
        goto out;
    }
    json_object *spec = jx_obj(lease, "spec");
    if (!spec) {
        spec = json_object_new_object();
        json_object_object_add(lease, "spec", spec);
    }
    const char *holder = jx_str(spec, "holderIdentity");
    int mine = holder && !strcmp(holder, le->identity);
    if (!mine) {
        json_object_object_add(spec, "acquireTime", json_object_new_string(now));
        json_object_object_add(spec, "leaseTransitions",
                               json_object_new_int64(jx_int(spec, "leaseTransitions", 0) +
                                                     1)); /* as client-go: every change of holder */
    }
    json_object_object_add(spec, "holderIdentity", json_object_new_string(le->identity));
    json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int64(dur_s));
    json_object_object_add(spec, "renewTime", json_object_new_string(now));
    json_object_object_del(jx_obj(lease, "metadata"), "managedFields");
    /* metadata.resourceVersion stays: the PUT fails with 409 if anyone wrote in between. */
    st = kube_update(le->client, &kube_res_leases, le->ns, le->name, lease, &out);
done:
    if (!st && out) { /* our own write is the record we now observe */
        leader__may_acquire(out, le->identity, clock_mono_ms(), le->observed, sizeof(le->observed),
                            &le->observed_ms);
    }
out:
    json_object_put(lease);
    json_object_put(out);
    return st;
}

/* Sleeps ms or until cancelled; nonzero when cancelled. */
static int nap(leader *le, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&le->mu);
    while (!atomic_load(&le->stop))
        if (pthread_cond_timedwait(&le->cv, &le->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&le->mu);
    return atomic_load(&le->stop);
}

ctl_status *leader_acquire(leader *le)
{
    int logged = 0;
    while (!atomic_load(&le->stop)) {
        ctl_status *st = try_acquire_or_renew(le);
        if (!st) {
            atomic_store(&le->is_leader, 1);
            metrics_set_leader(1);
            log_info("leader: acquired lease", "lease", le->name, "namespace", le->ns, "identity",
                     le->identity);
            return NULL;
        }
        if (!logged || ctl_status_code(st) != CTL_EAPI) {
            log_info("leader: waiting for lease", "lease", le->name, "reason", ctl_status_msg(st));
            logged = 1;
        }
        ctl_status_free(st);
        /* client-go's JitterUntil(retryPeriod, 1.2): spread replicas' attempts. */
        double r = (double)rand_r(&le->seed) / ((double)RAND_MAX + 1.0);
        if (nap(le, le->retry_ms + (int64_t)((double)le->retry_ms * 1.2 * r))) break;
    }
    return ctl_status_new(CTL_ECANCELED, "leader election cancelled");
}

static void *renew_loop(void *arg)
{
    leader *le = arg;
    int64_t last_ok = clock_mono_ms();
    while (!nap(le, le->retry_ms)) {
        ctl_status *st = try_acquire_or_renew(le);
        int64_t now = clock_mono_ms();
        if (!st) {
            last_ok = now;
            continue;
        }
        log_warn("leader: renew failed", "lease", le->name, "error", ctl_status_msg(st));
        ctl_status_free(st);
        if (now - last_ok >= le->deadline_ms && !atomic_load(&le->stop)) {
            atomic_store(&le->is_leader, 0);
            metrics_set_leader(0);
            log_error("leader: lost lease (renew deadline passed)", "lease", le->name, "identity",
                      le->identity);
            if (le->on_lost) le->on_lost(le->ud);
            break;
        }
    }
    return NULL;
}

ctl_status *leader_start_renewing(leader *le, void (*on_lost)(void *ud), void *ud)
{
    if (!atomic_load(&le->is_leader)) return ctl_status_new(CTL_EINVAL, "not the leader");
    if (le->renewing) return ctl_status_new(CTL_EINVAL, "already renewing");
    le->on_lost = on_lost;
    le->ud = ud;
    int e = pthread_create(&le->renew_thread, NULL, renew_loop, le);
    if (e) return ctl_status_new(CTL_EINTERNAL, "renew thread: %s", strerror(e));
    le->renewing = 1;
    return NULL;
}

void leader_cancel(leader *le)
{
    if (!le) return;
    pthread_mutex_lock(&le->mu);
    atomic_store(&le->stop, 1);
    pthread_cond_broadcast(&le->cv);
    pthread_mutex_unlock(&le->mu);
}

/* Cancels and waits for the renew thread (never from that thread itself). */
static void stop_renewing(leader *le)
{
    leader_cancel(le);
    if (le->renewing && !pthread_equal(pthread_self(), le->renew_thread)) {
        pthread_join(le->renew_thread, NULL);
        le->renewing = 0;
    }
}

ctl_status *leader_release(leader *le)
{
    stop_renewing(le);
    if (!atomic_load(&le->is_leader)) return NULL;
    json_object *lease = NULL;
    ctl_status *st = kube_get(le->client, &kube_res_leases, le->ns, le->name, &lease);
    if (st) goto out;
    json_object *spec = jx_obj(lease, "spec");
    const char *holder = jx_str(spec, "holderIdentity");
    if (!spec || !holder || strcmp(holder, le->identity)) goto out; /* someone else has it now */
    char now[40];
    kube_format_time(now, sizeof(now), 1);
    json_object_object_add(spec, "holderIdentity", json_object_new_string(""));
    json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int(1));
    json_object_object_add(spec, "renewTime", json_object_new_string(now));
    json_object_object_del(jx_obj(lease, "metadata"), "managedFields");
    st = kube_update(le->client, &kube_res_leases, le->ns, le->name, lease, NULL);
    if (!st) log_info("leader: released lease", "lease", le->name, "identity", le->identity);
out:
    atomic_store(&le->is_leader, 0);
    metrics_set_leader(0);
    json_object_put(lease);
    return st ? ctl_status_wrap(st, "release lease") : NULL;
}

int leader_is_leader(leader *le)
{
    return atomic_load(&le->is_leader);
}

void leader_free(leader *le)
{
    if (!le) return;
    stop_renewing(le);
    pthread_mutex_destroy(&le->mu);
    pthread_cond_destroy(&le->cv);
    free(le->ns);
    free(le->name);
    free(le->identity);
    free(le);
}
