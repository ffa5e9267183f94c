/* Where a canary's metrics come from; see metricsource.h. */
#include "metricsource.h"
#include "../common/jsonx.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revision.h"
#include "../common/strmap.h"

struct metricsource {
    char *prometheus;
    pthread_mutex_t mu;
    strmap *baselines; /* "ns/name/revision" -> scrape_sample* */
};

metricsource *metricsource_create(const char *prometheus_address)
{
    metricsource *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->baselines = strmap_create();
    m->prometheus = prometheus_address && *prometheus_address ? strdup(prometheus_address) : NULL;
    if (!m->baselines || (prometheus_address && *prometheus_address && !m->prometheus)) {
        metricsource_free(m);
        return NULL;
    }
    return m;
}

static int free_value(void *ud, const char *k, void *v)
{
    (void)ud, (void)k;
    free(v);
    return 0;
}

void metricsource_free(metricsource *m)
{
    if (!m) return;
    if (m->baselines) strmap_each(m->baselines, free_value, NULL);
    strmap_free(m->baselines);
    pthread_mutex_destroy(&m->mu);
    free(m->prometheus);
    free(m);
}

/* The annotation's endpoints (the testing/ops hook) for the revision; *set says whether it is
 * there. */
static int annotated_endpoints(const char *revision, json_object *isvc, char urls[][256], int max,
                               int *set)
{
    char ak[128];
    int n = 0;
    snprintf(ak, sizeof(ak), METRICSOURCE_ANNOTATION_ENDPOINTS "%s",
             revision_hash_of(revision) ? revision_hash_of(revision) : "");
    const char *eps = jx_str(jx_get(jx_get(isvc, "metadata"), "annotations"), ak);
    *set = eps != NULL;
    for (const char *s = eps; s && *s && n < max;) {
        size_t len = strcspn(s, ",");
        while (len && *s == ' ') s++, len--;
        if (len && len < 256) {
            memcpy(urls[n], s, len);
            urls[n++][len] = 0;
        }
        s += len + (s[len] == ',');
    }
    return n;
}

/* The revision's Ready pods, http://<podIP>:8080. */
static int pod_endpoints(const char *revision, json_object *pods, char urls[][256], int max)
{
    int n = 0;
    for (size_t i = 0; pods && i < json_object_array_length(pods) && n < max; i++) {
        json_object *pod = json_object_array_get_idx(pods, i), *ps = jx_get(pod, "status"),
                    *conds = jx_get(ps, "conditions");
        const char *rev = jx_str(jx_get(jx_get(pod, "metadata"), "labels"), REVISION_LABEL),
                   *ip = jx_str(ps, "podIP");
        int ready = jx_condition_is(conds, "Ready", "True");
        if (rev && !strcmp(rev, revision) && ip && ready &&
            !jx_get(jx_get(pod, "metadata"), "deletionTimestamp"))
            snprintf(urls[n++], 256, "http://%s:8080", ip);
    }
    return n;
}

int metricsource_read(metricsource *m, const char *key, const char *ns, const char *revision,
                      json_object *isvc, json_object *pods, int64_t interval_ms, rollout_obs *obs,
                      scrape_sample *cur, char *detail, size_t dn)
{
    char urls[16][256], bkey[400];
    ctl_status *st = NULL;
    obs->success_pct = obs->p99_ms = (rollout_metric){ROLLOUT_METRIC_ERROR, 0};
    obs->detail = detail;
    int annotated = 0, n = annotated_endpoints(revision, isvc, urls, 16, &annotated);
    if (!annotated && m->prometheus) {
        char re[REVISION_NAME_MAX + 8];
        snprintf(re, sizeof(re), "%s-.*", revision);
        st = scrape_prometheus(m->prometheus, ns, re, (interval_ms + 999) / 1000, &obs->success_pct,
                               &obs->p99_ms);
        if (st)
            snprintf(detail, dn, "%s", ctl_status_msg(st));
        else
            snprintf(detail, dn, "no requests to the canary in Prometheus over the interval");
        ctl_status_free(st);
        return 0;
    }
    if (!annotated) n = pod_endpoints(revision, pods, urls, 16);
    if (!n) {
        snprintf(detail, dn, "no metrics endpoint for revision %s (%s)", revision,
                 annotated ? "the metrics-endpoints annotation lists none"
                           : "no Ready pod with an IP");
        return 0;
    }
    memset(cur, 0, sizeof(*cur));
    for (int i = 0; i < n; i++) {
        scrape_sample s;
        if ((st = scrape_fetch(urls[i], &s))) {
            snprintf(detail, dn, "%s", ctl_status_msg(st));
            ctl_status_free(st);
            return 0;
        }
        scrape_add(cur, &s);
    }
    scrape_sample zero = {0}, prev;
    snprintf(bkey, sizeof(bkey), "%s/%s", key, revision);
    pthread_mutex_lock(&m->mu);
    scrape_sample *b = strmap_get(m->baselines, bkey);
    prev = b ? *b : zero; /* none (first check after a restart): counters since the pods started */
    pthread_mutex_unlock(&m->mu);
    scrape_analyze(&prev, cur, &obs->success_pct, &obs->p99_ms);
    if (!cur->have_requests && !cur->have_histogram)
        snprintf(detail, dn, "no kinfer-server metrics at %.200s", urls[0]);
    else
        snprintf(detail, dn, "no requests to the canary in the interval");
    return 1;
}

void metricsource_keep(metricsource *m, const char *key, const char *revision,
                       const scrape_sample *s)
{
    char bkey[400];
    snprintf(bkey, sizeof(bkey), "%s/%s", key, revision);
    pthread_mutex_lock(&m->mu);
    free(strmap_remove(m->baselines, bkey));
    scrape_sample *n = s ? malloc(sizeof(*n)) : NULL;
    if (n) {
        *n = *s;
        if (strmap_put(m->baselines, bkey, n, NULL)) free(n);
    }
    pthread_mutex_unlock(&m->mu);
}
