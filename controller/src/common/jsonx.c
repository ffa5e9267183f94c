/* jsonx: type-checked json-c accessors. See jsonx.h. */
#include "jsonx.h"

#include <string.h>

json_object *jx_get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
               ? v
               : NULL;
}

const char *jx_str(json_object *o, const char *k)
{
    json_object *v = jx_get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t jx_int(json_object *o, const char *k, int64_t dflt)
{
    json_object *v = jx_get(o, k);
    return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : dflt;
}

json_object *jx_child(json_object *o, const char *k)
{
    json_object *v = jx_get(o, k);
    if (v && json_object_is_type(v, json_type_object)) return v;
    v = json_object_new_object();
    json_object_object_add(o, k, v);
    return v;
}

json_object *jx_obj(json_object *o, const char *k)
{
    json_object *v = jx_get(o, k);
    return v && json_object_is_type(v, json_type_object) ? v : NULL;
}

void jx_set_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

json_object *jx_copy(json_object *src)
{
    json_object *dst = NULL;
    return src && !json_object_deep_copy(src, &dst, NULL) ? dst : NULL;
}

json_object *jx_condition(json_object *conds, const char *type)
{
    if (!conds || !json_object_is_type(conds, json_type_array)) return NULL;
    for (size_t i = 0; i < json_object_array_length(conds); i++) {
        json_object *c = json_object_array_get_idx(conds, i);
        const char *t = jx_str(c, "type");
        if (t && !strcmp(t, type)) return c;
    }
    return NULL;
}

int jx_condition_is(json_object *conds, const char *type, const char *st)
{
    const char *s = jx_str(jx_condition(conds, type), "status");
    return s && !strcmp(s, st);
}

json_object *jx_condition_new(json_object *prev_conds, const char *type, const char *status,
                              const char *reason, const char *message, int64_t generation,
                              const char *now)
{
    json_object *c = json_object_new_object(), *old = jx_condition(prev_conds, type);
    const char *old_st = jx_str(old, "status"), *old_t = jx_str(old, "lastTransitionTime");
    jx_set_str(c, "type", type);
    jx_set_str(c, "status", status);
    jx_set_str(c, "reason", reason);
    jx_set_str(c, "message", message);
    jx_set_str(c, "lastTransitionTime", old_st && old_t && !strcmp(old_st, status) ? old_t : now);
    json_object_object_add(c, "observedGeneration", json_object_new_int64(generation));
    return c;
}

json_object *jx_find_named(json_object *arr, const char *kind, const char *name)
{
    for (size_t i = 0; kind && name && arr && json_object_is_type(arr, json_type_array) &&
                       i < json_object_array_length(arr);
         i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        const char *k = jx_str(c, "kind"), *n = jx_str(jx_get(c, "metadata"), "name");
        if (k && n && !strcmp(k, kind) && !strcmp(n, name)) return c;
    }
    return NULL;
}
