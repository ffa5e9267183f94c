/* jsonx: type-checked json-c accessors. See jsonx.h. */
#include "jsonx.h"

json_object *jx_get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v) ? v : NULL;
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
