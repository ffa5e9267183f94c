/* libwebsockets HTTP/1.1 server with cross-thread completion; see http_server.h. */
#include "http_server.h"
#include "../common/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_EXTRA_HEADERS 4
#define HEADER_ROOM       1024 /* response headers are placed right before the body: one write */
#define FREELIST_MAX      256
#define ACCEPTED_MAX      1024 /* accepted sockets waiting for the service thread to adopt them */

enum req_state { REQ_HEADERS, REQ_BODY, REQ_HANDLER, REQ_PENDING, REQ_WRITING };

struct http_req {
    http_server *srv;
    struct lws *wsi; /* NULL once the connection closed under a pending request */
    enum req_state state;
    http_req *next; /* completion list or free list */
    char method[8];
    char *path;
    char *captured[HTTP_MAX_CAPTURE];
    char *body;
    size_t body_len, body_alloc;
    int over_limit; /* body passed max_body_bytes: discard the rest, answer 413 */
    req_arena *arena;
    pbuf resp;
    int status;
    const char *resp_ctype;
    char extra_name[MAX_EXTRA_HEADERS][48], extra_value[MAX_EXTRA_HEADERS][64];
    int n_extra;
    int64_t start_ns;
};

struct http_server {
    http_server_options opts;
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    http_handler_fn handler;
    http_tick_fn tick;
    void *uctx;
    pthread_t svc_thread;
    int svc_started;
    volatile int stop;
    pthread_mutex_t mu; /* guards done only */
    http_req *done;
    http_req *freelist;
    size_t n_free, active;
    size_t conns; /* connections adopted and not yet destroyed (protocols[0] sees every wsi) */
    /* The listening socket is ours, not libwebsockets': 4.1 can only close its own listener with
     * the whole context (lws_context_deprecate), which also drops queued requests. An accept
     * thread hands sockets to the service thread, which adopts them; closing the listener then
     * refuses new connections while the adopted ones finish. */
    int listen_fd, closing;
    pthread_t accept_thread;
    int accept_started;
    int accepted[ACCEPTED_MAX]; /* guarded by mu */
    size_t n_accepted;
};

typedef struct pss {
    http_req *req;
} pss;

/* Requests are recycled through a free list (service thread only) so a keep-alive stream reuses
 * its arena, body and response memory instead of allocating per request. */
static http_req *req_new(http_server *s, struct lws *wsi)
{
    http_req *r = s->freelist;
    if (r) {
        s->freelist = r->next;
        s->n_free--;
    } else {
        if (!(r = calloc(1, sizeof(*r)))) return NULL;
        if (!(r->arena = req_arena_create(s->opts.arena_bytes))) {
            free(r);
            return NULL;
        }
        pbuf_init(&r->resp, LWS_PRE + HEADER_ROOM, s->opts.max_response_bytes);
    }
    r->srv = s;
    r->wsi = wsi;
    r->state = REQ_HEADERS;
    r->next = NULL;
    r->body_len = 0;
    r->over_limit = 0;
    r->n_extra = 0;
    r->status = 0;
    r->path = NULL;
    memset(r->captured, 0, sizeof(r->captured));
    r->start_ns = kinfer_now_ns();
    s->active++;
    return r;
}

static void req_free(http_server *s, http_req *r)
{
    s->active--;
    req_arena_reset(r->arena);
    pbuf_reset(&r->resp);
    if (s->n_free < FREELIST_MAX && r->body_alloc <= (1u << 20) && r->resp.alloc <= (4u << 20)) {
        r->next = s->freelist;
        s->freelist = r;
        s->n_free++;
        return;
    }
    req_arena_destroy(r->arena);
    pbuf_free(&r->resp);
    free(r->body);
    free(r);
}

static void req_destroy_all(http_req *r)
{
    while (r) {
        http_req *n = r->next;
        req_arena_destroy(r->arena);
        pbuf_free(&r->resp);
        free(r->body);
        free(r);
        r = n;
    }
}

const char *http_req_method(const http_req *r)
{
    return r->method;
}
const char *http_req_path(const http_req *r)
{
    return r->path ? r->path : "/";
}
const char *http_req_header(const http_req *r, size_t i)
{
    return i < HTTP_MAX_CAPTURE ? r->captured[i] : NULL;
}
req_arena *http_req_arena(http_req *r)
{
    return r->arena;
}
int64_t http_req_start_ns(const http_req *r)
{
    return r->start_ns;
}
pbuf *http_req_response(http_req *r)
{
    return &r->resp;
}

const char *http_req_body(const http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

void http_req_add_header(http_req *r, const char *name, const char *value)
{
    if (r->n_extra >= MAX_EXTRA_HEADERS) return;
    snprintf(r->extra_name[r->n_extra], sizeof(r->extra_name[0]), "%s:", name);
    snprintf(r->extra_value[r->n_extra], sizeof(r->extra_value[0]), "%s", value);
    r->n_extra++;
}

void http_req_send(http_req *r, int status, const char *content_type)
{
    http_server *s = r->srv;
    r->status = status;
    r->resp_ctype = content_type;
    if (s->svc_started && pthread_equal(pthread_self(), s->svc_thread)) {
        r->state = REQ_WRITING;
        if (r->wsi)
            lws_callback_on_writable(r->wsi);
        else
            req_free(s, r);
        return;
    }
    pthread_mutex_lock(&s->mu);
    int wake = !s->done; /* a non-empty list already has a wake-up on its way */
    r->next = s->done;
    s->done = r;
    pthread_mutex_unlock(&s->mu);
    if (wake) lws_cancel_service(s->ctx);
}

/* Copies a captured header into the arena; NULL when absent. */
static char *copy_custom(http_req *r, struct lws *wsi, const char *name)
{
    char key[64];
    int kl = snprintf(key, sizeof(key), "%s:", name);
    int n = lws_hdr_custom_length(wsi, key, kl);
    if (n < 0) return NULL;
    char *p = req_arena_alloc(r->arena, (size_t)n + 1);
    if (!p || lws_hdr_custom_copy(wsi, p, n + 1, key, kl) < 0) return NULL;
    return p;
}

/* An error answered by the HTTP layer itself (413, 405, 500 when out of memory). */
static void respond_error(http_req *r, int status, const char *msg)
{
    pbuf_reset(&r->resp);
    pbuf_printf(&r->resp, "{\"error\":\"%s\"}", msg);
    r->n_extra = 0;
    http_req_send(r, status, "application/json");
}

static void dispatch(http_server *s, http_req *r)
{
    r->state = REQ_HANDLER;
    if (r->over_limit) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes",
                 s->opts.max_body_bytes);
        respond_error(r, 413, msg);
        return;
    }
    lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
    r->state = REQ_PENDING; /* until http_req_send runs, on whichever thread */
    s->handler(s->uctx, r);
}

static int on_http(http_server *s, struct lws *wsi, pss *p, const char *uri)
{
    http_req *r = req_new(s, wsi);
    if (!r) return -1;
    p->req = r;
    r->path = req_arena_strndup(r->arena, uri, strlen(uri));
    for (size_t i = 0; i < s->opts.n_capture; i++)
        r->captured[i] = copy_custom(r, wsi, s->opts.capture[i]);
    int post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    snprintf(r->method, sizeof(r->method), "%s",
             post                                               ? "POST"
             : lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 ? "GET"
                                                                : "OTHER");
    if (!r->path) {
        respond_error(r, 500, "out of memory");
        return 0;
    }
    if (!post) {
        dispatch(s, r);
        return 0;
    }
    char cl[32];
    long long len = -1;
    if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) len = atoll(cl);
    if (len < 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* libwebsockets 4.1 never completes a chunked request body: refuse it instead of hanging */
        respond_error(r, 411, "chunked request bodies are not supported: send Content-Length");
        return 0;
    }
    if (len <= 0) {
        dispatch(s, r); /* no body coming: libwebsockets may send no BODY_COMPLETION */
        return 0;
    }
    char expect[32];
    int wants_continue = lws_hdr_copy(wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
                         !strcasecmp(expect, "100-continue");
    if (len > 0 && (unsigned long long)len > s->opts.max_body_bytes) {
        if (wants_continue) { /* the client has not sent the body yet: refuse it now */
            r->over_limit = 1;
            dispatch(s, r);
            return 0;
        }
        r->over_limit = 1;
    } else if (wants_continue) {
        /* Without this, curl and others wait a second before sending a large body. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        unsigned char buf[LWS_PRE + sizeof(cont)];
        memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
        if (lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1, LWS_WRITE_HTTP_HEADERS) !=
            (int)sizeof(cont) - 1)
            return -1;
    } else if (len > 0 &&
               (size_t)len > r->body_alloc) { /* size the buffer once from Content-Length */
        char *b = realloc(r->body, (size_t)len);
        if (!b) {
            respond_error(r, 500, "out of memory");
            return 0;
        }
        r->body = b;
        r->body_alloc = (size_t)len;
    }
    r->state = REQ_BODY;
    return 0;
}

static int on_body(http_server *s, http_req *r, const void *in, size_t len)
{
    if (r->over_limit) return 0;
    if (len > s->opts.max_body_bytes - r->body_len) {
        r->over_limit = 1;
        return 0;
    }
    if (r->body_len + len > r->body_alloc) {
        size_t a = r->body_alloc ? r->body_alloc * 2 : 4096;
        while (a < r->body_len + len) a *= 2;
        if (a > s->opts.max_body_bytes) a = s->opts.max_body_bytes;
        char *b = realloc(r->body, a);
        if (!b) return -1;
        r->body = b;
        r->body_alloc = a;
    }
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    return 0;
}

static int on_writeable(http_server *s, struct lws *wsi, pss *p)
{
    http_req *r = p->req;
    if (!r || r->state != REQ_WRITING) return 0;
    unsigned char hb[LWS_PRE + 1024], *start = hb + LWS_PRE, *w = start, *end = hb + sizeof(hb) - 1;
    size_t len = r->resp.len;
    int close_after = r->status == 411 || r->status == 413 || r->status >= 500 || s->closing;
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->resp_ctype, len, &w, end))
        return -1;
    for (int i = 0; i < r->n_extra; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)r->extra_name[i],
                                        (const unsigned char *)r->extra_value[i],
                                        (int)strlen(r->extra_value[i]), &w, end))
            return -1;
    if (close_after && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                                    (const unsigned char *)"close", 5, &w, end))
        return -1;
    if (lws_finalize_http_header(wsi, &w, end)) return -1;
    size_t hlen = (size_t)(w - start);
    if (len && hlen <= HEADER_ROOM) { /* headers and body in one send */
        unsigned char *body = (unsigned char *)pbuf_data(&r->resp);
        memcpy(body - hlen, start, hlen);
        if (lws_write(wsi, body - hlen, hlen + len, LWS_WRITE_HTTP_HEADERS) != (int)(hlen + len))
            return -1;
    } else {
        if (lws_write(wsi, start, hlen, LWS_WRITE_HTTP_HEADERS) != (int)hlen) return -1;
        if (len && lws_write(wsi, (unsigned char *)pbuf_data(&r->resp), len,
                             LWS_WRITE_HTTP_FINAL) != (int)len)
            return -1;
    }
    p->req = NULL;
    req_free(s, r);
    if (close_after) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The connection is going away: a pending request stays alive until its owner sends, then dies. */
static void on_close(http_server *s, pss *p)
{
    http_req *r = p ? p->req : NULL;
    if (!r) return;
    p->req = NULL;
    if (r->state == REQ_PENDING)
        r->wsi = NULL;
    else
        req_free(s, r);
}

static void drain_done(http_server *s)
{
    int fds[ACCEPTED_MAX];
    pthread_mutex_lock(&s->mu);
    http_req *r = s->done;
    s->done = NULL;
    size_t n_fds = s->n_accepted;
    memcpy(fds, s->accepted, n_fds * sizeof(fds[0]));
    s->n_accepted = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n_fds; i++)
        lws_adopt_socket(s->ctx, fds[i]); /* on failure it has closed the socket */
    while (r) {
        http_req *n = r->next;
        r->next = NULL;
        r->state = REQ_WRITING;
        if (r->wsi)
            lws_callback_on_writable(r->wsi);
        else
            req_free(s, r);
        r = n;
    }
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct lws_context *lc = lws_get_context(wsi);
    http_server *s = lc ? lws_context_user(lc) : NULL;
    pss *p = user;
    if (!s) return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (p->req) on_close(s, p); /* should not happen: a new request while one is live */
        return on_http(s, wsi, p, in ? (const char *)in : "/");
    /* A POST with "Content-Length: 0" was dispatched at once, yet libwebsockets still reports an
     * empty body and its completion, possibly after the answer went out: ignore them. */
    case LWS_CALLBACK_HTTP_BODY:
        if (!p->req || p->req->state != REQ_BODY || !len) return 0;
        return on_body(s, p->req, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p->req && p->req->state == REQ_BODY) dispatch(s, p->req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(s, wsi, p);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        on_close(s, p);
        return 0;
    case LWS_CALLBACK_WSI_CREATE:
        s->conns++;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s->conns) s->conns--;
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain_done(s);
        if (s->tick) s->tick(s->uctx);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Blocks in accept() until the listener is shut down (accept then fails with EINVAL). */
static void *accept_main(void *arg)
{
    http_server *s = arg;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                usleep(10000); /* out of descriptors: let some connections close */
                continue;
            }
            return NULL;
        }
        pthread_mutex_lock(&s->mu);
        int full = s->n_accepted == ACCEPTED_MAX;
        if (!full) s->accepted[s->n_accepted++] = fd;
        pthread_mutex_unlock(&s->mu);
        if (full)
            close(fd); /* the service thread is this far behind: shed the connection */
        else
            lws_cancel_service(s->ctx);
    }
}

/* host NULL, "" or "::": every address of both families (one IPv6 socket with IPV6_V6ONLY off,
 * so IPv4 clients arrive as mapped addresses; IPv4 alone where the kernel has no IPv6), which is
 * what a pod needs in IPv4, IPv6 and dual-stack clusters alike. "0.0.0.0": every IPv4 address.
 * Otherwise an IPv4 or IPv6 literal, the latter optionally in brackets. */
static kinfer_status *listen_open(const http_server_options *o, int *out)
{
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)o->port)};
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    a6.sin6_addr = in6addr_any;
    char h[INET6_ADDRSTRLEN + 2] = "::";
    if (o->host && *o->host) {
        size_t n = strlen(o->host);
        int br = n >= 2 && o->host[0] == '[' && o->host[n - 1] == ']';
        if (n - 2 * br >= sizeof(h))
            return kinfer_status_new(KINFER_EINVAL,
                                     "listen address %s is not an IPv4 or IPv6 address", o->host);
        memcpy(h, o->host + br, n - 2 * br);
        h[n - 2 * br] = 0;
    }
    int v4 = inet_pton(AF_INET, h, &a4.sin_addr) == 1, any = !strcmp(h, "::");
    if (!v4 && inet_pton(AF_INET6, h, &a6.sin6_addr) != 1)
        return kinfer_status_new(KINFER_EINVAL, "listen address %s is not an IPv4 or IPv6 address",
                                 o->host);
    int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, off = 0;
    if (fd < 0 && any && errno == EAFNOSUPPORT) { /* a kernel built or booted without IPv6 */
        v4 = 1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) return kinfer_status_new(KINFER_EIO, "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!v4) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    if (bind(fd, v4 ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
             v4 ? sizeof(a4) : sizeof(a6)) ||
        listen(fd, SOMAXCONN)) {
        kinfer_status *st = kinfer_status_new(KINFER_EIO, "cannot listen on %s port %d: %s", h,
                                              o->port, strerror(errno));
        close(fd);
        return st;
    }
    *out = fd;
    return NULL;
}

kinfer_status *http_server_create(const http_server_options *opts, http_handler_fn handler,
                                  http_tick_fn tick, void *ctx, http_server **out)
{
    *out = NULL;
    http_server *s = calloc(1, sizeof(*s));
    if (!s) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    s->opts = *opts;
    if (!s->opts.arena_bytes) s->opts.arena_bytes = 4 * s->opts.max_body_bytes + (1 << 20);
    if (!s->opts.max_response_bytes) s->opts.max_response_bytes = (size_t)1 << 30;
    s->handler = handler;
    s->tick = tick;
    s->uctx = ctx;
    s->listen_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    kinfer_status *st = listen_open(opts, &s->listen_fd);
    if (st) {
        http_server_destroy(s);
        return st;
    }
    s->protocols[0] = (struct lws_protocols){
        .name = "http", .callback = callback_http, .per_session_data_size = sizeof(pss), .user = s};
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* sockets come from accept_main */
    info.protocols = s->protocols;
    info.user = s;
    info.keepalive_timeout = opts->keepalive_timeout_s > 0 ? opts->keepalive_timeout_s : 75;
    info.timeout_secs = 60;
    info.max_http_header_data = 8192;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_DISABLE_IPV6;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        http_server_destroy(s);
        return kinfer_status_new(KINFER_EIO, "cannot create the libwebsockets context");
    }
    *out = s;
    return NULL;
}

void http_server_run(http_server *s)
{
    s->svc_thread = pthread_self();
    s->svc_started = 1;
    if (s->listen_fd >= 0 && !s->accept_started)
        s->accept_started = !pthread_create(&s->accept_thread, NULL, accept_main, s);
    while (!s->stop)
        if (lws_service(s->ctx, 0) < 0) break;
}

void http_server_stop(http_server *s)
{
    s->stop = 1;
}

void http_server_wake(http_server *s)
{
    lws_cancel_service(s->ctx);
}

void http_server_close_listener(http_server *s)
{
    if (s->listen_fd < 0) return;
    /* On Linux, shutdown() of a listening socket stops it listening (further connects are
     * refused) and fails the blocked accept() with EINVAL, which ends accept_main. */
    shutdown(s->listen_fd, SHUT_RDWR);
    if (s->accept_started) pthread_join(s->accept_thread, NULL);
    s->accept_started = 0;
    close(s->listen_fd);
    s->listen_fd = -1;
    s->closing = 1;
    drain_done(s); /* connections accepted before the close are served */
}

size_t http_server_active(const http_server *s)
{
    return s->active;
}

size_t http_server_connections(const http_server *s)
{
    return s->conns;
}

void http_server_destroy(http_server *s)
{
    if (!s) return;
    if (s->listen_fd >= 0) {
        shutdown(s->listen_fd, SHUT_RDWR);
        if (s->accept_started) pthread_join(s->accept_thread, NULL);
        close(s->listen_fd);
    }
    for (size_t i = 0; i < s->n_accepted; i++) close(s->accepted[i]);
    if (s->ctx) lws_context_destroy(s->ctx);
    req_destroy_all(s->freelist);
    req_destroy_all(s->done);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
