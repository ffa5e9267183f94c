/* workqueue: client-go semantics (dedup, never two workers on one key, adds during processing
 * collapse into one re-run), rate limiting, delayed adds and shutdown, with real threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../src/runtime/workqueue.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_dedup_and_fifo(void **state)
{
    (void)state;
    workqueue *q = workqueue_create(5, 1000000);
    workqueue_add(q, "a");
    workqueue_add(q, "b");
    workqueue_add(q, "a");
    workqueue_add(q, "c");
    workqueue_add(q, "b");
    assert_int_equal(workqueue_len(q), 3);
    const char *want[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char *k = workqueue_get(q);
        assert_string_equal(k, want[i]);
        workqueue_done(q, k);
        free(k);
    }
    assert_int_equal(workqueue_len(q), 0);
    workqueue_free(q);
}

/* Takes the next key (there must be one), checks it, marks it done. */
static void take(workqueue *q, const char *want)
{
    char *k = workqueue_get(q);
    assert_non_null(k);
    assert_string_equal(k, want);
    workqueue_done(q, k);
    free(k);
}

/* The first lane is served before the normal one, FIFO within each; a waiting normal key added
 * first moves (once: its normal copy is not handed out again); a key added first while it is
 * processed comes back in the first lane. */
static void test_first_lane(void **state)
{
    (void)state;
    workqueue *q = workqueue_create(5, 1000000);
    workqueue_add(q, "n1");
    workqueue_add(q, "n2");
    workqueue_add(q, "n3");
    workqueue_add_first(q, "f1");
    workqueue_add_first(q, "n2"); /* moves */
    workqueue_add_first(q, "f1"); /* dedup */
    workqueue_add(q, "f1");       /* stays first */
    assert_int_equal(workqueue_len(q), 4);
    assert_int_equal(workqueue_len_first(q), 2);
    take(q, "f1");
    take(q, "n2");
    assert_int_equal(workqueue_len_first(q), 0);
    take(q, "n1");
    take(q, "n3");
    assert_int_equal(workqueue_len(q), 0);
    /* n2's stale normal copy was skipped: nothing else is handed out */
    workqueue_add(q, "last");
    take(q, "last");
    assert_int_equal(workqueue_len(q), 0);

    workqueue_add(q, "x");
    workqueue_add(q, "y");
    char *k = workqueue_get(q);
    assert_string_equal(k, "x");
    workqueue_add(q, "x");       /* dirty while processing */
    workqueue_add_first(q, "x"); /* ... and now for the first lane */
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_len(q), 2);
    take(q, "x");
    take(q, "y");
    assert_int_equal(workqueue_len(q), 0);

    /* a moved key re-added to the normal lane after it ran is handed out once, not twice */
    workqueue_add(q, "m");
    workqueue_add(q, "o");
    workqueue_add_first(q, "m");
    take(q, "m");
    workqueue_add(q, "m");
    assert_int_equal(workqueue_len(q), 2);
    take(q, "m"); /* at its old place, before o */
    take(q, "o");
    assert_int_equal(workqueue_len(q), 0);
    workqueue_add(q, "z");
    take(q, "z");
    workqueue_free(q);
}

/* Added while processing: not handed out again until done, then exactly once. */
static void test_add_during_processing_collapses(void **state)
{
    (void)state;
    workqueue *q = workqueue_create(5, 1000000);
    workqueue_add(q, "k");
    char *k = workqueue_get(q);
    workqueue_add(q, "k");
    workqueue_add(q, "k");
    workqueue_add(q, "k");
    assert_int_equal(workqueue_len(q), 0); /* held back while processing */
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_len(q), 1);
    k = workqueue_get(q);
    assert_string_equal(k, "k");
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_len(q), 0);
    workqueue_free(q);
}

#define NKEYS  20
#define ROUNDS 200

typedef struct shared {
    workqueue *q;
    atomic_int active[NKEYS];
    atomic_int runs[NKEYS];
    atomic_int overlap;
    atomic_int dirty_after[NKEYS]; /* adds that happened while the key was being processed */
} shared;

static void *work(void *arg)
{
    shared *s = arg;
    for (;;) {
        char *k = workqueue_get(s->q);
        if (!k) break;
        int i = atoi(k + 1);
        if (atomic_fetch_add(&s->active[i], 1) != 0) atomic_store(&s->overlap, 1);
        atomic_fetch_add(&s->runs[i], 1);
        usleep(200);
        atomic_fetch_sub(&s->active[i], 1);
        workqueue_done(s->q, k);
        free(k);
    }
    return NULL;
}

/* Eight workers, keys added concurrently from two producers: a key is never worked by two at once,
 * and every key added is worked at least once after its last add. */
static void test_threads_never_overlap(void **state)
{
    (void)state;
    shared *s = calloc(1, sizeof(*s));
    s->q = workqueue_create(5, 1000000);
    pthread_t w[8];
    for (int i = 0; i < 8; i++) pthread_create(&w[i], NULL, work, s);
    for (int r = 0; r < ROUNDS; r++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", r % NKEYS);
        workqueue_add(s->q, key);
        snprintf(key, sizeof(key), "k%d", (r * 7) % NKEYS);
        workqueue_add(s->q, key);
        if (r % 10 == 0) usleep(500);
    }
    /* drain: wait until nothing is queued or active */
    uint64_t deadline = now_ms() + 10000;
    for (;;) {
        int busy = (int)workqueue_len(s->q);
        for (int i = 0; i < NKEYS; i++) busy += atomic_load(&s->active[i]);
        if (!busy) break;
        assert_true(now_ms() < deadline);
        usleep(1000);
    }
    usleep(20000);
    assert_int_equal(workqueue_len(s->q), 0);
    workqueue_shutdown(s->q);
    for (int i = 0; i < 8; i++) pthread_join(w[i], NULL);
    assert_int_equal(atomic_load(&s->overlap), 0);
    int total = 0;
    for (int i = 0; i < NKEYS; i++) {
        assert_true(atomic_load(&s->runs[i]) >= 1);
        total += atomic_load(&s->runs[i]);
    }
    assert_true(total <= 2 * ROUNDS); /* dedup: never more runs than adds */
    workqueue_free(s->q);
    free(s);
}

static void test_rate_limit_growth_and_forget(void **state)
{
    (void)state;
    workqueue *q = workqueue_create(5, 1000 * 1000);
    const uint64_t want[] = {5, 10, 20, 40, 80};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(workqueue_next_delay_ms(q, "x"), want[i]);
        workqueue_add_rate_limited(q, "x");
    }
    assert_int_equal(workqueue_failures(q, "x"), 5);
    for (int i = 0; i < 40; i++) workqueue_add_rate_limited(q, "x");
    assert_int_equal(workqueue_next_delay_ms(q, "x"), 1000 * 1000); /* capped at 1000 s */
    assert_int_equal(workqueue_len_delayed(q), 1);                  /* one delayed entry, not 45 */
    workqueue_forget(q, "x");
    assert_int_equal(workqueue_failures(q, "x"), 0);
    assert_int_equal(workqueue_next_delay_ms(q, "x"), 5);
    assert_int_equal(workqueue_failures(q, "other"), 0);
    workqueue_free(q);
}

/* A delayed key appears only after its delay; delaying it again keeps the earlier time. */
static void test_add_after(void **state)
{
    (void)state;
    workqueue *q = workqueue_create(5, 1000000);
    uint64_t t0 = now_ms();
    workqueue_add_after(q, "late", 120);
    workqueue_add_after(q, "late", 5000); /* later: ignored */
    workqueue_add_after(q, "later", 10000);
    assert_int_equal(workqueue_len(q), 0);
    char *k = workqueue_get(q);
    uint64_t dt = now_ms() - t0;
    assert_string_equal(k, "late");
    assert_true(dt >= 115);
    assert_true(dt < 3000);
    workqueue_done(q, k);
    free(k);
    assert_int_equal(workqueue_len_delayed(q), 1);
    workqueue_add_after(q, "now", 0);
    k = workqueue_get(q);
    assert_string_equal(k, "now");
    workqueue_done(q, k);
    free(k);
    workqueue_free(q);
}

typedef struct sd {
    workqueue *q;
    atomic_int finished;
    atomic_int got_null;
} sd;

static void *slow_worker(void *arg)
{
    sd *s = arg;
    char *k = workqueue_get(s->q);
    if (!k) {
        atomic_store(&s->got_null, 1);
        return NULL;
    }
    usleep(100 * 1000);
    workqueue_done(s->q, k);
    free(k);
    atomic_store(&s->finished, 1);
    return NULL;
}

static void *idle_worker(void *arg)
{
    sd *s = arg;
    char *k = workqueue_get(s->q);
    if (!k) atomic_fetch_add(&s->got_null, 1);
    free(k);
    return NULL;
}

/* Shutdown wakes idle workers with NULL while an in-flight key finishes normally. */
static void test_shutdown_lets_inflight_finish(void **state)
{
    (void)state;
    sd s = {.q = workqueue_create(5, 1000000)};
    workqueue_add(s.q, "busy");
    pthread_t a, b;
    pthread_create(&a, NULL, slow_worker, &s);
    usleep(20 * 1000);
    pthread_create(&b, NULL, idle_worker, &s);
    usleep(20 * 1000);
    workqueue_shutdown(s.q);
    pthread_join(b, NULL);
    assert_int_equal(atomic_load(&s.got_null), 1);
    assert_int_equal(atomic_load(&s.finished), 0); /* still working */
    pthread_join(a, NULL);
    assert_int_equal(atomic_load(&s.finished), 1);
    workqueue_add(s.q, "after"); /* ignored once shut down */
    assert_int_equal(workqueue_len(s.q), 0);
    assert_null(workqueue_get(s.q));
    assert_true(workqueue_shutting_down(s.q));
    workqueue_free(s.q);
    workqueue_free(NULL);
}

int test_workqueue_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_and_fifo),
        cmocka_unit_test(test_add_during_processing_collapses),
        cmocka_unit_test(test_first_lane),
        cmocka_unit_test(test_threads_never_overlap),
        cmocka_unit_test(test_rate_limit_growth_and_forget),
        cmocka_unit_test(test_add_after),
        cmocka_unit_test(test_shutdown_lets_inflight_finish),
    };
    return cmocka_run_group_tests_name("workqueue", tests, NULL, NULL);
}
