/*
 * intern.h — insert-only, lock-free interning of small byte keys to dense ids.
 *
 * Contract: a table maps a byte string (an encoded pid, atom, {module, function}
 * pair, ...) to an entry with a dense id (1..capacity) that never changes. Entries
 * are never removed until the table is destroyed, so an entry pointer stays valid
 * for the table's whole life. Each entry also carries the heads of the index
 * chains that the store links through it (see store.h).
 *
 * Capacity is fixed at creation. Once
 * `capacity` keys are in, es_intern_get() with create=true returns NULL and sets
 * `overflowed`; callers keep such values unindexed instead (the store never fails
 * an append because of it).
 *
 * Layout: entries live densely in id order (an entry's memory is touched only when
 * its key arrives); the hash index is an array of 32-bit entry ids, at most half
 * full. Memory is reserved for `capacity` keys and committed as keys arrive.
 *
 * Thread-safety: es_intern_get() and es_intern_by_id() may be called from any
 * number of threads at once. An insert fills a fresh entry (its id reserved with one
 * atomic add), then publishes it with one CAS of the empty index slot; a thread that
 * loses that CAS to the same key uses the winner's entry. Readers never wait.
 */
#ifndef ES_INTERN_H
#define ES_INTERN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ES_KEY_INLINE 24 /* keys up to this many bytes live inside the entry */

typedef struct es_key {
    uint64_t hash;            /* of the key bytes; fixed before the entry is published */
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
    es_key *entries;         /* entry of id i at entries[i], i in 1..capacity */
    _Atomic uint32_t *index; /* hash index: entry ids, 0 = empty */
    uint64_t mask;           /* index slots - 1 */
    uint32_t capacity;       /* most entries ever inserted */
    _Atomic uint32_t next_id;
    _Atomic bool overflowed;
} es_intern;

/* Creates a table for at most `capacity` keys. Returns false when out of memory. */
bool es_intern_init(es_intern *t, uint32_t capacity);
void es_intern_destroy(es_intern *t);

/* Finds the entry for key, inserting it (with `aux`) when absent and create is true.
 * Returns NULL when absent and not created, or when the table is full. */
es_key *es_intern_get(es_intern *t, const void *key, size_t len, bool create, uint32_t aux);

/* Entry for an id taken from a stored event or a returned entry. (An id can also
 * belong to an entry that lost a race to insert the same key and was never used;
 * to list a table's keys, keep the entries es_intern_get() finds.) */
es_key *es_intern_by_id(es_intern *t, uint32_t id);

static inline const uint8_t *es_key_bytes(const es_key *k) {
    return k->len <= ES_KEY_INLINE ? k->key.bytes : k->key.ptr;
}

static inline uint32_t es_intern_size(es_intern *t) {
    return atomic_load_explicit(&t->next_id, memory_order_relaxed);
}

/* Bytes reserved by a table (committed only as keys arrive). */
size_t es_intern_reserved(const es_intern *t);

/* 64-bit hash of a byte string. */
uint64_t es_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
