/*
 * metricsource: where the rollout reads a canary revision's metrics, and the baselines that turn
 * counters into per-interval rates. In order: the testing/ops annotation
 * serving.kinfer.dev/metrics-endpoints-<hash8> on the InferenceService (comma-separated
 * kinfer-server base URLs), else Prometheus (--prometheus-address; PromQL over the interval, no
 * baseline needed), else the revision's Ready pods at http://<podIP>:8080. The reads themselves are
 * scrape.c's. Thread-safe: the baselines are behind a mutex. It decides nothing about the rollout.
 */
#ifndef KINFER_CTL_METRICSOURCE_H
#define KINFER_CTL_METRICSOURCE_H

#include <json.h>
#include <stddef.h>
#include <stdint.h>

#include "rollout.h"
#include "scrape.h"

#define METRICSOURCE_ANNOTATION_ENDPOINTS "serving.kinfer.dev/metrics-endpoints-"

typedef struct metricsource metricsource;

/* prometheus_address may be NULL (copied). NULL on allocation failure. */
metricsource *metricsource_create(const char *prometheus_address);
void metricsource_free(metricsource *m); /* NULL is a no-op */

/* Reads revision's metrics ("<isvc>-predictor-<hash8>" of InferenceService key "ns/name") into obs,
 * relative to the kept baseline (none: the counters since the pods started). Failures are
 * ROLLOUT_METRIC_ERROR with the reason in detail (obs->detail points there). Returns 1 when *cur is
 * a fresh sample the caller may keep as the next baseline with metricsource_keep(). */
int metricsource_read(metricsource *m, const char *key, const char *ns, const char *revision,
                      json_object *isvc, json_object *pods, int64_t interval_ms, rollout_obs *obs,
                      scrape_sample *cur, char *detail, size_t dn);
/* Keeps s (copied) as the baseline of key's revision; s NULL forgets it. */
void metricsource_keep(metricsource *m, const char *key, const char *revision,
                       const scrape_sample *s);

#endif
