/* Configuration precedence (flags > KINFER_* env > YAML file > defaults) and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/server/config.h"

static char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/kinfer-config-test-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void defaults(void **state)
{
    (void)state;
    server_config c;
    char *argv[] = {"kinfer-server", "--model-dir", "/m", NULL};
    char *env[] = {NULL};
    assert_null(server_config_load(&c, 3, argv, env));
    assert_string_equal(c.model_dir, "/m");
    assert_string_equal(c.model_name, "model");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.max_batch_size, 32);
    assert_int_equal(c.max_queue_size, 1024);
    assert_int_equal(c.instances, 1);
    assert_int_equal(c.grace_period_s, 30);
    assert_string_equal(c.device, "cpu");
    server_config_free(&c);
}

static void flags_beat_env_beat_file(void **state)
{
    (void)state;
    char *path =
        write_file("# settings\nmodel-dir: /from-file\nport: 9001\nmaxBatchSize: 4\n"
                   "max_queue_delay_us: 700\npreferred-batch-sizes: [2, 4]\ninstances: 3\n");
    char *argv[] = {"kinfer-server", "--config", path, "--port=9003", "--instances", "2", NULL};
    char *env[] = {"KINFER_PORT=9002", "KINFER_MAX_BATCH_SIZE=8", "KINFER_MODEL_NAME=iris",
                   "OTHER=1", NULL};
    server_config c;
    assert_null(server_config_load(&c, 6, argv, env));
    assert_string_equal(c.model_dir, "/from-file"); /* file only */
    assert_int_equal(c.port, 9003);                 /* all three: the flag */
    assert_int_equal(c.max_batch_size, 8);          /* env over file */
    assert_int_equal(c.max_queue_delay_us, 700);    /* file over default */
    assert_int_equal(c.instances, 2);               /* flag over file */
    assert_string_equal(c.model_name, "iris");
    assert_int_equal(c.n_preferred, 2);
    assert_int_equal(c.preferred[1], 4);
    server_config_free(&c);
    unlink(path);
}

static void config_file_from_env_and_lists(void **state)
{
    (void)state;
    char *path = write_file("model_uri: s3://b/m\npreferred_batch_sizes: \"1,2, 8\"\n");
    char envc[128];
    snprintf(envc, sizeof(envc), "KINFER_CONFIG=%s", path);
    char *argv[] = {"kinfer-server", NULL};
    char *env[] = {envc, NULL};
    server_config c;
    assert_null(server_config_load(&c, 1, argv, env));
    assert_string_equal(c.model_uri, "s3://b/m");
    assert_string_equal(c.model_dir, "/tmp/kinfer-model"); /* the default download dir */
    assert_int_equal(c.n_preferred, 3);
    assert_int_equal(c.preferred[2], 8);
    server_config_free(&c);
    unlink(path);
}

static void errors_name_their_source(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *args[4];
        const char *env;
        const char *fragment;
    } cases[] = {
        {NULL, {"--model-dir", "/m", "--port", "70000"}, NULL, "flag --port"},
        {NULL, {"--model-dir", "/m", "--bogus", "1"}, NULL, "unknown flag --bogus"},
        {NULL, {"--model-dir", "/m", "--port", NULL}, NULL, "needs a value"},
        {NULL,
         {"--model-dir", "/m", NULL},
         "KINFER_INSTANCES=zero",
         "environment variable KINFER_INSTANCES"},
        {"colour: blue\n", {"--model-dir", "/m", NULL}, NULL, "unknown setting \"colour\""},
        {"port: [1\n", {"--model-dir", "/m", NULL}, NULL, "line"},
        {"nested:\n  a: 1\n", {"--model-dir", "/m", NULL}, NULL, "nested"},
        {NULL, {"--port", "1", NULL}, NULL, "--model-dir or --model-uri is required"},
        {NULL, {"--model-dir", "/m", "--model-name", "a/b"}, NULL, "model name"},
        {NULL,
         {"--model-dir", "/m", "--preferred-batch-sizes", "64"},
         NULL,
         "exceeds --max-batch-size"},
        {NULL,
         {"--model-dir", "/m", "--device", "tpu"},
         NULL,
         "--device \"tpu\" is not one of cpu, cuda"},
        {NULL,
         {"--model-dir", "/m", NULL},
         "KINFER_DEVICE=gpu",
         "--device \"gpu\" is not one of cpu, cuda"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[8] = {"kinfer-server"};
        int argc = 1;
        char *path = NULL;
        if (cases[i].file) {
            path = write_file(cases[i].file);
            argv[argc++] = "--config";
            argv[argc++] = path;
        }
        for (int k = 0; k < 4 && cases[i].args[k]; k++) argv[argc++] = (char *)cases[i].args[k];
        char *env[] = {(char *)cases[i].env, NULL};
        server_config c;
        kinfer_status *st = server_config_load(&c, argc, argv, env);
        if (kinfer_status_code(st) != KINFER_EINVAL ||
            !strstr(kinfer_status_msg(st), cases[i].fragment))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, kinfer_status_msg(st),
                     cases[i].fragment);
        kinfer_status_free(st);
        server_config_free(&c);
        if (path) unlink(path);
    }
    server_config c;
    char *argv[] = {"kinfer-server", "--config", "/nonexistent/kinfer.yaml", NULL};
    char *env[] = {NULL};
    kinfer_status *st = server_config_load(&c, 3, argv, env);
    assert_int_equal(kinfer_status_code(st), KINFER_EIO);
    kinfer_status_free(st);
    server_config_free(&c);
}

/* cuda parses (from the flag or KINFER_DEVICE); refusing it in a CPU-only build is main()'s job. */
static void device_flag_and_env(void **state)
{
    (void)state;
    server_config c;
    char *argv[] = {"kinfer-server", "--model-dir", "/m", NULL};
    char *env[] = {"KINFER_DEVICE=cuda", NULL};
    assert_null(server_config_load(&c, 3, argv, env));
    assert_string_equal(c.device, "cuda");
    server_config_free(&c);
    char *argv2[] = {"kinfer-server", "--model-dir", "/m", "--device", "cpu", NULL};
    assert_null(server_config_load(&c, 5, argv2, env));
    assert_string_equal(c.device, "cpu"); /* the flag beats the environment */
    server_config_free(&c);
}

static void help_flag(void **state)
{
    (void)state;
    server_config c;
    char *argv[] = {"kinfer-server", "--help", NULL};
    char *env[] = {NULL};
    assert_null(server_config_load(&c, 2, argv, env));
    assert_int_equal(c.help, 1);
    server_config_free(&c);
}

int test_config_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(flags_beat_env_beat_file),
        cmocka_unit_test(config_file_from_env_and_lists),
        cmocka_unit_test(errors_name_their_source),
        cmocka_unit_test(device_flag_and_env),
        cmocka_unit_test(help_flag),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
