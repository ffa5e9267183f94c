/*
 * jsonx: the few json-c accessors every controller module needs, type-checked and NULL-safe, so
 * that reading a field of an object that may be absent or of the wrong type is one call.
 * Nothing here allocates except jx_child; returned pointers are borrowed from the parent object.
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

#endif
