/* Kubernetes API client; see kube.h. */
#include "kube.h"
#include "../common/log.h"
#include "../common/jsonx.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../common/metrics.h"

#define ERR_BODY_MAX   (64u * 1024) /* error Status bodies kept for their message */
#define TOKEN_REREAD_S 60 /* projected service-account tokens rotate; kubelet refreshes hourly */

const kube_resource kube_res_inferenceservices = {"serving.kinfer.dev", "v1beta1",
                                                  "inferenceservices", "InferenceService", 1};
const kube_resource kube_res_deployments = {"apps", "v1", "deployments", "Deployment", 1};
const kube_resource kube_res_services = {"", "v1", "services", "Service", 1};
const kube_resource kube_res_hpas = {"autoscaling", "v2", "horizontalpodautoscalers",
                                     "HorizontalPodAutoscaler", 1};
const kube_resource kube_res_pods = {"", "v1", "pods", "Pod", 1};
const kube_resource kube_res_leases = {"coordination.k8s.io", "v1", "leases", "Lease", 1};
const kube_resource kube_res_events = {"", "v1", "events", "Event", 1};
const kube_resource kube_res_configmaps = {"", "v1", "configmaps", "ConfigMap", 1};

/* Kinds the reconcile may produce beyond the ones above. */
static const kube_resource extra_res[] = {
    {"keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", 1},
    {"gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", 1},
    {"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", 1},
    {"", "v1", "serviceaccounts", "ServiceAccount", 1},
    {"networking.k8s.io", "v1", "ingresses", "Ingress", 1},
};

const kube_resource *kube_resource_for(const char *api_version, const char *kind)
{
    static const kube_resource *const known[] = {&kube_res_inferenceservices,
                                                 &kube_res_deployments,
                                                 &kube_res_services,
                                                 &kube_res_hpas,
                                                 &kube_res_pods,
                                                 &kube_res_leases,
                                                 &kube_res_events,
                                                 &kube_res_configmaps};
    if (!api_version || !kind) return NULL;
    const char *slash = strchr(api_version, '/');
    size_t glen = slash ? (size_t)(slash - api_version) : 0;
    const char *ver = slash ? slash + 1 : api_version;
    size_t n = sizeof(known) / sizeof(known[0]), m = sizeof(extra_res) / sizeof(extra_res[0]);
    for (size_t i = 0; i < n + m; i++) {
        const kube_resource *r = i < n ? known[i] : &extra_res[i - n];
        if (!strcmp(r->kind, kind) && !strcmp(r->version, ver) && strlen(r->group) == glen &&
            !strncmp(r->group, api_version, glen))
            return r;
    }
    return NULL;
}

struct kube_client {
    char *server;
    struct curl_blob ca, cert, key;
    char *ca_buf, *cert_buf, *key_buf;
    pthread_mutex_t token_mu;
    char *token, *token_file;
    time_t token_read;
    CURLSH *share;
    long timeout_ms, max_conns;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
    (void)h, (void)a;
    pthread_mutex_lock(&((kube_client *)ud)->share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud)
{
    (void)h;
    pthread_mutex_unlock(&((kube_client *)ud)->share_mu[d]);
}

static char *memdup(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

ctl_status *kube_client_create(const kube_config *cfg, kube_client **out)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    kube_client *c = calloc(1, sizeof(*c));
    if (!c) return ctl_status_new(CTL_ENOMEM, "kube client");
    pthread_mutex_init(&c->token_mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&c->share_mu[i], NULL);
    c->server = strdup(cfg->server);
    if (cfg->ca_pem) c->ca_buf = memdup(cfg->ca_pem, cfg->ca_len);
    if (cfg->cert_pem) c->cert_buf = memdup(cfg->cert_pem, cfg->cert_len);
    if (cfg->key_pem) c->key_buf = memdup(cfg->key_pem, cfg->key_len);
    if (cfg->token) c->token = strdup(cfg->token);
    if (cfg->token_file) c->token_file = strdup(cfg->token_file);
    c->token_read = time(NULL);
    c->timeout_ms = 60000;
    c->max_conns = 10;
    c->ca = (struct curl_blob){c->ca_buf, cfg->ca_len, CURL_BLOB_NOCOPY};
    c->cert = (struct curl_blob){c->cert_buf, cfg->cert_len, CURL_BLOB_NOCOPY};
    c->key = (struct curl_blob){c->key_buf, cfg->key_len, CURL_BLOB_NOCOPY};
    c->share = curl_share_init();
    if (!c->server || (cfg->ca_pem && !c->ca_buf) || (cfg->cert_pem && !c->cert_buf) ||
        (cfg->key_pem && !c->key_buf) || (cfg->token && !c->token) ||
        (cfg->token_file && !c->token_file) || !c->share) {
        kube_client_free(c);
        return ctl_status_new(CTL_ENOMEM, "kube client");
    }
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = c;
    return NULL;
}

void kube_client_set_timeout_ms(kube_client *c, long ms)
{
    c->timeout_ms = ms > 0 ? ms : 60000;
}

void kube_client_set_max_connections(kube_client *c, long n)
{
    c->max_conns = n > 0 ? n : 10;
}

void kube_client_free(kube_client *c)
{
    if (!c) return;
    if (c->share) curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&c->share_mu[i]);
    pthread_mutex_destroy(&c->token_mu);
    free(c->server);
    free(c->ca_buf);
    free(c->cert_buf);
    free(c->key_buf);
    if (c->token) explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    free(c->token_file);
    free(c);
}

/* "Authorization: Bearer ..." for this request, re-reading a rotating token file now and then. */
static char *auth_header(kube_client *c)
{
    char *h = NULL;
    pthread_mutex_lock(&c->token_mu);
    if (c->token_file && time(NULL) - c->token_read >= TOKEN_REREAD_S) {
        char *raw = NULL;
        ctl_status *st = kubeconfig_read_file(c->token_file, KUBECONFIG_MAX_FILE, &raw, NULL);
        if (!st && raw) {
            size_t n = strcspn(raw, "\r\n");
            if (n) {
                raw[n] = 0;
                free(c->token);
                c->token = raw;
                raw = NULL;
            }
        }
        free(raw);
        ctl_status_free(st); /* keep the old token; the API server will say if it is stale */
        c->token_read = time(NULL);
    }
    if (c->token && asprintf(&h, "Authorization: Bearer %s", c->token) < 0) h = NULL;
    pthread_mutex_unlock(&c->token_mu);
    return h;
}

/* ---- request plumbing ---- */

typedef struct body_buf {
    char *data;
    size_t len, alloc, cap;
    int over;
    /* watch mode: deliver 2xx bytes to fn instead of buffering */
    CURL *h;
    kube_watch_fn fn;
    void *ud;
    int stopped;
} body_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_buf *b = ud;
    size_t n = size * nmemb;
    if (b->fn) {
        long code = 0;
        curl_easy_getinfo(b->h, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
            if (b->fn(b->ud, ptr, n)) {
                b->stopped = 1;
                return 0;
            }
            return n;
        }
    }
    if (b->len + n > b->cap) {
        b->over = 1;
        return 0; /* curl reports CURLE_WRITE_ERROR; we report CTL_ETOOBIG */
    }
    if (b->len + n + 1 > b->alloc) {
        size_t a = b->alloc ? b->alloc : 16384;
        while (a < b->len + n + 1) a *= 2;
        char *d = realloc(b->data, a);
        if (!d) return 0;
        b->data = d;
        b->alloc = a;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    const atomic_int *stop = ud;
    return stop && atomic_load(stop) ? 1 : 0;
}

static json_object *parse_json(const char *s, size_t n)
{
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return NULL;
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* The API error for an HTTP error answer: the Status object's reason and message when present. */
static ctl_status *api_error(const char *method, const char *path, long code, const char *body,
                             size_t len)
{
    json_object *s = body && len ? parse_json(body, len) : NULL;
    const char *reason = jx_str(s, "reason"), *msg = jx_str(s, "message");
    ctl_status *st;
    if (msg)
        st = ctl_status_api((int)code, reason, "%s %s: %s", method, path, msg);
    else
        st = ctl_status_api((int)code, reason, "%s %s: HTTP %ld%s%.200s", method, path, code,
                            len ? ": " : "", len ? body : "");
    json_object_put(s);
    return st;
}

typedef struct request {
    const char *verb;   /* metrics label */
    const char *method; /* HTTP */
    const char *path;   /* with query */
    const char *ctype;
    const char *body;
    size_t body_len;
    size_t cap;
    json_object **out;
    long *code;
    /* watch */
    kube_watch_fn fn;
    void *ud;
    const atomic_int *stop;
    long timeout_s;
} request;

static ctl_status *perform(kube_client *c, const request *rq)
{
    ctl_status *st = NULL;
    char *url = NULL, *auth = NULL, *ctype = NULL, errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    body_buf b = {.cap = rq->fn ? ERR_BODY_MAX : rq->cap, .fn = rq->fn, .ud = rq->ud};
    long code = 0;
    CURL *h = curl_easy_init();
    if (!h || asprintf(&url, "%s%s", c->server, rq->path) < 0) {
        url = NULL;
        st = ctl_status_new(CTL_ENOMEM, "%s %s", rq->method, rq->path);
        goto out;
    }
    b.h = h;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (rq->ctype && asprintf(&ctype, "Content-Type: %s", rq->ctype) >= 0)
        hdrs = curl_slist_append(hdrs, ctype);
    if ((auth = auth_header(c))) hdrs = curl_slist_append(hdrs, auth);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    /* The shared pool holds every connection, watches included; when a request ends with more
     * than this many open, the oldest idle one is closed (kube_client_set_max_connections). */
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, c->max_conns);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* Over TLS curl copies each request into an upload buffer, 64 KiB by default, allocated per
     * handle: with every watch and worker in flight that was a megabyte of the heap. 16 KiB (the
     * smallest allowed) holds any request but a big apply, which then goes in several writes. */
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_buf) curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &c->ca);
    if (c->cert_buf) {
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &c->cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &c->key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 10000 ? c->timeout_ms : 10000L);
    if (rq->fn)
        curl_easy_setopt(h, CURLOPT_TIMEOUT, rq->timeout_s + 30);
    else
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kinfer-controller");
    if (rq->stop) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)rq->stop);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    metrics_count_api_request(rq->verb, (int)code);
    long fresh = 0;
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &fresh) == CURLE_OK)
        metrics_count_api_connections(fresh);
    if (rq->code) *rq->code = code;
    if (rc == CURLE_ABORTED_BY_CALLBACK || b.stopped) {
        st = ctl_status_new(CTL_ECANCELED, "%s %s: stopped", rq->method, rq->path);
        goto out;
    }
    if (b.over) {
        st = ctl_status_new(CTL_ETOOBIG, "%s %s: response larger than %zu bytes", rq->method,
                            rq->path, b.cap);
        goto out;
    }
    if (rc != CURLE_OK) {
        st = ctl_status_new(rc == CURLE_OPERATION_TIMEDOUT ? CTL_ETIMEOUT : CTL_ETRANSPORT,
                            "%s %s: %s", rq->method, rq->path,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    if (code < 200 || code >= 300) {
        st = api_error(rq->method, rq->path, code, b.data, b.len);
        goto out;
    }
    if (rq->out) {
        *rq->out = b.len ? parse_json(b.data, b.len) : NULL;
        if (!*rq->out)
            st = ctl_status_new(CTL_EPARSE, "%s %s: response is not JSON", rq->method, rq->path);
    }
out:
    free(b.data);
    curl_slist_free_all(hdrs);
    free(ctype);
    if (auth) explicit_bzero(auth, strlen(auth));
    free(auth);
    free(url);
    if (h) curl_easy_cleanup(h);
    return st;
}

/* Appends s percent-encoded (RFC 3986 unreserved kept) to the memstream. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            fputc(ch, f);
        else
            fprintf(f, "%%%02X", ch);
    }
}

/* "/apis/G/V[/namespaces/NS]/RES[/NAME[/SUB]]" plus "?" when a query will follow. */
static char *make_path(const kube_resource *r, const char *ns, const char *name, const char *sub)
{
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    if (!f) return NULL;
    if (*r->group)
        fprintf(f, "/apis/%s/%s", r->group, r->version);
    else
        fprintf(f, "/api/%s", r->version);
    if (r->namespaced && ns && *ns) {
        fputs("/namespaces/", f);
        put_escaped(f, ns);
    }
    fprintf(f, "/%s", r->resource);
    if (name) {
        fputc('/', f);
        put_escaped(f, name);
        if (sub && *sub) fprintf(f, "/%s", sub);
    }
    if (fclose(f)) {
        free(p);
        return NULL;
    }
    return p;
}

static ctl_status *simple(kube_client *c, const char *verb, const char *method,
                          const kube_resource *r, const char *ns, const char *name, const char *sub,
                          const char *query, const char *ctype, json_object *body,
                          json_object **out, long *code)
{
    char *base = make_path(r, ns, name, sub), *path = NULL;
    if (!base || asprintf(&path, "%s%s", base, query ? query : "") < 0) {
        free(base);
        return ctl_status_new(CTL_ENOMEM, "%s %s", method, r->resource);
    }
    size_t blen = 0;
    const char *btext =
        body ? json_object_to_json_string_length(
                   body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &blen)
             : NULL;
    request rq = {.verb = verb,
                  .method = method,
                  .path = path,
                  .ctype = btext ? ctype : NULL,
                  .body = btext,
                  .body_len = blen,
                  .cap = KUBE_MAX_BODY,
                  .out = out,
                  .code = code};
    if (out) *out = NULL;
    ctl_status *st = perform(c, &rq);
    free(base);
    free(path);
    return st;
}

ctl_status *kube_get(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                     json_object **out)
{
    return simple(c, "get", "GET", r, ns, name, NULL, NULL, NULL, NULL, out, NULL);
}

ctl_status *kube_create(kube_client *c, const kube_resource *r, const char *ns, json_object *obj,
                        json_object **out)
{
    return simple(c, "create", "POST", r, ns, NULL, NULL, NULL, "application/json", obj, out, NULL);
}

ctl_status *kube_update(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                        json_object *obj, json_object **out)
{
    return simple(c, "update", "PUT", r, ns, name, NULL, NULL, "application/json", obj, out, NULL);
}

ctl_status *kube_delete(kube_client *c, const kube_resource *r, const char *ns, const char *name)
{
    return simple(c, "delete", "DELETE", r, ns, name, NULL, NULL, NULL, NULL, NULL, NULL);
}

ctl_status *kube_apply_as(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                          const char *subresource, json_object *obj, const char *manager,
                          json_object **out, int *created)
{
    long code = 0;
    json_object *tmp = NULL;
    char query[160];
    for (const char *m = manager; *m; m++) /* field managers are plain names; nothing to escape */
        if (!((*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z') || (*m >= '0' && *m <= '9') ||
              *m == '-' || *m == '_' || *m == '.'))
            return ctl_status_new(
                CTL_EINVAL, "field manager \"%s\" has characters outside [A-Za-z0-9._-]", manager);
    snprintf(query, sizeof(query), "?fieldManager=%.100s&force=true", manager);
    /* apply-patch+yaml accepts JSON, which is YAML. */
    ctl_status *st = simple(c, "apply", "PATCH", r, ns, name, subresource, query,
                            "application/apply-patch+yaml", obj, out ? out : &tmp, &code);
    json_object_put(tmp);
    if (created) *created = !st && code == 201;
    return st;
}

ctl_status *kube_apply(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                       const char *subresource, json_object *obj, json_object **out, int *created)
{
    return kube_apply_as(c, r, ns, name, subresource, obj, KUBE_FIELD_MANAGER, out, created);
}

ctl_status *kube_patch_merge(kube_client *c, const kube_resource *r, const char *ns,
                             const char *name, const char *subresource, json_object *patch,
                             json_object **out)
{
    json_object *tmp = NULL;
    ctl_status *st = simple(c, "patch", "PATCH", r, ns, name, subresource, NULL,
                            "application/merge-patch+json", patch, out ? out : &tmp, NULL);
    json_object_put(tmp);
    return st;
}

/* "?labelSelector=..&limit=..&continue=..&watch=1&..." from the non-empty parts. */
static char *make_query(const char *selector, long limit, const char *cont, int watch,
                        const char *rv, int timeout_s)
{
    char *q = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&q, &n);
    if (!f) return NULL;
    char sep = '?';
    if (selector && *selector) {
        fprintf(f, "%clabelSelector=", sep);
        put_escaped(f, selector);
        sep = '&';
    }
    if (limit > 0) fprintf(f, "%climit=%ld", sep, limit), sep = '&';
    if (cont && *cont) {
        fprintf(f, "%ccontinue=", sep);
        put_escaped(f, cont);
        sep = '&';
    }
    if (watch) {
        fprintf(f, "%cwatch=1&allowWatchBookmarks=true&timeoutSeconds=%d", sep, timeout_s);
        if (rv && *rv) {
            fputs("&resourceVersion=", f);
            put_escaped(f, rv);
        }
    }
    if (fclose(f)) {
        free(q);
        return NULL;
    }
    return q;
}

ctl_status *kube_list(kube_client *c, const kube_resource *r, const char *ns,
                      const char *label_selector, long limit, const char *cont, json_object **out)
{
    char *base = make_path(r, ns, NULL, NULL),
         *q = make_query(label_selector, limit, cont, 0, NULL, 0), *path = NULL;
    ctl_status *st = NULL;
    *out = NULL;
    if (!base || !q || asprintf(&path, "%s%s", base, q) < 0) {
        path = NULL;
        st = ctl_status_new(CTL_ENOMEM, "list %s", r->resource);
    } else {
        request rq = {
            .verb = "list", .method = "GET", .path = path, .cap = KUBE_MAX_LIST, .out = out};
        st = perform(c, &rq);
    }
    free(base);
    free(q);
    free(path);
    return st;
}

ctl_status *kube_watch(kube_client *c, const kube_resource *r, const char *ns,
                       const char *label_selector, const char *rv, int timeout_s, kube_watch_fn fn,
                       void *ud, const atomic_int *stop)
{
    char *base = make_path(r, ns, NULL, NULL),
         *q = make_query(label_selector, 0, NULL, 1, rv, timeout_s), *path = NULL;
    ctl_status *st = NULL;
    if (!base || !q || asprintf(&path, "%s%s", base, q) < 0) {
        path = NULL;
        st = ctl_status_new(CTL_ENOMEM, "watch %s", r->resource);
    } else {
        request rq = {.verb = "watch",
                      .method = "GET",
                      .path = path,
                      .fn = fn,
                      .ud = ud,
                      .stop = stop,
                      .timeout_s = timeout_s};
        st = perform(c, &rq);
    }
    free(base);
    free(q);
    free(path);
    return st;
}

void kube_format_time(char *buf, size_t len, int micro)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (micro)
        snprintf(buf + n, len - n, ".%06ldZ", (long)tv.tv_usec);
    else
        snprintf(buf + n, len - n, "Z");
}

ctl_status *kube_create_event(kube_client *c, json_object *obj, const char *type,
                              const char *reason, const char *message)
{
    json_object *meta = NULL;
    if (!json_object_object_get_ex(obj, "metadata", &meta))
        return ctl_status_new(CTL_EINVAL, "event: object has no metadata");
    const char *name = jx_str(meta, "name"), *ns = jx_str(meta, "namespace");
    if (!name || !ns) return ctl_status_new(CTL_EINVAL, "event: object has no name/namespace");
    char ts[40], ename[320], host[128] = "";
    kube_format_time(ts, sizeof(ts), 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* client-go's recorder names events <object>.<unix nanos in hex>. */
    snprintf(ename, sizeof(ename), "%.240s.%llx", name,
             (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
    gethostname(host, sizeof(host) - 1);
    json_object *ev = json_object_new_object(), *m = json_object_new_object(),
                *inv = json_object_new_object(), *src = json_object_new_object();
    json_object_object_add(ev, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(ev, "kind", json_object_new_string("Event"));
    json_object_object_add(m, "name", json_object_new_string(ename));
    json_object_object_add(m, "namespace", json_object_new_string(ns));
    json_object_object_add(ev, "metadata", m);
    const char *av = jx_str(obj, "apiVersion"), *kind = jx_str(obj, "kind"),
               *uid = jx_str(meta, "uid"), *rv = jx_str(meta, "resourceVersion");
    if (av) json_object_object_add(inv, "apiVersion", json_object_new_string(av));
    if (kind) json_object_object_add(inv, "kind", json_object_new_string(kind));
    json_object_object_add(inv, "name", json_object_new_string(name));
    json_object_object_add(inv, "namespace", json_object_new_string(ns));
    if (uid) json_object_object_add(inv, "uid", json_object_new_string(uid));
    if (rv) json_object_object_add(inv, "resourceVersion", json_object_new_string(rv));
    json_object_object_add(ev, "involvedObject", inv);
    json_object_object_add(ev, "type", json_object_new_string(type));
    json_object_object_add(ev, "reason", json_object_new_string(reason));
    json_object_object_add(ev, "message", json_object_new_string(message));
    json_object_object_add(ev, "firstTimestamp", json_object_new_string(ts));
    json_object_object_add(ev, "lastTimestamp", json_object_new_string(ts));
    json_object_object_add(ev, "count", json_object_new_int(1));
    json_object_object_add(src, "component", json_object_new_string("kinfer-controller"));
    if (*host) json_object_object_add(src, "host", json_object_new_string(host));
    json_object_object_add(ev, "source", src);
    json_object_object_add(ev, "reportingComponent", json_object_new_string("kinfer-controller"));
    json_object_object_add(ev, "reportingInstance",
                           json_object_new_string(*host ? host : "kinfer-controller"));
    ctl_status *st = kube_create(c, &kube_res_events, ns, ev, NULL);
    json_object_put(ev);
    return st;
}

void kube_record_event(kube_client *c, json_object *obj, const char *type, const char *reason,
                       const char *message)
{
    ctl_status *st = kube_create_event(c, obj, type, reason, message);
    if (st) log_warn("event not recorded", "reason", reason, "error", ctl_status_msg(st));
    ctl_status_free(st);
}
