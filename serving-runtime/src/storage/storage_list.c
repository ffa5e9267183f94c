/*
 * Listing and error-body parsers; see storage_list.h for what is (deliberately) not handled.
 * All scanning is by pointer and remaining length: the input need not be NUL-terminated.
 */
#include "storage_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "storage_uri.h"

/* First occurrence of needle in [p, end), NULL if none. */
static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    if (p >= end || (size_t)(end - p) < n) return NULL;
    return memmem(p, (size_t)(end - p), needle, n);
}

static int put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes XML character data [p, p+n) into a new string. NULL (and *why) on a stray '<', an
 * unknown or unterminated entity, or a character reference to NUL, a surrogate or past U+10FFFF.
 * Decoding never grows the text (an entity is at least as long as its UTF-8), so n+1 suffices. */
static char *xml_text(const char *p, size_t n, const char **why)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) return *why = "out of memory", NULL;
    const char *end = p + n;
    while (p < end) {
        if (*p == '<') {
            *why = "markup inside a text element (CDATA and nesting are not supported)";
            goto bad;
        }
        if (*p != '&') {
            *o++ = *p++;
            continue;
        }
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi || semi - p > 12) {
            *why = "unterminated entity";
            goto bad;
        }
        size_t elen = (size_t)(semi - p) + 1;
        static const struct {
            const char *name;
            char c;
        } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        int done = 0;
        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && !done; i++)
            if (elen == strlen(ents[i].name) && !memcmp(p, ents[i].name, elen))
                *o++ = ents[i].c, done = 1;
        if (!done) {
            if (elen < 4 || p[1] != '#') {
                *why = "unknown entity";
                goto bad;
            }
            unsigned long cp = 0;
            int hex = p[2] == 'x' || p[2] == 'X';
            const char *d = p + (hex ? 3 : 2);
            if (d == semi) {
                *why = "empty character reference";
                goto bad;
            }
            for (; d < semi; d++) {
                int v;
                if (*d >= '0' && *d <= '9')
                    v = *d - '0';
                else if (hex && *d >= 'a' && *d <= 'f')
                    v = *d - 'a' + 10;
                else if (hex && *d >= 'A' && *d <= 'F')
                    v = *d - 'A' + 10;
                else {
                    *why = "bad digit in character reference";
                    goto bad;
                }
                cp = cp * (hex ? 16 : 10) + (unsigned long)v;
                if (cp > 0x10FFFF) break;
            }
            if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                *why = "character reference out of range";
                goto bad;
            }
            o += put_utf8(o, cp);
        }
        p = semi + 1;
    }
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Text of the first <tag>...</tag> in [p, end); *found tells whether the element exists.
 * Returns NULL with *found=1 on malformed content (and *why). */
static char *element(const char *p, const char *end, const char *tag, int *found, const char **why,
                     const char **after)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    *found = 0;
    const char *s = find(p, end, open);
    if (!s) return NULL;
    *found = 1;
    s += strlen(open);
    const char *e = find(s, end, close);
    if (!e) return *why = "element not closed", NULL;
    if (after) *after = e + strlen(close);
    return xml_text(s, (size_t)(e - s), why);
}

void storage_list_page_clear(storage_list_page *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_keys; i++) free(p->keys[i]);
    free(p->keys);
    free(p->next_token);
    memset(p, 0, sizeof(*p));
}

static int push_key(storage_list_page *out, char *key, size_t *cap)
{
    if (out->n_keys == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **k = realloc(out->keys, ncap * sizeof(*k));
        if (!k) return -1;
        out->keys = k;
        *cap = ncap;
    }
    out->keys[out->n_keys++] = key;
    return 0;
}

int storage_list_s3_error(const char *xml, size_t len, char *code, size_t code_size, char *msg,
                          size_t msg_size)
{
    const char *end = xml + len, *why = NULL, *err;
    int found;
    if (code_size) code[0] = '\0';
    if (msg_size) msg[0] = '\0';
    if (!xml || !(err = find(xml, end, "<Error>"))) return -1;
    char *c = element(err, end, "Code", &found, &why, NULL);
    if (!c) return -1;
    char *m = element(err, end, "Message", &found, &why, NULL);
    snprintf(code, code_size, "%s", c);
    if (m) snprintf(msg, msg_size, "%s", m);
    free(c);
    free(m);
    return 0;
}

kinfer_status *storage_list_parse_s3(const char *xml, size_t len, size_t max_keys,
                                     storage_list_page *out)
{
    kinfer_status *st = NULL;
    const char *end = xml + len, *why = "malformed", *p;
    size_t cap = 0;
    int found;
    char *v = NULL;
    memset(out, 0, sizeof(*out));

    char code[128], msg[512];
    if (!storage_list_s3_error(xml, len, code, sizeof(code), msg, sizeof(msg)))
        return kinfer_status_new(KINFER_EHTTP, "S3 list failed: %s: %s", code, msg);
    if (!(p = find(xml, end, "<ListBucketResult")))
        return kinfer_status_new(KINFER_EINVAL, "S3 list response has no <ListBucketResult>");
    if (!find(p, end, "</ListBucketResult>"))
        return kinfer_status_new(KINFER_EINVAL,
                                 "S3 list response is cut off (no </ListBucketResult>)");
    const char *root = p;

    /* Keys live only inside <Contents>; scanning block by block keeps a <Key> elsewhere (there is
     * none in ListObjectsV2, but a hostile body could add one) from becoming a download. */
    while ((p = find(p, end, "<Contents>"))) {
        const char *cend = find(p, end, "</Contents>");
        if (!cend) {
            st = kinfer_status_new(KINFER_EINVAL, "S3 list response: <Contents> not closed");
            goto out;
        }
        const char *after = NULL;
        char *key = element(p, cend, "Key", &found, &why, &after);
        if (!found) {
            st = kinfer_status_new(KINFER_EINVAL, "S3 list response: <Contents> without <Key>");
            goto out;
        }
        if (!key) {
            st = kinfer_status_new(KINFER_EINVAL, "S3 list response: bad <Key>: %s", why);
            goto out;
        }
        if (strlen(key) > STORAGE_KEY_MAX || !*key) {
            st =
                kinfer_status_new(KINFER_EINVAL, "S3 list response: key of %zu bytes", strlen(key));
            free(key);
            goto out;
        }
        if (out->n_keys >= max_keys) {
            free(key);
            st =
                kinfer_status_new(KINFER_ETOOBIG, "S3 listing has more than %zu objects", max_keys);
            goto out;
        }
        if (push_key(out, key, &cap)) {
            free(key);
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing S3 listing");
            goto out;
        }
        p = cend + strlen("</Contents>");
    }

    v = element(root, end, "IsTruncated", &found, &why, NULL);
    if (found && !v) {
        st = kinfer_status_new(KINFER_EINVAL, "S3 list response: bad <IsTruncated>: %s", why);
        goto out;
    }
    if (v && strcmp(v, "true") && strcmp(v, "false")) {
        st = kinfer_status_new(KINFER_EINVAL, "S3 list response: <IsTruncated> is '%.16s'", v);
        goto out;
    }
    out->truncated = v && !strcmp(v, "true");
    out->next_token = element(root, end, "NextContinuationToken", &found, &why, NULL);
    if (found && !out->next_token) {
        st = kinfer_status_new(KINFER_EINVAL, "S3 list response: bad <NextContinuationToken>: %s",
                               why);
        goto out;
    }
    if (out->truncated && (!out->next_token || !*out->next_token)) {
        st = kinfer_status_new(KINFER_EINVAL,
                               "S3 list response is truncated but has no NextContinuationToken");
        goto out;
    }
    if (out->next_token && strlen(out->next_token) > 4096) {
        st = kinfer_status_new(KINFER_EINVAL, "S3 continuation token over 4096 bytes");
        goto out;
    }
out:
    free(v);
    if (st) storage_list_page_clear(out);
    return st;
}

kinfer_status *storage_list_parse_gcs(const char *json, size_t len, size_t max_keys,
                                      storage_list_page *out)
{
    kinfer_status *st = NULL;
    size_t cap = 0;
    memset(out, 0, sizeof(*out));
    json_tokener *tok = json_tokener_new_ex(32);
    if (!tok) return kinfer_status_new(KINFER_ENOMEM, "out of memory parsing GCS listing");
    json_object *root = len > 0x7fffffff ? NULL : json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!root || jerr != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
        st = kinfer_status_new(KINFER_EINVAL, "GCS list response is not one JSON value: %s",
                               jerr == json_tokener_success ? "trailing data"
                                                            : json_tokener_error_desc(jerr));
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        st = kinfer_status_new(KINFER_EINVAL, "GCS list response is not a JSON object");
        goto out;
    }
    json_object *items = NULL, *tokobj = NULL, *err = NULL;
    if (json_object_object_get_ex(root, "error", &err)) {
        json_object *m = NULL;
        json_object_object_get_ex(err, "message", &m);
        st = kinfer_status_new(
            KINFER_EHTTP, "GCS list failed: %s",
            m && json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "error");
        goto out;
    }
    if (json_object_object_get_ex(root, "items", &items)) {
        if (!json_object_is_type(items, json_type_array)) {
            st = kinfer_status_new(KINFER_EINVAL, "GCS list response: items is not an array");
            goto out;
        }
        size_t n = json_object_array_length(items);
        if (n > max_keys) {
            st = kinfer_status_new(KINFER_ETOOBIG, "GCS listing has more than %zu objects",
                                   max_keys);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            json_object *it = json_object_array_get_idx(items, i), *name = NULL;
            if (!json_object_is_type(it, json_type_object) ||
                !json_object_object_get_ex(it, "name", &name) ||
                !json_object_is_type(name, json_type_string)) {
                st = kinfer_status_new(KINFER_EINVAL,
                                       "GCS list response: item %zu has no string name", i);
                goto out;
            }
            size_t nl = (size_t)json_object_get_string_len(name);
            const char *s = json_object_get_string(name);
            if (nl == 0 || nl > STORAGE_KEY_MAX || memchr(s, '\0', nl)) {
                st = kinfer_status_new(KINFER_EINVAL,
                                       "GCS list response: item %zu name of %zu bytes", i, nl);
                goto out;
            }
            char *k = strdup(s);
            if (!k || push_key(out, k, &cap)) {
                free(k);
                st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing GCS listing");
                goto out;
            }
        }
    }
    if (json_object_object_get_ex(root, "nextPageToken", &tokobj)) {
        if (!json_object_is_type(tokobj, json_type_string) ||
            json_object_get_string_len(tokobj) == 0 || json_object_get_string_len(tokobj) > 4096) {
            st = kinfer_status_new(KINFER_EINVAL, "GCS list response: bad nextPageToken");
            goto out;
        }
        if (!(out->next_token = strdup(json_object_get_string(tokobj)))) {
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory parsing GCS listing");
            goto out;
        }
        out->truncated = 1;
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    if (st) storage_list_page_clear(out);
    return st;
}
