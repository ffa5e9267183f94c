/*
 * An informer keeps a local copy of one resource type: LIST (paged), then WATCH from the
 * list's resourceVersion with bookmarks, re-watching from the last resourceVersion when the
 * server ends a watch and relisting on 410 Gone (HTTP or ERROR event), on an event over the
 * size cap, or on a malformed event. Errors back off exponentially with jitter.
 * The cache is keyed "namespace/name" and stores each object compactly as JSON text with
 * metadata.managedFields and the last-applied annotation removed, packed (pack.h) against the
 * first object the informer cached; readers get parsed copies.
 * Each object is filed under one index value (e.g. its owning InferenceService's key) given
 * by the config's index function; an object whose index is NULL is not cached at all, which
 * keeps the cache to what the controller owns. Handlers run on the informer's thread and must
 * be quick (they enqueue keys). It does not resync on a timer.
 */
#ifndef KINFER_CTL_INFORMER_H
#define KINFER_CTL_INFORMER_H

#include <json.h>
#include <stddef.h>

#include "../common/error.h"
#include "kube.h"

typedef struct informer informer;

typedef enum informer_event { INFORMER_ADD, INFORMER_UPDATE, INFORMER_DELETE } informer_event;

/* The index value of obj as a new string (free()), or NULL to leave obj out of the cache. */
typedef char *(*informer_index_fn)(json_object *obj);
/* key: "namespace/name"; index: the object's index value. Both valid only during the call. */
typedef void (*informer_handler_fn)(void *ud, informer_event ev, const char *key,
                                    const char *index);

typedef struct informer_config {
    const kube_resource *res;
    const char *namespace;      /* NULL or "": all namespaces */
    const char *label_selector; /* NULL: all objects */
    informer_index_fn index;    /* NULL: every object, indexed by its own key */
    informer_handler_fn handler;
    void *ud;
    int timeout_s;    /* watch timeoutSeconds; 0: 300 */
    size_t event_cap; /* largest watch event; 0: 16 MiB */
    long page_size;   /* list page size; 0: 20 */
    /* Top-level fields not kept in the cache (NULL-terminated, or NULL): a consumer that reads
     * only metadata and status need not pay for spec. */
    const char *const *drop_fields;
    /* Reshapes an object in place before it is cached (before managedFields and drop_fields
     * are removed, so it can summarize them), e.g. keeping one field of the spec; NULL: none. */
    void (*trim)(json_object *obj);
    /* Fields ("name" or "parent.child") whose changes alone fire no update handler
     * (NULL-terminated, or NULL): the InferenceService informer ignores status.conditions,
     * which the controller itself writes, so its own writes do not wake it again. They are
     * still cached. Updates that change only metadata.resourceVersion (or managedFields)
     * never fire the handler. */
    const char *const *quiet_fields;
} informer_config;

/* Strings in cfg are copied. The client must outlive the informer. */
ctl_status *informer_create(kube_client *c, const informer_config *cfg, informer **out)
    __attribute__((warn_unused_result));
/* Starts the list/watch thread. */
ctl_status *informer_start(informer *inf) __attribute__((warn_unused_result));
/* Asks the thread to stop without waiting, so several informers can wind down together. */
void informer_request_stop(informer *inf);
/* Stops and joins the thread (within about a second); idempotent. */
void informer_stop(informer *inf);
void informer_free(informer *inf); /* stops first; NULL is a no-op */
/* Nonzero once the first list has been stored. */
int informer_synced(informer *inf);
/* Nonzero while the resource cannot be listed at all: the last list was refused with 403
 * (RBAC) or 404 (API not served). The informer keeps retrying with a long backoff; callers
 * waiting for every informer to sync should not wait for this one. */
int informer_unavailable(informer *inf);
/* A parsed copy of the cached object (caller owns it), or NULL. */
json_object *informer_get(informer *inf, const char *key);
/* A new array (caller owns it) of parsed copies of the objects filed under index. */
json_object *informer_list_index(informer *inf, const char *index);
size_t informer_size(informer *inf);
/* Bytes held by the cache: the packed JSON text, keys and versions (for memory checks). */
size_t informer_bytes(informer *inf);

/* Exposed for tests: applies one framed watch event to the cache as the watch thread does.
 * CTL_EGONE asks for a relist; CTL_EPARSE for a malformed event. */
ctl_status *informer__apply_event(informer *inf, const char *data, size_t len)
    __attribute__((warn_unused_result));
/* The last resourceVersion seen (owned by inf, valid until the next event). */
const char *informer__resource_version(informer *inf);
/* Drops metadata.managedFields and the kubectl last-applied annotation from obj in place. */
void informer__strip(json_object *obj);

#endif
