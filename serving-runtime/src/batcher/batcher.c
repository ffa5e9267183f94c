/* Dynamic batcher: one locked FIFO, N workers; see batcher.h. */
#include "batcher.h"
#include "../common/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PREFERRED 16

struct batcher {
    batcher_options opts;
    int preferred[MAX_PREFERRED];
    batcher_backend be;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batcher_job *head, *tail;
    size_t depth;
    int stopping, joined, hurry;
    pthread_t *workers;
    int n_workers;
    /* Mean compute time per row of recent batches (an exponential moving average over about 8
     * batches; -1 until the first batch), and how many jobs ran inline. */
    _Atomic int64_t row_ns;
    _Atomic uint64_t inlined;
};

static int64_t row_elems(const onnx_tensor *t)
{
    int64_t n = 1;
    for (int d = 1; d < t->rank; d++) n *= t->dims[d];
    return n;
}

/* Same inputs apart from dim 0, same requested outputs: only such jobs share a batch. */
static int jobs_compatible(const batcher_job *a, const batcher_job *b)
{
    if (a->n_inputs != b->n_inputs) return 0;
    for (size_t i = 0; i < a->n_inputs; i++) {
        const onnx_tensor *x = &a->inputs[i], *y = &b->inputs[i];
        if (x->dtype != y->dtype || x->rank != y->rank) return 0;
        for (int d = 1; d < x->rank; d++)
            if (x->dims[d] != y->dims[d]) return 0;
    }
    if (!a->output_names != !b->output_names) return 0;
    if (!a->output_names) return 1;
    if (a->n_outputs != b->n_outputs) return 0;
    for (size_t i = 0; i < a->n_outputs; i++)
        if (strcmp(a->output_names[i], b->output_names[i])) return 0;
    return 1;
}

/* Copies rows [r0, r0+n) of src into a fresh tensor; STRING elements are copied with their bytes
 * into the same block, so one free() releases it all. */
static int tensor_copy_rows(const onnx_tensor *src, int64_t r0, int64_t n, onnx_tensor *dst)
{
    *dst = *src;
    dst->keys = NULL;
    if (src->rank) dst->dims[0] = n;
    int64_t inner = row_elems(src), ne = n * inner;
    size_t es = onnx_dtype_size(src->dtype);
    if (src->dtype != ONNX_DTYPE_STRING) {
        dst->data = malloc(((size_t)ne * es) | !ne);
        if (!dst->data) return -1;
        memcpy(dst->data, (const char *)src->data + (size_t)(r0 * inner) * es, (size_t)ne * es);
    } else {
        char *const *s = (char *const *)src->data + r0 * inner;
        size_t bytes = (size_t)ne * sizeof(char *);
        for (int64_t i = 0; i < ne; i++) bytes += (s[i] ? strlen(s[i]) : 0) + 1;
        char **p = malloc(bytes ? bytes : 1);
        if (!p) return -1;
        char *w = (char *)(p + ne);
        for (int64_t i = 0; i < ne; i++) {
            size_t l = s[i] ? strlen(s[i]) : 0;
            memcpy(w, s[i] ? s[i] : "", l + 1);
            p[i] = w;
            w += l + 1;
        }
        dst->data = p;
    }
    if (src->keys) {
        dst->keys = malloc(sizeof(onnx_tensor));
        if (!dst->keys ||
            tensor_copy_rows(src->keys, 0, src->keys->rank ? src->keys->dims[0] : 1, dst->keys)) {
            free(dst->keys);
            dst->keys = NULL;
            free(dst->data);
            dst->data = NULL;
            return -1;
        }
    }
    return 0;
}

static void tensor_free_copy(onnx_tensor *t)
{
    if (t->keys) {
        tensor_free_copy(t->keys);
        free(t->keys);
    }
    free(t->data);
    memset(t, 0, sizeof(*t));
}

void batcher_job_release(batcher *b, batcher_job *job)
{
    for (size_t i = 0; job->outputs && i < job->outputs_count; i++) {
        if (job->engine_owned)
            b->be.release(b->be.ctx, &job->outputs[i]);
        else
            tensor_free_copy(&job->outputs[i]);
    }
    free(job->outputs);
    job->outputs = NULL;
    job->outputs_count = 0;
}

static void job_fail(batcher_job *job, kinfer_err code, const char *msg)
{
    job->done(job, kinfer_status_new(code, "%s", msg));
}

/* The batch's inputs: each input's rows of every job, back to back, into *in (n_in tensors the
 * caller frees with their data, also after a failure). -1 when out of memory. */
static int concat_inputs(batcher_job **jobs, size_t n, int64_t rows, onnx_tensor **in)
{
    batcher_job *j0 = jobs[0];
    size_t n_in = j0->n_inputs;
    if (!(*in = calloc(n_in, sizeof(onnx_tensor)))) return -1;
    for (size_t i = 0; i < n_in; i++) {
        onnx_tensor *t = &(*in)[i];
        *t = j0->inputs[i];
        t->dims[0] = rows;
        size_t row_bytes = (size_t)row_elems(t) * onnx_dtype_size(t->dtype);
        char *p = t->data = malloc(((size_t)rows * row_bytes) | 1);
        if (!p) return -1;
        for (size_t k = 0; k < n; k++) {
            memcpy(p, jobs[k]->inputs[i].data, (size_t)jobs[k]->rows * row_bytes);
            p += (size_t)jobs[k]->rows * row_bytes;
        }
    }
    return 0;
}

/* The run's times on every job, the stats callback, and the per-row estimate. */
static void note_timing(batcher *b, batcher_job **jobs, size_t n, int64_t rows, int64_t t0,
                        int64_t t1)
{
    if (b->opts.on_batch) b->opts.on_batch(b->opts.stats_ctx, rows, n, t1 - t0);
    int64_t per_row = (t1 - t0) / (rows > 0 ? rows : 1),
            avg = atomic_load_explicit(&b->row_ns, memory_order_relaxed);
    /* Racing updates from several workers may lose one sample: it is an estimate. */
    atomic_store_explicit(&b->row_ns, avg < 0 ? per_row : avg + (per_row - avg) / 8,
                          memory_order_relaxed);
    for (size_t k = 0; k < n; k++) {
        jobs[k]->start_ns = t0;
        jobs[k]->end_ns = t1;
        jobs[k]->batch_rows = rows;
    }
}

/* Splits the batch's outputs by rows into each job's own copies and completes every job
 * (done(), or job_fail() when the outputs cannot be split). out stays the caller's. */
static void split_outputs(batcher *b, batcher_job **jobs, size_t n, onnx_tensor *out, size_t n_out,
                          int64_t rows)
{
    for (size_t o = 0; o < n_out; o++)
        if (out[o].rank < 1 || out[o].dims[0] != rows) {
            kinfer_status *st = kinfer_status_new(
                KINFER_EINTERNAL,
                "output \"%s\" does not have the batch's %lld rows in dimension 0: "
                "the model cannot be batched (run with --max-batch-size 0)",
                out[o].name, (long long)rows);
            for (size_t k = 0; k < n; k++)
                job_fail(jobs[k], KINFER_EINTERNAL, kinfer_status_msg(st));
            kinfer_status_free(st);
            return;
        }
    int64_t r0 = 0;
    for (size_t k = 0; k < n; k++) {
        batcher_job *j = jobs[k];
        j->outputs = calloc(n_out ? n_out : 1, sizeof(onnx_tensor));
        j->outputs_count = 0;
        j->engine_owned = 0;
        int ok = j->outputs != NULL;
        for (size_t o = 0; ok && o < n_out; o++) {
            ok = !tensor_copy_rows(&out[o], r0, j->rows, &j->outputs[o]);
            if (ok) j->outputs_count++;
        }
        r0 += j->rows;
        if (ok)
            j->done(j, NULL);
        else {
            batcher_job_release(b, j);
            job_fail(j, KINFER_ENOMEM, "out of memory splitting the batch");
        }
    }
}

/* Runs jobs[0..n) as one batch and completes each exactly once. A job's done() hands it back to
 * its submitter, which may free it at once: nothing here reads a job after its done(), so what
 * the clean-up needs (the input count) is copied first. */
static void batch_run(batcher *b, batcher_job **jobs, size_t n)
{
    batcher_job *j0 = jobs[0];
    size_t n_out = j0->output_names ? j0->n_outputs : b->be.n_outputs, n_in = j0->n_inputs;
    int64_t rows = 0;
    for (size_t k = 0; k < n; k++) rows += jobs[k]->rows;
    onnx_tensor *in = NULL, *out = calloc(n_out ? n_out : 1, sizeof(onnx_tensor));
    kinfer_status *st = NULL;
    int have_out = 0; /* the engine filled out[] and it must be released */
    if (!out || (n > 1 && concat_inputs(jobs, n, rows, &in))) {
        for (size_t k = 0; k < n; k++)
            job_fail(jobs[k], KINFER_ENOMEM, "out of memory assembling the batch");
        goto out;
    }
    int64_t t0 = kinfer_now_ns();
    st = b->be.run(b->be.ctx, n > 1 ? in : j0->inputs, n_in, j0->output_names, out, n_out);
    note_timing(b, jobs, n, rows, t0, kinfer_now_ns());
    if (st) {
        for (size_t k = 0; k < n; k++)
            job_fail(jobs[k], kinfer_status_code(st), kinfer_status_msg(st));
        goto out;
    }
    have_out = 1;
    if (n == 1) { /* the engine's tensors go straight to the job: no copy */
        j0->outputs = out;
        j0->outputs_count = n_out;
        j0->engine_owned = 1;
        out = NULL;
        j0->done(j0, NULL);
        goto out;
    }
    split_outputs(b, jobs, n, out, n_out, rows);
out:
    if (out) {
        if (have_out) /* on error the engine left them zeroed */
            for (size_t o = 0; o < n_out; o++) b->be.release(b->be.ctx, &out[o]);
        free(out);
    }
    if (in) {
        for (size_t i = 0; i < n_in; i++) free(in[i].data);
        free(in);
    }
    kinfer_status_free(st);
}

static int is_preferred(const batcher *b, int64_t rows)
{
    for (size_t i = 0; i < b->opts.n_preferred; i++)
        if (b->preferred[i] == rows) return 1;
    return 0;
}

/* Unlinks job (prev is its predecessor or NULL). Caller holds the lock. */
static void queue_unlink(batcher *b, batcher_job *prev, batcher_job *job)
{
    if (prev)
        prev->next = job->next;
    else
        b->head = job->next;
    if (b->tail == job) b->tail = prev;
    job->next = NULL;
    b->depth--;
}

static void *worker_main(void *arg)
{
    batcher *b = arg;
    int max = b->opts.max_batch_size > 1 ? b->opts.max_batch_size : 1;
    batcher_job **batch = calloc((size_t)max, sizeof(*batch));
    batcher_job *expired = NULL;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stopping) pthread_cond_wait(&b->cv, &b->mu);
        if (!b->head) break;
        int64_t now = kinfer_now_ns();
        /* Jobs past their deadline leave the queue now, wherever they are. */
        for (batcher_job *prev = NULL, *j = b->head, *nx; j; j = nx) {
            nx = j->next;
            if (j->deadline_ns && now >= j->deadline_ns) {
                queue_unlink(b, prev, j);
                j->next = expired;
                expired = j;
            } else
                prev = j;
        }
        if (expired) {
            pthread_mutex_unlock(&b->mu);
            while (expired) {
                batcher_job *j = expired;
                expired = j->next;
                job_fail(j, KINFER_ETIMEOUT, "request timed out in the queue");
            }
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (!b->head) continue;
        if (!batch) { /* could not allocate the batch array: run alone */
            batcher_job *j = b->head;
            queue_unlink(b, NULL, j);
            pthread_mutex_unlock(&b->mu);
            batch_run(b, &j, 1);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        /* Gather the oldest job and the later compatible ones, in FIFO order. */
        size_t n = 0;
        int64_t rows = 0;
        int more = 0; /* compatible jobs left behind because the batch is full */
        for (batcher_job *j = b->head; j; j = j->next) {
            if (j != b->head && !jobs_compatible(b->head, j)) continue;
            if (n && rows + j->rows > max) { /* the oldest job always goes, even alone over max */
                more = 1;
                break;
            }
            batch[n++] = j;
            rows += j->rows;
        }
        int64_t due = b->head->enqueue_ns + b->opts.max_queue_delay_us * 1000;
        int full = rows >= max || more;
        int go = max <= 1 || full || b->stopping || b->hurry || now >= due || is_preferred(b, rows);
        if (!go) { /* sleep until the batch is due or a queued job's deadline, whichever is first */
            for (batcher_job *j = b->head; j; j = j->next)
                if (j->deadline_ns && j->deadline_ns < due) due = j->deadline_ns;
            struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
            continue;
        }
        /* With preferred sizes and a batch that is full anyway, send the largest preferred size. */
        if (full && b->opts.n_preferred && !is_preferred(b, rows)) {
            int64_t best = 0;
            for (size_t i = 0; i < b->opts.n_preferred; i++)
                if (b->preferred[i] <= rows && b->preferred[i] > best) best = b->preferred[i];
            int64_t r = 0;
            size_t k = 0;
            while (best && k < n && r + batch[k]->rows <= best) r += batch[k++]->rows;
            if (r == best && k) n = k;
        }
        for (size_t k = 0; k < n; k++) {
            batcher_job *prev = NULL;
            for (batcher_job *j = b->head; j != batch[k]; j = j->next) prev = j;
            queue_unlink(b, prev, batch[k]);
        }
        if (b->head) pthread_cond_signal(&b->cv); /* another worker can start on the rest */
        pthread_mutex_unlock(&b->mu);
        batch_run(b, batch, n);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    free(batch);
    return NULL;
}

kinfer_status *batcher_create(const batcher_options *opts, const batcher_backend *backend,
                              batcher **out)
{
    *out = NULL;
    if (opts->n_preferred > MAX_PREFERRED)
        return kinfer_status_new(KINFER_EINVAL, "at most %d preferred batch sizes", MAX_PREFERRED);
    for (size_t i = 0; i < opts->n_preferred; i++)
        if (opts->preferred_batch_sizes[i] < 1 ||
            (opts->max_batch_size > 1 && opts->preferred_batch_sizes[i] > opts->max_batch_size))
            return kinfer_status_new(KINFER_EINVAL,
                                     "preferred batch size %d is not within 1..max_batch_size (%d)",
                                     opts->preferred_batch_sizes[i], opts->max_batch_size);
    batcher *b = calloc(1, sizeof(*b));
    if (!b) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    b->opts = *opts;
    if (opts->n_preferred)
        memcpy(b->preferred, opts->preferred_batch_sizes, opts->n_preferred * sizeof(int));
    b->opts.preferred_batch_sizes = b->preferred;
    if (b->opts.instances < 1) b->opts.instances = 1;
    if (b->opts.max_queue_delay_us < 0) b->opts.max_queue_delay_us = 0;
    b->be = *backend;
    atomic_init(&b->row_ns, -1);
    atomic_init(&b->inlined, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->workers = calloc((size_t)b->opts.instances, sizeof(pthread_t));
    if (!b->workers) {
        batcher_destroy(b);
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    }
    for (int i = 0; i < b->opts.instances; i++) {
        if (pthread_create(&b->workers[i], NULL, worker_main, b)) {
            batcher_destroy(b);
            return kinfer_status_new(KINFER_EINTERNAL, "cannot start batcher worker %d", i);
        }
        b->n_workers++;
    }
    *out = b;
    return NULL;
}

kinfer_status *batcher_submit(batcher *b, batcher_job *job)
{
    job->rows = 1; /* without batching dim 0 is not a batch: each execution is one request */
    job->outputs = NULL;
    job->outputs_count = 0;
    job->next = NULL;
    if (b->opts.max_batch_size > 1) {
        for (size_t i = 0; i < job->n_inputs; i++) {
            if (job->inputs[i].rank < 1)
                return kinfer_status_new(KINFER_EINVAL, "input \"%s\" has no batch dimension",
                                         job->inputs[i].name);
            if (i && job->inputs[i].dims[0] != job->inputs[0].dims[0])
                return kinfer_status_new(
                    KINFER_EINVAL, "inputs disagree on the batch dimension (%lld vs %lld)",
                    (long long)job->inputs[0].dims[0], (long long)job->inputs[i].dims[0]);
        }
        if (job->n_inputs) job->rows = job->inputs[0].dims[0];
        if (job->rows > b->opts.max_batch_size)
            return kinfer_status_new(KINFER_EINVAL,
                                     "batch of %lld rows exceeds the maximum batch size %d",
                                     (long long)job->rows, b->opts.max_batch_size);
    }
    job->enqueue_ns = kinfer_now_ns();
    pthread_mutex_lock(&b->mu);
    kinfer_status *st = NULL;
    int64_t row_ns = atomic_load_explicit(&b->row_ns, memory_order_relaxed);
    if (!b->stopping && !b->head && b->opts.inline_max_ns > 0 && !b->opts.max_queue_delay_us &&
        row_ns >= 0 && row_ns * job->rows <= b->opts.inline_max_ns &&
        (!job->deadline_ns || job->enqueue_ns < job->deadline_ns)) {
        pthread_mutex_unlock(&b->mu);
        atomic_fetch_add_explicit(&b->inlined, 1, memory_order_relaxed);
        batch_run(b, &job, 1);
        return NULL;
    }
    if (b->stopping)
        st = kinfer_status_new(KINFER_EUNAVAIL, "the server is shutting down");
    else if (b->opts.max_queue_size > 0 && b->depth >= (size_t)b->opts.max_queue_size)
        st = kinfer_status_new(KINFER_EFULL, "the queue is full (%d requests)",
                               b->opts.max_queue_size);
    else {
        if (b->tail)
            b->tail->next = job;
        else
            b->head = job;
        b->tail = job;
        b->depth++;
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return st;
}

uint64_t batcher_inline_count(batcher *b)
{
    return atomic_load_explicit(&b->inlined, memory_order_relaxed);
}

size_t batcher_queue_depth(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    size_t d = b->depth;
    pthread_mutex_unlock(&b->mu);
    return d;
}

void batcher_hurry(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->hurry = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void batcher_shutdown(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    int join = !b->joined;
    b->joined = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (!join) return;
    for (int i = 0; i < b->n_workers; i++) pthread_join(b->workers[i], NULL);
}

void batcher_destroy(batcher *b)
{
    if (!b) return;
    batcher_shutdown(b);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b->workers);
    free(b);
}
