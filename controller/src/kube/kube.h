/*
 * A small Kubernetes API client on libcurl and json-c. TLS is always verified (the configured
 * CA or the system store); connections, DNS and TLS sessions are shared by all threads through
 * one curl share handle, so a request reuses an idle connection instead of re-handshaking.
 * HTTP/1.1 only: watches hold a connection each, and nothing here multiplexes.
 * Every API error is a ctl_status carrying the HTTP code and the Status reason and message.
 * Bodies are capped: a response over its cap fails with CTL_ETOOBIG rather than growing.
 * It does not retry: callers (informer, workqueue, leader election) own retry policy.
 */
#ifndef KINFER_CTL_KUBE_H
#define KINFER_CTL_KUBE_H

#include <json.h>
#include <stdatomic.h>
#include <stddef.h>

#include "../common/error.h"
#include "kubeconfig.h"

typedef struct kube_client kube_client;

/* A resource type: group ("" for core), version, plural, kind, namespaced. */
typedef struct kube_resource {
    const char *group, *version, *resource, *kind;
    int namespaced;
} kube_resource;

extern const kube_resource kube_res_inferenceservices, kube_res_deployments, kube_res_services,
    kube_res_hpas, kube_res_pods, kube_res_leases, kube_res_events, kube_res_configmaps;

/* Server-side apply field manager (same as RECONCILE_FIELD_MANAGER). */
#define KUBE_FIELD_MANAGER "kinfer-controller"

#define KUBE_MAX_BODY (8u << 20)  /* single objects */
#define KUBE_MAX_LIST (64u << 20) /* one list page */

/* The resource for an object's apiVersion and kind from a fixed table, or NULL. */
const kube_resource *kube_resource_for(const char *api_version, const char *kind);

/* The client keeps copies of what it needs from cfg. */
ctl_status *kube_client_create(const kube_config *cfg, kube_client **out)
    __attribute__((warn_unused_result));
void kube_client_free(kube_client *c); /* NULL is a no-op; no request may be in flight */
/* Whole-request limit for everything but watches (default 60 s); set before sharing the client. */
void kube_client_set_timeout_ms(kube_client *c, long ms);
/* Connections the client keeps open, in use and idle together (default 10). Requests beyond it
 * still run, but each one that ends over the limit closes the oldest idle connection, so the
 * next request pays a new TCP and TLS handshake: size it to the concurrent requests (workers
 * plus watches). Set before sharing the client. */
void kube_client_set_max_connections(kube_client *c, long n);

/* All *out objects are new references owned by the caller. ns may be NULL/"" for cluster scope or
 * "all namespaces" (lists and watches). */
ctl_status *kube_get(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                     json_object **out) __attribute__((warn_unused_result));
/* One list page: label_selector and cont may be NULL, limit 0 means no limit. */
ctl_status *kube_list(kube_client *c, const kube_resource *r, const char *ns,
                      const char *label_selector, long limit, const char *cont, json_object **out)
    __attribute__((warn_unused_result));
ctl_status *kube_create(kube_client *c, const kube_resource *r, const char *ns, json_object *obj,
                        json_object **out) __attribute__((warn_unused_result));
/* PUT: obj must carry metadata.resourceVersion for optimistic concurrency (409 Conflict otherwise).
 */
ctl_status *kube_update(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                        json_object *obj, json_object **out) __attribute__((warn_unused_result));
ctl_status *kube_delete(kube_client *c, const kube_resource *r, const char *ns, const char *name)
    __attribute__((warn_unused_result));
/* Server-side apply (fieldManager=KUBE_FIELD_MANAGER, force=true) of obj to NAME or
 * NAME/subresource (subresource NULL or "status"). *created (if given) is 1 when the server
 * answered 201 Created. out may be NULL. */
ctl_status *kube_apply(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                       const char *subresource, json_object *obj, json_object **out, int *created)
    __attribute__((warn_unused_result));
/* kube_apply under another field manager (e.g. RECONCILE_HANDOVER_MANAGER), force=true. */
ctl_status *kube_apply_as(kube_client *c, const kube_resource *r, const char *ns, const char *name,
                          const char *subresource, json_object *obj, const char *manager,
                          json_object **out, int *created) __attribute__((warn_unused_result));
/* JSON merge patch of NAME or NAME/subresource. out may be NULL. */
ctl_status *kube_patch_merge(kube_client *c, const kube_resource *r, const char *ns,
                             const char *name, const char *subresource, json_object *patch,
                             json_object **out) __attribute__((warn_unused_result));
/* A core/v1 Event about obj (which needs apiVersion, kind, metadata.name/namespace/uid);
 * type "Normal" or "Warning". */
ctl_status *kube_create_event(kube_client *c, json_object *obj, const char *type,
                              const char *reason, const char *message)
    __attribute__((warn_unused_result));
/* kube_create_event for callers that go on either way: a failure is logged (with the reason),
 * never returned, so an Event can never fail a reconcile. */
void kube_record_event(kube_client *c, json_object *obj, const char *type, const char *reason,
                       const char *message);

/* Receives raw watch-stream bytes as they arrive; nonzero stops the watch (kube_watch then
 * returns CTL_ECANCELED, or the error the callback set in its own state). */
typedef int (*kube_watch_fn)(void *ud, const char *data, size_t len);
/* Streams a watch until the server closes it (NULL), *stop becomes nonzero (CTL_ECANCELED), the
 * callback stops it (CTL_ECANCELED) or an error (410 -> CTL_EGONE). rv may be NULL/"". The server
 * ends the watch after timeout_s; the client gives up at timeout_s + 30. Bookmarks are requested.
 */
ctl_status *kube_watch(kube_client *c, const kube_resource *r, const char *ns,
                       const char *label_selector, const char *rv, int timeout_s, kube_watch_fn fn,
                       void *ud, const atomic_int *stop) __attribute__((warn_unused_result));

/* The current time as RFC 3339 ("2026-01-02T03:04:05Z") or MicroTime (6 fraction digits). */
void kube_format_time(char *buf, size_t len, int micro);

#endif
