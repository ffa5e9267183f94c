/*
 * URI parsing and path-traversal checks for model storage; see storage_uri.h. Keys are taken
 * literally (no percent-decoding), as KServe's storage initializer does for s3:// and gs://.
 */
#include "storage_uri.h"

#include <stdlib.h>
#include <string.h>

void storage_uri_clear(storage_uri *u)
{
    if (!u) return;
    free(u->bucket);
    free(u->key);
    free(u->path);
    free(u->url);
    memset(u, 0, sizeof(*u));
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* S3 and GCS both allow lowercase letters, digits, '.', '-' and (GCS, legacy S3) '_' and
 * uppercase; 3..222 bytes covers GCS's dotted names. Anything else cannot be a bucket and
 * would otherwise end up in a Host header or a URL path. */
static int valid_bucket(const char *b, size_t n)
{
    if (n < 3 || n > 222) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

static kinfer_status *parse_bucket_key(const char *scheme, const char *rest, storage_uri *out)
{
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!valid_bucket(rest, blen))
        return kinfer_status_new(
            KINFER_EINVAL, "%s:// URI has a bad bucket name '%.*s' (3-222 of a-z A-Z 0-9 . - _)",
            scheme, (int)(blen > 64 ? 64 : blen), rest);
    const char *key = slash ? slash + 1 : "";
    if (strlen(key) > STORAGE_KEY_MAX)
        return kinfer_status_new(KINFER_EINVAL, "%s:// key is %zu bytes (max %d)", scheme,
                                 strlen(key), STORAGE_KEY_MAX);
    out->bucket = strndup(rest, blen);
    out->key = strdup(key);
    if (!out->bucket || !out->key)
        return kinfer_status_new(KINFER_ENOMEM, "out of memory parsing URI");
    return NULL;
}

kinfer_status *storage_uri_parse(const char *text, storage_uri *out)
{
    kinfer_status *st = NULL;
    memset(out, 0, sizeof(*out));
    if (!text || !*text) return kinfer_status_new(KINFER_EINVAL, "empty model URI");
    size_t n = strlen(text);
    if (n > STORAGE_URI_MAX)
        return kinfer_status_new(KINFER_EINVAL, "model URI is %zu bytes (max %d)", n,
                                 STORAGE_URI_MAX);
    if (has_control(text))
        return kinfer_status_new(KINFER_EINVAL, "model URI contains control characters");

    if (!strncmp(text, "s3://", 5)) {
        out->scheme = STORAGE_SCHEME_S3;
        st = parse_bucket_key("s3", text + 5, out);
    } else if (!strncmp(text, "gs://", 5)) {
        out->scheme = STORAGE_SCHEME_GS;
        st = parse_bucket_key("gs", text + 5, out);
    } else if (!strncmp(text, "pvc://", 6)) {
        out->scheme = STORAGE_SCHEME_PVC;
        const char *rest = text + 6, *slash = strchr(rest, '/');
        size_t clen = slash ? (size_t)(slash - rest) : strlen(rest);
        const char *why = NULL;
        if (clen == 0 || clen > 253)
            st = kinfer_status_new(KINFER_EINVAL,
                                   "pvc:// URI needs a claim name: pvc://CLAIM[/PATH]");
        else if (slash && slash[1] && storage_relpath_check(slash + 1, &why))
            st = kinfer_status_new(KINFER_EINVAL, "pvc:// path '%s' is unsafe: %s", slash + 1, why);
        else if (!(out->bucket = strndup(rest, clen)) ||
                 !(out->key = strdup(slash ? slash + 1 : "")))
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing URI");
    } else if (!strncmp(text, "http://", 7) || !strncmp(text, "https://", 8)) {
        out->scheme = STORAGE_SCHEME_HTTP;
        const char *host = strstr(text, "://") + 3;
        if (!*host || *host == '/' || *host == '?' || *host == '#')
            st = kinfer_status_new(KINFER_EINVAL, "URL '%s' has no host", text);
        else if (strchr(text, ' '))
            st = kinfer_status_new(KINFER_EINVAL, "URL contains a space; percent-encode it");
        else if (!(out->url = strdup(text)))
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing URI");
    } else if (!strncmp(text, "file://", 7)) {
        out->scheme = STORAGE_SCHEME_LOCAL;
        /* file:///abs/path only: a host part (file://host/x) is not something we can open. */
        if (text[7] != '/')
            st = kinfer_status_new(KINFER_EINVAL,
                                   "file URI must be file:///ABSOLUTE/PATH, got '%s'", text);
        else if (!(out->path = strdup(text + 7)))
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing URI");
    } else {
        const char *colon = strstr(text, "://");
        if (colon) {
            st = kinfer_status_new(
                KINFER_EINVAL,
                "unsupported URI scheme '%.*s' (want s3, gs, http, https, file, pvc, or a path)",
                (int)((colon - text) > 32 ? 32 : (colon - text)), text);
        } else {
            out->scheme = STORAGE_SCHEME_LOCAL;
            if (!(out->path = strdup(text)))
                st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing URI");
        }
    }
    if (st) storage_uri_clear(out);
    return st;
}

int storage_relpath_check(const char *rel, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    size_t n = strlen(rel);
    if (n == 0) return *why = "empty path", -1;
    if (n > 4095) return *why = "path over 4095 bytes", -1;
    if (rel[0] == '/') return *why = "absolute path", -1;
    if (has_control(rel)) return *why = "control character in path", -1;
    const char *p = rel;
    while (1) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0) return *why = "empty path component (//, or a trailing /)", -1;
        if (len > 255) return *why = "path component over 255 bytes", -1;
        if (len == 1 && p[0] == '.') return *why = "'.' path component", -1;
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return *why = "'..' path component (path traversal)", -1;
        if (!slash) break;
        p = slash + 1;
    }
    return 0;
}
