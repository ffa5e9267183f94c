/* client-go style rate-limited workqueue; see workqueue.h. */
#include "workqueue.h"
#include "../common/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/strmap.h"

typedef struct delayed {
    char *key;
    uint64_t at_ms; /* CLOCK_MONOTONIC */
} delayed;

/* A ring buffer of queued keys. */
typedef struct ring {
    char **buf;
    size_t head, count, cap;
} ring;

/* The dirty set's value: which lane the key belongs in. */
#define LANE_FIRST  ((void *)1)
#define LANE_NORMAL NULL

struct workqueue {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on add, shutdown and new earliest delayed time */
    /* Two lanes, first served first. A key is in dirty, with its lane as the value, while it
     * waits; a ring may also hold stale copies (a key moved to the first lane, or already
     * handed out from the other copy), which get() skips. */
    ring lanes[2];      /* [0] first, [1] normal */
    size_t count;       /* keys waiting (not counting stale copies) */
    strmap *dirty;      /* keys that need processing (queued, or added while processing) */
    strmap *processing; /* keys handed out by get() and not yet done() */
    strmap *failures;   /* key -> (uintptr_t) failure count */
    delayed *later;
    size_t nlater, caplater;
    uint64_t base_ms, max_ms;
    int shutting_down;
};

workqueue *workqueue_create(uint64_t base_ms, uint64_t max_ms)
{
    workqueue *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->base_ms = base_ms ? base_ms : 1;
    q->max_ms = max_ms < q->base_ms ? q->base_ms : max_ms;
    q->dirty = strmap_create();
    q->processing = strmap_create();
    q->failures = strmap_create();
    if (!q->dirty || !q->processing || !q->failures) {
        workqueue_free(q);
        return NULL;
    }
    return q;
}

void workqueue_free(workqueue *q)
{
    if (!q) return;
    for (int l = 0; l < 2; l++) {
        ring *r = &q->lanes[l];
        for (size_t i = 0; i < r->count; i++) free(r->buf[(r->head + i) % r->cap]);
        free(r->buf);
    }
    for (size_t i = 0; i < q->nlater; i++) free(q->later[i].key);
    free(q->later);
    strmap_free(q->dirty);
    strmap_free(q->processing);
    strmap_free(q->failures);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Appends key to the lane (0 first, 1 normal); -1 on ENOMEM. */
static int fifo_push(workqueue *q, int lane, const char *key)
{
    ring *r = &q->lanes[lane];
    if (r->count == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        char **n = malloc(nc * sizeof(char *));
        if (!n) return -1;
        for (size_t i = 0; i < r->count; i++) n[i] = r->buf[(r->head + i) % r->cap];
        free(r->buf);
        r->buf = n;
        r->cap = nc;
        r->head = 0;
    }
    char *k = strdup(key);
    if (!k) return -1;
    r->buf[(r->head + r->count) % r->cap] = k;
    r->count++;
    return 0;
}

/* The add logic, with the lock held. A first-lane add of a key waiting in the normal lane moves
 * it (the normal copy goes stale). */
static void add_locked(workqueue *q, const char *key, int first)
{
    void *lane = first ? LANE_FIRST : LANE_NORMAL;
    if (q->shutting_down) return;
    if (strmap_has(q->dirty, key)) {
        if (!first || strmap_get(q->dirty, key) == LANE_FIRST) return;
        if (strmap_put(q->dirty, key, LANE_FIRST, NULL)) goto oom;
        if (strmap_has(q->processing, key)) return; /* done() queues it, in the first lane now */
        if (fifo_push(q, 0, key)) {
            if (strmap_put(q->dirty, key, LANE_NORMAL,
                           NULL)) { /* replacing cannot allocate; be safe */
                (void)strmap_remove(q->dirty, key);
                q->count--;
            }
            goto oom; /* the key keeps its place in the normal lane */
        }
        pthread_cond_signal(&q->cv);
        return;
    }
    if (strmap_put(q->dirty, key, lane, NULL)) goto oom;
    if (strmap_has(q->processing, key)) return; /* re-queued by done() */
    if (fifo_push(q, first ? 0 : 1, key)) {
        (void)strmap_remove(q->dirty, key);
        goto oom;
    }
    q->count++;
    pthread_cond_signal(&q->cv);
    return;
oom:
    log_error("workqueue: out of memory; key dropped", "key", key);
}

void workqueue_add(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    add_locked(q, key, 0);
    pthread_mutex_unlock(&q->mu);
}

void workqueue_add_first(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    add_locked(q, key, 1);
    pthread_mutex_unlock(&q->mu);
}

void workqueue_add_after(workqueue *q, const char *key, uint64_t delay_ms)
{
    if (delay_ms == 0) {
        workqueue_add(q, key);
        return;
    }
    uint64_t at = (uint64_t)clock_mono_ms() + delay_ms;
    pthread_mutex_lock(&q->mu);
    if (q->shutting_down) goto out;
    for (size_t i = 0; i < q->nlater; i++) {
        if (!strcmp(q->later[i].key, key)) {
            if (at < q->later[i].at_ms) {
                q->later[i].at_ms = at;
                pthread_cond_broadcast(&q->cv);
            }
            goto out;
        }
    }
    if (q->nlater == q->caplater) {
        size_t nc = q->caplater ? q->caplater * 2 : 16;
        delayed *n = realloc(q->later, nc * sizeof(*n));
        if (!n) goto oom;
        q->later = n;
        q->caplater = nc;
    }
    char *k = strdup(key);
    if (!k) goto oom;
    q->later[q->nlater++] = (delayed){k, at};
    pthread_cond_broadcast(&q->cv); /* a sleeping get() may need to wake earlier */
    goto out;
oom:
    log_error("workqueue: out of memory; delayed key dropped", "key", key);
out:
    pthread_mutex_unlock(&q->mu);
}

static uint64_t delay_for(workqueue *q, unsigned fails)
{
    uint64_t d = q->base_ms;
    for (unsigned i = 0; i < fails && d < q->max_ms; i++) d *= 2;
    return d > q->max_ms ? q->max_ms : d;
}

uint64_t workqueue_next_delay_ms(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    unsigned f = (unsigned)(uintptr_t)strmap_get(q->failures, key);
    pthread_mutex_unlock(&q->mu);
    return delay_for(q, f);
}

void workqueue_add_rate_limited(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    unsigned f = (unsigned)(uintptr_t)strmap_get(q->failures, key);
    if (strmap_put(q->failures, key, (void *)(uintptr_t)(f < 1000 ? f + 1 : f), NULL))
        log_error("workqueue: out of memory counting failures", "key", key);
    pthread_mutex_unlock(&q->mu);
    workqueue_add_after(q, key, delay_for(q, f));
}

void workqueue_forget(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    (void)strmap_remove(q->failures, key);
    pthread_mutex_unlock(&q->mu);
}

unsigned workqueue_failures(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    unsigned f = (unsigned)(uintptr_t)strmap_get(q->failures, key);
    pthread_mutex_unlock(&q->mu);
    return f;
}

/* Moves due delayed keys to the queue; returns the earliest remaining time or 0. */
static uint64_t promote_locked(workqueue *q, uint64_t now)
{
    uint64_t next = 0;
    for (size_t i = 0; i < q->nlater;) {
        if (q->later[i].at_ms <= now) {
            add_locked(q, q->later[i].key, 0);
            free(q->later[i].key);
            q->later[i] = q->later[--q->nlater];
        } else {
            if (!next || q->later[i].at_ms < next) next = q->later[i].at_ms;
            i++;
        }
    }
    return next;
}

char *workqueue_get(workqueue *q)
{
    char *key = NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shutting_down) goto out;
        uint64_t next = promote_locked(q, (uint64_t)clock_mono_ms());
        if (q->count) break;
        if (next) {
            struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000L};
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        } else {
            pthread_cond_wait(&q->cv, &q->mu);
        }
    }
    for (;;) { /* count > 0: a valid copy is in one of the lanes */
        ring *r = q->lanes[0].count ? &q->lanes[0] : &q->lanes[1];
        void *want = r == &q->lanes[0] ? LANE_FIRST : LANE_NORMAL;
        key = r->buf[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
        if (strmap_has(q->dirty, key) && strmap_get(q->dirty, key) == want &&
            !strmap_has(q->processing, key))
            break;
        free(key); /* stale: moved to the first lane, or its other copy was handed out */
        key = NULL;
    }
    q->count--;
    (void)strmap_remove(q->dirty, key);
    if (strmap_put(q->processing, key, NULL, NULL))
        log_error("workqueue: out of memory tracking key", "key", key);
out:
    pthread_mutex_unlock(&q->mu);
    return key;
}

void workqueue_done(workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    (void)strmap_remove(q->processing, key);
    if (strmap_has(q->dirty, key) && !q->shutting_down) {
        if (fifo_push(q, strmap_get(q->dirty, key) == LANE_FIRST ? 0 : 1, key)) {
            (void)strmap_remove(q->dirty, key);
            log_error("workqueue: out of memory; key dropped", "key", key);
        } else {
            q->count++;
            pthread_cond_signal(&q->cv);
        }
    }
    pthread_mutex_unlock(&q->mu);
}

void workqueue_shutdown(workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    q->shutting_down = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int workqueue_shutting_down(workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    int s = q->shutting_down;
    pthread_mutex_unlock(&q->mu);
    return s;
}

size_t workqueue_len(workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t workqueue_len_first(workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n =
        q->lanes[0].count; /* exact: a first-lane copy never goes stale (keys only move up) */
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t workqueue_len_delayed(workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->nlater;
    pthread_mutex_unlock(&q->mu);
    return n;
}
