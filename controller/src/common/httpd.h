/*
 * A minimal HTTP/1.1 server for /healthz, /readyz and /metrics: one thread, one request per
 * connection (Connection: close), GET and HEAD only, request head capped at 8 KiB and read
 * with a 2 s deadline. Anything malformed gets a 4xx and the connection is closed; nothing a
 * client sends can grow memory or block the thread for longer than the deadline. It is not a
 * general web server: no bodies, no keep-alive, no TLS (scrapes stay inside the cluster).
 */
#ifndef KINFER_CTL_HTTPD_H
#define KINFER_CTL_HTTPD_H

#include <stddef.h>

#include "error.h"

typedef struct httpd httpd;

typedef struct httpd_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default text/plain */
    char *body;               /* malloc'd by the handler; freed by httpd */
    size_t len;
} httpd_response;

/* Fills resp for path (query string removed); returns 0, or -1 for 404. Runs on the server thread.
 */
typedef int (*httpd_handler)(void *ud, const char *path, httpd_response *resp);

/* addr: "host:port", ":port" (all interfaces) or "[v6]:port"; port 0 picks a free one. */
ctl_status *httpd_start(const char *addr, httpd_handler fn, void *ud, httpd **out)
    __attribute__((warn_unused_result));
int httpd_port(const httpd *h); /* the bound port */
void httpd_stop(httpd *h);      /* stops, joins and frees; NULL is a no-op */

#endif
