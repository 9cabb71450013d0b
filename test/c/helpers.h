/*
 * helpers.h — small shared pieces of the C tests: a store with test-sized bounds and
 * an append with a plain payload and optional keys.
 */
#ifndef ES_TEST_HELPERS_H
#define ES_TEST_HELPERS_H

#include "store.h"

#include <string.h>

static inline es_store *test_store(uint64_t max_events, uint64_t max_bytes) {
    es_store_config cfg = {.max_events = max_events,
                           .max_bytes = max_bytes,
                           .max_payload_bytes = (uint32_t)(max_bytes / 4),
                           .sample_rate = 1.0,
                           .max_keys = 4096};
    return es_store_new(&cfg);
}

static inline es_key *test_key(es_intern *t, uint64_t n) {
    return es_intern_get(t, &n, sizeof n, true, 0);
}

static inline uint64_t test_append(es_store *s, int64_t ts, es_key *type, es_key *actor,
                                   const void *payload, uint32_t len) {
    es_event_in in = {
        .ts = ts, .type = type, .actor = actor, .payload = payload, .payload_len = len};
    if (actor) in.flags |= ES_F_ACTOR;
    return es_store_append(s, &in);
}

#endif
