/*
 * podcache: what the controller keeps of a pod in its informer cache. Pods are the most numerous
 * cached objects (one or more per InferenceService) and the controller reads only a few of their
 * fields: status_compute the phase, the PodScheduled condition and each container's waiting
 * reason; the canary's metric source the Ready condition, podIP and revision label; both the
 * name and deletionTimestamp. Everything else (owner references, container ids and image
 * digests, timestamps, other conditions) is dropped before the pod is stored, which also keeps
 * updates of only those fields from waking the InferenceService. The spec is dropped by the
 * informer itself (drop_fields).
 */
#ifndef KINFER_CTL_PODCACHE_H
#define KINFER_CTL_PODCACHE_H

#include <json.h>

/* An informer trim hook: reduces pod in place to the fields above (metadata.resourceVersion and
 * namespace stay for the informer). A pod without metadata or status keeps what it has of them. */
void podcache_trim(json_object *pod);

#endif
