/*
 * intern.h — insert-only, lock-free interning of small byte keys to dense ids.
 *
 * Contract: a table maps a byte string (an encoded pid, atom, {module, function}
 * pair, ...) to an entry with a dense id (1..capacity) that never changes. Entries
 * are never removed until the table is destroyed, so an entry pointer stays valid
 * for the table's whole life. Each entry also carries the heads of the index
 * chains that the store links through it (see store.h).
 *
 * Capacity is fixed at creation (the bucket array is kept at most half full). Once
 * `capacity` keys are in, es_intern_get() with create=true returns NULL and sets
 * `overflowed`; callers keep such values unindexed instead (the store never fails
 * an append because of it).
 *
 * Thread-safety: es_intern_get() and es_intern_by_id() may be called from any
 * number of threads at once. Insertion claims an empty bucket with one CAS and
 * publishes the entry with a release store; a reader that meets a bucket being
 * filled spins for the few instructions it takes to publish it.
 */
#ifndef ES_INTERN_H
#define ES_INTERN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ES_KEY_INLINE 24 /* keys up to this many bytes live inside the entry */

typedef struct es_key {
    _Atomic uint64_t hash;    /* 0 = empty, 1 = being filled, else published hash|2 */
    _Atomic uint64_t head[2]; /* newest event id of the chains keyed by this entry */
    uint32_t id;              /* dense id, 1-based */
    uint32_t aux;             /* caller data fixed at insert (e.g. module id of an MF) */
    uint32_t len;
    union {
        uint8_t bytes[ES_KEY_INLINE];
        uint8_t *ptr;
    } key;
} es_key;

typedef struct es_intern {
    es_key *buckets;
    es_key **by_id;    /* id -> entry, id 1..capacity */
    uint64_t mask;     /* bucket count - 1 */
    uint32_t capacity; /* most entries ever inserted */
    _Atomic uint32_t next_id;
    _Atomic bool overflowed;
} es_intern;

/* Creates a table for at most `capacity` keys. Returns false when out of memory. */
bool es_intern_init(es_intern *t, uint32_t capacity);
void es_intern_destroy(es_intern *t);

/* Finds the entry for key, inserting it (with `aux`) when absent and create is true.
 * Returns NULL when absent and not created, or when the table is full. */
es_key *es_intern_get(es_intern *t, const void *key, size_t len, bool create, uint32_t aux);

/* Entry for a dense id, or NULL when the id was never handed out. */
es_key *es_intern_by_id(es_intern *t, uint32_t id);

static inline const uint8_t *es_key_bytes(const es_key *k) {
    return k->len <= ES_KEY_INLINE ? k->key.bytes : k->key.ptr;
}

static inline uint32_t es_intern_size(es_intern *t) {
    return atomic_load_explicit(&t->next_id, memory_order_relaxed);
}

/* 64-bit hash of a byte string (also used for payload checksums). */
uint64_t es_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
