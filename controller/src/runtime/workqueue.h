/*
 * A rate-limited work queue of string keys with client-go semantics:
 * - a key queued many times is worked once (the dirty set);
 * - a key is never handed to two workers at once: added while being processed, it is marked
 *   dirty and queued again only when workqueue_done() is called, so the adds collapse into
 *   one re-run;
 * - per-key exponential backoff for failures (base * 2^failures, capped), reset by forget;
 * - delayed adds (requeue-after); a key delayed twice keeps the earlier time;
 * - two lanes: keys added with workqueue_add_first are handed out before the others (FIFO
 *   within each lane);
 * - shutdown: workqueue_get() returns NULL to every worker at once; keys being processed
 *   finish normally (workqueue_done still works), waiting keys are dropped.
 */
#ifndef KINFER_CTL_WORKQUEUE_H
#define KINFER_CTL_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct workqueue workqueue;

/* base_ms/max_ms: the per-key failure backoff (client-go: 5 ms and 1000 s). NULL on ENOMEM. */
workqueue *workqueue_create(uint64_t base_ms, uint64_t max_ms);
void workqueue_free(workqueue *q); /* NULL is a no-op; no worker may still use it */
void workqueue_add(workqueue *q, const char *key);
/* Like workqueue_add, but the key goes to a lane that is served before the normal one (and
 * moves there if it is already waiting in the normal one). For new objects: under a burst of
 * creates their first reconcile is not queued behind status refreshes of the ones before. */
void workqueue_add_first(workqueue *q, const char *key);
void workqueue_add_after(workqueue *q, const char *key, uint64_t delay_ms);
/* Adds after the key's backoff delay and counts one more failure for it. */
void workqueue_add_rate_limited(workqueue *q, const char *key);
/* The delay the next workqueue_add_rate_limited(key) would use, without counting it. */
uint64_t workqueue_next_delay_ms(workqueue *q, const char *key);
/* Clears the key's failure count. */
void workqueue_forget(workqueue *q, const char *key);
unsigned workqueue_failures(workqueue *q, const char *key);
/* Blocks for the next key; NULL once shut down. The key is the caller's until workqueue_done();
 * free it after that call. */
char *workqueue_get(workqueue *q);
/* Ends processing of key (as returned by get); re-queues it if it was added meanwhile. */
void workqueue_done(workqueue *q, const char *key);
void workqueue_shutdown(workqueue *q);
int workqueue_shutting_down(workqueue *q);
size_t workqueue_len(workqueue *q);         /* keys ready to be worked */
size_t workqueue_len_first(workqueue *q);   /* of those, the ones in the first lane */
size_t workqueue_len_delayed(workqueue *q); /* keys waiting for their time */

#endif
