/* threadpool: fixed intra-op workers with a busy-means-run-inline rule (see threadpool.h). */
#include "threadpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct threadpool {
    int n;
    pthread_t *tids;
    pthread_mutex_t busy; /* held by the run that owns the workers */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;
    int pending, quit;
    void (*fn)(void *, int, int);
    void *arg;
};

typedef struct worker_arg {
    threadpool *p;
    int ith;
} worker_arg;


static void *worker_main(void *v)
{
    worker_arg *w = v;
    threadpool *p = w->p;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        void (*fn)(void *, int, int) = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(arg, w->ith, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Worker arguments live after the tids in one block so free is one call. */
threadpool *threadpool_create(int n)
{
    threadpool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->n = n < 1 ? 1 : n;
    pthread_mutex_init(&p->busy, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (p->n == 1) return p;
    p->tids = calloc((size_t)p->n, sizeof(pthread_t) + sizeof(worker_arg));
    if (!p->tids) goto fail;
    worker_arg *wa = (worker_arg *)(p->tids + p->n);
    for (int i = 1; i < p->n; i++) {
        wa[i].p = p;
        wa[i].ith = i;
        if (pthread_create(&p->tids[i], NULL, worker_main, &wa[i])) {
            p->n = i; /* join the ones that started */
            threadpool_free(p);
            return NULL;
        }
    }
    return p;
fail:
    free(p);
    return NULL;
}

void threadpool_free(threadpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n && p->tids; i++) pthread_join(p->tids[i], NULL);
    free(p->tids);
    pthread_mutex_destroy(&p->busy);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p);
}

int threadpool_size(const threadpool *p)
{
    return p ? p->n : 1;
}

void threadpool_run(threadpool *p, void (*fn)(void *, int, int), void *arg)
{
    if (!p || p->n == 1 || pthread_mutex_trylock(&p->busy)) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->busy);
}

int threadpool_default_size(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n = ncpu > 0 ? (int)ncpu : 1;
    char quota[32] = "";
    long period = 0, q = -1;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        if (fscanf(f, "%31s %ld", quota, &period) == 2 && quota[0] != 'm') q = atol(quota);
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r"))) {
        if (fscanf(f, "%ld", &q) != 1) q = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r"))) {
            if (fscanf(f, "%ld", &period) != 1) period = 0;
            fclose(f);
        }
    }
    if (q > 0 && period > 0) {
        int lim = (int)((q + period - 1) / period);
        if (lim >= 1 && lim < n) n = lim;
    }
    return n;
}
