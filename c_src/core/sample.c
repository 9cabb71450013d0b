/*
 * sample.c — per-thread xorshift64* sampling. See sample.h for the contract.
 */
#include "sample.h"

#include <stdatomic.h>

static _Thread_local uint64_t rng_state;
static _Atomic uint64_t rng_seeds = 0x9e3779b97f4a7c15ULL;

uint64_t es_sample_threshold(double rate) {
    if (!(rate > 0.0)) return 0; /* also catches NaN */
    if (rate >= 1.0) return ES_SAMPLE_ALL;
    return (uint64_t)(rate * (double)ES_SAMPLE_ALL);
}

bool es_sample_keep(uint64_t threshold) {
    if (threshold >= ES_SAMPLE_ALL) return true;
    if (threshold == 0) return false;
    uint64_t x = rng_state;
    if (x == 0) /* first use on this thread: a distinct odd seed per thread */
        x = atomic_fetch_add_explicit(&rng_seeds, 0x9e3779b97f4a7c16ULL, memory_order_relaxed) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return ((x * 0x2545f4914f6cdd1dULL) >> 32) < threshold;
}
