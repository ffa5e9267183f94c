/*
 * The one clock kinfer-server measures durations and deadlines with: CLOCK_MONOTONIC in
 * nanoseconds. Request start times (http_server), queue deadlines (batcher) and metrics all
 * compare values from here, so they must never come from two different clocks.
 */
#ifndef KINFER_COMMON_CLOCK_H
#define KINFER_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t kinfer_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
