/* Atomic counters and fixed-bucket histograms rendered as Prometheus text; see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double time_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define N_TIME (sizeof(time_bounds) / sizeof(time_bounds[0]))
static const double size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
#define N_SIZE      (sizeof(size_bounds) / sizeof(size_bounds[0]))
#define MAX_BUCKETS 16

typedef struct histogram {
    const double *bounds;
    size_t n;
    _Atomic uint64_t buckets[MAX_BUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_x1e9; /* sum scaled by 1e9 so it stays an integer */
} histogram;

struct metrics {
    char *labels; /* model="m",version="1" */
    _Atomic uint64_t success, failure[METRICS_REASON_COUNT], inference_count, exec_count;
    _Atomic uint64_t request_us, queue_us, compute_us;
    _Atomic int64_t inflight;
    _Atomic uint64_t load_ms;
    histogram request, queue, compute, batch;
};

static const char *reason_names[METRICS_REASON_COUNT] = {"REJECTED", "BACKEND", "TIMEOUT", "OTHER"};

static void hist_init(histogram *h, const double *bounds, size_t n)
{
    h->bounds = bounds;
    h->n = n;
}

static void hist_observe(histogram *h, double x)
{
    size_t i = 0;
    while (i < h->n && x > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_x1e9, (uint64_t)(x * 1e9), memory_order_relaxed);
}

metrics *metrics_create(const char *model, const char *version)
{
    metrics *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    /* Model names are validated as [A-Za-z0-9_.-] by the config, so no label escaping is needed. */
    if (asprintf(&m->labels, "model=\"%s\",version=\"%s\"", model, version) < 0) {
        free(m);
        return NULL;
    }
    hist_init(&m->request, time_bounds, N_TIME);
    hist_init(&m->queue, time_bounds, N_TIME);
    hist_init(&m->compute, time_bounds, N_TIME);
    hist_init(&m->batch, size_bounds, N_SIZE);
    return m;
}

void metrics_destroy(metrics *m)
{
    if (!m) return;
    free(m->labels);
    free(m);
}

void metrics_record_success(metrics *m, int64_t inferences, int64_t request_ns, int64_t queue_ns,
                            int64_t compute_ns)
{
    atomic_fetch_add_explicit(&m->success, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->inference_count, (uint64_t)inferences, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->request_us, (uint64_t)request_ns / 1000, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->queue_us, (uint64_t)queue_ns / 1000, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->compute_us, (uint64_t)compute_ns / 1000, memory_order_relaxed);
    hist_observe(&m->request, (double)request_ns / 1e9);
    hist_observe(&m->queue, (double)queue_ns / 1e9);
    hist_observe(&m->compute, (double)compute_ns / 1e9);
}

void metrics_record_failure(metrics *m, metrics_reason reason, int64_t request_ns)
{
    if ((unsigned)reason >= METRICS_REASON_COUNT) reason = METRICS_REASON_OTHER;
    atomic_fetch_add_explicit(&m->failure[reason], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->request_us, (uint64_t)request_ns / 1000, memory_order_relaxed);
    hist_observe(&m->request, (double)request_ns / 1e9);
}

void metrics_record_batch(metrics *m, int64_t rows, size_t n_requests, int64_t compute_ns)
{
    (void)n_requests;
    (void)compute_ns;
    atomic_fetch_add_explicit(&m->exec_count, 1, memory_order_relaxed);
    hist_observe(&m->batch, (double)rows);
}

void metrics_set_load_seconds(metrics *m, double s)
{
    atomic_store(&m->load_ms, (uint64_t)(s * 1000));
}

void metrics_add_inflight(metrics *m, int delta)
{
    atomic_fetch_add_explicit(&m->inflight, delta, memory_order_relaxed);
}

static void render_counter(pbuf *b, const char *name, const char *help, const char *labels,
                           uint64_t v)
{
    pbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s{%s} %" PRIu64 "\n", name, help, name, name,
                labels, v);
}

static void render_hist(pbuf *b, const char *name, const char *help, const char *labels,
                        histogram *h)
{
    pbuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n)
            pbuf_printf(b, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels, h->bounds[i],
                        cum);
        else
            pbuf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    }
    pbuf_printf(b, "%s_sum{%s} %.9f\n%s_count{%s} %" PRIu64 "\n", name, labels,
                (double)atomic_load(&h->sum_x1e9) / 1e9, name, labels, cum);
}

void metrics_render(metrics *m, pbuf *b, size_t queue_depth, uint64_t inline_requests, int ready)
{
    const char *l = m->labels;
    render_counter(b, "nv_inference_request_success", "Successful inference requests", l,
                   atomic_load(&m->success));
    pbuf_adds(b, "# HELP nv_inference_request_failure Failed inference requests by reason\n"
                 "# TYPE nv_inference_request_failure counter\n");
    for (int r = 0; r < METRICS_REASON_COUNT; r++)
        pbuf_printf(b, "nv_inference_request_failure{%s,reason=\"%s\"} %" PRIu64 "\n", l,
                    reason_names[r], atomic_load(&m->failure[r]));
    render_counter(b, "nv_inference_count", "Inferences performed (rows of successful requests)", l,
                   atomic_load(&m->inference_count));
    render_counter(b, "nv_inference_exec_count", "Model executions (batches)", l,
                   atomic_load(&m->exec_count));
    render_counter(b, "nv_inference_request_duration_us", "Cumulative request duration", l,
                   atomic_load(&m->request_us));
    render_counter(b, "nv_inference_queue_duration_us", "Cumulative queue duration", l,
                   atomic_load(&m->queue_us));
    render_counter(b, "nv_inference_compute_infer_duration_us", "Cumulative compute duration", l,
                   atomic_load(&m->compute_us));
    render_hist(b, "kinfer_request_duration_seconds",
                "Inference request duration, arrival to response", l, &m->request);
    render_hist(b, "kinfer_queue_duration_seconds", "Time requests waited in the batch queue", l,
                &m->queue);
    render_hist(b, "kinfer_compute_duration_seconds",
                "Engine time of the batch each request ran in", l, &m->compute);
    render_hist(b, "kinfer_batch_size", "Rows per engine execution", l, &m->batch);
    pbuf_printf(
        b,
        "# HELP kinfer_queue_depth Requests waiting for a batch\n# TYPE kinfer_queue_depth gauge\n"
        "kinfer_queue_depth{%s} %zu\n",
        l, queue_depth);
    render_counter(b, "kinfer_inline_requests_total",
                   "Requests run on the HTTP thread (--inline-max-us) instead of a batch worker", l,
                   inline_requests);
    pbuf_printf(b,
                "# HELP kinfer_inflight_requests Inference requests accepted and not yet answered\n"
                "# TYPE kinfer_inflight_requests gauge\nkinfer_inflight_requests{%s} %" PRId64 "\n",
                l, (int64_t)atomic_load(&m->inflight));
    pbuf_printf(b,
                "# HELP kinfer_model_load_seconds Time to load and warm up the model\n"
                "# TYPE kinfer_model_load_seconds gauge\nkinfer_model_load_seconds{%s} %.3f\n",
                l, (double)atomic_load(&m->load_ms) / 1000);
    pbuf_printf(b,
                "# HELP kinfer_model_ready 1 when the model is loaded and warmed up\n"
                "# TYPE kinfer_model_ready gauge\nkinfer_model_ready{%s} %d\n",
                l, ready);
}
