/*
 * The controller's Prometheus metrics: one process-wide registry behind a mutex, rendered in
 * the text exposition format (0.0.4) for GET /metrics. Label sets are small and fixed
 * (results, verbs x HTTP codes, resource names), so storage is fixed arrays: no growth, no
 * allocation on the hot path. Labels beyond a table's capacity fold into an "other" row.
 */
#ifndef KINFER_CTL_METRICS_H
#define KINFER_CTL_METRICS_H

#include <stddef.h>

#include "error.h"

/* result: "success", "error" or "requeue"; seconds: the reconcile's duration. */
void metrics_observe_reconcile(const char *result, double seconds);
/* verb: "get", "list", "create", "update", "delete", "apply", "patch", "watch"; code: HTTP status
 * or 0 for a transport error. */
void metrics_count_api_request(const char *verb, int code);
/* n new connections (TCP + TLS handshakes) a request had to open; the rest reused pooled ones. */
void metrics_count_api_connections(long n);
void metrics_count_watch_restart(const char *resource);
void metrics_count_relist(const char *resource);
/* The informer cache's size for resource: objects and bytes of stored JSON. */
void metrics_set_cache(const char *resource, size_t objects, size_t bytes);
/* The workqueue depth is read at scrape time from fn(ud); fn NULL unsets. */
void metrics_set_depth_source(size_t (*fn)(void *ud), void *ud);
void metrics_set_leader(int is_leader);
/* A rollout's phase (one-hot over the phase names) and canary weight, per InferenceService key
 * ("ns/name"); at most 64 rollouts are tracked, further keys fold into "other". */
void metrics_set_rollout(const char *isvc, const char *phase, int weight);
/* One canary check of the rollout of isvc: result "passed", "failed" or "inconclusive". */
void metrics_count_rollout_check(const char *isvc, const char *result);
/* Whether InferenceService isvc ("ns/name") is paused (serving.kinfer.dev/paused): paused ones are
 * listed with value 1, at most 64; kinfer_controller_paused_unlisted is 1 while one could not be.
 */
void metrics_set_paused(const char *isvc, int paused);
/* The exposition text; *out is new (free()) and NUL-terminated. */
ctl_status *metrics_render(char **out, size_t *len) __attribute__((warn_unused_result));
/* Zeroes everything (tests). */
void metrics_reset(void);

#endif
