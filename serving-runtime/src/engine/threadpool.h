/*
 * threadpool: the model's intra-op workers. threadpool_run() runs fn(arg, ith, nth) on the caller
 * plus nth-1 workers and waits (ggml's ith/nth split). Several runs of one model may call it at
 * once: whoever finds the pool busy runs its job alone on its own thread (nth = 1) instead of
 * waiting, so concurrent requests never block each other on the pool.
 */
#ifndef KINFER_THREADPOOL_H
#define KINFER_THREADPOOL_H

typedef struct threadpool threadpool;

/* n total threads including the caller (n <= 1: no workers). NULL on failure. */
threadpool *threadpool_create(int n);
void threadpool_free(threadpool *p);
int threadpool_size(const threadpool *p);
void threadpool_run(threadpool *p, void (*fn)(void *arg, int ith, int nth), void *arg);
/* The container's CPU limit: cgroup v2 cpu.max quota/period, else cgroup v1, else online CPUs. */
int threadpool_default_size(void);

#endif
