/*
 * gs:// downloads through the GCS JSON API: objects.get with alt=media, objects.list with
 * pageToken. Anonymous for public objects, or a bearer token from GOOGLE_OAUTH_ACCESS_TOKEN or
 * the file named by GOOGLE_OAUTH_ACCESS_TOKEN_FILE. STORAGE_EMULATOR_HOST (as in Google's
 * client libraries) or storage_options.endpoint replaces the endpoint. It does not mint tokens
 * from service-account keys or the metadata server. See docs/storage.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "storage_job.h"
#include "storage_list.h"
#include "storage_log.h"

#define TOKEN_MAX 8192

typedef struct gcs_conf {
    char base[600]; /* scheme://host[:port], no trailing slash */
    char token[TOKEN_MAX];
} gcs_conf;

static kinfer_status *conf_load(storage_job *job, gcs_conf *c)
{
    memset(c, 0, sizeof(*c));
    const char *ep = job->endpoint ? job->endpoint : getenv("STORAGE_EMULATOR_HOST");
    if (ep && *ep) {
        int has_scheme = !strncmp(ep, "http://", 7) || !strncmp(ep, "https://", 8);
        size_t n = strlen(ep);
        while (n && ep[n - 1] == '/') n--;
        if (n == 0 || n > 500)
            return kinfer_status_new(KINFER_EINVAL, "GCS endpoint '%.64s' is unusable", ep);
        snprintf(c->base, sizeof(c->base), "%s%.*s", has_scheme ? "" : "http://", (int)n, ep);
    } else {
        snprintf(c->base, sizeof(c->base), "https://storage.googleapis.com");
    }
    const char *tok = getenv("GOOGLE_OAUTH_ACCESS_TOKEN"),
               *file = getenv("GOOGLE_OAUTH_ACCESS_TOKEN_FILE");
    if (tok && *tok) {
        if (strlen(tok) >= TOKEN_MAX)
            return kinfer_status_new(KINFER_EAUTH, "GOOGLE_OAUTH_ACCESS_TOKEN too long");
        strcpy(c->token, tok);
    } else if (file && *file) {
        FILE *f = fopen(file, "re");
        if (!f)
            return kinfer_status_new(KINFER_EAUTH, "GOOGLE_OAUTH_ACCESS_TOKEN_FILE %s: %s", file,
                                     strerror(errno));
        size_t n = fread(c->token, 1, TOKEN_MAX - 1, f);
        int more = fgetc(f) != EOF;
        fclose(f);
        if (more)
            return kinfer_status_new(KINFER_EAUTH, "token file %s is over %d bytes", file,
                                     TOKEN_MAX - 1);
        c->token[n] = '\0';
        c->token[strcspn(c->token, "\r\n")] = '\0';
        if (!*c->token) return kinfer_status_new(KINFER_EAUTH, "token file %s is empty", file);
    }
    for (const char *p = c->token; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return kinfer_status_new(KINFER_EAUTH,
                                     "GCS access token contains whitespace or control characters");
    return NULL;
}

static kinfer_status *gcs_headers(void *ctx, struct curl_slist **out)
{
    const gcs_conf *c = ctx;
    *out = NULL;
    if (!*c->token) return NULL;
    char line[TOKEN_MAX + 32];
    snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
    if (!(*out = curl_slist_append(NULL, line)))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    return NULL;
}

static kinfer_status *get_object(storage_job *job, const gcs_conf *c, const char *bucket,
                                 const char *name, const char *rel)
{
    char *en = sigv4_uri_encode(name, 0), *url = NULL;
    kinfer_status *st = NULL;
    if (!en || asprintf(&url, "%s/storage/v1/b/%s/o/%s?alt=media", c->base, bucket, en) < 0) {
        url = NULL;
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
    } else {
        st = storage__job_download(job, url, gcs_headers, (void *)c, rel);
    }
    free(en);
    free(url);
    return st;
}

static kinfer_status *list_all(storage_job *job, const gcs_conf *c, const char *bucket,
                               const char *prefix, storage_list_page *all)
{
    kinfer_status *st = NULL;
    char *token = NULL, *etoken = NULL, *eprefix = sigv4_uri_encode(prefix, 0), *url = NULL,
         *body = NULL;
    size_t cap = 0, len;
    memset(all, 0, sizeof(*all));
    if (!eprefix) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    for (;;) {
        storage_list_page p;
        free(url);
        free(body);
        free(etoken);
        url = body = etoken = NULL;
        if ((token && !(etoken = sigv4_uri_encode(token, 0))) ||
            asprintf(&url, "%s/storage/v1/b/%s/o?prefix=%s&maxResults=%zu%s%s", c->base, bucket,
                     eprefix, job->page_size, etoken ? "&pageToken=" : "",
                     etoken ? etoken : "") < 0) {
            url = NULL;
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
            goto out;
        }
        if ((st = storage_http_get_mem(job->http, url, gcs_headers, (void *)c, job->list_max_bytes,
                                       &body, &len)))
            goto out;
        if ((st = storage_list_parse_gcs(body, len, job->max_objects - all->n_keys, &p))) {
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
        if (more && token && !strcmp(token, p.next_token)) {
            storage_list_page_clear(&p);
            st = kinfer_status_new(KINFER_EINVAL, "GCS listing repeated its page token");
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
    free(etoken);
    free(eprefix);
    free(url);
    free(body);
    if (st) storage_list_page_clear(all);
    return st;
}

kinfer_status *storage__gcs_fetch(storage_job *job, const storage_uri *u)
{
    kinfer_status *st = NULL;
    gcs_conf *c = malloc(sizeof(*c));
    storage_list_page all = {0};
    char *prefix = NULL;
    if (!c) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if ((st = conf_load(job, c))) goto out;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "endpoint", json_object_new_string(c->base));
    json_object_object_add(f, "bearer_token", json_object_new_boolean(*c->token != '\0'));
    storage_log_emit("info", "gcs.config", f);

    size_t klen = strlen(u->key);
    if (klen && u->key[klen - 1] != '/') {
        const char *base = strrchr(u->key, '/'), *why;
        base = base ? base + 1 : u->key;
        if (storage_relpath_check(base, &why)) {
            st = kinfer_status_new(KINFER_EINVAL, "gs://%s/%s: object name '%s' is unusable: %s",
                                   u->bucket, u->key, base, why);
            goto out;
        }
        st = get_object(job, c, u->bucket, u->key, base);
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
    if ((st = list_all(job, c, u->bucket, prefix, &all))) goto out;
    for (size_t i = 0; i < all.n_keys; i++) {
        const char *rel;
        if ((st = storage__job_relpath(prefix, all.keys[i], &rel))) goto out;
        if (rel && (st = get_object(job, c, u->bucket, all.keys[i], rel))) goto out;
    }
    if (job->n_files == 0)
        st = kinfer_status_new(KINFER_ENOTFOUND,
                               "gs://%s/%s: no such object, and no objects under gs://%s/%s",
                               u->bucket, u->key, u->bucket, prefix);
out:
    storage_list_page_clear(&all);
    free(prefix);
    free(c);
    return st;
}
