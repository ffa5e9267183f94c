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
#include "storage_buf.h"
#include "storage_job.h"
#include "storage_list.h"
#include "storage_log.h"

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
    storage_buf b;
    storage_buf_init(&b, 16384);
    if (c->path_style ? !storage_buf_printf(&b, "/%s/%s", c->bucket, ek)
                      : !storage_buf_printf(&b, "/%s", ek))
        out = storage_buf_take(&b);
    storage_buf_free(&b);
    free(ek);
    return out;
}

static kinfer_status *get_object(storage_job *job, const s3_conf *c, const char *key,
                                 const char *rel)
{
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

/* Lists every key under prefix into *keys (capped at job->max_objects). */
static kinfer_status *list_all(storage_job *job, const s3_conf *c, const char *prefix,
                               storage_list_page *all)
{
    kinfer_status *st = NULL;
    char *token = NULL, *body = NULL, *path = NULL, *url = NULL, *query = NULL, *eprefix = NULL,
         *etoken = NULL;
    size_t cap = 0, len = 0;
    memset(all, 0, sizeof(*all));
    if (c->path_style ? asprintf(&path, "/%s", c->bucket) < 0 : !(path = strdup("/"))) path = NULL;
    if (!path || !(eprefix = sigv4_uri_encode(prefix, 0))) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    for (int page = 0;; page++) {
        storage_list_page p;
        free(etoken);
        etoken = NULL;
        if (token && !(etoken = sigv4_uri_encode(token, 0))) {
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
            goto out;
        }
        free(query);
        free(url);
        free(body);
        query = url = body = NULL;
        /* Parameters sorted by name: the canonical query string is the URL's query. */
        if (asprintf(&query, "%s%s%slist-type=2&max-keys=%zu&prefix=%s",
                     etoken ? "continuation-token=" : "", etoken ? etoken : "", etoken ? "&" : "",
                     job->page_size, eprefix) < 0 ||
            asprintf(&url, "%s://%s%s?%s", c->scheme, c->hostport, path, query) < 0) {
            query = url = NULL;
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
            goto out;
        }
        s3_req r = {c, path, query};
        if ((st = storage_http_get_mem(job->http, url, s3_headers, &r, job->list_max_bytes, &body,
                                       &len)))
            goto out;
        if ((st = storage_list_parse_s3(body, len, job->max_objects - all->n_keys, &p))) {
            if (kinfer_status_code(st) == KINFER_ETOOBIG)
                st =
                    kinfer_status_wrap(st, "over KINFER_STORAGE_MAX_OBJECTS=%zu", job->max_objects);
            goto out;
        }
        for (size_t i = 0; i < p.n_keys; i++) {
            if (all->n_keys == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                char **k = realloc(all->keys, ncap * sizeof(*k));
                if (!k) {
                    storage_list_page_clear(&p);
                    st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
                    goto out;
                }
                all->keys = k;
                cap = ncap;
            }
            all->keys[all->n_keys++] = p.keys[i];
            p.keys[i] = NULL;
        }
        p.n_keys = 0;
        int more = p.truncated;
        /* A server that hands back the token it was given would loop forever. */
        if (more && token && !strcmp(token, p.next_token)) {
            storage_list_page_clear(&p);
            st = kinfer_status_new(KINFER_EINVAL, "S3 listing repeated its continuation token");
            goto out;
        }
        free(token);
        token = p.next_token;
        p.next_token = NULL;
        storage_list_page_clear(&p);
        if (!more) break;
    }
out:
    free(token);
    free(body);
    free(path);
    free(url);
    free(query);
    free(eprefix);
    free(etoken);
    if (st) storage_list_page_clear(all);
    return st;
}

kinfer_status *storage__s3_fetch(storage_job *job, const storage_uri *u)
{
    kinfer_status *st = NULL;
    s3_conf c;
    storage_list_page all = {0};
    char *prefix = NULL;
    if ((st = conf_load(job, u->bucket, &c))) goto out;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "endpoint", json_object_new_string(c.hostport));
    json_object_object_add(f, "addressing",
                           json_object_new_string(c.path_style ? "path" : "virtual"));
    json_object_object_add(f, "region", json_object_new_string(c.region));
    json_object_object_add(f, "signed", json_object_new_boolean(c.access_key != NULL));
    storage_log_emit("info", "s3.config", f);

    size_t klen = strlen(u->key);
    if (klen && u->key[klen - 1] != '/') {
        const char *base = strrchr(u->key, '/');
        base = base ? base + 1 : u->key;
        const char *why;
        if (storage_relpath_check(base, &why)) {
            st = kinfer_status_new(KINFER_EINVAL, "s3://%s/%s: object name '%s' is unusable: %s",
                                   u->bucket, u->key, base, why);
            goto out;
        }
        st = get_object(job, &c, u->key, base);
        if (kinfer_status_code(st) != KINFER_ENOTFOUND) goto out;
        kinfer_status_free(st);
        st = NULL;
        if (asprintf(&prefix, "%s/", u->key) < 0) prefix = NULL;
    } else {
        prefix = strdup(u->key);
    }
    if (!prefix) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = list_all(job, &c, prefix, &all))) goto out;
    for (size_t i = 0; i < all.n_keys; i++) {
        const char *rel;
        if ((st = storage__job_relpath(prefix, all.keys[i], &rel))) goto out;
        if (rel && (st = get_object(job, &c, all.keys[i], rel))) goto out;
    }
    if (job->n_files == 0)
        st = kinfer_status_new(KINFER_ENOTFOUND,
                               "s3://%s/%s: no such object, and no objects under s3://%s/%s",
                               u->bucket, u->key, u->bucket, prefix);
out:
    storage_list_page_clear(&all);
    free(prefix);
    return st;
}
