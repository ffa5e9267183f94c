/*
 * The storage front end (src/storage/storage.c) on local sources: key -> local name mapping,
 * staging and atomic placement, checksum failures leaving nothing behind, in-place use, the
 * fetch subcommand's argument errors, and the capped buffer. Remote schemes are covered
 * black-box in tests/storage/ (moto and loopback HTTP servers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/storage/storage.h"
#include "../src/common/pbuf.h"
#include "../src/storage/storage_job.h"

/* sha256("hello\n") */
#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* dir/rel as a directory or a file holding text: the fixtures' trees. */
static void put_dir(const char *dir, const char *rel)
{
    char p[700];
    assert_true(snprintf(p, sizeof(p), "%s/%s", dir, rel) < (int)sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
}

static void put_file(const char *dir, const char *rel, const char *text)
{
    char p[700];
    assert_true(snprintf(p, sizeof(p), "%s/%s", dir, rel) < (int)sizeof(p));
    write_file(p, text);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

/* Number of entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int setup_tmp(void **state)
{
    char *dir = strdup("/tmp/kinfer-test-storage-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    *state = dir;
    return 0;
}

static int teardown_tmp(void **state)
{
    nftw(*state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

static void key_to_local_name(void **state)
{
    (void)state;
    const char *rel;
    assert_null(storage__job_relpath("models/m.onnx", "models/m.onnx", &rel));
    assert_string_equal(rel, "m.onnx");
    assert_null(storage__job_relpath("models/", "models/a/b.bin", &rel));
    assert_string_equal(rel, "a/b.bin");
    assert_null(storage__job_relpath("", "top.onnx", &rel));
    assert_string_equal(rel, "top.onnx");
    assert_null(storage__job_relpath("models/", "models/dir/", &rel)); /* directory marker */
    assert_null(rel);
    assert_null(storage__job_relpath("models/", "other/x", &rel)); /* not under the prefix */
    assert_null(rel);
    kinfer_status *st = storage__job_relpath("models/", "models/../../etc/cron.d/x", &rel);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "path traversal"));
    assert_null(rel);
    kinfer_status_free(st);
    st = storage__job_relpath("models/", "models//abs", &rel);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
}

static void local_tree_copied_atomically(void **state)
{
    char src[512], dst[512], p[600];
    snprintf(src, sizeof(src), "%s/src", (char *)*state);
    snprintf(dst, sizeof(dst), "%s/out/nested", (char *)*state);
    mkdir(src, 0755);
    put_dir(src, "sub");
    put_file(src, "model.onnx", "hello\n");
    put_file(src, "sub/weights.bin", "w");
    storage_options o = {.retries = 0, .quiet = 1};
    assert_null(storage_fetch(src, dst, &o));
    assert_int_equal(count_entries(dst), 2); /* model.onnx, sub: no staging directory left */
    snprintf(p, sizeof(p), "%s/sub/weights.bin", dst);
    assert_int_equal(access(p, R_OK), 0);

    /* file:// of a single file, verified. */
    char uri[700];
    snprintf(uri, sizeof(uri), "file://%s/model.onnx", src);
    snprintf(dst, sizeof(dst), "%s/single", (char *)*state);
    o.sha256 = HELLO_SHA;
    assert_null(storage_fetch(uri, dst, &o));
    assert_int_equal(count_entries(dst), 1);
}

static void checksum_mismatch_leaves_nothing(void **state)
{
    char src[512], dst[512];
    snprintf(src, sizeof(src), "%s/m.onnx", (char *)*state);
    snprintf(dst, sizeof(dst), "%s/dst", (char *)*state);
    write_file(src, "tampered\n");
    storage_options o = {.retries = 0, .quiet = 1, .sha256 = HELLO_SHA};
    kinfer_status *st = storage_fetch(src, dst, &o);
    assert_int_equal(kinfer_status_code(st), KINFER_ECHECKSUM);
    assert_non_null(strstr(kinfer_status_msg(st), "expected " HELLO_SHA));
    kinfer_status_free(st);
    assert_int_equal(count_entries(dst), 0);

    o.sha256 = "abc";
    st = storage_fetch(src, dst, &o);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "64 hex digits"));
    kinfer_status_free(st);

    /* --sha256 names one file; a directory of two is refused rather than half-checked. */
    char p[600];
    put_dir((char *)*state, "two");
    put_file((char *)*state, "two/a", "a");
    put_file((char *)*state, "two/b", "b");
    snprintf(p, sizeof(p), "%s/two", (char *)*state);
    o.sha256 = HELLO_SHA;
    st = storage_fetch(p, dst, &o);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    assert_non_null(strstr(kinfer_status_msg(st), "single-file"));
    kinfer_status_free(st);
    assert_int_equal(count_entries(dst), 0);
}

static void same_directory_used_in_place(void **state)
{
    put_file((char *)*state, "model.onnx", "hello\n");
    storage_options o = {.quiet = 1};
    assert_null(storage_fetch((char *)*state, (char *)*state, &o));
    assert_int_equal(count_entries((char *)*state), 1);
}

static void missing_source_is_not_found(void **state)
{
    char dst[600];
    snprintf(dst, sizeof(dst), "%s/d", (char *)*state);
    storage_options o = {.quiet = 1};
    kinfer_status *st = storage_fetch("/nonexistent/kinfer/model", dst, &o);
    assert_int_equal(kinfer_status_code(st), KINFER_ENOTFOUND);
    assert_non_null(strstr(kinfer_status_msg(st), "/nonexistent/kinfer/model"));
    kinfer_status_free(st);
    st = storage_fetch("ftp://x/y", dst, &o);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
}

static void stale_staging_removed_live_kept(void **state)
{
    char src[512], dst[512], p[700];
    snprintf(src, sizeof(src), "%s/m.onnx", (char *)*state);
    write_file(src, "hello\n");
    snprintf(dst, sizeof(dst), "%s/dst", (char *)*state);
    mkdir(dst, 0755);
    /* A killed fetch: its lock file is there but nobody holds it. */
    put_dir(dst, ".kinfer-fetch-dead");
    put_file(dst, ".kinfer-fetch-dead/.lock", "");
    put_file(dst, ".kinfer-fetch-dead/partial.onnx", "half a mod");
    /* A running fetch: its lock is held (here by this process, through another open file). */
    put_dir(dst, ".kinfer-fetch-live");
    snprintf(p, sizeof(p), "%s/.kinfer-fetch-live/.lock", dst);
    write_file(p, "");
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    /* Too young to judge without a lock file. */
    put_dir(dst, ".kinfer-fetch-new");

    storage_options o = {.quiet = 1};
    assert_null(storage_fetch(src, dst, &o));
    snprintf(p, sizeof(p), "%s/.kinfer-fetch-dead", dst);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/.kinfer-fetch-live/.lock", dst);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/.kinfer-fetch-new", dst);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(count_entries(dst), 3); /* m.onnx, live, new */
    close(fd);
}

static void fetch_main_argument_errors(void **state)
{
    (void)state;
    char *a1[] = {"kinfer-server", "fetch", NULL};
    assert_int_equal(storage_fetch_main(2, a1), 2);
    char *a2[] = {"kinfer-server", "fetch", "s3://bucket/x", "/tmp/x", "--retries", "many", NULL};
    assert_int_equal(storage_fetch_main(6, a2), 2);
    char *a3[] = {"kinfer-server", "fetch", "s3://bucket/x", "/tmp/x", "--bogus", NULL};
    assert_int_equal(storage_fetch_main(5, a3), 2);
    char *a4[] = {"kinfer-server", "fetch", "s3://bucket/x", "--sha256", NULL};
    assert_int_equal(storage_fetch_main(4, a4), 2);
    char *a5[] = {"kinfer-server", "fetch", "a", "b", "c", NULL};
    assert_int_equal(storage_fetch_main(5, a5), 2);
    char *a6[] = {"kinfer-server",    "fetch", "--quiet", "/nonexistent/kinfer",
                  "/tmp/kinfer-none", NULL};
    assert_int_equal(storage_fetch_main(5, a6), 1);
    rmdir("/tmp/kinfer-none");
}

static void buffer_cap(void **state)
{
    (void)state;
    pbuf b;
    pbuf_init(&b, 0, 8);
    assert_int_equal(pbuf_adds(&b, "12345"), 0);
    assert_int_equal(pbuf_printf(&b, "%d", 678), 0);
    assert_int_equal(pbuf_adds(&b, "9"), -1);
    assert_int_equal(pbuf_failed(&b), PBUF_OVER_CAP);
    assert_int_equal(pbuf_adds(&b, ""), -1); /* stays failed */
    assert_string_equal(pbuf_data(&b), "12345678");
    char *s = pbuf_take(&b);
    assert_string_equal(s, "12345678");
    free(s);
    pbuf_free(&b);
}

int test_storage_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_to_local_name),
        cmocka_unit_test_setup_teardown(local_tree_copied_atomically, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(checksum_mismatch_leaves_nothing, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(same_directory_used_in_place, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(missing_source_is_not_found, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(stale_staging_removed_live_kept, setup_tmp, teardown_tmp),
        cmocka_unit_test(fetch_main_argument_errors),
        cmocka_unit_test(buffer_cap),
    };
    return cmocka_run_group_tests_name("storage", tests, NULL, NULL);
}
