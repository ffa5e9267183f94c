/* Memory of the last apply per child; see applied.h. */
#include "applied.h"
#include "../common/hash.h"
#include "../common/jsonx.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kube/objstore.h"

struct applied {
    pthread_mutex_t mu;
    /* key -> "hash marker", packed in an objstore's mmap'd region: one record per child is
     * written during a burst of creates, and as 6000 small heap blocks scattered among the
     * parse trees of that burst they kept about 3 MB of freed heap pages resident. */
    objstore *m;
};

applied *applied_create(void)
{
    applied *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    pthread_mutex_init(&a->mu, NULL);
    if (!(a->m = objstore_create())) {
        applied_free(a);
        return NULL;
    }
    return a;
}

void applied_free(applied *a)
{
    if (!a) return;
    objstore_free(a->m);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void applied_stamp(json_object *desired, char hash[17])
{
    json_object *md = jx_get(desired, "metadata"), *ann = jx_get(md, "annotations");
    if (ann) json_object_object_del(ann, APPLIED_ANNOTATION_HASH);
    if (ann && !json_object_object_length(ann)) { /* so stamping twice hashes the same text */
        json_object_object_del(md, "annotations");
        ann = NULL;
    }
    size_t n = 0;
    const char *s = json_object_to_json_string_length(desired, JSON_C_TO_STRING_PLAIN, &n);
    uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, s, n); /* stable across builds, unlike a seeded hash */
    snprintf(hash, 17, "%016" PRIx64, h);
    if (!md) return;
    if (!ann) {
        ann = json_object_new_object();
        json_object_object_add(md, "annotations", ann);
    }
    json_object_object_add(ann, APPLIED_ANNOTATION_HASH, json_object_new_string(hash));
}

/* "g<generation>" or "r<resourceVersion>" into buf; 0 when obj has neither. */
static int marker(json_object *obj, char *buf, size_t len)
{
    json_object *md = jx_get(obj, "metadata"), *g = jx_get(md, "generation"),
                *rv = jx_get(md, "resourceVersion");
    if (g && json_object_is_type(g, json_type_int))
        snprintf(buf, len, "g%" PRId64, json_object_get_int64(g));
    else if (rv && json_object_is_type(rv, json_type_string))
        snprintf(buf, len, "r%s", json_object_get_string(rv));
    else
        return 0;
    return 1;
}

void applied_record(applied *a, const char *key, const char *hash, json_object *result)
{
    char mk[160], val[200];
    int ok = marker(result, mk, sizeof(mk));
    if (ok) snprintf(val, sizeof(val), "%s %s", hash, mk);
    pthread_mutex_lock(&a->mu);
    if (!ok || objstore_put(a->m, key, val, strlen(val), "", "", NULL))
        (void)objstore_remove(a->m, key, NULL);
    pthread_mutex_unlock(&a->mu);
}

void applied_mark(json_object *obj)
{
    json_object *mf = jx_get(jx_get(obj, "metadata"), "managedFields");
    const char *ours = NULL; /* RFC 3339 UTC times compare as strings */
    size_t n = mf && json_object_is_type(mf, json_type_array) ? json_object_array_length(mf) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(mf, i);
        const char *m = jx_str(e, "manager"), *op = jx_str(e, "operation"), *t = jx_str(e, "time");
        if (m && op && t && !jx_get(e, "subresource") && !strcmp(m, "kinfer-controller") &&
            !strcmp(op, "Apply") && (!ours || strcmp(t, ours) > 0))
            ours = t;
    }
    int foreign = !ours;
    for (size_t i = 0; i < n && !foreign; i++) {
        json_object *e = json_object_array_get_idx(mf, i);
        const char *m = jx_str(e, "manager"), *t = jx_str(e, "time"),
                   *sub = jx_str(e, "subresource");
        /* status is not ours to keep; a scale by hand is (kinfer owns fixed replicas) */
        if (!m || (sub && !strcmp(sub, "status")) || !strcmp(m, "kinfer-controller") ||
            !strcmp(m, "kinfer-handover") || !strcmp(m, "kube-controller-manager"))
            continue;
        foreign =
            !t || strcmp(t, ours) >= 0; /* same second: cannot tell the order, so assume drift */
    }
    if (obj && json_object_is_type(obj, json_type_object))
        json_object_object_add(obj, APPLIED_FIELD_FOREIGN, json_object_new_boolean(foreign));
}

int applied_current(applied *a, const char *key, const char *hash, json_object *cached)
{
    json_object *h =
        jx_get(jx_get(jx_get(cached, "metadata"), "annotations"), APPLIED_ANNOTATION_HASH);
    char mk[160], want[200];
    if (!h || !json_object_is_type(h, json_type_string) ||
        strcmp(json_object_get_string(h), hash) || !marker(cached, mk, sizeof(mk)))
        return 0;
    snprintf(want, sizeof(want), "%s %s", hash, mk);
    json_object *f = jx_get(cached, APPLIED_FIELD_FOREIGN);
    int known = f && json_object_is_type(f, json_type_boolean),
        foreign = known && json_object_get_boolean(f);
    objstore_entry e;
    pthread_mutex_lock(&a->mu);
    const char *have = objstore_get(a->m, key, &e) ? e.json : NULL;
    /* With a record, the marker catches spec edits and foreign catches metadata-only ones;
     * without one (a restart), the cache is trusted unless someone else wrote the object. */
    int same = have ? !strcmp(have, want) && !foreign : known && !foreign;
    pthread_mutex_unlock(&a->mu);
    return same;
}

void applied_forget(applied *a, const char *key)
{
    pthread_mutex_lock(&a->mu);
    (void)objstore_remove(a->m, key, NULL);
    pthread_mutex_unlock(&a->mu);
}
