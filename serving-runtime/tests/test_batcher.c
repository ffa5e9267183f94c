/* Batcher semantics with a real (tiny) backend: y = 2x, plus recorded batch sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/batcher/batcher.h"
#include "../src/common/clock.h"

typedef struct backend_state {
    pthread_mutex_t mu;
    int batches[64];
    int n_batches;
    int fail;       /* 1: run returns an error */
    int drop_batch; /* 1: output loses the batch dimension */
    int sleep_us;
    pthread_t last_thread; /* the thread of the latest run */
} backend_state;

static kinfer_status *double_run(void *ctx, const onnx_tensor *in, size_t n_in,
                                 const char *const *names, onnx_tensor *out, size_t n_out)
{
    backend_state *bs = ctx;
    (void)names;
    if (n_in != 1 || n_out != 1)
        return kinfer_status_new(KINFER_EINVAL, "test backend takes one input");
    if (bs->sleep_us) usleep((useconds_t)bs->sleep_us);
    pthread_mutex_lock(&bs->mu);
    if (bs->n_batches < 64) bs->batches[bs->n_batches++] = (int)in[0].dims[0];
    bs->last_thread = pthread_self();
    pthread_mutex_unlock(&bs->mu);
    if (bs->fail) return kinfer_status_new(KINFER_EINTERNAL, "engine exploded");
    int64_t n = 1;
    for (int d = 0; d < in[0].rank; d++) n *= in[0].dims[d];
    out[0] = in[0];
    out[0].name = "y";
    out[0].data = malloc((size_t)n * sizeof(float) + 1);
    for (int64_t i = 0; i < n; i++) ((float *)out[0].data)[i] = 2 * ((const float *)in[0].data)[i];
    if (bs->drop_batch) out[0].dims[0] = 1;
    return NULL;
}

static void free_release(void *ctx, onnx_tensor *t)
{
    (void)ctx;
    free(t->data);
    t->data = NULL;
}

typedef struct job_box {
    batcher_job job;
    onnx_tensor in;
    float data[8];
    batcher *b;
    kinfer_err err;
    float got[8];
    int64_t got_rows;
    int done;
    int poison; /* on completion, overwrite the job as the HTTP side's free would */
} job_box;

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int n_done;

static void on_done(batcher_job *job, kinfer_status *st)
{
    job_box *jb = job->user;
    jb->err = kinfer_status_code(st);
    kinfer_status_free(st);
    if (!jb->err && job->outputs_count != 1)
        jb->err = KINFER_EINTERNAL; /* no cmocka asserts off the main thread */
    if (!jb->err) {
        jb->got_rows = job->outputs[0].dims[0];
        int64_t n = job->outputs[0].dims[0] * job->outputs[0].dims[1];
        memcpy(jb->got, job->outputs[0].data, (size_t)n * sizeof(float));
    }
    batcher_job_release(jb->b, job);
    if (jb->poison) memset(job, 0xA5, sizeof(*job)); /* the batcher must not read it again */
    pthread_mutex_lock(&done_mu);
    jb->done = 1;
    n_done++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static void box_init(job_box *jb, batcher *b, int rows, int cols, float base)
{
    memset(jb, 0, sizeof(*jb));
    jb->b = b;
    for (int i = 0; i < rows * cols; i++) jb->data[i] = base + (float)i;
    jb->in = (onnx_tensor){
        .name = "x", .dtype = ONNX_DTYPE_FLOAT, .rank = 2, .dims = {rows, cols}, .data = jb->data};
    jb->job = (batcher_job){.inputs = &jb->in, .n_inputs = 1, .done = on_done, .user = jb};
}

static void wait_done(int n)
{
    pthread_mutex_lock(&done_mu);
    while (n_done < n) pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
}

/* A batcher over a fresh backend_state (sleeping sleep_us per run) with options o. */
static batcher *start(backend_state *bs, const batcher_options *o, int sleep_us)
{
    memset(bs, 0, sizeof(*bs));
    pthread_mutex_init(&bs->mu, NULL);
    bs->sleep_us = sleep_us;
    n_done = 0;
    batcher_backend be = {.run = double_run, .release = free_release, .ctx = bs, .n_outputs = 1};
    batcher *b;
    assert_null(batcher_create(o, &be, &b));
    return b;
}

static batcher *make(backend_state *bs, int max, int64_t delay_us, const int *pref, size_t n_pref,
                     int qsize)
{
    batcher_options o = {.max_batch_size = max,
                         .max_queue_delay_us = delay_us,
                         .preferred_batch_sizes = pref,
                         .n_preferred = n_pref,
                         .max_queue_size = qsize,
                         .instances = 1};
    return start(bs, &o, 0);
}

static void batches_concurrent_jobs_and_splits_results(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 8, 200000, NULL, 0, 0);
    job_box jb[4];
    for (int i = 0; i < 4; i++) {
        box_init(&jb[i], b, 1 + (i & 1), 2, 10.0f * (float)i);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(4);
    assert_int_equal(bs.n_batches, 1);
    assert_int_equal(bs.batches[0], 6); /* rows, not requests */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(jb[i].err, KINFER_OK);
        assert_int_equal(jb[i].got_rows, 1 + (i & 1));
        for (int k = 0; k < (1 + (i & 1)) * 2; k++) assert_true(jb[i].got[k] == 2 * jb[i].data[k]);
        assert_int_equal(jb[i].job.batch_rows, 6);
    }
    batcher_destroy(b);
}

/* A completed job belongs to its submitter again (the server frees the request with it): after
 * the last done() of a batch the batcher must not read any job, the first one included. */
static void completed_jobs_are_never_read_again(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 8, 200000, NULL, 0, 0);
    job_box jb[3];
    for (int i = 0; i < 3; i++) {
        box_init(&jb[i], b, 1, 2, 5.0f * (float)i);
        jb[i].poison = 1;
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(3);
    batcher_destroy(b); /* joins the worker: it has finished with the batch */
    assert_int_equal(bs.n_batches, 1);
    assert_int_equal(bs.batches[0], 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jb[i].err, KINFER_OK);
        for (int k = 0; k < 2; k++) assert_true(jb[i].got[k] == 2 * jb[i].data[k]);
    }
}

static void different_inner_dims_never_share(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 8, 100000, NULL, 0, 0);
    job_box jb[4];
    for (int i = 0; i < 4; i++) {
        box_init(&jb[i], b, 1, i & 1 ? 2 : 3, 1);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(4);
    assert_int_equal(bs.n_batches, 2);
    assert_int_equal(bs.batches[0], 2);
    assert_int_equal(bs.batches[1], 2);
    batcher_destroy(b);
}

static void full_queue_refuses_synchronously(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 8, 300000, NULL, 0, 2);
    job_box jb[3];
    for (int i = 0; i < 3; i++) box_init(&jb[i], b, 1, 2, 0);
    assert_null(batcher_submit(b, &jb[0].job));
    assert_null(batcher_submit(b, &jb[1].job));
    kinfer_status *st = batcher_submit(b, &jb[2].job);
    assert_int_equal(kinfer_status_code(st), KINFER_EFULL);
    kinfer_status_free(st);
    assert_int_equal(batcher_queue_depth(b), 2);
    wait_done(2);
    assert_int_equal(jb[2].done, 0); /* never completed after a synchronous error */
    batcher_destroy(b);
}

static void deadline_in_queue_times_out(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 8, 2000000, NULL, 0, 0);
    job_box jb;
    box_init(&jb, b, 1, 2, 0);
    jb.job.deadline_ns = kinfer_now_ns() + 50000000;
    int64_t t0 = kinfer_now_ns();
    assert_null(batcher_submit(b, &jb.job));
    wait_done(1);
    assert_int_equal(jb.err, KINFER_ETIMEOUT);
    assert_true(kinfer_now_ns() - t0 < 1000000000); /* woke for the deadline, not the 2 s delay */
    assert_int_equal(bs.n_batches, 0);
    batcher_destroy(b);
}

static void preferred_size_goes_at_once_and_off_means_alone(void **state)
{
    (void)state;
    backend_state bs;
    int pref[] = {2};
    batcher *b = make(&bs, 8, 5000000, pref, 1, 0);
    job_box jb[2];
    int64_t t0 = kinfer_now_ns();
    for (int i = 0; i < 2; i++) {
        box_init(&jb[i], b, 1, 2, 0);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(2);
    assert_true(kinfer_now_ns() - t0 < 2000000000);
    assert_int_equal(bs.n_batches, 1);
    assert_int_equal(bs.batches[0], 2);
    batcher_destroy(b);
    b = make(&bs, 0, 100000, NULL, 0, 0);
    job_box jc[3];
    for (int i = 0; i < 3; i++) {
        box_init(&jc[i], b, 2, 2, (float)i);
        assert_null(batcher_submit(b, &jc[i].job));
    }
    wait_done(3);
    assert_int_equal(bs.n_batches, 3);
    for (int i = 0; i < 3; i++) assert_true(jc[i].got[3] == 2 * jc[i].data[3]);
    batcher_destroy(b);
}

static void shutdown_drains_without_delay_and_then_refuses(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 8, 10000000, NULL, 0, 0);
    job_box jb[3];
    for (int i = 0; i < 3; i++) {
        box_init(&jb[i], b, 1, 2, 0);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    int64_t t0 = kinfer_now_ns();
    batcher_shutdown(b);
    assert_int_equal(n_done, 3);
    assert_true(kinfer_now_ns() - t0 < 2000000000);
    job_box late;
    box_init(&late, b, 1, 2, 0);
    kinfer_status *st = batcher_submit(b, &late.job);
    assert_int_equal(kinfer_status_code(st), KINFER_EUNAVAIL);
    kinfer_status_free(st);
    batcher_destroy(b);
}

static void bad_jobs_and_engine_errors(void **state)
{
    (void)state;
    backend_state bs;
    batcher *b = make(&bs, 4, 100000, NULL, 0, 0);
    job_box big;
    box_init(&big, b, 5, 1, 0);
    kinfer_status *st = batcher_submit(b, &big.job);
    assert_int_equal(kinfer_status_code(st), KINFER_EINVAL);
    kinfer_status_free(st);
    bs.fail = 1;
    job_box jb[2];
    for (int i = 0; i < 2; i++) {
        box_init(&jb[i], b, 1, 2, 0);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(2);
    assert_int_equal(jb[0].err, KINFER_EINTERNAL);
    assert_int_equal(jb[1].err, KINFER_EINTERNAL);
    bs.fail = 0;
    bs.drop_batch = 1; /* a model whose output has no batch dimension cannot be split */
    n_done = 0;
    for (int i = 0; i < 2; i++) {
        box_init(&jb[i], b, 1, 2, 0);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(2);
    assert_int_equal(jb[0].err, KINFER_EINTERNAL);
    batcher_destroy(b);
}

static void many_instances_keep_every_result_with_its_job(void **state)
{
    (void)state;
    backend_state bs;
    memset(&bs, 0, sizeof(bs));
    pthread_mutex_init(&bs.mu, NULL);
    bs.sleep_us = 200;
    n_done = 0;
    batcher_options o = {.max_batch_size = 4, .instances = 3};
    batcher_backend be = {.run = double_run, .release = free_release, .ctx = &bs, .n_outputs = 1};
    batcher *b;
    assert_null(batcher_create(&o, &be, &b));
    enum { N = 200 };
    job_box *jb = calloc(N, sizeof(job_box));
    for (int i = 0; i < N; i++) {
        box_init(&jb[i], b, 1 + i % 3, 2, (float)i * 100);
        assert_null(batcher_submit(b, &jb[i].job));
    }
    wait_done(N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jb[i].err, KINFER_OK);
        for (int k = 0; k < (1 + i % 3) * 2; k++) assert_true(jb[i].got[k] == 2 * jb[i].data[k]);
    }
    batcher_destroy(b);
    free(jb);
}

/* One job through a batcher with these inline settings; returns whether it ran on this thread
 * (done() had run when batcher_submit returned). The first job of a batcher always goes to a
 * worker: there is no compute estimate yet. */
static int runs_inline(batcher *b, backend_state *bs, job_box *jb, float base)
{
    int before = n_done;
    box_init(jb, b, 1, 2, base);
    assert_null(batcher_submit(b, &jb->job));
    pthread_mutex_lock(&done_mu);
    int now = jb->done;
    pthread_mutex_unlock(&done_mu);
    wait_done(before + 1);
    assert_int_equal(jb->err, KINFER_OK);
    assert_true(jb->got[0] == 2 * base && jb->got[1] == 2 * (base + 1));
    pthread_mutex_lock(&bs->mu);
    int same = pthread_equal(bs->last_thread, pthread_self());
    pthread_mutex_unlock(&bs->mu);
    if (same) assert_true(now); /* run here: done before submit returned */
    return same;
}

static batcher *make_inline(backend_state *bs, int64_t delay_us, int64_t inline_max_ns,
                            int sleep_us)
{
    batcher_options o = {.max_batch_size = 4,
                         .max_queue_delay_us = delay_us,
                         .instances = 1,
                         .inline_max_ns = inline_max_ns};
    return start(bs, &o, sleep_us);
}

static void cheap_jobs_run_inline_once_measured(void **state)
{
    (void)state;
    backend_state bs;
    job_box jb;
    /* a cheap model (generous bound: sanitizers slow it) */
    batcher *b = make_inline(&bs, 0, 50 * 1000 * 1000, 0);
    assert_false(runs_inline(b, &bs, &jb, 1)); /* no estimate yet: a worker runs it */
    assert_true(runs_inline(b, &bs, &jb, 3));
    assert_true(runs_inline(b, &bs, &jb, 5));
    assert_int_equal(batcher_inline_count(b), 2);
    batcher_destroy(b);
    /* off (0), a queue delay (the caller wants fuller batches), or a model slower than the bound:
     * always a worker */
    int64_t cases[][3] = {{0, 0, 0}, {100, 50 * 1000 * 1000, 0}, {0, 100 * 1000, 3000}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b = make_inline(&bs, cases[i][0], cases[i][1], (int)cases[i][2]);
        for (int k = 0; k < 3; k++) assert_false(runs_inline(b, &bs, &jb, (float)k));
        assert_int_equal(batcher_inline_count(b), 0);
        batcher_destroy(b);
    }
}

int test_batcher_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batches_concurrent_jobs_and_splits_results),
        cmocka_unit_test(completed_jobs_are_never_read_again),
        cmocka_unit_test(different_inner_dims_never_share),
        cmocka_unit_test(full_queue_refuses_synchronously),
        cmocka_unit_test(deadline_in_queue_times_out),
        cmocka_unit_test(preferred_size_goes_at_once_and_off_means_alone),
        cmocka_unit_test(shutdown_drains_without_delay_and_then_refuses),
        cmocka_unit_test(bad_jobs_and_engine_errors),
        cmocka_unit_test(many_instances_keep_every_result_with_its_job),
        cmocka_unit_test(cheap_jobs_run_inline_once_measured),
    };
    return cmocka_run_group_tests_name("batcher", tests, NULL, NULL);
}
