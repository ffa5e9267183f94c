/*
 * s3:// downloads: endpoint and addressing from KServe's storage-initializer environment,
 * SigV4-signed GETs (or anonymous ones), ListObjectsV2 with continuation tokens. A URI names an
 * object or, failing that, a prefix: GET the key first (works with s3:GetObject alone), and on
 * 404 list "key/". Environment variables are documented in docs/storage.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4.h"
#include "../common/pbuf.h"
#include "storage_job.h"
#include "../log/log.h"

typedef struct s3_conf {
    char scheme[8];     /* "http" or "https" */
    char hostport[512]; /* endpoint host[:port], or the bucket's virtual host */
    int path_style;
    const char *region, *access_key, *secret_key, *token;
    const char *bucket;
} s3_conf;

/* The request being signed: canonical URI and query exactly as they appear in the URL. */
typedef struct s3_req {
    const s3_conf *conf;
    const char *path;  /* encoded */
    const char *query; /* encoded, sorted; "" for none */
} s3_req;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static kinfer_status *conf_load(storage_job *job, const char *bucket, s3_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->bucket = bucket;
    c->region = env("AWS_REGION")           ? env("AWS_REGION")
                : env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION")
                                            : "us-east-1";
    const char *ep = job->endpoint                ? job->endpoint
                     : env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
                     : env("AWS_ENDPOINT_URL")    ? env("AWS_ENDPOINT_URL")
                                                  : env("S3_ENDPOINT");
    int use_https = storage__env_flag("S3_USE_HTTPS", 1);
    int custom = ep != NULL;
    if (ep) {
        const char *hp = ep;
        if (!strncmp(ep, "http://", 7)) {
            strcpy(c->scheme, "http");
            hp = ep + 7;
        } else if (!strncmp(ep, "https://", 8)) {
            strcpy(c->scheme, "https");
            hp = ep + 8;
        } else {
            strcpy(c->scheme,
                   use_https ? "https" : "http"); /* KServe's S3_ENDPOINT has no scheme */
        }
        size_t n = strcspn(hp, "/?#");
        if (n == 0 || n >= sizeof(c->hostport))
            return kinfer_status_new(KINFER_EINVAL, "S3 endpoint '%s' has no usable host", ep);
        memcpy(c->hostport, hp, n);
        c->hostport[n] = '\0';
    } else {
        strcpy(c->scheme, "https");
        snprintf(c->hostport, sizeof(c->hostport), "s3.%s.amazonaws.com", c->region);
    }
    /* Custom endpoints (MinIO, Ceph, moto) default to path style, as botocore does; AWS to
     * virtual-hosted. A dotted bucket cannot be a TLS virtual host. */
    c->path_style = custom ? !storage__env_flag("S3_USER_VIRTUAL_BUCKET", 0)
                           : !storage__env_flag("S3_USER_VIRTUAL_BUCKET", 1);
    if (storage__env_flag("AWS_S3_FORCE_PATH_STYLE", 0)) c->path_style = 1;
    if (!c->path_style && strchr(bucket, '.') && !strcmp(c->scheme, "https")) c->path_style = 1;
    if (!c->path_style) {
        char hp[sizeof(c->hostport)];
        if (snprintf(hp, sizeof(hp), "%s.%s", bucket, c->hostport) >= (int)sizeof(hp))
            return kinfer_status_new(KINFER_EINVAL, "S3 virtual host name too long");
        strcpy(c->hostport, hp);
    }
    if (!storage__env_flag("awsAnonymousCredential", 0) &&
        !storage__env_flag("AWS_ANONYMOUS_CREDENTIAL", 0)) {
        c->access_key = env("AWS_ACCESS_KEY_ID");
        c->secret_key = env("AWS_SECRET_ACCESS_KEY");
        c->token = env("AWS_SESSION_TOKEN");
    }
    if (!!c->access_key != !!c->secret_key)
        return kinfer_status_new(KINFER_EAUTH,
                                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together "
                                 "(one is missing)");
    return NULL;
}

static kinfer_status *s3_headers(void *ctx, struct curl_slist **out)
{
    const s3_req *r = ctx;
    const s3_conf *c = r->conf;
    kinfer_status *st = NULL;
    char date[17], line[4200];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    struct curl_slist *l = NULL, *t;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        snprintf(line, sizeof(line), __VA_ARGS__);                                                 \
        if (!(t = curl_slist_append(l, line))) {                                                   \
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory building headers");               \
            goto out;                                                                              \
        }                                                                                          \
        l = t;                                                                                     \
    } while (0)
    ADD("Host: %s", c->hostport);
    if (c->access_key) {
        sigv4_header hs[4] = {{"host", c->hostport},
                              {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
                              {"x-amz-date", date},
                              {"x-amz-security-token", c->token}};
        sigv4_input in = {.method = "GET",
                          .canonical_uri = r->path,
                          .canonical_query = r->query,
                          .headers = hs,
                          .n_headers = c->token ? 4 : 3,
                          .payload_hash = SIGV4_EMPTY_SHA256,
                          .amz_date = date,
                          .region = c->region,
                          .service = "s3",
                          .access_key = c->access_key,
                          .secret_key = c->secret_key};
        sigv4_output o;
        if ((st = sigv4_sign(&in, &o))) goto out;
        ADD("Authorization: %s", o.authorization);
        sigv4_output_free(&o);
        ADD("x-amz-content-sha256: %s", SIGV4_EMPTY_SHA256);
        ADD("x-amz-date: %s", date);
        if (c->token) ADD("x-amz-security-token: %s", c->token);
    }
#undef ADD
out:
    if (st) {
        curl_slist_free_all(l);
        l = NULL;
    }
    *out = l;
    return st;
}

/* Encoded URL path for key ("/bucket/key" or "/key"); caller frees. */
static char *object_path(const s3_conf *c, const char *key)
{
    char *ek = sigv4_uri_encode(key, 1), *out = NULL;
    if (!ek) return NULL;
    pbuf b;
    pbuf_init(&b, 0, 16384);
    if (c->path_style ? !pbuf_printf(&b, "/%s/%s", c->bucket, ek) : !pbuf_printf(&b, "/%s", ek))
        out = pbuf_take(&b);
    pbuf_free(&b);
    free(ek);
    return out;
}

static kinfer_status *get_object(storage_job *job, void *ctx, const char *key, const char *rel)
{
    const s3_conf *c = ctx;
    kinfer_status *st = NULL;
    char *path = object_path(c, key), *url = NULL;
    if (!path || asprintf(&url, "%s://%s%s", c->scheme, c->hostport, path) < 0) {
        url = NULL;
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    s3_req r = {c, path, ""};
    st = storage__job_download(job, url, s3_headers, &r, rel);
out:
    free(path);
    free(url);
    return st;
}

/* One ListObjectsV2 page. */
static kinfer_status *list_get(storage_job *job, void *ctx, const char *eprefix, const char *etoken,
                               char **body, size_t *len)
{
    const s3_conf *c = ctx;
    kinfer_status *st = NULL;
    char *path = NULL, *query = NULL, *url = NULL;
    if (c->path_style ? asprintf(&path, "/%s", c->bucket) < 0 : !(path = strdup("/"))) path = NULL;
    /* Parameters sorted by name: the canonical query string is the URL's query. */
    if (!path ||
        asprintf(&query, "%s%s%slist-type=2&max-keys=%zu&prefix=%s",
                 etoken ? "continuation-token=" : "", etoken ? etoken : "", etoken ? "&" : "",
                 job->page_size, eprefix) < 0 ||
        asprintf(&url, "%s://%s%s?%s", c->scheme, c->hostport, path, query) < 0) {
        query = url = NULL;
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    s3_req r = {c, path, query};
    st = storage_http_get_mem(job->http, url, s3_headers, &r, job->list_max_bytes, body, len);
out:
    free(path);
    free(query);
    free(url);
    return st;
}

kinfer_status *storage__s3_fetch(storage_job *job, const storage_uri *u)
{
    kinfer_status *st = NULL;
    s3_conf c;
    if ((st = conf_load(job, u->bucket, &c))) return st;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "endpoint", json_object_new_string(c.hostport));
    json_object_object_add(f, "addressing",
                           json_object_new_string(c.path_style ? "path" : "virtual"));
    json_object_object_add(f, "region", json_object_new_string(c.region));
    json_object_object_add(f, "signed", json_object_new_boolean(c.access_key != NULL));
    kinfer_log_fields("info", "storage", "s3.config", f);
    storage_remote r = {.scheme = "s3",
                        .repeated_token_msg = "S3 listing repeated its continuation token",
                        .ctx = &c,
                        .list_get = list_get,
                        .list_parse = storage_list_parse_s3,
                        .get = get_object};
    return storage__remote_fetch(job, &r, u);
}
