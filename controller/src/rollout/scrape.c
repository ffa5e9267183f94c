/* Canary metrics from kinfer-server's /metrics or Prometheus; see scrape.h. */
#include "scrape.h"

#include <curl/curl.h>
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inserts (or finds) the bucket with bound le; returns its index or -1 when full. */
static int bucket_at(scrape_sample *s, double le)
{
    int i = 0;
    while (i < s->nbuckets && s->le[i] < le) i++;
    if (i < s->nbuckets && s->le[i] == le) return i;
    if (s->nbuckets == SCRAPE_MAX_BUCKETS) return -1;
    memmove(&s->le[i + 1], &s->le[i], (size_t)(s->nbuckets - i) * sizeof(double));
    memmove(&s->cum[i + 1], &s->cum[i], (size_t)(s->nbuckets - i) * sizeof(double));
    s->le[i] = le;
    s->cum[i] = 0;
    s->nbuckets++;
    return i;
}

/* The value of label `name` in a "{a="x",b="y"}" label block into buf; 0 when found. */
static int label_value(const char *labels, size_t n, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 2 < n; i++) {
        if ((i == 0 || labels[i - 1] == '{' || labels[i - 1] == ',') &&
            !strncmp(labels + i, name, nl) && labels[i + nl] == '=' && labels[i + nl + 1] == '"') {
            size_t j = i + nl + 2, k = 0;
            while (j < n && labels[j] != '"' && k + 1 < len) buf[k++] = labels[j++];
            buf[k] = 0;
            return j < n ? 0 : -1;
        }
    }
    return -1;
}

ctl_status *scrape_parse(const char *text, size_t len, scrape_sample *out)
{
    memset(out, 0, sizeof(*out));
    size_t lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        lineno++;
        if (!n || line[0] == '#') continue;
        size_t name_end = 0;
        while (name_end < n && line[name_end] != '{' && line[name_end] != ' ') name_end++;
        enum { NONE, SUCCESS, FAILURE, BUCKET } which = NONE;
#define IS(lit) (name_end == sizeof(lit) - 1 && !strncmp(line, lit, name_end))
        if (IS("nv_inference_request_success"))
            which = SUCCESS;
        else if (IS("nv_inference_request_failure"))
            which = FAILURE;
        else if (IS("kinfer_request_duration_seconds_bucket"))
            which = BUCKET;
#undef IS
        if (which == NONE) continue;
        const char *labels = line + name_end;
        size_t lab_len = 0;
        if (name_end < n && line[name_end] == '{') {
            const char *close = memchr(labels, '}', n - name_end);
            if (!close)
                return ctl_status_new(CTL_EPARSE, "metrics line %zu: unterminated label set",
                                      lineno);
            lab_len = (size_t)(close - labels) + 1;
        }
        char vbuf[64];
        size_t vstart = name_end + lab_len;
        while (vstart < n && line[vstart] == ' ') vstart++;
        size_t vlen = 0;
        while (vstart + vlen < n && line[vstart + vlen] != ' ') vlen++;
        if (!vlen || vlen >= sizeof(vbuf))
            return ctl_status_new(CTL_EPARSE, "metrics line %zu: no value", lineno);
        memcpy(vbuf, line + vstart, vlen);
        vbuf[vlen] = 0;
        char *end;
        double v = strtod(vbuf, &end);
        /* An infinite count (or a sum of counts that overflows to one) would make every rate
         * NaN: that is a broken exporter, said as such. */
        if (*end || !isfinite(v) || v < 0)
            return ctl_status_new(CTL_EPARSE, "metrics line %zu: bad counter value \"%s\"", lineno,
                                  vbuf);
        if (which == SUCCESS || which == FAILURE) {
            *(which == SUCCESS ? &out->success : &out->failure) += v;
            out->have_requests = 1;
            if (!isfinite(out->success) || !isfinite(out->failure))
                return ctl_status_new(CTL_EPARSE, "metrics line %zu: request counters overflow",
                                      lineno);
        } else {
            char le[64];
            if (label_value(labels, lab_len, "le", le, sizeof(le)))
                return ctl_status_new(CTL_EPARSE, "metrics line %zu: histogram bucket without le",
                                      lineno);
            double bound = !strcmp(le, "+Inf") ? INFINITY : strtod(le, &end);
            /* A latency histogram's bounds are durations: a negative or infinite-below bound
             * is not one, and would make the p99 estimate negative. */
            if (!isinf(bound) && (*end || isnan(bound)))
                return ctl_status_new(CTL_EPARSE, "metrics line %zu: bad le \"%s\"", lineno, le);
            if (bound < 0)
                return ctl_status_new(CTL_EPARSE, "metrics line %zu: negative le \"%s\"", lineno,
                                      le);
            int i = bucket_at(out, bound);
            if (i < 0)
                return ctl_status_new(CTL_ETOOBIG, "metrics: more than %d histogram buckets",
                                      SCRAPE_MAX_BUCKETS);
            out->cum[i] += v;
            if (!isfinite(out->cum[i]))
                return ctl_status_new(CTL_EPARSE, "metrics line %zu: histogram counts overflow",
                                      lineno);
            out->have_histogram = 1;
        }
    }
    if (out->have_histogram && !isinf(out->le[out->nbuckets - 1]))
        return ctl_status_new(CTL_EPARSE,
                              "metrics: kinfer_request_duration_seconds has no +Inf bucket");
    return NULL;
}

void scrape_add(scrape_sample *acc, const scrape_sample *s)
{
    acc->success += s->success;
    acc->failure += s->failure;
    acc->have_requests |= s->have_requests;
    acc->have_histogram |= s->have_histogram;
    for (int i = 0; i < s->nbuckets; i++) {
        int j = bucket_at(acc, s->le[i]);
        if (j >= 0) acc->cum[j] += s->cum[i];
    }
}

void scrape_analyze(const scrape_sample *prev, const scrape_sample *cur,
                    rollout_metric *success_pct, rollout_metric *p99_ms)
{
    *success_pct = (rollout_metric){ROLLOUT_METRIC_NODATA, 0};
    *p99_ms = (rollout_metric){ROLLOUT_METRIC_NODATA, 0};
    if (cur->have_requests) {
        /* one restarted pod resets both counters: then count both from zero */
        int reset = cur->success < prev->success || cur->failure < prev->failure;
        double ds = reset ? cur->success : cur->success - prev->success,
               df = reset ? cur->failure : cur->failure - prev->failure;
        double pct = ds + df > 0 ? 100.0 * ds / (ds + df) : NAN;
        if (pct >= 0 && pct <= 100) *success_pct = (rollout_metric){ROLLOUT_METRIC_OK, pct};
    }
    if (!cur->have_histogram || cur->nbuckets < 1) return;
    double d[SCRAPE_MAX_BUCKETS] = {0};
    int reset = 0;
    for (int i = 0; i < cur->nbuckets; i++) {
        double p = 0;
        for (int j = 0; j < prev->nbuckets; j++)
            if (prev->le[j] == cur->le[i]) p = prev->cum[j];
        if (cur->cum[i] < p) reset = 1;
        d[i] = cur->cum[i] - p;
    }
    if (reset)
        for (int i = 0; i < cur->nbuckets; i++) d[i] = cur->cum[i];
    double total = d[cur->nbuckets - 1];
    if (total <= 0) return;
    double rank = 0.99 * total;
    int b = 0;
    while (b < cur->nbuckets && d[b] < rank) b++;
    if (b >= cur->nbuckets) b = cur->nbuckets - 1;
    double v;
    if (isinf(cur->le[b])) {
        v = cur->nbuckets >= 2 ? cur->le[cur->nbuckets - 2]
                               : 0; /* as histogram_quantile: the highest finite bound */
    } else {
        double lo = b ? cur->le[b - 1] : 0, lo_n = b ? d[b - 1] : 0;
        v = d[b] > lo_n ? lo + (cur->le[b] - lo) * (rank - lo_n) / (d[b] - lo_n) : cur->le[b];
    }
    /* Counts that are not cumulative (a broken or hostile exporter) can still interpolate to
     * nonsense: that is no data, not a latency. */
    if (!(v >= 0) || !isfinite(v)) return;
    *p99_ms = (rollout_metric){ROLLOUT_METRIC_OK, v * 1000.0};
}

/* ---- HTTP ---- */

typedef struct body {
    char *data;
    size_t len;
    int too_big;
} body;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    body *b = ud;
    size_t add = sz * n;
    if (b->len + add > SCRAPE_MAX_BODY) {
        b->too_big = 1;
        return 0;
    }
    char *d = realloc(b->data, b->len + add + 1);
    if (!d) return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = 0;
    return add;
}

static ctl_status *http_get(const char *url, body *b)
{
    CURL *h = curl_easy_init();
    long code = 0;
    ctl_status *st = NULL;
    memset(b, 0, sizeof(*b));
    if (!h) return ctl_status_new(CTL_ENOMEM, "scrape: curl");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (b->too_big)
        st = ctl_status_new(CTL_ETOOBIG, "GET %s: body over %u bytes", url, SCRAPE_MAX_BODY);
    else if (rc != CURLE_OK)
        st = ctl_status_new(CTL_ETRANSPORT, "GET %s: %s", url, curl_easy_strerror(rc));
    else if (code != 200)
        st = ctl_status_new(CTL_EIO, "GET %s: HTTP %ld", url, code);
    curl_easy_cleanup(h);
    if (st) {
        free(b->data);
        b->data = NULL;
    }
    return st;
}

ctl_status *scrape_fetch(const char *url, scrape_sample *out)
{
    char full[1024];
    body b;
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    int w = snprintf(full, sizeof(full), "%s%s", url,
                     path && strcmp(path, "/") ? ""
                     : path                    ? "metrics"
                                               : "/metrics");
    if (w < 0 || (size_t)w >= sizeof(full))
        return ctl_status_new(CTL_EINVAL, "scrape: URL too long");
    ctl_status *st = http_get(full, &b);
    if (st) return st;
    st = scrape_parse(b.data ? b.data : "", b.len, out);
    free(b.data);
    return st ? ctl_status_wrap(st, "%s", full) : NULL;
}

/* One instant query; *m NODATA for an empty vector or NaN. */
static ctl_status *prom_query(const char *addr, const char *q, rollout_metric *m)
{
    CURL *h = curl_easy_init();
    char url[2048];
    body b;
    json_object *doc = NULL, *data, *res, *val;
    ctl_status *st = NULL;
    *m = (rollout_metric){ROLLOUT_METRIC_NODATA, 0};
    if (!h) return ctl_status_new(CTL_ENOMEM, "prometheus: curl");
    char *esc = curl_easy_escape(h, q, 0);
    curl_easy_cleanup(h);
    if (!esc) return ctl_status_new(CTL_ENOMEM, "prometheus: escape");
    int w = snprintf(url, sizeof(url), "%s/api/v1/query?query=%s", addr, esc);
    curl_free(esc);
    if (w < 0 || (size_t)w >= sizeof(url))
        return ctl_status_new(CTL_EINVAL, "prometheus: query too long");
    if ((st = http_get(url, &b))) return st;
    doc = json_tokener_parse(b.data ? b.data : "");
    free(b.data);
    if (!doc || !json_object_object_get_ex(doc, "data", &data) ||
        !json_object_object_get_ex(data, "result", &res) ||
        !json_object_is_type(res, json_type_array)) {
        st = ctl_status_new(CTL_EPARSE, "prometheus: unexpected answer to %s", q);
        goto out;
    }
    if (!json_object_array_length(res)) goto out;
    if (!json_object_object_get_ex(json_object_array_get_idx(res, 0), "value", &val) ||
        !json_object_is_type(val, json_type_array) || json_object_array_length(val) != 2) {
        st = ctl_status_new(CTL_EPARSE, "prometheus: sample without value for %s", q);
        goto out;
    }
    double v = strtod(json_object_get_string(json_object_array_get_idx(val, 1)), NULL);
    if (!isnan(v) && !isinf(v)) *m = (rollout_metric){ROLLOUT_METRIC_OK, v};
out:
    json_object_put(doc);
    return st;
}

ctl_status *scrape_prometheus(const char *addr, const char *ns, const char *pod_regex,
                              int64_t window_s, rollout_metric *success_pct, rollout_metric *p99_ms)
{
    char q[1024], sel[512];
    rollout_metric ok, bad;
    ctl_status *st;
    snprintf(sel, sizeof(sel), "namespace=\"%s\",pod=~\"%s\"", ns, pod_regex);
    snprintf(q, sizeof(q), "sum(increase(nv_inference_request_success{%s}[%llds]))", sel,
             (long long)window_s);
    if ((st = prom_query(addr, q, &ok))) return st;
    snprintf(q, sizeof(q), "sum(increase(nv_inference_request_failure{%s}[%llds]))", sel,
             (long long)window_s);
    if ((st = prom_query(addr, q, &bad))) return st;
    *success_pct = (rollout_metric){ROLLOUT_METRIC_NODATA, 0};
    if (ok.status == ROLLOUT_METRIC_OK &&
        ok.value + (bad.status == ROLLOUT_METRIC_OK ? bad.value : 0) > 0)
        *success_pct = (rollout_metric){
            ROLLOUT_METRIC_OK,
            100.0 * ok.value / (ok.value + (bad.status == ROLLOUT_METRIC_OK ? bad.value : 0))};
    snprintf(q, sizeof(q),
             "histogram_quantile(0.99, sum by (le) "
             "(rate(kinfer_request_duration_seconds_bucket{%s}[%llds])))",
             sel, (long long)window_s);
    if ((st = prom_query(addr, q, p99_ms))) return st;
    if (p99_ms->status == ROLLOUT_METRIC_OK) p99_ms->value *= 1000.0;
    return NULL;
}
