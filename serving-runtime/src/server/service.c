/* Model lifecycle, routes and graceful shutdown; see service.h. */
#include "service.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../http/http_server.h"
#include "../metrics/metrics.h"
#include "../protocol/dtype.h"
#include "../protocol/infer_response.h"
#include "../log/log.h"

#define KINFER_VERSION "0.1.0"
enum { HDR_INFER_LEN, HDR_TIMEOUT };

struct service {
    const server_config *cfg;
    service_backend be;
    http_server *http;
    metrics *metrics;
    batcher *batcher;
    void *model;
    infer_model_sig sig;
    char *metadata; /* GET /v2/models/NAME, built once at load */
    size_t metadata_len;
    pthread_t loader, drainer, watchdog;
    int loader_started, drainer_started, watchdog_started;
    atomic_int ready, loaded, load_failed, drained, shutdown_requested, watchdog_stop;
    int shutting_down, exit_code;
    int64_t grace_deadline_ns, drained_at_ns, window_end_ns;
};

/* One inference request while it is queued or running; lives in the request's arena. */
typedef struct infer_call {
    batcher_job job;
    service *svc;
    http_req *req;
    infer_request ir;
    int v1;
} infer_call;

/* ---- responses ---- */

static void send_json(http_req *r, int status, const char *json, size_t len)
{
    pbuf_add(http_req_response(r), json, len);
    http_req_send(r, status, "application/json");
}

static void send_error(http_req *r, int status, const char *msg)
{
    infer_response_encode_error(http_req_response(r), msg);
    http_req_send(r, status, "application/json");
}

static int status_for(kinfer_err code)
{
    switch (code) {
    case KINFER_EINVAL:
    case KINFER_ESHAPE:
    case KINFER_EDTYPE:
    case KINFER_EUNSUPPORTED:
        return 400;
    case KINFER_ENOTFOUND:
        return 404;
    case KINFER_ETOOBIG:
        return 413;
    case KINFER_EFULL:
        return 429;
    case KINFER_EUNAVAIL:
        return 503;
    case KINFER_ETIMEOUT:
        return 504;
    default:
        return 500;
    }
}

static metrics_reason reason_for(int status)
{
    switch (status) {
    case 429:
    case 503:
    case 413:
        return METRICS_REASON_REJECTED;
    case 504:
        return METRICS_REASON_TIMEOUT;
    case 500:
        return METRICS_REASON_BACKEND;
    default:
        return METRICS_REASON_OTHER;
    }
}

static void fail_request(service *s, http_req *r, kinfer_status *st)
{
    int status = status_for(kinfer_status_code(st));
    if (status == 429) http_req_add_header(r, "Retry-After", "1");
    metrics_record_failure(s->metrics, reason_for(status), kinfer_now_ns() - http_req_start_ns(r));
    if (status >= 500)
        kinfer_log_event(status == 503 ? "warn" : "error", "request_failed", "%d: %s", status,
                         kinfer_status_msg(st));
    send_error(r, status, kinfer_status_msg(st));
    kinfer_status_free(st);
}

/* ---- inference ---- */

/* Worker thread: encode this job's outputs and hand the response to the HTTP thread. */
static void infer_done(batcher_job *job, kinfer_status *st)
{
    infer_call *c = job->user;
    service *s = c->svc;
    http_req *r = c->req;
    metrics_add_inflight(s->metrics, -1);
    if (st) {
        batcher_job_release(s->batcher, job);
        fail_request(s, r, st);
        return;
    }
    pbuf *b = http_req_response(r);
    size_t n = job->outputs_count, json_len = 0;
    int *binary = NULL;
    if (!c->v1 && (c->ir.binary_output || c->ir.output_binary)) {
        binary = req_arena_calloc(http_req_arena(r), (n ? n : 1) * sizeof(int));
        for (size_t i = 0; binary && i < n; i++)
            binary[i] = c->ir.output_binary ? c->ir.output_binary[i] : 1;
    }
    if (c->v1)
        st = infer_response_encode_v1(b, job->outputs, n);
    else
        st = infer_response_encode_v2(b, s->cfg->model_name, s->cfg->model_version, c->ir.id,
                                      job->outputs, binary, n, &json_len);
    batcher_job_release(s->batcher, job);
    if (st) {
        pbuf_reset(b);
        fail_request(s, r, st);
        return;
    }
    int64_t now = kinfer_now_ns();
    metrics_record_success(s->metrics, job->rows, now - http_req_start_ns(r),
                           job->start_ns - job->enqueue_ns, job->end_ns - job->start_ns);
    if (json_len) {
        char v[32];
        snprintf(v, sizeof(v), "%zu", json_len);
        http_req_add_header(r, "Inference-Header-Content-Length", v);
        http_req_send(r, 200, "application/octet-stream");
    } else
        http_req_send(r, 200, "application/json");
}

static void handle_infer(service *s, http_req *r, int v1)
{
    kinfer_status *st = NULL;
    /* After SIGTERM, requests on connections already open are still served (answered with
     * Connection: close) until the batcher drains: see begin_shutdown. */
    if (s->shutting_down && s->drainer_started) {
        st = kinfer_status_new(KINFER_EUNAVAIL, "the server is shutting down");
        goto fail;
    }
    if (!atomic_load(&s->loaded)) {
        st = kinfer_status_new(KINFER_EUNAVAIL, "model \"%s\" is not ready", s->cfg->model_name);
        goto fail;
    }
    req_arena *a = http_req_arena(r);
    infer_call *c = req_arena_calloc(a, sizeof(*c));
    if (!c) {
        st = kinfer_status_new(KINFER_ETOOBIG, "request needs more memory than the request limit");
        goto fail;
    }
    c->svc = s;
    c->req = r;
    c->v1 = v1;
    size_t len;
    const char *body = http_req_body(r, &len);
    int64_t header_len = -1, timeout_ms = s->cfg->request_timeout_ms;
    const char *h = http_req_header(r, HDR_INFER_LEN);
    if (h && !v1) {
        char *end;
        header_len = strtoll(h, &end, 10);
        if (!*h || *end || header_len < 0) {
            st = kinfer_status_new(KINFER_EINVAL,
                                   "Inference-Header-Content-Length \"%s\" is not a byte count", h);
            goto fail;
        }
    }
    if ((h = http_req_header(r, HDR_TIMEOUT))) {
        char *end;
        long long t = strtoll(h, &end, 10);
        if (!*h || *end || t <= 0) {
            st = kinfer_status_new(KINFER_EINVAL,
                                   "Kinfer-Timeout-Ms \"%s\" is not a positive integer", h);
            goto fail;
        }
        if (!timeout_ms || t < timeout_ms) timeout_ms = t;
    }
    st = v1 ? infer_request_parse_v1(body, len, &s->sig, a, &c->ir)
            : infer_request_parse_v2(body, len, header_len, &s->sig, a, &c->ir);
    if (st) goto fail;
    int64_t deadline = timeout_ms ? http_req_start_ns(r) + timeout_ms * 1000000 : 0;
    if (c->ir.timeout_us) { /* Triton's "timeout" parameter may only shorten the deadline */
        int64_t d = http_req_start_ns(r) + c->ir.timeout_us * 1000;
        if (!deadline || d < deadline) deadline = d;
    }
    c->job = (batcher_job){.inputs = c->ir.inputs,
                           .n_inputs = c->ir.n_inputs,
                           .output_names = c->ir.output_names,
                           .n_outputs = c->ir.n_outputs,
                           .deadline_ns = deadline,
                           .done = infer_done,
                           .user = c};
    metrics_add_inflight(s->metrics, 1);
    if ((st = batcher_submit(s->batcher, &c->job))) {
        metrics_add_inflight(s->metrics, -1);
        goto fail;
    }
    return;
fail:
    fail_request(s, r, st);
}

/* ---- metadata ---- */

static void add_values(pbuf *b, const onnx_value_info *v, size_t n)
{
    pbuf_addc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const char *dt = proto_dtype_name(v[i].dtype);
        pbuf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        pbuf_add_json_str(b, v[i].name, strlen(v[i].name));
        pbuf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", dt ? dt : "UNKNOWN");
        for (int d = 0; d < v[i].rank; d++)
            pbuf_printf(b, d ? ",%lld" : "%lld", (long long)v[i].dims[d]);
        pbuf_adds(b, "]}");
    }
    pbuf_addc(b, ']');
}

static kinfer_status *build_metadata(service *s)
{
    pbuf b;
    pbuf_init(&b, 0, 1 << 20);
    pbuf_adds(&b, "{\"name\":");
    pbuf_add_json_str(&b, s->cfg->model_name, strlen(s->cfg->model_name));
    pbuf_adds(&b, ",\"versions\":[");
    pbuf_add_json_str(&b, s->cfg->model_version, strlen(s->cfg->model_version));
    pbuf_adds(&b, "],\"platform\":\"kinfer_onnx\",\"inputs\":");
    add_values(&b, s->sig.inputs, s->sig.n_inputs);
    pbuf_adds(&b, ",\"outputs\":");
    add_values(&b, s->sig.outputs, s->sig.n_outputs);
    pbuf_addc(&b, '}');
    if (pbuf_failed(&b)) {
        pbuf_free(&b);
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    }
    s->metadata = pbuf_data(&b); /* the pbuf has no headroom: its memory is the data */
    s->metadata_len = b.len;
    return NULL;
}

/* ---- routes ---- */

static void handle_metrics(service *s, http_req *r)
{
    pbuf *b = http_req_response(r);
    metrics_render(s->metrics, b, s->batcher ? batcher_queue_depth(s->batcher) : 0,
                   s->batcher ? batcher_inline_count(s->batcher) : 0, atomic_load(&s->ready));
    http_req_send(r, 200, "text/plain; version=0.0.4");
}

/* /v2/models/NAME[/versions/V][/ready|/infer] and /v1/models/NAME[:predict] */
static void handle_model(service *s, http_req *r, const char *rest, int v1, int get, int post)
{
    const char *cfg_name = s->cfg->model_name;
    size_t nl = strcspn(rest, v1 ? ":/" : "/");
    const char *tail = rest + nl;
    if (nl != strlen(cfg_name) || memcmp(rest, cfg_name, nl)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "model \"%.*s\" not found", (int)(nl > 200 ? 200 : nl), rest);
        send_error(r, 404, msg);
        return;
    }
    if (!v1 && !strncmp(tail, "/versions/", 10)) {
        const char *v = tail + 10;
        size_t vl = strcspn(v, "/");
        if (vl != strlen(s->cfg->model_version) || memcmp(v, s->cfg->model_version, vl)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "model \"%s\" has no version \"%.*s\"", cfg_name,
                     (int)(vl > 100 ? 100 : vl), v);
            send_error(r, 404, msg);
            return;
        }
        tail = v + vl;
    }
    int ready = atomic_load(&s->ready);
    if (v1 && !strcmp(tail, ":predict") && post) {
        handle_infer(s, r, 1);
        return;
    }
    if (!v1 && !strcmp(tail, "/infer") && post) {
        handle_infer(s, r, 0);
        return;
    }
    if (get && (v1 ? !*tail : !strcmp(tail, "/ready"))) {
        /* The name passed valid_name (at most 128 safe characters), so it fits unescaped. */
        char buf[300];
        int n = snprintf(buf, sizeof(buf), "{\"name\":\"%s\",\"ready\":%s}", cfg_name,
                         ready ? "true" : "false");
        send_json(r, ready ? 200 : 503, buf, (size_t)n);
        return;
    }
    if (!*tail && get) {
        if (ready)
            send_json(r, 200, s->metadata, s->metadata_len);
        else
            send_error(r, 503, "model is not loaded yet");
        return;
    }
    if (!strcmp(tail, "/infer") || !strcmp(tail, ":predict") || !strcmp(tail, "/ready") || !*tail) {
        send_error(r, 405, "method not allowed");
        return;
    }
    send_error(r, 404, "no such path");
}

static void handle(void *ctx, http_req *r)
{
    service *s = ctx;
    const char *p = http_req_path(r), *m = http_req_method(r);
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    if (s->cfg->revision && *s->cfg->revision)
        http_req_add_header(r, "Kinfer-Revision", s->cfg->revision);
    if (!strncmp(p, "/v2/models/", 11) || !strncmp(p, "/v1/models/", 11)) {
        handle_model(s, r, p + 11, p[2] == '1', get, post);
        return;
    }
    int known = 1;
    if (!strcmp(p, "/v2/health/live") && get)
        send_json(r, 200, "{\"live\":true}", 13);
    else if (!strcmp(p, "/v2/health/ready") && get) {
        int ready = atomic_load(&s->ready) && !s->shutting_down;
        if (ready)
            send_json(r, 200, "{\"ready\":true}", 14);
        else
            send_json(r, 503, "{\"ready\":false}", 15);
    } else if ((!strcmp(p, "/v2") || !strcmp(p, "/v2/")) && get) {
        static const char meta[] = "{\"name\":\"kinfer\",\"version\":\"" KINFER_VERSION
                                   "\",\"extensions\":[\"binary_tensor_data\"]}";
        send_json(r, 200, meta, sizeof(meta) - 1);
    } else if (!strcmp(p, "/metrics") && get)
        handle_metrics(s, r);
    else
        known = 0;
    if (known) return;
    if (!strcmp(p, "/v2/health/live") || !strcmp(p, "/v2/health/ready") || !strcmp(p, "/v2") ||
        !strcmp(p, "/metrics"))
        send_error(r, 405, "method not allowed");
    else
        send_error(r, 404, "no such path");
}

/* ---- model loading ---- */

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Collects .onnx files under dir to depth levels; model.onnx wins at the shallowest level. */
static void find_onnx(const char *dir, int depth, char **best, int *best_score, int *count)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p;
        if (asprintf(&p, "%s/%s", dir, e->d_name) < 0) continue;
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (depth > 0) find_onnx(p, depth - 1, best, best_score, count);
        } else if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && has_suffix(e->d_name, ".onnx")) {
            int score = depth * 2 + !strcmp(e->d_name, "model.onnx");
            (*count)++;
            if (score > *best_score) {
                free(*best);
                *best = p;
                *best_score = score;
                p = NULL;
            } else if (score == *best_score)
                *best_score = score + 100; /* a tie: ambiguous */
        }
        free(p);
    }
    closedir(d);
}

/* Finds the model file in dir: dir itself when it is a file, else model.onnx, else the only
 * *.onnx file in dir or in one level of subdirectories (Triton's NAME/1/model.onnx). Returns a
 * malloc'd path. */
static kinfer_status *find_model(const char *dir, char **path)
{
    *path = NULL;
    struct stat sb;
    if (stat(dir, &sb))
        return kinfer_status_new(KINFER_ENOTFOUND, "model path %s: %s", dir, strerror(errno));
    if (S_ISREG(sb.st_mode)) {
        *path = strdup(dir);
        return *path ? NULL : kinfer_status_new(KINFER_ENOMEM, "out of memory");
    }
    char *best = NULL;
    int score = -1, count = 0;
    find_onnx(dir, 2, &best, &score, &count);
    if (!best) return kinfer_status_new(KINFER_ENOTFOUND, "no .onnx model in %s", dir);
    if (score >= 100) {
        free(best);
        return kinfer_status_new(
            KINFER_EMODEL, "%d .onnx files in %s and none is the obvious one: name it model.onnx",
            count, dir);
    }
    *path = best;
    return NULL;
}

/* Runs one batch of zeros (symbolic dims = 1) so the first real request does not pay for lazy
 * initialization, and proves the model runs before readiness says so. */
static kinfer_status *warm_up(service *s)
{
    size_t ni = s->sig.n_inputs, no = s->sig.n_outputs;
    onnx_tensor *in = calloc(ni + 1, sizeof(onnx_tensor)),
                *out = calloc(no + 1, sizeof(onnx_tensor));
    static const char empty[] = "";
    kinfer_status *st = NULL;
    if (!in || !out) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ni; i++) {
        const onnx_value_info *v = &s->sig.inputs[i];
        in[i].name = v->name;
        in[i].dtype = v->dtype;
        in[i].rank = v->rank < 0 ? 1 : v->rank;
        int64_t n = 1;
        for (int d = 0; d < in[i].rank; d++)
            n *= in[i].dims[d] = v->rank < 0 || v->dims[d] < 0 ? 1 : v->dims[d];
        size_t es = proto_dtype_size(v->dtype);
        if (!es) {
            st =
                kinfer_status_new(KINFER_EUNSUPPORTED,
                                  "input \"%s\" has a datatype the protocol cannot carry", v->name);
            goto out;
        }
        if (!(in[i].data = calloc((size_t)n + 1, es))) {
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
            goto out;
        }
        if (v->dtype == ONNX_DTYPE_STRING)
            for (int64_t k = 0; k < n; k++) ((const char **)in[i].data)[k] = empty;
    }
    if (!(st = s->be.run(s->model, in, ni, NULL, out, no)))
        for (size_t o = 0; o < no; o++) s->be.release(s->model, &out[o]);
out:
    for (size_t i = 0; in && i < ni; i++) free(in[i].data);
    free(in);
    free(out);
    return st;
}

static void on_batch(void *ctx, int64_t rows, size_t n_jobs, int64_t compute_ns)
{
    metrics_record_batch(ctx, rows, n_jobs, compute_ns);
}

static int model_batchable(const infer_model_sig *sig)
{
    for (size_t i = 0; i < sig->n_inputs; i++)
        if (sig->inputs[i].rank < 1 || sig->inputs[i].dims[0] >= 0) return 0;
    for (size_t i = 0; i < sig->n_outputs; i++)
        if (sig->outputs[i].rank == 0 || (sig->outputs[i].rank > 0 && sig->outputs[i].dims[0] >= 0))
            return 0;
    return 1;
}

static void *loader_main(void *arg)
{
    service *s = arg;
    const server_config *c = s->cfg;
    int64_t t0 = kinfer_now_ns();
    char *path = NULL;
    kinfer_status *st = NULL;
    if (c->model_uri) {
        kinfer_log_event("info", "model_fetch", "fetching %s into %s", c->model_uri, c->model_dir);
        if (!s->be.fetch)
            st = kinfer_status_new(KINFER_EUNSUPPORTED, "this build cannot fetch models");
        else
            st = s->be.fetch(c->model_uri, c->model_dir, c->model_sha256);
        if (st) goto out;
    }
    if ((st = find_model(c->model_dir, &path))) goto out;
    int threads = c->threads;
    if (!threads && c->instances > 1) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > c->instances ? (int)(ncpu / c->instances) : 1;
    }
    if ((st = s->be.load(path, threads, &s->model))) goto out;
    s->be.describe(s->model, &s->sig);
    if ((st = build_metadata(s))) goto out;
    int max_batch = c->max_batch_size;
    if (max_batch > 1 && !model_batchable(&s->sig)) {
        kinfer_log_event("warn", "batching_disabled",
                         "model inputs/outputs have no dynamic first dimension: batching off");
        max_batch = 0;
    }
    batcher_options bo = {.max_batch_size = max_batch,
                          .max_queue_delay_us = c->max_queue_delay_us,
                          .preferred_batch_sizes = c->preferred,
                          .n_preferred = max_batch > 1 ? (size_t)c->n_preferred : 0,
                          .max_queue_size = c->max_queue_size,
                          .instances = c->instances,
                          .inline_max_ns = c->inline_max_us * 1000,
                          .on_batch = on_batch,
                          .stats_ctx = s->metrics};
    batcher_backend bb = {
        .run = s->be.run, .release = s->be.release, .ctx = s->model, .n_outputs = s->sig.n_outputs};
    if ((st = warm_up(s))) { /* a model may need real values: say so, but serve */
        kinfer_log_event("warn", "warm_up_failed", "%s", kinfer_status_msg(st));
        kinfer_status_free(st);
        st = NULL;
    }
    if ((st = batcher_create(&bo, &bb, &s->batcher))) goto out;
    double secs = (double)(kinfer_now_ns() - t0) / 1e9;
    metrics_set_load_seconds(s->metrics, secs);
    kinfer_log_event("info", "model_ready",
                     "model \"%s\" from %s: %zu inputs, %zu outputs, max batch %d, %d instances, "
                     "loaded and warmed up in %.3f s",
                     c->model_name, path, s->sig.n_inputs, s->sig.n_outputs, max_batch,
                     c->instances, secs);
    atomic_store(&s->loaded, 1);
    atomic_store(&s->ready, 1);
out:
    if (st) {
        kinfer_log_event("error", "model_load_failed", "%s", kinfer_status_msg(st));
        kinfer_status_free(st);
        atomic_store(&s->load_failed, 1);
        http_server_wake(s->http);
    }
    free(path);
    return NULL;
}

/* ---- shutdown ---- */

#define LINGER_NS 500000000 /* after the queue drained, time to write the last responses */
/* After SIGTERM, how long connections already open may still send requests: each answer then
 * says Connection: close, so a keep-alive client moves to another pod (the preStop sleep has
 * already taken this one out of the Service's endpoints) instead of getting 503s. */
#define CONN_WINDOW_NS 5000000000LL

static void *drainer_main(void *arg)
{
    service *s = arg;
    if (s->loader_started) {
        pthread_join(s->loader, NULL);
        s->loader_started = 0;
    }
    if (s->batcher) batcher_shutdown(s->batcher); /* runs every queued job, then joins */
    atomic_store(&s->drained, 1);
    http_server_wake(s->http);
    return NULL;
}

/* Ticks the service loop while shutting down, so deadlines are checked without traffic. */
static void *watchdog_main(void *arg)
{
    service *s = arg;
    while (!atomic_load(&s->watchdog_stop)) {
        usleep(20000);
        http_server_wake(s->http);
    }
    return NULL;
}

/* Shutdown: SIGTERM closes the listener (new connections are refused) and starts a window in
 * which the connections already open are still served, each answer with Connection: close, until
 * they have all closed or CONN_WINDOW_NS (at most half the grace period) has passed. Then the
 * drainer runs what is queued, later requests get 503, and the server stops once it is drained. */
static void begin_shutdown(service *s)
{
    int64_t now = kinfer_now_ns(), grace = (int64_t)s->cfg->grace_period_s * 1000000000;
    s->shutting_down = 1;
    atomic_store(&s->ready, 0);
    http_server_close_listener(s->http);       /* new connections are refused from here on */
    if (s->batcher) batcher_hurry(s->batcher); /* queued requests need not wait for company */
    s->grace_deadline_ns = now + grace;
    s->window_end_ns = now + (CONN_WINDOW_NS < grace / 2 ? CONN_WINDOW_NS : grace / 2);
    kinfer_log_event(
        "info", "shutdown",
        "serving %zu open connections, then draining %zu queued requests (grace period %d s)",
        http_server_connections(s->http), s->batcher ? batcher_queue_depth(s->batcher) : 0,
        s->cfg->grace_period_s);
    s->watchdog_started = !pthread_create(&s->watchdog, NULL, watchdog_main, s);
}

static void start_drain(service *s)
{
    s->drainer_started = !pthread_create(&s->drainer, NULL, drainer_main, s);
    if (!s->drainer_started) atomic_store(&s->drained, 1);
}

static void tick(void *ctx)
{
    service *s = ctx;
    if (atomic_load(&s->load_failed) && !s->shutting_down) {
        s->exit_code = 1;
        http_server_stop(s->http);
        return;
    }
    if (atomic_load(&s->shutdown_requested) && !s->shutting_down) begin_shutdown(s);
    if (!s->shutting_down) return;
    int64_t now = kinfer_now_ns();
    if (!s->drainer_started && !atomic_load(&s->drained) &&
        (http_server_connections(s->http) == 0 || now >= s->window_end_ns))
        start_drain(s);
    if (atomic_load(&s->drained)) {
        if (!s->drained_at_ns) s->drained_at_ns = now;
        /* Open connections may still send a request (answered 503 and closed); what must be
         * written is what was accepted before. An idle keep-alive connection is kept open until
         * it closes or the linger ends: closed at once, a request its client wrote meanwhile was
         * reset unanswered (test_sigterm_under_load_loses_no_accepted_request). */
        if ((http_server_active(s->http) == 0 && http_server_connections(s->http) == 0) ||
            now - s->drained_at_ns > LINGER_NS) {
            kinfer_log_event("info", "shutdown_complete", "all accepted requests answered");
            http_server_stop(s->http);
        }
    } else if (now >= s->grace_deadline_ns) {
        kinfer_log_event("error", "shutdown_timeout",
                         "grace period of %d s ran out with %zu requests queued",
                         s->cfg->grace_period_s, s->batcher ? batcher_queue_depth(s->batcher) : 0);
        s->exit_code = 1;
        http_server_stop(s->http);
    }
}

/* ---- lifecycle ---- */

kinfer_status *service_create(const server_config *cfg, const service_backend *be, service **out)
{
    *out = NULL;
    service *s = calloc(1, sizeof(*s));
    if (!s) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->be = *be;
    kinfer_status *st = NULL;
    if (!(s->metrics = metrics_create(cfg->model_name, cfg->model_version))) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    http_server_options ho = {.host = cfg->host,
                              .port = cfg->port,
                              .max_body_bytes = (size_t)cfg->max_body_bytes,
                              .capture = {"inference-header-content-length", "kinfer-timeout-ms"},
                              .n_capture = 2};
    if ((st = http_server_create(&ho, handle, tick, s, &s->http))) goto out;
    int v6 = strchr(cfg->host, ':') && cfg->host[0] != '[';
    kinfer_log_event("info", "listening", "kinfer-server %s on %s%s%s:%d", KINFER_VERSION,
                     v6 ? "[" : "", cfg->host, v6 ? "]" : "", cfg->port);
    *out = s;
out:
    if (st) service_destroy(s);
    return st;
}

int service_run(service *s)
{
    if (pthread_create(&s->loader, NULL, loader_main, s)) {
        kinfer_log_event("error", "model_load_failed", "cannot start the loader thread");
        return 1;
    }
    s->loader_started = 1;
    http_server_run(s->http);
    return s->exit_code;
}

void service_request_shutdown(service *s)
{
    atomic_store(&s->shutdown_requested, 1);
    http_server_wake(s->http);
}

void service_destroy(service *s)
{
    if (!s) return;
    atomic_store(&s->watchdog_stop, 1);
    if (s->watchdog_started) pthread_join(s->watchdog, NULL);
    if (s->exit_code && s->drainer_started) {
        /* The grace period ran out with work still running: the process is about to exit, and
         * joining a stuck engine would hang it. Leave the rest to the OS. */
        return;
    }
    if (s->drainer_started) pthread_join(s->drainer, NULL);
    if (s->loader_started) pthread_join(s->loader, NULL);
    batcher_destroy(s->batcher);
    http_server_destroy(s->http);
    if (s->model) s->be.free(s->model);
    metrics_destroy(s->metrics);
    free(s->metadata);
    free(s);
}
