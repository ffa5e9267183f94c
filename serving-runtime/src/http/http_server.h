/*
 * The HTTP/1.1 server of kinfer-server, on libwebsockets: one port, keep-alive, POST bodies
 * streamed into a per-request buffer with a hard cap (413 past it), one request arena per request.
 * libwebsockets is single-threaded, so the handler runs on the service thread and must not block:
 * it answers at once, or hands the request to another thread which answers with http_req_send()
 * (the only call that is safe off the service thread; it wakes the loop with lws_cancel_service).
 * It knows nothing of inference: routing and protocols are the handler's.
 */
#ifndef KINFER_HTTP_SERVER_H
#define KINFER_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../common/pbuf.h"
#include "../protocol/req_arena.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

#define HTTP_MAX_CAPTURE 4

typedef struct http_server_options {
    const char *host; /* address to bind: "::" or NULL every address of both families,
                         "0.0.0.0" every IPv4 one, else an IPv4 or IPv6 literal */
    int port;
    size_t max_body_bytes; /* larger bodies are answered 413 */
    size_t arena_bytes;    /* cap of each request's arena */
    size_t max_response_bytes;
    int keepalive_timeout_s; /* idle keep-alive connections close after this */
    /* Request headers the handler may read with http_req_header(req, i), lowercase, e.g.
     * "inference-header-content-length". */
    const char *capture[HTTP_MAX_CAPTURE];
    size_t n_capture;
} http_server_options;

/* Runs on the service thread for every complete request (headers and body). The handler must
 * eventually call http_req_send exactly once, from any thread. */
typedef void (*http_handler_fn)(void *ctx, http_req *req);
/* Runs on the service thread after every wake-up (http_server_wake, a completion). */
typedef void (*http_tick_fn)(void *ctx);

/* Binds the port. Owned by the caller: http_server_destroy. */
kinfer_status *http_server_create(const http_server_options *opts, http_handler_fn handler,
                                  http_tick_fn tick, void *ctx, http_server **out)
    __attribute__((warn_unused_result));
/* Serves on the calling thread (which becomes the service thread) until http_server_stop. */
void http_server_run(http_server *s);
/* Makes http_server_run return at its next wake-up. Service thread, or after http_server_wake. */
void http_server_stop(http_server *s);
/* Thread-safe and async-signal-safe: wakes the service loop, which runs the tick callback. */
void http_server_wake(http_server *s);
/* Stops accepting: the port is closed, so new connections are refused (ECONNREFUSED), while
 * connections already accepted go on; each of them closes after its next response. Service
 * thread; idempotent. */
void http_server_close_listener(http_server *s);
/* Requests given to the handler whose response is not fully written yet. Service thread. */
size_t http_server_active(const http_server *s);
/* Connections open (accepted and not yet closed), idle keep-alive ones included. Service thread. */
size_t http_server_connections(const http_server *s);
/* NULL is a no-op. Not while run is running. */
void http_server_destroy(http_server *s);

/* Accessors: valid from the handler call until http_req_send. */
const char *http_req_method(const http_req *r); /* "GET", "POST", ... */
const char *http_req_path(const http_req *r);
/* The value of capture[i], NULL when the request did not send it. */
const char *http_req_header(const http_req *r, size_t i);
const char *http_req_body(const http_req *r, size_t *len);
req_arena *http_req_arena(http_req *r);
int64_t http_req_start_ns(const http_req *r); /* CLOCK_MONOTONIC when the headers arrived */
/* The response body to fill before http_req_send (capped at max_response_bytes). */
pbuf *http_req_response(http_req *r);
/* Adds a response header (name without colon); up to 4. */
void http_req_add_header(http_req *r, const char *name, const char *value);
/* Sends status, content type and the response body. Any thread; exactly once per request; the
 * request must not be touched afterwards. */
void http_req_send(http_req *r, int status, const char *content_type);

#endif
