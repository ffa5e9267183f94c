/*
 * jsonx: the few json-c accessors every controller module needs, type-checked and NULL-safe, so
 * that reading a field of an object that may be absent or of the wrong type is one call, plus
 * the deep copy, the string setter and the condition lookup that every module used to write
 * for itself. Only jx_child, jx_set_str, jx_copy and jx_condition_new allocate; other returned
 * pointers are borrowed from the parent object. Nothing here knows a Kubernetes kind beyond the
 * shape of status.conditions.
 */
#ifndef KINFER_CTL_JSONX_H
#define KINFER_CTL_JSONX_H

#include <json.h>
#include <stdint.h>

/* Member k of o, or NULL when o is not an object or has no such member. */
json_object *jx_get(json_object *o, const char *k);
/* Member k of o when it is a string, else NULL. */
const char *jx_str(json_object *o, const char *k);
/* Member k of o when it is an integer, else dflt. */
int64_t jx_int(json_object *o, const char *k, int64_t dflt);
/* Member k of o when it is an object; otherwise a new empty object put there (o owns it). */
json_object *jx_child(json_object *o, const char *k);
/* Member k of o when it is an object, else NULL (no object is created). */
json_object *jx_obj(json_object *o, const char *k);
/* o[k] = a new string v (replacing what was there; o owns it). */
void jx_set_str(json_object *o, const char *k, const char *v);
/* A deep copy of a borrowed subtree, owned by the caller; NULL for NULL or out of memory. */
json_object *jx_copy(json_object *src);
/* The object of this kind and metadata.name in the array arr, or NULL. */
json_object *jx_find_named(json_object *arr, const char *kind, const char *name);
/* The condition of this type in conds (an array of {type, status, ...}), or NULL. A status's
 * conditions are jx_get(status, "conditions"). */
json_object *jx_condition(json_object *conds, const char *type);
/* 1 when conds holds a condition of this type whose status is st ("True", "False"...). */
int jx_condition_is(json_object *conds, const char *type, const char *st);
/* A new condition {type, status, reason, message, lastTransitionTime, observedGeneration} (caller
 * owns it); lastTransitionTime is the one in prev_conds when its status is unchanged, else now. */
json_object *jx_condition_new(json_object *prev_conds, const char *type, const char *status,
                              const char *reason, const char *message, int64_t generation,
                              const char *now);

#endif
