/*
 * Prometheus metrics of one served model, in the text exposition format. Triton's names where they
 * fit (nv_inference_request_success, nv_inference_request_failure{reason}, nv_inference_count,
 * nv_inference_exec_count, the *_duration_us counters) plus kinfer_* histograms for request,
 * queue and compute time and batch size. Updates are lock-free atomics, so workers and the HTTP
 * thread record without contention; rendering reads a consistent-enough snapshot.
 */
#ifndef KINFER_METRICS_H
#define KINFER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/pbuf.h"

typedef struct metrics metrics;

typedef enum metrics_reason {
    METRICS_REASON_REJECTED = 0, /* queue full, not ready, shutting down */
    METRICS_REASON_BACKEND,      /* the engine failed */
    METRICS_REASON_TIMEOUT,      /* deadline passed in the queue */
    METRICS_REASON_OTHER,        /* bad request */
    METRICS_REASON_COUNT,
} metrics_reason;

/* model and version label every series; copied. NULL on ENOMEM. */
metrics *metrics_create(const char *model, const char *version);
void metrics_destroy(metrics *m);

/* An inference request of `inferences` rows (Triton counts a batch-4 request as 4) succeeded.
 * request_ns: arrival to response. */
void metrics_record_success(metrics *m, int64_t inferences, int64_t request_ns, int64_t queue_ns,
                            int64_t compute_ns);
void metrics_record_failure(metrics *m, metrics_reason reason, int64_t request_ns);
/* One engine execution of rows rows (the batch). */
void metrics_record_batch(metrics *m, int64_t rows, size_t n_requests, int64_t compute_ns);
void metrics_set_load_seconds(metrics *m, double s);
void metrics_add_inflight(metrics *m, int delta);

/* Appends the exposition text; queue_depth and inline_requests come from the batcher at render
 * time. */
void metrics_render(metrics *m, pbuf *b, size_t queue_depth, uint64_t inline_requests, int ready);

#endif
