/*
 * sample.h — the keep/drop decision for non-critical events.
 *
 * Contract: es_sample_keep(threshold) keeps an event with probability
 * threshold / 2^32 (threshold 2^32 keeps everything, 0 keeps nothing). Each thread
 * has its own xorshift generator, so the decision costs a few instructions, touches
 * no shared memory and needs no lock. Not cryptographic; statistically uniform.
 *
 * Thread-safety: any thread, any time.
 */
#ifndef ES_SAMPLE_H
#define ES_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#define ES_SAMPLE_ALL (UINT64_C(1) << 32)

/* Threshold for a keep rate in 0.0..1.0. */
uint64_t es_sample_threshold(double rate);

bool es_sample_keep(uint64_t threshold);

#endif
