/*
 * The controller's one clock: CLOCK_MONOTONIC for durations, deadlines and delays (workqueue,
 * leader election, httpd, reconcile timings), CLOCK_REALTIME only for times written into the
 * API (a rollout's startTime). Header-only and dependency-free; it never sleeps or formats.
 */
#ifndef KINFER_CTL_CLOCK_H
#define KINFER_CTL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (arbitrary origin): compare only with each other. */
static inline int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic seconds, for metrics' durations. */
static inline double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall-clock milliseconds since the epoch. */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
