/* httpd: real requests over loopback sockets, including malformed, oversized and stalled ones. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../src/common/httpd.h"

static int handler(void *ud, const char *path, httpd_response *resp)
{
    (void)ud;
    if (strcmp(path, "/healthz")) return -1;
    resp->body = strdup("ok\n");
    resp->len = 3;
    return 0;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Sends raw bytes (len may include NULs), returns the whole reply (static buffer). */
static const char *exchange(int port, const char *req, size_t len)
{
    static char buf[65536];
    int fd = dial(port);
    if (len) assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(fd);
    return buf;
}

static const char *ask(int port, const char *req)
{
    return exchange(port, req, strlen(req));
}

static int setup(void **state)
{
    httpd *h = NULL;
    ctl_status *st = httpd_start("127.0.0.1:0", handler, NULL, &h);
    if (st) {
        ctl_status_free(st);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    httpd_stop(*state);
    return 0;
}

static void test_good_requests(void **state)
{
    int port = httpd_port(*state);
    assert_true(port > 0);
    const char *r = ask(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(r, "Content-Length: 3\r\n"));
    assert_non_null(strstr(r, "\r\n\r\nok\n"));
    r = ask(port, "GET /healthz?verbose=1 HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(r, "200 OK"));
    r = ask(port, "HEAD /healthz HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(r, "200 OK"));
    assert_null(strstr(r, "ok\n")); /* no body for HEAD */
    r = ask(port, "GET /nope HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(r, "404 Not Found"));
}

static void test_bad_requests(void **state)
{
    int port = httpd_port(*state);
    static const struct {
        const char *req, *want;
    } cases[] = {
        {"POST /healthz HTTP/1.1\r\n\r\n", "405 Method Not Allowed"},
        {"GET /healthz HTTP/2.0\r\n\r\n", "505"},
        {"GET /healthz FTP/1.1\r\n\r\n", "400 Bad Request"},
        {"GET healthz HTTP/1.1\r\n\r\n", "400 Bad Request"},
        {"GET  /healthz HTTP/1.1\r\n\r\n", "400 Bad Request"},
        {"GET /healthz HTTP/1.1 extra\r\n\r\n", "400 Bad Request"},
        {"G(T /healthz HTTP/1.1\r\n\r\n", "400 Bad Request"},
        {"\r\n\r\n", "400 Bad Request"},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", "400 Bad Request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *r = ask(port, cases[i].req);
        if (!strstr(r, cases[i].want)) fail_msg("%zu: want %s, got %.60s", i, cases[i].want, r);
    }
    const char nul[] = "GET /he\0lthz HTTP/1.1\r\n\r\n";
    assert_non_null(strstr(exchange(port, nul, sizeof(nul) - 1), "400 Bad Request"));
    /* a long path */
    char *longpath = malloc(4000);
    strcpy(longpath, "GET /");
    memset(longpath + 5, 'a', 3000);
    strcpy(longpath + 3005, " HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(ask(port, longpath), "414"));
    free(longpath);
}

/* A head over 8 KiB is refused without reading on; a silent client gets 408 after the deadline;
 * a client that hangs up early does not hurt the server. */
static void test_oversized_stalled_and_vanishing(void **state)
{
    int port = httpd_port(*state);
    char *big = malloc(20000);
    strcpy(big, "GET /healthz HTTP/1.1\r\n");
    size_t n = strlen(big);
    while (n < 19000)
        n += (size_t)sprintf(big + n, "X-Pad: %s\r\n",
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    const char *r = exchange(port, big, n); /* no terminating blank line */
    assert_non_null(strstr(r, "431"));
    free(big);

    r = ask(port, "GET /healthz HTTP/1.1\r\n"); /* never finishes its head */
    assert_non_null(strstr(r, "408 Request Timeout"));

    int fd = dial(port);
    close(fd);
    fd = dial(port);
    send(fd, "GET /hea", 8, MSG_NOSIGNAL);
    close(fd);
    r = ask(port, "GET /healthz HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(r, "200 OK"));
}

static void test_bad_addresses(void **state)
{
    (void)state;
    httpd *h = NULL;
    static const char *const bad[] = {
        "", "8080", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "no.such.host.invalid:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ctl_status *st = httpd_start(bad[i], handler, NULL, &h);
        if (!st) fail_msg("accepted \"%s\"", bad[i]);
        assert_null(h);
        ctl_status_free(st);
    }
    httpd_stop(NULL);
}

int test_httpd_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_stalled_and_vanishing, setup, teardown),
        cmocka_unit_test(test_bad_addresses),
    };
    return cmocka_run_group_tests_name("httpd", tests, NULL, NULL);
}
