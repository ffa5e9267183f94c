/*
 * The one unit-test runner of kinfer-controller (cmocka). Each tests/test_<module>.c defines
 * `int test_<module>_run(void)` that returns cmocka_run_group_tests_name(...); list it in GROUPS
 * below. `test-controller [GROUP...]` runs the named groups, or all of them.
 */
#include <stdio.h>
#include <string.h>

#define GROUPS(X)                                                                                  \
    X(error)                                                                                       \
    X(reconcile)                                                                                   \
    X(status)                                                                                      \
    X(framer)                                                                                      \
    X(backoff)                                                                                     \
    X(workqueue)                                                                                   \
    X(kubeconfig)                                                                                  \
    X(informer)                                                                                    \
    X(httpd)                                                                                       \
    X(leader)                                                                                      \
    X(metrics)                                                                                     \
    X(objstore)                                                                                    \
    X(podspec)                                                                                     \
    X(autoscale)                                                                                   \
    X(rollout)                                                                                     \
    X(scrape)                                                                                      \
    X(revision)                                                                                    \
    X(routing)                                                                                     \
    X(canary)                                                                                      \
    X(applied)                                                                                     \
    X(podcache)                                                                                    \
    X(pack)                                                                                        \
    X(golden)

#define DECLARE(g) int test_##g##_run(void);
GROUPS(DECLARE)

static const struct {
    const char *name;
    int (*run)(void);
} groups[] = {
#define ENTRY(g) {#g, test_##g##_run},
    GROUPS(ENTRY) /* one {name, run} per group */
};

int main(int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++) wanted |= !strcmp(argv[a], groups[i].name);
        if (!wanted) continue;
        ran++;
        failed += groups[i].run() != 0;
    }
    if (!ran) {
        fprintf(stderr, "test-controller: no group matched\n");
        return 2;
    }
    return failed ? 1 : 0;
}
