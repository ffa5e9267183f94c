/*
 * revision: the identity of a predictor revision. A revision is the hash of the Deployment's pod
 * template (what makes pods different), so a change of replicas or autoscaling is not a new
 * revision but a new image, model, argument or resource is. Its name, "<isvc>-predictor-<hash8>",
 * is carried on every child of that revision in the label serving.kinfer.dev/revision and in the
 * status. 8 hex digits keep the name within 63 characters (isvc names are at most 44).
 * Pure: no clock, no I/O.
 */
#ifndef KINFER_CTL_REVISION_H
#define KINFER_CTL_REVISION_H

#include <json.h>
#include <stddef.h>

#include "../common/error.h"
#include "../reconcile/podspec.h" /* REVISION_LABEL */

/* On the stable Deployment: the predictor spec (JSON) it was built from, so the previous revision
 * can be rebuilt after a controller restart while a newer one is being canaried. */
#define REVISION_ANNOTATION_SPEC "serving.kinfer.dev/predictor-spec"
/* On the stable Deployment: the revision that was rolled out before it (previousRolledoutRevision).
 */
#define REVISION_ANNOTATION_PREVIOUS "serving.kinfer.dev/previous-revision"
#define REVISION_HASH_LEN            8
/* Longest revision name: 44 (isvc) + "-predictor-" + 8 + NUL. */
#define REVISION_NAME_MAX 72

/* Pure: the revision name of a pod template (a Deployment's spec.template) of InferenceService
 * `isvc_name` into buf: "<isvc_name>-predictor-<first 8 hex of sha256(template JSON)>". The
 * template is serialized with sorted keys so key order does not matter. The revision label itself,
 * if present in the template's labels, is ignored (the hash does not depend on its own value).
 * CTL_EINVAL when the template is not an object or the name does not fit. */
ctl_status *revision_name(const char *isvc_name, json_object *pod_template, char *buf, size_t len)
    __attribute__((warn_unused_result));

/* The 8-character hash at the end of a revision name (a pointer into name), or NULL when the name
 * is not "<...>-predictor-<8 hex>". */
const char *revision_hash_of(const char *name);

#endif
