/* leader: the acquisition rule (free, ours, or unchanged for a lease duration on our own clock)
 * and the timing checks on flags. The Lease round trips run against the real API server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/kube/leader.h"

static json_object *lease(const char *holder, const char *renew, int dur)
{
    char buf[256];
    snprintf(
        buf, sizeof(buf),
        "{\"spec\":{\"holderIdentity\":\"%s\",\"renewTime\":\"%s\",\"leaseDurationSeconds\":%d}}",
        holder, renew, dur);
    return json_tokener_parse(buf);
}

static void test_may_acquire(void **state)
{
    (void)state;
    char rec[512] = "";
    int64_t obs = 0;
    json_object *l = lease("other", "t1", 15);
    assert_false(leader__may_acquire(l, "me", 1000, rec, sizeof(rec),
                                     &obs)); /* first sight starts the clock */
    assert_int_equal(obs, 1000);
    assert_false(leader__may_acquire(l, "me", 15999, rec, sizeof(rec), &obs));
    assert_true(
        leader__may_acquire(l, "me", 16000, rec, sizeof(rec), &obs)); /* unchanged for 15 s */
    json_object_put(l);
    /* a renewal moves the record: the countdown restarts */
    l = lease("other", "t2", 15);
    assert_false(leader__may_acquire(l, "me", 16001, rec, sizeof(rec), &obs));
    assert_int_equal(obs, 16001);
    json_object_put(l);
    l = lease("me", "t2", 15);
    assert_true(leader__may_acquire(l, "me", 16002, rec, sizeof(rec), &obs)); /* ours */
    json_object_put(l);
    l = lease("", "t3", 1);
    assert_true(leader__may_acquire(l, "me", 16003, rec, sizeof(rec), &obs)); /* released */
    json_object_put(l);
    l = json_tokener_parse("{}");
    assert_true(leader__may_acquire(l, "me", 1, rec, sizeof(rec), &obs)); /* no spec: free */
    json_object_put(l);
}

static void test_config_check(void **state)
{
    (void)state;
    leader_config ok = {"ns", "lease", "me", 15000, 10000, 2000};
    assert_null(leader_config_check(&ok));
    static const struct {
        int64_t ld, rd, rp;
        const char *want;
    } bad[] = {
        {15000, 15000, 2000,
         "lease duration (15000 ms) must be longer than the renew deadline (15000 ms)"},
        {15000, 2000, 2000,
         "renew deadline (2000 ms) must be longer than the retry period (2000 ms)"},
        {15000, 10000, 0, "retry period must be positive"},
        {900, 600, 100, "at least 1s"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        leader_config c = {"ns", "lease", "me", bad[i].ld, bad[i].rd, bad[i].rp};
        ctl_status *st = leader_config_check(&c);
        assert_non_null(st);
        assert_int_equal(ctl_status_code(st), CTL_EINVAL);
        if (!strstr(ctl_status_msg(st), bad[i].want)) fail_msg("got %s", ctl_status_msg(st));
        ctl_status_free(st);
    }
    leader_config noname = {"ns", "", "me", 15000, 10000, 2000};
    ctl_status *st = leader_config_check(&noname);
    assert_non_null(st);
    ctl_status_free(st);
    leader_config nons = {NULL, "l", "me", 15000, 10000, 2000};
    st = leader_config_check(&nons);
    assert_non_null(strstr(ctl_status_msg(st), "lease namespace"));
    ctl_status_free(st);
}

int test_leader_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_may_acquire),
        cmocka_unit_test(test_config_check),
    };
    return cmocka_run_group_tests_name("leader", tests, NULL, NULL);
}
