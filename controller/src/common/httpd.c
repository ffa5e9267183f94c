/* Minimal HTTP/1.1 server for probes and metrics; see httpd.h. */
#include "httpd.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX         8192
#define READ_DEADLINE_MS 2000

struct httpd {
    int fd, wake[2], port;
    pthread_t thread;
    httpd_handler fn;
    void *ud;
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *ctype, const char *body, size_t len,
                    int head_only)
{
    char hdr[256];
    int n = snprintf(
        hdr, sizeof(hdr),
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
        status, reason(status), ctype ? ctype : "text/plain; charset=utf-8", len);
    send_all(fd, hdr, (size_t)n);
    if (!head_only && len) send_all(fd, body, len);
}

static void respond_text(int fd, int status, const char *text)
{
    respond(fd, status, NULL, text, strlen(text), 0);
}

static int tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c);
}

/* Reads the request head (to the blank line) and answers it. */
static void serve(httpd *h, int fd)
{
    char buf[HEAD_MAX + 1];
    size_t len = 0;
    uint64_t deadline = (uint64_t)clock_mono_ms() + READ_DEADLINE_MS;
    char *end = NULL;
    while (!end) {
        uint64_t now = (uint64_t)clock_mono_ms();
        if (now >= deadline) {
            respond_text(fd, 408, "request timeout\n");
            return;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue; /* timeout: loop reports 408 */
        if (len == HEAD_MAX) {
            respond_text(fd, 431, "request head too large\n");
            return;
        }
        ssize_t r = recv(fd, buf + len, HEAD_MAX - len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return; /* client went away */
        len += (size_t)r;
        buf[len] = 0;
        if (memchr(buf, 0, len)) {
            respond_text(fd, 400, "bad request\n");
            return;
        }
        end = strstr(buf, "\r\n\r\n");
        if (!end) end = strstr(buf, "\n\n"); /* tolerate bare LF like most servers */
    }
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    char *eol = strpbrk(buf, "\r\n");
    *eol = 0;
    char *sp1 = strchr(buf, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == buf || strchr(sp2 + 1, ' ')) {
        respond_text(fd, 400, "malformed request line\n");
        return;
    }
    *sp1 = *sp2 = 0;
    const char *method = buf, *target = sp1 + 1, *version = sp2 + 1;
    for (const char *c = method; *c; c++)
        if (!tchar(*c)) {
            respond_text(fd, 400, "malformed method\n");
            return;
        }
    if (strncmp(version, "HTTP/1.", 7) || (version[7] != '0' && version[7] != '1') || version[8]) {
        respond_text(fd, strncmp(version, "HTTP/", 5) ? 400 : 505, "unsupported HTTP version\n");
        return;
    }
    if (target[0] != '/') {
        respond_text(fd, 400, "request target must be an absolute path\n");
        return;
    }
    for (const char *c = target; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            respond_text(fd, 400, "bad character in request target\n");
            return;
        }
    int head = !strcmp(method, "HEAD");
    if (!head && strcmp(method, "GET")) {
        respond_text(fd, 405, "only GET and HEAD\n");
        return;
    }
    char path[1024];
    size_t plen = strcspn(target, "?#");
    if (plen >= sizeof(path)) {
        respond_text(fd, 414, "path too long\n");
        return;
    }
    memcpy(path, target, plen);
    path[plen] = 0;
    httpd_response resp = {.status = 200};
    if (h->fn(h->ud, path, &resp)) {
        free(resp.body);
        respond(fd, 404, NULL, "not found\n", 10, head);
        return;
    }
    respond(fd, resp.status ? resp.status : 200, resp.content_type, resp.body ? resp.body : "",
            resp.body ? resp.len : 0, head);
    free(resp.body);
}

static void *loop(void *arg)
{
    httpd *h = arg;
    for (;;) {
        struct pollfd p[2] = {{h->fd, POLLIN, 0}, {h->wake[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) continue;
        int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        serve(h, c);
        /* Half-close, then drain briefly so the client sees the reply rather than a reset. */
        shutdown(c, SHUT_WR);
        char junk[512];
        struct timeval tv = {0, 100000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        for (int i = 0; i < 16 && recv(c, junk, sizeof(junk), 0) > 0; i++) {
        }
        close(c);
    }
    return NULL;
}

ctl_status *httpd_start(const char *addr, httpd_handler fn, void *ud, httpd **out)
{
    ctl_status *st = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai = NULL;
    char host[256] = "";
    const char *colon = strrchr(addr ? addr : "", ':');
    *out = NULL;
    if (!addr || !colon || !colon[1])
        return ctl_status_new(CTL_EINVAL, "listen address \"%s\": want host:port",
                              addr ? addr : "");
    const char *port = colon + 1;
    for (const char *c = port; *c; c++)
        if (*c < '0' || *c > '9')
            return ctl_status_new(CTL_EINVAL, "listen address \"%s\": bad port", addr);
    if (atol(port) > 65535)
        return ctl_status_new(CTL_EINVAL, "listen address \"%s\": port out of range", addr);
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host))
        return ctl_status_new(CTL_EINVAL, "listen address \"%s\": host too long", addr);
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    int gr = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gr) return ctl_status_new(CTL_EINVAL, "listen address \"%s\": %s", addr, gai_strerror(gr));
    httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        freeaddrinfo(ai);
        return ctl_status_new(CTL_ENOMEM, "httpd");
    }
    h->fd = h->wake[0] = h->wake[1] = -1;
    h->fn = fn;
    h->ud = ud;
    h->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    int one = 1;
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(h->fd, ai->ai_addr, ai->ai_addrlen) || listen(h->fd, 64)) {
        st = ctl_status_new(CTL_EIO, "listen on %s: %s", addr, strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(h->fd, (struct sockaddr *)&ss, &sl);
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(h->wake, O_CLOEXEC)) {
        st = ctl_status_new(CTL_EIO, "httpd pipe: %s", strerror(errno));
        goto out;
    }
    int e = pthread_create(&h->thread, NULL, loop, h);
    if (e) st = ctl_status_new(CTL_EINTERNAL, "httpd thread: %s", strerror(e));
out:
    freeaddrinfo(ai);
    if (st) {
        if (h->fd >= 0) close(h->fd);
        if (h->wake[0] >= 0) close(h->wake[0]), close(h->wake[1]);
        free(h);
    } else {
        *out = h;
    }
    return st;
}

int httpd_port(const httpd *h)
{
    return h->port;
}

void httpd_stop(httpd *h)
{
    if (!h) return;
    ssize_t w = write(h->wake[1], "x", 1);
    (void)w;
    pthread_join(h->thread, NULL);
    close(h->fd);
    close(h->wake[0]);
    close(h->wake[1]);
    free(h);
}
