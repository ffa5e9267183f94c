/*
 * libcurl GETs with retries for model storage; see storage_http.h. The body of a non-2xx answer
 * goes to a small side buffer (for the error message), never into the object's file.
 */
#include "storage_http.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../common/pbuf.h"
#include "storage_list.h"
#include "../log/log.h"

#define ERRBODY_MAX    (16 * 1024)
#define BACKOFF_CAP_MS 30000L

struct storage_http {
    CURL *curl;
    storage_http_config cfg;
    unsigned long long jitter; /* xorshift state, seeded per process so pods do not move in step */
};

typedef struct sink {
    CURL *curl;
    int fd;          /* file sink, or -1 */
    pbuf *mem;       /* memory sink, or NULL */
    EVP_MD_CTX *sha; /* only for file sinks */
    pbuf errbody;    /* body of a non-2xx answer */
    long code;
    long long bytes;
    int write_failed; /* errno of a failed write(), or -1 when mem overflowed */
} sink;

storage_http *storage_http_create(const storage_http_config *cfg)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) return NULL;
        global_done = 1;
    }
    storage_http *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->cfg = *cfg;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h->jitter = (((unsigned long long)getpid() << 32) ^ (unsigned long long)now.tv_nsec ^
                 (unsigned long long)now.tv_sec) |
                1;
    if (!(h->curl = curl_easy_init())) {
        free(h);
        return NULL;
    }
    return h;
}

void storage_http_destroy(storage_http *h)
{
    if (!h) return;
    curl_easy_cleanup(h->curl);
    free(h);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n;
    if (!s->code) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->code);
    if (s->code < 200 || s->code > 299) {
        /* Keep what fits for the error message; the rest is of no use. */
        size_t room = ERRBODY_MAX - s->errbody.len;
        if (room && pbuf_add(&s->errbody, p, len < room ? len : room)) return 0;
        return len;
    }
    if (s->mem) {
        if (pbuf_add(s->mem, p, len)) {
            s->write_failed = -1;
            return 0;
        }
    } else {
        for (size_t off = 0; off < len;) {
            ssize_t w = write(s->fd, p + off, len - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                s->write_failed = w < 0 ? errno : ENOSPC;
                return 0;
            }
            off += (size_t)w;
        }
        EVP_DigestUpdate(s->sha, p, len);
    }
    s->bytes += (long long)len;
    return len;
}

static int curl_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

static int http_transient(long code)
{
    return code == 408 || code == 429 || (code >= 500 && code != 501 && code != 505);
}

/* URL without its query string: for messages (a query may carry a presigned signature). */
static void url_for_log(const char *url, char *out, size_t size)
{
    size_t n = strcspn(url, "?#");
    snprintf(out, size, "%.*s%s", (int)(n > 1024 ? 1024 : n), url, url[n] ? "?..." : "");
}

static kinfer_status *http_error(const char *url, long code, const pbuf *body)
{
    char shown[1100], scode[128], smsg[512], excerpt[201];
    url_for_log(url, shown, sizeof(shown));
    kinfer_err err = code == 401 || code == 403 ? KINFER_EAUTH
                     : code == 404              ? KINFER_ENOTFOUND
                                                : KINFER_EHTTP;
    if (pbuf_data(body) && !storage_list_s3_error(pbuf_data(body), body->len, scode, sizeof(scode),
                                                  smsg, sizeof(smsg)))
        return kinfer_status_new(err, "GET %s: HTTP %ld: %s: %s", shown, code, scode, smsg);
    size_t n = 0;
    for (size_t i = 0; pbuf_data(body) && i < body->len && n < sizeof(excerpt) - 1; i++)
        excerpt[n++] = isprint((unsigned char)pbuf_data(body)[i]) ? pbuf_data(body)[i] : ' ';
    excerpt[n] = '\0';
    return kinfer_status_new(err, "GET %s: HTTP %ld%s%s", shown, code, n ? ": " : "", excerpt);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* One attempt. *retry says whether a failure is worth another. */
static kinfer_status *attempt(storage_http *h, const char *url, storage_http_headers_fn fn,
                              void *ctx, sink *s, int *retry)
{
    kinfer_status *st = NULL;
    struct curl_slist *headers = NULL;
    char shown[1100], errbuf[CURL_ERROR_SIZE] = "";
    url_for_log(url, shown, sizeof(shown));
    *retry = 0;
    if (fn && (st = fn(ctx, &headers))) goto out;

    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->cfg.timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->cfg.timeout_s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kinfer-storage/1");
    if (h->cfg.insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (h->cfg.cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.cainfo);

    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->code);
    if (s->write_failed == -1) {
        st = kinfer_status_new(KINFER_ETOOBIG, "GET %s: response over %zu bytes", shown,
                               s->mem->cap);
    } else if (s->write_failed) {
        st = kinfer_status_new(KINFER_EIO, "GET %s: writing the download: %s", shown,
                               strerror(s->write_failed));
    } else if (rc != CURLE_OK && (s->code < 200 || s->code > 299) && s->code >= 400) {
        st =
            http_error(url, s->code, &s->errbody); /* answered with an error, then the body broke */
        *retry = http_transient(s->code);
    } else if (rc != CURLE_OK) {
        *retry = curl_transient(rc);
        st = kinfer_status_new(rc == CURLE_OPERATION_TIMEDOUT ? KINFER_ETIMEOUT : KINFER_EIO,
                               "GET %s: %s%s%s (after %lld bytes)", shown, curl_easy_strerror(rc),
                               *errbuf ? ": " : "", errbuf, s->bytes);
    } else if (s->code < 200 || s->code > 299) {
        st = http_error(url, s->code, &s->errbody);
        *retry = http_transient(s->code);
    }
out:
    curl_slist_free_all(headers);
    return st;
}

/* Runs attempts until success, a permanent failure, or the retries are used up. reset is
 * called before each attempt to empty the sink. */
static kinfer_status *with_retries(storage_http *h, const char *url, storage_http_headers_fn fn,
                                   void *ctx, sink *s, int (*reset)(sink *))
{
    kinfer_status *st = NULL;
    long delay = h->cfg.backoff_ms > 0 ? h->cfg.backoff_ms : 1;
    int tries = 0;
    for (int i = 0;; i++) {
        tries++;
        if (reset(s))
            return kinfer_status_new(KINFER_EIO, "cannot reset the download sink: %s",
                                     strerror(errno));
        int retry = 0;
        st = attempt(h, url, fn, ctx, s, &retry);
        if (!st || !retry || i >= h->cfg.retries) break;
        char shown[1100];
        url_for_log(url, shown, sizeof(shown));
        json_object *f = json_object_new_object();
        json_object_object_add(f, "url", json_object_new_string(shown));
        json_object_object_add(f, "attempt", json_object_new_int(i + 1));
        json_object_object_add(f, "delay_ms", json_object_new_int64(delay));
        json_object_object_add(f, "error", json_object_new_string(kinfer_status_msg(st)));
        kinfer_log_fields("warn", "storage", "request.retry", f);
        kinfer_status_free(st);
        st = NULL;
        /* Jitter of up to a quarter keeps many pods that failed together from retrying together. */
        h->jitter ^= h->jitter << 13;
        h->jitter ^= h->jitter >> 7;
        h->jitter ^= h->jitter << 17;
        sleep_ms(delay + (long)(h->jitter % (unsigned long long)(delay / 4 + 1)));
        delay = delay * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : delay * 2;
    }
    if (st && tries > 1) st = kinfer_status_wrap(st, "giving up after %d attempts", tries);
    return st;
}

static int reset_mem(sink *s)
{
    pbuf_reset(s->mem);
    pbuf_reset(&s->errbody);
    s->code = 0;
    s->bytes = 0;
    s->write_failed = 0;
    return 0;
}

static int reset_file(sink *s)
{
    pbuf_reset(&s->errbody);
    s->code = 0;
    s->bytes = 0;
    s->write_failed = 0;
    if (ftruncate(s->fd, 0) || lseek(s->fd, 0, SEEK_SET) < 0) return -1;
    return EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

kinfer_status *storage_http_get_mem(storage_http *h, const char *url,
                                    storage_http_headers_fn headers_fn, void *ctx, size_t cap,
                                    char **body, size_t *len)
{
    pbuf mem;
    pbuf_init(&mem, 0, cap);
    sink s = {.curl = h->curl, .fd = -1, .mem = &mem};
    pbuf_init(&s.errbody, 0, ERRBODY_MAX);
    *body = NULL;
    *len = 0;
    kinfer_status *st = with_retries(h, url, headers_fn, ctx, &s, reset_mem);
    if (!st) {
        *len = mem.len;
        if (!(*body = pbuf_take(&mem))) st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
    }
    pbuf_free(&mem);
    pbuf_free(&s.errbody);
    return st;
}

kinfer_status *storage_http_get_file(storage_http *h, const char *url,
                                     storage_http_headers_fn headers_fn, void *ctx,
                                     const char *path, char sha256_hex[65], long long *bytes)
{
    kinfer_status *st = NULL;
    sink s = {.curl = h->curl, .fd = -1};
    pbuf_init(&s.errbody, 0, ERRBODY_MAX);
    sha256_hex[0] = '\0';
    *bytes = 0;
    if (!(s.sha = EVP_MD_CTX_new())) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    s.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) {
        st = kinfer_status_new(KINFER_EIO, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    if ((st = with_retries(h, url, headers_fn, ctx, &s, reset_file))) goto out;
    if (fsync(s.fd)) {
        st = kinfer_status_new(KINFER_EIO, "fsync %s: %s", path, strerror(errno));
        goto out;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(s.sha, md, &mdlen);
    for (unsigned i = 0; i < 32; i++) snprintf(sha256_hex + 2 * i, 3, "%02x", md[i]);
    *bytes = s.bytes;
out:
    if (s.fd >= 0 && close(s.fd) && !st)
        st = kinfer_status_new(KINFER_EIO, "close %s: %s", path, strerror(errno));
    if (st && s.fd >= 0) unlink(path);
    EVP_MD_CTX_free(s.sha);
    pbuf_free(&s.errbody);
    return st;
}
