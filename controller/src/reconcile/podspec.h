/*
 * podspec: the pod template of an InferenceService's predictor, as a pure function. It decides
 * the containers (a storage-initializer init container that runs `kinfer-server fetch` into an
 * emptyDir, or a read-only PVC volume for pvc:// models, and the kinfer-server container), probes,
 * the security context every pod gets (admitted by Pod Security Admission at level "restricted"),
 * resources and the GPU device flag, placement pass-through and the Prometheus scrape annotations.
 * It does not decide names, labels, replicas or autoscaling: reconcile.c and autoscale.c do.
 */
#ifndef KINFER_CTL_PODSPEC_H
#define KINFER_CTL_PODSPEC_H

#include <json.h>

#include "../common/error.h"

#define PODSPEC_MODEL_DIR       "/mnt/models"
#define PODSPEC_PVC_MOUNT       "/mnt/pvc"
#define PODSPEC_PORT            8080
#define PODSPEC_DEFAULT_GRACE_S 30 /* Kubernetes' terminationGracePeriodSeconds default */
#define PODSPEC_CONTAINER       "kinfer-server"
#define PODSPEC_INIT_CONTAINER  "storage-initializer"
/* The revision of a pod (rollout/revision.h), on its template's labels; kinfer-server reads it
 * through the downward API (KINFER_REVISION) and names it in every response. */
#define REVISION_LABEL "serving.kinfer.dev/revision"
/* The non-root user and group of the kinfer-server image (serving-runtime/Dockerfile). */
#define PODSPEC_UID 65532

typedef struct podspec_config {
    const char *image; /* the kinfer-server image, for both containers; required */
} podspec_config;

/* Pure: the predictor's pod template as {"metadata": {"annotations": {...}}, "spec": {...}} (the
 * caller adds labels). Reads metadata.name and spec.predictor of isvc (borrowed). *tmpl is new,
 * owned by the caller. On a bad spec: NULL and CTL_EINVAL naming the field, e.g.
 * "spec.predictor.model.resources.requests.nvidia.com/gpu: GPUs must be set in limits". */
ctl_status *podspec_build(json_object *isvc, const podspec_config *cfg, json_object **tmpl)
    __attribute__((warn_unused_result));

/* Nonzero when the resource name is a GPU kinfer-server would run on: nvidia.com/gpu or a MIG
 * slice (nvidia.com/mig-<profile>, e.g. nvidia.com/mig-1g.5gb). */
int podspec_is_gpu_resource(const char *name);

#endif
