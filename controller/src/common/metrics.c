/* Fixed-size Prometheus registry; see metrics.h. */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_API   48
#define MAX_RES   16
#define LABEL_LEN 32

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
static const char *const results[] = {"success", "error", "requeue"};
#define NRESULTS 3

typedef struct api_row {
    char verb[LABEL_LEN];
    int code;
    unsigned long long n;
} api_row;

typedef struct res_row {
    char res[LABEL_LEN];
    unsigned long long restarts, relists;
    size_t objects, bytes;
} res_row;

#define MAX_ROLLOUTS 64
static const char *const rollout_phases[] = {"Idle",   "WaitingForCanary", "Progressing",
                                             "Paused", "Succeeded",        "Failed"};
#define NPHASES (sizeof(rollout_phases) / sizeof(rollout_phases[0]))
typedef struct rollout_row {
    char isvc[320];
    char phase[24];
    int weight;
    unsigned long long passed, failed, inconclusive;
} rollout_row;

static struct {
    pthread_mutex_t mu;
    unsigned long long reconcile[NRESULTS];
    unsigned long long hist[NBUCKETS]; /* non-cumulative counts; rendered cumulative */
    unsigned long long hist_count;
    double hist_sum;
    api_row api[MAX_API];
    size_t napi;
    unsigned long long connections;
    res_row res[MAX_RES];
    size_t nres;
    size_t (*depth_fn)(void *);
    void *depth_ud;
    int leader;
    rollout_row rollouts[MAX_ROLLOUTS];
    size_t nrollouts;
    char paused[MAX_ROLLOUTS][320]; /* "ns/name" of paused InferenceServices */
    size_t npaused, unlisted;
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

void metrics_observe_reconcile(const char *result, double seconds)
{
    pthread_mutex_lock(&reg.mu);
    for (int i = 0; i < NRESULTS; i++)
        if (!strcmp(result, results[i])) reg.reconcile[i]++;
    size_t b = 0;
    while (b < NBUCKETS && seconds > buckets[b]) b++;
    if (b < NBUCKETS) reg.hist[b]++;
    reg.hist_count++;
    reg.hist_sum += seconds;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_count_api_connections(long n)
{
    if (n <= 0) return;
    pthread_mutex_lock(&reg.mu);
    reg.connections += (unsigned long long)n;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_count_api_request(const char *verb, int code)
{
    pthread_mutex_lock(&reg.mu);
    size_t i;
    for (i = 0; i < reg.napi; i++)
        if (reg.api[i].code == code && !strcmp(reg.api[i].verb, verb)) break;
    if (i == reg.napi) {
        if (reg.napi == MAX_API) { /* fold into the last row rather than grow */
            i = MAX_API - 1;
            snprintf(reg.api[i].verb, LABEL_LEN, "other");
            reg.api[i].code = 0;
        } else {
            snprintf(reg.api[i].verb, LABEL_LEN, "%s", verb);
            reg.api[i].code = code;
            reg.napi++;
        }
    }
    reg.api[i].n++;
    pthread_mutex_unlock(&reg.mu);
}

static res_row *res_find(const char *res)
{
    for (size_t i = 0; i < reg.nres; i++)
        if (!strcmp(reg.res[i].res, res)) return &reg.res[i];
    if (reg.nres == MAX_RES) return &reg.res[MAX_RES - 1];
    res_row *r = &reg.res[reg.nres++];
    snprintf(r->res, LABEL_LEN, "%s", res);
    return r;
}

void metrics_count_watch_restart(const char *resource)
{
    pthread_mutex_lock(&reg.mu);
    res_find(resource)->restarts++;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_count_relist(const char *resource)
{
    pthread_mutex_lock(&reg.mu);
    res_find(resource)->relists++;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_set_cache(const char *resource, size_t objects, size_t bytes)
{
    pthread_mutex_lock(&reg.mu);
    res_row *r = res_find(resource);
    r->objects = objects;
    r->bytes = bytes;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_set_depth_source(size_t (*fn)(void *ud), void *ud)
{
    pthread_mutex_lock(&reg.mu);
    reg.depth_fn = fn;
    reg.depth_ud = ud;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_set_leader(int is_leader)
{
    pthread_mutex_lock(&reg.mu);
    reg.leader = is_leader != 0;
    pthread_mutex_unlock(&reg.mu);
}

static rollout_row *find_rollout_series(const char *isvc)
{
    for (size_t i = 0; i < reg.nrollouts; i++)
        if (!strcmp(reg.rollouts[i].isvc, isvc)) return &reg.rollouts[i];
    if (reg.nrollouts == MAX_ROLLOUTS) {
        rollout_row *r = &reg.rollouts[MAX_ROLLOUTS - 1];
        snprintf(r->isvc, sizeof(r->isvc), "other");
        return r;
    }
    rollout_row *r = &reg.rollouts[reg.nrollouts++];
    snprintf(r->isvc, sizeof(r->isvc), "%s", isvc);
    return r;
}

void metrics_set_rollout(const char *isvc, const char *phase, int weight)
{
    pthread_mutex_lock(&reg.mu);
    rollout_row *r = find_rollout_series(isvc);
    snprintf(r->phase, sizeof(r->phase), "%s", phase);
    r->weight = weight;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_count_rollout_check(const char *isvc, const char *result)
{
    pthread_mutex_lock(&reg.mu);
    rollout_row *r = find_rollout_series(isvc);
    if (!strcmp(result, "passed"))
        r->passed++;
    else if (!strcmp(result, "failed"))
        r->failed++;
    else
        r->inconclusive++;
    pthread_mutex_unlock(&reg.mu);
}

void metrics_set_paused(const char *isvc, int paused)
{
    pthread_mutex_lock(&reg.mu);
    size_t i = 0;
    while (i < reg.npaused && strcmp(reg.paused[i], isvc)) i++;
    if (i < reg.npaused && !paused) {
        memmove(reg.paused[i], reg.paused[i + 1], (--reg.npaused - i) * sizeof(reg.paused[0]));
        reg.unlisted = 0; /* room again: an unlisted one is listed at its next reconcile */
    } else if (i == reg.npaused && paused && reg.npaused < MAX_ROLLOUTS)
        snprintf(reg.paused[reg.npaused++], sizeof(reg.paused[0]), "%s", isvc);
    else if (i == reg.npaused && paused)
        reg.unlisted = 1; /* a full table: say so rather than grow */
    pthread_mutex_unlock(&reg.mu);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&reg.mu);
    reg.nrollouts = 0;
    reg.npaused = reg.unlisted = 0;
    memset(reg.reconcile, 0, sizeof(reg.reconcile));
    memset(reg.hist, 0, sizeof(reg.hist));
    reg.hist_count = 0;
    reg.hist_sum = 0;
    reg.napi = reg.nres = 0;
    reg.connections = 0;
    reg.depth_fn = NULL;
    reg.leader = 0;
    pthread_mutex_unlock(&reg.mu);
}

ctl_status *metrics_render(char **out, size_t *len)
{
    char *buf = NULL;
    size_t sz = 0;
    *out = NULL;
    FILE *f = open_memstream(&buf, &sz);
    if (!f) return ctl_status_new(CTL_ENOMEM, "metrics");
    pthread_mutex_lock(&reg.mu);
    fputs("# HELP kinfer_controller_reconcile_total Reconciles by result.\n"
          "# TYPE kinfer_controller_reconcile_total counter\n",
          f);
    for (int i = 0; i < NRESULTS; i++)
        fprintf(f, "kinfer_controller_reconcile_total{result=\"%s\"} %llu\n", results[i],
                reg.reconcile[i]);
    fprintf(f,
            "# HELP kinfer_controller_reconcile_errors_total Reconciles that failed.\n"
            "# TYPE kinfer_controller_reconcile_errors_total counter\n"
            "kinfer_controller_reconcile_errors_total %llu\n",
            reg.reconcile[1]);
    fputs("# HELP kinfer_controller_reconcile_duration_seconds Time spent in one reconcile.\n"
          "# TYPE kinfer_controller_reconcile_duration_seconds histogram\n",
          f);
    unsigned long long cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += reg.hist[b];
        fprintf(f, "kinfer_controller_reconcile_duration_seconds_bucket{le=\"%g\"} %llu\n",
                buckets[b], cum);
    }
    fprintf(f, "kinfer_controller_reconcile_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
            reg.hist_count);
    fprintf(f, "kinfer_controller_reconcile_duration_seconds_sum %.6f\n", reg.hist_sum);
    fprintf(f, "kinfer_controller_reconcile_duration_seconds_count %llu\n", reg.hist_count);
    size_t depth = reg.depth_fn ? reg.depth_fn(reg.depth_ud) : 0;
    fprintf(f,
            "# HELP kinfer_controller_workqueue_depth Keys waiting in the workqueue.\n"
            "# TYPE kinfer_controller_workqueue_depth gauge\n"
            "kinfer_controller_workqueue_depth %zu\n",
            depth);
    fputs("# HELP kinfer_controller_watch_restarts_total Watches re-established.\n"
          "# TYPE kinfer_controller_watch_restarts_total counter\n",
          f);
    for (size_t i = 0; i < reg.nres; i++)
        fprintf(f, "kinfer_controller_watch_restarts_total{resource=\"%s\"} %llu\n", reg.res[i].res,
                reg.res[i].restarts);
    fputs("# HELP kinfer_controller_relists_total Full relists (initial, 410 Gone, overflow).\n"
          "# TYPE kinfer_controller_relists_total counter\n",
          f);
    for (size_t i = 0; i < reg.nres; i++)
        fprintf(f, "kinfer_controller_relists_total{resource=\"%s\"} %llu\n", reg.res[i].res,
                reg.res[i].relists);
    fputs("# HELP kinfer_controller_cache_objects Objects held by the informer cache.\n"
          "# TYPE kinfer_controller_cache_objects gauge\n",
          f);
    for (size_t i = 0; i < reg.nres; i++)
        fprintf(f, "kinfer_controller_cache_objects{resource=\"%s\"} %zu\n", reg.res[i].res,
                reg.res[i].objects);
    fputs("# HELP kinfer_controller_cache_bytes Bytes held by the informer cache: objects as JSON "
          "(managedFields stripped), packed.\n"
          "# TYPE kinfer_controller_cache_bytes gauge\n",
          f);
    for (size_t i = 0; i < reg.nres; i++)
        fprintf(f, "kinfer_controller_cache_bytes{resource=\"%s\"} %zu\n", reg.res[i].res,
                reg.res[i].bytes);
    fputs("# HELP kinfer_controller_api_requests_total Kubernetes API requests by verb and HTTP "
          "code (0: no answer).\n"
          "# TYPE kinfer_controller_api_requests_total counter\n",
          f);
    for (size_t i = 0; i < reg.napi; i++)
        fprintf(f, "kinfer_controller_api_requests_total{verb=\"%s\",code=\"%d\"} %llu\n",
                reg.api[i].verb, reg.api[i].code, reg.api[i].n);
    fprintf(f,
            "# HELP kinfer_controller_api_connections_total Connections opened to the API server "
            "(each a TCP and TLS handshake).\n"
            "# TYPE kinfer_controller_api_connections_total counter\n"
            "kinfer_controller_api_connections_total %llu\n",
            reg.connections);
    fputs("# HELP kinfer_controller_rollout_phase 1 for the current phase of an InferenceService's "
          "rollout.\n"
          "# TYPE kinfer_controller_rollout_phase gauge\n",
          f);
    for (size_t i = 0; i < reg.nrollouts; i++)
        for (size_t ph = 0; ph < NPHASES; ph++)
            fprintf(f, "kinfer_controller_rollout_phase{inferenceservice=\"%s\",phase=\"%s\"} %d\n",
                    reg.rollouts[i].isvc, rollout_phases[ph],
                    !strcmp(reg.rollouts[i].phase, rollout_phases[ph]));
    fputs("# HELP kinfer_controller_rollout_weight Percent of traffic the rollout gives the canary "
          "revision.\n"
          "# TYPE kinfer_controller_rollout_weight gauge\n",
          f);
    for (size_t i = 0; i < reg.nrollouts; i++)
        fprintf(f, "kinfer_controller_rollout_weight{inferenceservice=\"%s\"} %d\n",
                reg.rollouts[i].isvc, reg.rollouts[i].weight);
    fputs("# HELP kinfer_controller_rollout_failed_checks_total Canary checks with a metric out of "
          "bounds.\n"
          "# TYPE kinfer_controller_rollout_failed_checks_total counter\n",
          f);
    for (size_t i = 0; i < reg.nrollouts; i++)
        fprintf(f, "kinfer_controller_rollout_failed_checks_total{inferenceservice=\"%s\"} %llu\n",
                reg.rollouts[i].isvc, reg.rollouts[i].failed);
    fputs("# HELP kinfer_controller_rollout_checks_total Canary checks by result (passed, failed, "
          "inconclusive).\n"
          "# TYPE kinfer_controller_rollout_checks_total counter\n",
          f);
    for (size_t i = 0; i < reg.nrollouts; i++) {
        fprintf(f,
                "kinfer_controller_rollout_checks_total{inferenceservice=\"%s\",result=\"passed\"} "
                "%llu\n",
                reg.rollouts[i].isvc, reg.rollouts[i].passed);
        fprintf(f,
                "kinfer_controller_rollout_checks_total{inferenceservice=\"%s\",result=\"failed\"} "
                "%llu\n",
                reg.rollouts[i].isvc, reg.rollouts[i].failed);
        fprintf(f,
                "kinfer_controller_rollout_checks_total{inferenceservice=\"%s\",result="
                "\"inconclusive\"} %llu\n",
                reg.rollouts[i].isvc, reg.rollouts[i].inconclusive);
    }
    fputs("# HELP kinfer_controller_paused 1 for each InferenceService paused by "
          "serving.kinfer.dev/paused.\n"
          "# TYPE kinfer_controller_paused gauge\n",
          f);
    for (size_t i = 0; i < reg.npaused; i++)
        fprintf(f, "kinfer_controller_paused{inferenceservice=\"%s\"} 1\n", reg.paused[i]);
    fprintf(f,
            "# HELP kinfer_controller_paused_unlisted 1 when more paused InferenceServices exist "
            "than are listed.\n"
            "# TYPE kinfer_controller_paused_unlisted gauge\n"
            "kinfer_controller_paused_unlisted %zu\n",
            reg.unlisted);
    fprintf(f,
            "# HELP kinfer_controller_leader 1 while this replica holds the leader Lease.\n"
            "# TYPE kinfer_controller_leader gauge\n"
            "kinfer_controller_leader %d\n",
            reg.leader);
    pthread_mutex_unlock(&reg.mu);
    if (fclose(f) || !buf) {
        free(buf);
        return ctl_status_new(CTL_ENOMEM, "metrics");
    }
    *out = buf;
    if (len) *len = sz;
    return NULL;
}
