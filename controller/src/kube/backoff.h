/*
 * Exponential backoff with jitter for retrying watches, lease calls and relists. The n-th delay
 * (n from 0) is d = min(base * 2^n, max), returned as a uniform draw from [d * (1 - jitter), d]
 * so that many clients restarting together spread out. Not thread-safe: one per retry loop.
 */
#ifndef KINFER_CTL_BACKOFF_H
#define KINFER_CTL_BACKOFF_H

#include <stdint.h>

typedef struct backoff {
    uint64_t base_ms, max_ms;
    double jitter; /* 0..1 */
    unsigned attempt;
    unsigned seed;
} backoff;

/* jitter is clamped to [0, 1]; max_ms below base_ms is raised to base_ms. */
void backoff_init(backoff *b, uint64_t base_ms, uint64_t max_ms, double jitter, unsigned seed);
/* The next delay in ms, and advances the attempt count. */
uint64_t backoff_next_ms(backoff *b);
/* After a success: the next delay starts again from base_ms. */
void backoff_reset(backoff *b);

#endif
