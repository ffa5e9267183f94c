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
#include "../log/log.h"

#define TOKEN_MAX 8192

typedef struct gcs_conf {
    char base[600]; /* scheme://host[:port], no trailing slash */
    char token[TOKEN_MAX];
    const char *bucket; /* the URI's */
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

static kinfer_status *get_object(storage_job *job, void *ctx, const char *name, const char *rel)
{
    const gcs_conf *c = ctx;
    char *en = sigv4_uri_encode(name, 0), *url = NULL;
    kinfer_status *st = NULL;
    if (!en || asprintf(&url, "%s/storage/v1/b/%s/o/%s?alt=media", c->base, c->bucket, en) < 0) {
        url = NULL;
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
    } else {
        st = storage__job_download(job, url, gcs_headers, (void *)c, rel);
    }
    free(en);
    free(url);
    return st;
}

/* One objects.list page. */
static kinfer_status *list_get(storage_job *job, void *ctx, const char *eprefix, const char *etoken,
                               char **body, size_t *len)
{
    const gcs_conf *c = ctx;
    char *url = NULL;
    if (asprintf(&url, "%s/storage/v1/b/%s/o?prefix=%s&maxResults=%zu%s%s", c->base, c->bucket,
                 eprefix, job->page_size, etoken ? "&pageToken=" : "", etoken ? etoken : "") < 0)
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    kinfer_status *st = storage_http_get_mem(job->http, url, gcs_headers, (void *)c,
                                             job->list_max_bytes, body, len);
    free(url);
    return st;
}

kinfer_status *storage__gcs_fetch(storage_job *job, const storage_uri *u)
{
    kinfer_status *st = NULL;
    gcs_conf *c = malloc(sizeof(*c));
    if (!c) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if ((st = conf_load(job, c))) goto out;
    c->bucket = u->bucket;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "endpoint", json_object_new_string(c->base));
    json_object_object_add(f, "bearer_token", json_object_new_boolean(*c->token != '\0'));
    kinfer_log_fields("info", "storage", "gcs.config", f);
    storage_remote r = {.scheme = "gs",
                        .repeated_token_msg = "GCS listing repeated its page token",
                        .ctx = c,
                        .list_get = list_get,
                        .list_parse = storage_list_parse_gcs,
                        .get = get_object};
    st = storage__remote_fetch(job, &r, u);
out:
    free(c);
    return st;
}
