/*
 * libFuzzer target for the controller's pure API functions: whatever JSON a user or the API server
 * hands over, reconcile_desired(), reconcile_handover(), status_compute(), status_compute_invalid()
 * and the pause functions (status_compute_paused() and co.) must answer with children or a precise
 * error, never crash or leak.
 * Input: a JSON document. When it is an object with "isvc", the members "deployment", "pods" and
 * "prev" feed status_compute(); otherwise the whole document is the InferenceService.
 */
#include <stddef.h>
#include <stdint.h>

#include "../src/reconcile/reconcile.h"
#include "../src/reconcile/status.h"

static json_object *member(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v) ? v
                                                                                           : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *doc, *isvc, *children = NULL, *status = NULL, *patch = NULL;
    static const reconcile_config cfg = {.runtime_image = "kinfer/kinfer-server:fuzz",
                                         .prometheus_address = "http://prometheus:9090"};
    if (!tok) return 0;
    doc = json_tokener_parse_ex(tok, (const char *)data, (int)size);
    json_tokener_free(tok);
    if (!doc) return 0;
    isvc = member(doc, "isvc") ? member(doc, "isvc") : doc;
    ctl_status_free(reconcile_desired(isvc, &cfg, &children));
    for (size_t i = 0; children && i < json_object_array_length(children); i++) {
        ctl_status_free(reconcile_handover(json_object_array_get_idx(children, i),
                                           member(doc, "deployment"), &patch));
        json_object_put(patch);
        patch = NULL;
    }
    ctl_status_free(status_compute(isvc, member(doc, "deployment"), member(doc, "pods"),
                                   member(doc, "prev"), "2026-01-01T00:00:00Z", &status));
    json_object_put(status);
    status = NULL;
    ctl_status_free(
        status_compute_invalid(isvc, "fuzz", member(doc, "prev"), "2026-01-01T00:00:00Z", &status));
    if (status)
        status_pause_condition(status, isvc, member(member(doc, "prev"), "conditions"),
                               "2026-01-01T00:00:00Z");
    json_object_put(status);
    status = NULL;
    /* the paused path: whatever the previous status and the children hold */
    ctl_status_free(status_compute_paused(isvc, member(doc, "deployment"), member(doc, "pods"),
                                          member(doc, "prev"), "2026-01-01T00:00:00Z", &status));
    json_object_put(status);
    (void)status_paused_since_ms(member(doc, "prev"));
    (void)status_pause_read(isvc, NULL);
    json_object_put(children);
    json_object_put(doc);
    return 0;
}
