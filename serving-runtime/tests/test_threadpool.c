/* The intra-op pool: every part of a region runs exactly once, whether the workers are spinning
 * (back-to-back regions) or asleep (spin budget 0, or a gap longer than the budget), and a
 * second caller that finds the pool busy runs its region alone instead of waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "../src/engine/threadpool.h"

#define TP_THREADS 3
#define TP_REGIONS 2000

typedef struct tp_count {
    _Atomic int hits[TP_THREADS];
    _Atomic int bad_nth;
    int want_nth;
} tp_count;

static void tp_count_part(void *arg, int ith, int nth)
{
    tp_count *c = arg;
    if (nth != c->want_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&c->bad_nth, 1);
    else
        atomic_fetch_add(&c->hits[ith], 1);
}

static void run_regions(const char *spin_us, int gap_us)
{
    setenv("KINFER_POOL_SPIN_US", spin_us, 1);
    threadpool *p = threadpool_create(TP_THREADS);
    unsetenv("KINFER_POOL_SPIN_US");
    assert_non_null(p);
    assert_int_equal(threadpool_size(p), TP_THREADS);
    int regions = gap_us ? 50 : TP_REGIONS;
    for (int r = 0; r < regions; r++) {
        tp_count c = {.want_nth = TP_THREADS};
        threadpool_run(p, tp_count_part, &c);
        /* the run returns only after every part finished: all counts are final here */
        assert_int_equal(atomic_load(&c.bad_nth), 0);
        for (int i = 0; i < TP_THREADS; i++) assert_int_equal(atomic_load(&c.hits[i]), 1);
        if (gap_us) usleep((useconds_t)gap_us);
    }
    threadpool_free(p);
}

static void back_to_back_regions_while_spinning(void **state)
{
    (void)state;
    run_regions("200", 0);
}

static void regions_with_sleeping_workers(void **state)
{
    (void)state;
    run_regions("0", 0);
}

static void regions_after_the_spin_budget_ran_out(void **state)
{
    (void)state;
    run_regions("50", 2000);
}

typedef struct tp_slow {
    _Atomic int entered, release, nth1_runs;
} tp_slow;

static void tp_slow_part(void *arg, int ith, int nth)
{
    tp_slow *s = arg;
    (void)ith;
    if (nth == 1) {
        atomic_fetch_add(&s->nth1_runs, 1);
        return;
    }
    atomic_fetch_add(&s->entered, 1);
    while (!atomic_load(&s->release)) usleep(100);
}

typedef struct tp_caller {
    threadpool *p;
    tp_slow *s;
} tp_caller;

static void *tp_first_caller(void *v)
{
    tp_caller *c = v;
    threadpool_run(c->p, tp_slow_part, c->s);
    return NULL;
}

static void busy_pool_runs_the_second_caller_inline(void **state)
{
    (void)state;
    threadpool *p = threadpool_create(2);
    assert_non_null(p);
    tp_slow s = {0};
    tp_caller c = {p, &s};
    pthread_t first;
    assert_int_equal(pthread_create(&first, NULL, tp_first_caller, &c), 0);
    for (int i = 0; i < 20000 && atomic_load(&s.entered) < 2; i++) usleep(100);
    assert_int_equal(atomic_load(&s.entered), 2); /* both parts of the first region are running */
    threadpool_run(p, tp_slow_part, &s);          /* busy: runs alone, returns without waiting */
    assert_int_equal(atomic_load(&s.nth1_runs), 1);
    atomic_store(&s.release, 1);
    assert_int_equal(pthread_join(first, NULL), 0);
    threadpool_free(p);
}

int test_threadpool_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(back_to_back_regions_while_spinning),
        cmocka_unit_test(regions_with_sleeping_workers),
        cmocka_unit_test(regions_after_the_spin_budget_ran_out),
        cmocka_unit_test(busy_pool_runs_the_second_caller_inline),
    };
    return cmocka_run_group_tests_name("threadpool", tests, NULL, NULL);
}
