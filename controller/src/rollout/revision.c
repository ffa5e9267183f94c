/* Revision names from pod-template hashes; see revision.h. */
#include "revision.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends the canonical JSON of o (object keys sorted) to f; skips the revision label. */
static void canon(FILE *f, json_object *o, int in_labels)
{
    switch (json_object_get_type(o)) {
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(o), k = 0;
        const char **keys = calloc(n ? n : 1, sizeof(*keys));
        if (!keys) return;
        json_object_object_foreach(o, key, val)
        {
            (void)val;
            keys[k++] = key;
        }
        /* insertion sort: objects here are small */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
                const char *t = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = t;
            }
        fputc('{', f);
        int first = 1;
        for (size_t i = 0; i < n; i++) {
            if (in_labels && !strcmp(keys[i], REVISION_LABEL)) continue;
            if (!first) fputc(',', f);
            first = 0;
            /* key, then value */
            json_object *ks = json_object_new_string(keys[i]);
            fputs(ks ? json_object_to_json_string_ext(ks, JSON_C_TO_STRING_PLAIN) : "\"\"", f);
            json_object_put(ks);
            fputc(':', f);
            canon(f, json_object_object_get(o, keys[i]), !strcmp(keys[i], "labels"));
        }
        fputc('}', f);
        free(keys);
        break;
    }
    case json_type_array:
        fputc('[', f);
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            if (i) fputc(',', f);
            canon(f, json_object_array_get_idx(o, i), 0);
        }
        fputc(']', f);
        break;
    default:
        fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), f);
        break;
    }
}

ctl_status *revision_name(const char *isvc_name, json_object *pod_template, char *buf, size_t len)
{
    char *text = NULL;
    size_t n = 0;
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (!isvc_name || !*isvc_name)
        return ctl_status_new(CTL_EINVAL, "revision: no InferenceService name");
    if (!pod_template || !json_object_is_type(pod_template, json_type_object))
        return ctl_status_new(CTL_EINVAL, "revision: the pod template must be an object");
    FILE *f = open_memstream(&text, &n);
    if (!f) return ctl_status_new(CTL_ENOMEM, "revision: out of memory");
    canon(f, pod_template, 0);
    if (fclose(f) || !text) {
        free(text);
        return ctl_status_new(CTL_ENOMEM, "revision: out of memory");
    }
    SHA256((const unsigned char *)text, n, md);
    free(text);
    int w =
        snprintf(buf, len, "%s-predictor-%02x%02x%02x%02x", isvc_name, md[0], md[1], md[2], md[3]);
    if (w < 0 || (size_t)w >= len)
        return ctl_status_new(CTL_EINVAL, "revision: name of \"%s\" does not fit in %zu bytes",
                              isvc_name, len);
    return NULL;
}

const char *revision_hash_of(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < REVISION_HASH_LEN + 11) return NULL;
    const char *h = name + n - REVISION_HASH_LEN;
    if (strncmp(h - 11, "-predictor-", 11)) return NULL;
    for (int i = 0; i < REVISION_HASH_LEN; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return NULL;
    return h;
}
