/*
 * applied: what kinfer last server-side applied to each child, so that a reconcile can skip an
 * apply that would change nothing. A child is current when the informer's cached copy carries
 * the hash of the desired object (annotation APPLIED_ANNOTATION_HASH, set on every apply) and
 * the same marker as our last apply's response: metadata.generation where the kind has one
 * (any spec edit by someone else bumps it), else metadata.resourceVersion (any write at all).
 * So drift is repaired without caching specs. The record does not survive a restart; then the
 * managedFields write times (summarized at caching time) tell whether anyone wrote since.
 * Thread-safe.
 */
#ifndef KINFER_CTL_APPLIED_H
#define KINFER_CTL_APPLIED_H

#include <json.h>

/* The annotation holding the hash of the desired object a child was applied from. */
#define APPLIED_ANNOTATION_HASH "serving.kinfer.dev/applied-hash"

/* A field the informer adds to cached children (applied_mark): true when someone other than
 * kinfer wrote the object (not a subresource) at or after kinfer's last apply. Never sent. */
#define APPLIED_FIELD_FOREIGN "x-kinfer-foreign-write"

typedef struct applied applied;

applied *applied_create(void); /* NULL on ENOMEM */
void applied_free(applied *a); /* NULL is a no-op */
/* Hashes desired (its compact JSON text, without the hash annotation) into hash[17] and sets
 * the hash annotation on desired. */
void applied_stamp(json_object *desired, char hash[17]);
/* Remembers that key ("Kind ns/name") was applied with hash; result is the apply's response.
 * On ENOMEM it forgets key instead (the next reconcile then applies again). */
void applied_record(applied *a, const char *key, const char *hash, json_object *result);
/* 1 when cached (the informer's copy of the child, may be NULL) shows it as we last applied it
 * with this hash, else 0. With no record of key (after a restart) it falls back to the cached
 * hash annotation and APPLIED_FIELD_FOREIGN, so a converged cluster is not re-applied. */
int applied_current(applied *a, const char *key, const char *hash, json_object *cached);
/* Sets APPLIED_FIELD_FOREIGN on obj (a child with its metadata.managedFields) from the
 * managers' write times. The deployment controller (kube-controller-manager: revision
 * annotations, HPA scaling) and kinfer's own managers do not count, nor does /status. */
void applied_mark(json_object *obj);
/* Forgets key (after a failed apply or a delete). */
void applied_forget(applied *a, const char *key);

#endif
