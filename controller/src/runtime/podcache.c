/* The pod cache's trim; see podcache.h. */
#include "podcache.h"

#include <string.h>

#include "../common/jsonx.h"
#include "../rollout/revision.h"

/* dst[k] = src[k] (a new reference) when src has it. */
static void keep(json_object *dst, json_object *src, const char *k)
{
    json_object *v = jx_get(src, k);
    if (v) json_object_object_add(dst, k, json_object_get(v));
}

/* The Ready and PodScheduled conditions, without their timestamps. */
static json_object *trim_conditions(json_object *conds)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0;
         out && json_object_is_type(conds, json_type_array) && i < json_object_array_length(conds);
         i++) {
        json_object *c = json_object_array_get_idx(conds, i), *t = json_object_new_object();
        const char *type = jx_str(c, "type");
        if (!t || !type || (strcmp(type, "Ready") && strcmp(type, "PodScheduled"))) {
            json_object_put(t);
            continue;
        }
        keep(t, c, "type");
        keep(t, c, "status");
        keep(t, c, "reason");
        keep(t, c, "message");
        json_object_array_add(out, t);
    }
    return out;
}

/* {reason, message, exitCode} of a container state's "terminated" (the current state, or
 * lastState after a restart), or NULL when there is none. */
static json_object *trim_terminated(json_object *state)
{
    json_object *t = jx_get(state, "terminated"), *out;
    if (!t || !json_object_is_type(t, json_type_object) || !(out = json_object_new_object()))
        return NULL;
    keep(out, t, "reason");
    keep(out, t, "message");
    keep(out, t, "exitCode");
    return out;
}

/* Each container's name and restart count; while it waits, the waiting reason and message; and
 * how it last terminated (status names an OOM kill or a failed model fetch from it). */
static json_object *trim_containers(json_object *list)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0;
         out && json_object_is_type(list, json_type_array) && i < json_object_array_length(list);
         i++) {
        json_object *c = json_object_array_get_idx(list, i), *t = json_object_new_object();
        json_object *waiting = jx_get(jx_get(c, "state"), "waiting");
        if (waiting && !json_object_is_type(waiting, json_type_object)) waiting = NULL;
        json_object *w = waiting ? json_object_new_object() : NULL,
                    *state = json_object_new_object();
        json_object *term = trim_terminated(jx_get(c, "state")),
                    *last = trim_terminated(jx_get(c, "lastState"));
        if (!t || !state || (waiting && !w)) {
            json_object_put(t);
            json_object_put(w);
            json_object_put(state);
            json_object_put(term);
            json_object_put(last);
            continue;
        }
        keep(t, c, "name");
        keep(t, c, "restartCount");
        if (waiting) {
            keep(w, waiting, "reason");
            keep(w, waiting, "message");
            json_object_object_add(state, "waiting", w);
        }
        if (term) json_object_object_add(state, "terminated", term);
        if (json_object_object_length(state))
            json_object_object_add(t, "state", state);
        else
            json_object_put(state);
        if (last) {
            json_object *ls = json_object_new_object();
            if (ls) {
                json_object_object_add(ls, "terminated", last);
                json_object_object_add(t, "lastState", ls);
            } else
                json_object_put(last);
        }
        json_object_array_add(out, t);
    }
    return out;
}

void podcache_trim(json_object *pod)
{
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    json_object *md = jx_get(pod, "metadata"), *ps = jx_get(pod, "status");
    json_object *m = md ? json_object_new_object() : NULL,
                *s = ps ? json_object_new_object() : NULL;
    if (m) { /* on ENOMEM the pod just stays whole */
        json_object *rev = jx_get(jx_get(md, "labels"), REVISION_LABEL);
        keep(m, md, "name");
        keep(m, md, "namespace");
        keep(m, md, "resourceVersion");
        keep(m, md, "deletionTimestamp");
        json_object *labels = rev ? json_object_new_object() : NULL;
        if (labels) {
            json_object_object_add(labels, REVISION_LABEL, json_object_get(rev));
            json_object_object_add(m, "labels", labels);
        }
        json_object_object_add(pod, "metadata",
                               m); /* frees the old metadata; kept values hold a reference */
    }
    if (s) {
        keep(s, ps, "phase");
        keep(s, ps, "podIP");
        if (jx_get(ps, "conditions"))
            json_object_object_add(s, "conditions", trim_conditions(jx_get(ps, "conditions")));
        for (int l = 0; l < 2; l++)
            if (jx_get(ps, lists[l]))
                json_object_object_add(s, lists[l], trim_containers(jx_get(ps, lists[l])));
        json_object_object_add(pod, "status", s);
    }
}
