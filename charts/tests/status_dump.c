/*
 * status_dump: runs the controller's own status computation (controller/src/reconcile/status.c) on
 * a case file and prints the InferenceService with the .status the controller would write. The
 * packaging tests feed that object to the Argo CD health script and to kstatus, so the GitOps
 * checks are judged against the status the controller really produces, not a hand-written
 * imitation.
 *
 * A case file is a JSON object with the keys:
 *   now          RFC 3339 time passed to the status functions
 *   isvc         the InferenceService
 *   deployment   its observed Deployment (optional)
 *   pods         its observed pods (optional)
 *   prev_status  the previous status (optional)
 *   invalid      a message: use status_compute_invalid() instead (optional)
 * Usage: test-status-dump CASE.json; exit 0 with the object on stdout, or 1 with a message.
 * A paused case (annotation serving.kinfer.dev/paused "true") goes through status_compute_paused(),
 * as the controller does, with prev_status as the status of the last reconcile before the pause;
 * every other case gets status_pause_condition() last, as in the controller.
 * A case's "after"."merge_status" (the rollout and traffic that controller/src/rollout/canary.c
 * writes after status_compute(), and its CanaryReady condition) is merged into the status here,
 * then status_rollout_conditions() runs on it as canary_plan_status() does. The other "after" edits
 * (a newer generation, a deletion timestamp) are applied by charts/tests/status_case.py.
 */
#include <stdio.h>
#include <string.h>

#include <json.h>

#include "../../controller/src/common/error.h"
#include "../../controller/src/reconcile/status.h"

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Python's status_case.merge: objects merge key by key, "conditions" are appended, the rest
 * replaced. */
static void merge(json_object *dst, json_object *src)
{
    json_object_object_foreach(src, k, v)
    {
        json_object *d = member(dst, k);
        if (!strcmp(k, "conditions") && d && json_object_is_type(d, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++)
                json_object_array_add(d, json_object_get(json_object_array_get_idx(v, i)));
        } else if (d && json_object_is_type(v, json_type_object) &&
                   json_object_is_type(d, json_type_object)) {
            merge(d, v);
        } else {
            json_object_object_add(dst, k, json_object_get(v));
        }
    }
}

int main(int argc, char **argv)
{
    int rc = 1;
    json_object *c = NULL, *status = NULL, *isvc, *invalid;
    ctl_status *st = NULL;
    const char *now;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE.json\n", argv[0]);
        return 2;
    }
    c = json_object_from_file(argv[1]);
    if (!c) {
        fprintf(stderr, "%s: unreadable JSON: %s\n", argv[1], json_util_get_last_err());
        goto out;
    }
    if (!json_object_is_type(c, json_type_object)) {
        fprintf(stderr, "%s: the case must be a JSON object, not %s\n", argv[1],
                json_type_to_name(json_object_get_type(c)));
        goto out;
    }
    isvc = member(c, "isvc");
    now = json_object_get_string(member(c, "now"));
    if (!isvc || !json_object_is_type(isvc, json_type_object)) {
        fprintf(stderr, "%s: no \"isvc\" object\n", argv[1]);
        goto out;
    }
    invalid = member(c, "invalid");
    if (status_pause_read(isvc, NULL) ==
        STATUS_PAUSE_ON) /* as the controller: children left alone */
        st = status_compute_paused(isvc, member(c, "deployment"), member(c, "pods"),
                                   member(c, "prev_status"), now, &status);
    else if (invalid)
        st = status_compute_invalid(isvc, json_object_get_string(invalid), member(c, "prev_status"),
                                    now, &status);
    else
        st = status_compute(isvc, member(c, "deployment"), member(c, "pods"),
                            member(c, "prev_status"), now, &status);
    if (st) {
        fprintf(stderr, "%s: status_compute: %s: %s\n", argv[1], ctl_strerror(ctl_status_code(st)),
                ctl_status_msg(st));
        goto out;
    }
    json_object *ms = member(member(c, "after") ? member(c, "after") : c, "merge_status");
    int paused = status_pause_read(isvc, NULL) == STATUS_PAUSE_ON;
    if (!paused && member(c, "after") && ms && json_object_is_type(ms, json_type_object)) {
        merge(status, ms);
        status_rollout_conditions(status, member(member(c, "prev_status"), "conditions"), now);
    }
    if (!paused)
        status_pause_condition(status, isvc, member(member(c, "prev_status"), "conditions"), now);
    /* isvc is owned by c; the status moves into it. */
    json_object_object_add(isvc, "status", status);
    status = NULL;
    puts(json_object_to_json_string_ext(isvc, JSON_C_TO_STRING_PLAIN));
    rc = 0;
out:
    ctl_status_free(st);
    json_object_put(status);
    json_object_put(c);
    return rc;
}
