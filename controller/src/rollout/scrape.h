/*
 * scrape: the canary analysis' metric source. It reads kinfer-server's own Prometheus metrics
 * (nv_inference_request_success, nv_inference_request_failure, the
 * kinfer_request_duration_seconds histogram) either straight from /metrics of the revision's
 * pods or, when the controller has a Prometheus address, from PromQL queries over the interval.
 * From two scrapes an interval apart it computes the success rate (success / (success +
 * failure)) and the p99 latency (histogram_quantile's linear interpolation) of the requests in
 * between. Parsing and analysis are pure; scrape_fetch() and scrape_prometheus() do HTTP (libcurl,
 * bodies capped at 4 MiB, 2 s timeout). It keeps no state: the caller keeps the previous sample.
 */
#ifndef KINFER_CTL_SCRAPE_H
#define KINFER_CTL_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "rollout.h"

#define SCRAPE_MAX_BUCKETS 40
#define SCRAPE_MAX_BODY    (4u << 20)

typedef struct scrape_sample {
    double success, failure;           /* counters summed over every label set */
    int nbuckets;                      /* of kinfer_request_duration_seconds, +Inf last */
    double le[SCRAPE_MAX_BUCKETS];     /* upper bounds in seconds, ascending; INFINITY last */
    double cum[SCRAPE_MAX_BUCKETS];    /* cumulative counts */
    int have_requests, have_histogram; /* the series were present */
} scrape_sample;

/* Pure: parses Prometheus text exposition. Unknown series are ignored; a malformed line of a known
 * series is CTL_EPARSE naming the line. A text without any known series gives a sample with
 * have_requests and have_histogram 0 (the caller treats it as no data). */
ctl_status *scrape_parse(const char *text, size_t len, scrape_sample *out)
    __attribute__((warn_unused_result));
/* Pure: acc += s (several pods of one revision). Buckets are matched by bound. */
void scrape_add(scrape_sample *acc, const scrape_sample *s);
/* Pure: success rate (percent) and p99 (ms) of the requests between prev and cur. A counter that
 * went down (a restarted pod) counts from zero. No requests in between: NODATA. */
void scrape_analyze(const scrape_sample *prev, const scrape_sample *cur,
                    rollout_metric *success_pct, rollout_metric *p99_ms);
/* GET url (a kinfer-server base URL like http://10.0.0.5:8080, or its /metrics URL) and parse it.
 */
ctl_status *scrape_fetch(const char *url, scrape_sample *out) __attribute__((warn_unused_result));
/* PromQL over [window_s] for pods matching pod_regex in namespace ns, from the Prometheus HTTP API
 * at addr (http://host:port). An empty result or NaN is NODATA; a failed query is an error. */
ctl_status *scrape_prometheus(const char *addr, const char *ns, const char *pod_regex,
                              int64_t window_s, rollout_metric *success_pct, rollout_metric *p99_ms)
    __attribute__((warn_unused_result));

#endif
