/*
 * Dynamic batching with Triton's semantics. Requests (jobs) wait in one FIFO queue; each of
 * `instances` worker threads takes the oldest job plus every later compatible one (same inputs
 * apart from dim 0, same requested outputs) up to max_batch_size rows, concatenates them along
 * dim 0, runs the backend once and hands each job its own slice of the outputs. A batch leaves as
 * soon as it reaches max_batch_size or a preferred size, or when its oldest job has waited
 * max_queue_delay_us. A full queue refuses at once (the caller answers 429); a job whose deadline
 * passes in the queue completes with KINFER_ETIMEOUT. It does not parse, encode or own tensors'
 * input memory: inputs stay the caller's until done() runs.
 */
#ifndef KINFER_BATCHER_H
#define KINFER_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"
#include "../engine/onnx_model.h"

typedef struct batcher batcher;
typedef struct batcher_job batcher_job;

/* The engine as the batcher sees it (onnx_model_run's contract); a table so tests and other
 * backends can stand in. release frees one output tensor that run produced. */
typedef struct batcher_backend {
    kinfer_status *(*run)(void *ctx, const onnx_tensor *inputs, size_t n_inputs,
                          const char *const *output_names, onnx_tensor *outputs, size_t n_outputs);
    void (*release)(void *ctx, onnx_tensor *t);
    void *ctx;
    size_t n_outputs; /* the model's output count: what a job with output_names == NULL gets */
} batcher_backend;

/* Runs on the worker thread once per job, exactly once, never after batcher_submit failed.
 * st belongs to the callee. On success job->outputs holds the results. */
typedef void (*batcher_done_fn)(batcher_job *job, kinfer_status *st);

struct batcher_job {
    /* Filled by the caller before batcher_submit. */
    const onnx_tensor *inputs; /* in the model's input order; kept alive until done() */
    size_t n_inputs;
    const char *const *output_names; /* NULL: every model output */
    size_t n_outputs;                /* entries of output_names (ignored when NULL) */
    int64_t deadline_ns;             /* CLOCK_MONOTONIC; 0: none */
    batcher_done_fn done;
    void *user;
    /* Filled by the batcher before done(). */
    onnx_tensor *outputs; /* batcher_job_outputs_count() entries; freed by batcher_job_release */
    size_t outputs_count;
    int64_t enqueue_ns, start_ns, end_ns; /* CLOCK_MONOTONIC: queued, batch started, batch ended */
    int64_t batch_rows;                   /* rows in the batch this job ran in */
    /* Private. */
    batcher_job *next;
    int64_t rows;
    int engine_owned;
};

typedef struct batcher_options {
    int max_batch_size;         /* rows per batch; 0 or 1: every job runs alone */
    int64_t max_queue_delay_us; /* longest the oldest job waits for a fuller batch */
    const int *preferred_batch_sizes;
    size_t n_preferred;
    int max_queue_size; /* queued jobs; 0: unbounded */
    int instances;      /* worker threads, at least 1 */
    /* Inline execution: when > 0, batcher_submit runs a job on the caller's thread instead of
     * handing it to a worker, if no queue delay is configured, nothing is queued, and the mean
     * compute time of recent batches (per row, times the job's rows) is at most this. A
     * hand-off costs two thread wake-ups (~10-20 us); a model cheaper than that runs faster
     * where the request was parsed. 0: never. */
    int64_t inline_max_ns;
    /* Called on the worker after each batch (metrics); may be NULL. */
    void (*on_batch)(void *ctx, int64_t rows, size_t n_jobs, int64_t compute_ns);
    void *stats_ctx;
} batcher_options;

/* Starts the workers. The backend table is copied; its ctx must outlive the batcher. */
kinfer_status *batcher_create(const batcher_options *opts, const batcher_backend *backend,
                              batcher **out) __attribute__((warn_unused_result));
/* Queues job, or runs it at once on the calling thread (see inline_max_ns): then done() has
 * run before batcher_submit returns. On error done() is never called: EFULL (queue full),
 * EUNAVAIL (shutting down), EINVAL (more rows than max_batch_size, or inputs that disagree on
 * dim 0). */
kinfer_status *batcher_submit(batcher *b, batcher_job *job) __attribute__((warn_unused_result));
/* Frees job->outputs. Safe on a job whose done() got an error. */
void batcher_job_release(batcher *b, batcher_job *job);
/* Jobs that ran inline since creation. */
uint64_t batcher_inline_count(batcher *b);
/* Jobs waiting (not yet in a running batch). */
size_t batcher_queue_depth(batcher *b);
/* From now on batches leave without waiting for the queue delay (a shutdown is near: no job should
 * wait for company); new jobs are still accepted. */
void batcher_hurry(batcher *b);
/* Refuses new jobs, runs every queued one without waiting for delays, and joins the workers. */
void batcher_shutdown(batcher *b);
/* Shuts down if needed and frees. NULL is a no-op. */
void batcher_destroy(batcher *b);

#endif
