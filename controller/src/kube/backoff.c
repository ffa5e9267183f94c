/* Exponential backoff with jitter; see backoff.h. */
#include "backoff.h"

#include <stdlib.h>

void backoff_init(backoff *b, uint64_t base_ms, uint64_t max_ms, double jitter, unsigned seed)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
    b->jitter = jitter < 0 ? 0 : jitter > 1 ? 1 : jitter;
    b->attempt = 0;
    b->seed = seed;
}

uint64_t backoff_next_ms(backoff *b)
{
    uint64_t d = b->base_ms;
    /* Doubling stops at max, so the shift never overflows however many attempts pile up. */
    for (unsigned i = 0; i < b->attempt && d < b->max_ms; i++) d *= 2;
    if (d > b->max_ms) d = b->max_ms;
    if (b->attempt < 64) b->attempt++;
    double r = (double)rand_r(&b->seed) / ((double)RAND_MAX + 1.0); /* [0, 1) */
    uint64_t cut = (uint64_t)((double)d * b->jitter * r);
    return d - cut;
}

void backoff_reset(backoff *b)
{
    b->attempt = 0;
}
