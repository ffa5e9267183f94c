/* backoff: growth, bounds, jitter range and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../src/kube/backoff.h"

static void test_growth_without_jitter(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, 100, 1000, 0, 1);
    const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(backoff_next_ms(&b), want[i]);
    backoff_reset(&b);
    assert_int_equal(backoff_next_ms(&b), 100);
}

/* With jitter j the n-th delay lies in [d(1-j), d], and the draws really vary. */
static void test_jitter_range(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed < 50; seed++) {
        backoff b;
        backoff_init(&b, 200, 30000, 0.5, seed);
        uint64_t d = 200;
        for (int i = 0; i < 12; i++) {
            uint64_t v = backoff_next_ms(&b);
            assert_true(v <= d);
            assert_true(v >= d / 2);
            d = d * 2 > 30000 ? 30000 : d * 2;
        }
    }
    backoff b;
    backoff_init(&b, 1000, 1000, 0.5, 42);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t v = backoff_next_ms(&b);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    assert_true(lo < 600);
    assert_true(hi > 900);
}

/* Many attempts never overflow past max; odd parameters are clamped. */
static void test_bounds(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, 5, 1000000, 2.0, 3); /* jitter clamped to 1 */
    for (int i = 0; i < 500; i++) assert_true(backoff_next_ms(&b) <= 1000000);
    assert_int_equal(b.jitter, 1.0);
    backoff_init(&b, 0, 0, -1, 3);
    assert_int_equal(b.base_ms, 1);
    assert_int_equal(b.max_ms, 1);
    assert_int_equal(backoff_next_ms(&b), 1);
}

int test_backoff_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth_without_jitter),
        cmocka_unit_test(test_jitter_range),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
