/*
 * The one unit-test runner of kinfer-server and its engine (cmocka). Each tests/test_<module>.c
 * defines `int test_<module>_run(void)` that returns cmocka_run_group_tests_name(...); list it in
 * GROUPS below. `test-runtime [GROUP...]` runs the named groups, or all of them.
 */
#include <stdio.h>
#include <string.h>

#define GROUPS(X)                                                                                  \
    X(status)                                                                                      \
    X(onnx_model)                                                                                  \
    X(sigv4)                                                                                       \
    X(storage_uri)                                                                                 \
    X(storage_list)                                                                                \
    X(storage)                                                                                     \
    X(infer_request)                                                                               \
    X(batcher)                                                                                     \
    X(config)                                                                                      \
    X(ml_common)                                                                                   \
    X(core_winograd)                                                                               \
    X(core_conv)                                                                                   \
    X(core_binary)                                                                                 \
    X(core_pool)                                                                                   \
    X(core_linalg)                                                                                 \
    X(threadpool)

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
        fprintf(stderr, "test-runtime: no group matched\n");
        return 2;
    }
    return failed ? 1 : 0;
}
