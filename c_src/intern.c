/*
 * intern.c — lock-free insert-only hash table from byte keys to dense ids.
 *
 * Open addressing with linear probing over a power-of-two bucket array at most half
 * full (capacity keys in >= 2*capacity buckets), so probe sequences stay short and
 * always end at an empty bucket. See intern.h for the contract.
 */
#include "intern.h"

#include <mimalloc.h>
#include <sched.h>
#include <string.h>

#define HASH_EMPTY 0u
#define HASH_BUSY 1u

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t es_hash_bytes(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = rotl64(h ^ (w * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h ^= tail * 0x87c37b91114253d5ULL;
    return mix64(h);
}

bool es_intern_init(es_intern *t, uint32_t capacity) {
    memset(t, 0, sizeof *t);
    uint64_t buckets = 16;
    while (buckets < (uint64_t)capacity * 2) buckets <<= 1;
    t->buckets = mi_zalloc_aligned(buckets * sizeof(es_key), 64);
    t->by_id = mi_zalloc(((size_t)capacity + 1) * sizeof(es_key *));
    if (!t->buckets || !t->by_id) {
        mi_free(t->buckets);
        mi_free(t->by_id);
        return false;
    }
    t->mask = buckets - 1;
    t->capacity = capacity;
    return true;
}

void es_intern_destroy(es_intern *t) {
    if (!t->buckets) return;
    for (uint64_t i = 0; i <= t->mask; i++) {
        es_key *k = &t->buckets[i];
        if (atomic_load_explicit(&k->hash, memory_order_relaxed) > HASH_BUSY &&
            k->len > ES_KEY_INLINE)
            mi_free(k->key.ptr);
    }
    mi_free(t->buckets);
    mi_free(t->by_id);
    memset(t, 0, sizeof *t);
}

/* Waits until a bucket claimed by another thread is published; returns its hash. */
static uint64_t published_hash(es_key *k) {
    uint64_t h;
    unsigned spins = 0;
    while ((h = atomic_load_explicit(&k->hash, memory_order_acquire)) == HASH_BUSY) {
        if (++spins > 64) sched_yield();
    }
    return h;
}

es_key *es_intern_get(es_intern *t, const void *key, size_t len, bool create, uint32_t aux) {
    uint64_t h = es_hash_bytes(key, len, 0) | 2u; /* never EMPTY or BUSY */
    uint32_t reserved_id = 0;
    for (uint64_t i = h;; i++) {
        es_key *k = &t->buckets[i & t->mask];
        uint64_t seen = atomic_load_explicit(&k->hash, memory_order_acquire);
        if (seen == HASH_BUSY) seen = published_hash(k);
        if (seen == HASH_EMPTY) {
            if (!create) return NULL;
            if (!reserved_id) {
                reserved_id = atomic_fetch_add_explicit(&t->next_id, 1, memory_order_relaxed) + 1;
                if (reserved_id > t->capacity) {
                    atomic_fetch_sub_explicit(&t->next_id, 1, memory_order_relaxed);
                    atomic_store_explicit(&t->overflowed, true, memory_order_relaxed);
                    return NULL;
                }
            }
            uint64_t expected = HASH_EMPTY;
            if (!atomic_compare_exchange_strong_explicit(
                    &k->hash, &expected, HASH_BUSY, memory_order_acquire, memory_order_acquire)) {
                i--; /* someone claimed it first: look at the same bucket again */
                continue;
            }
            uint8_t *dst = k->key.bytes;
            if (len > ES_KEY_INLINE) {
                dst = mi_malloc(len);
                if (!dst) { /* leave a published tombstone-free empty bucket */
                    atomic_store_explicit(&k->hash, HASH_EMPTY, memory_order_release);
                    return NULL;
                }
                k->key.ptr = dst;
            }
            memcpy(dst, key, len);
            k->len = (uint32_t)len;
            k->id = reserved_id;
            k->aux = aux;
            atomic_store_explicit(&k->head[0], 0, memory_order_relaxed);
            atomic_store_explicit(&k->head[1], 0, memory_order_relaxed);
            atomic_store_explicit(&k->hash, h, memory_order_release);
            __atomic_store_n(&t->by_id[reserved_id], k, __ATOMIC_RELEASE);
            return k;
        }
        if (seen == h && k->len == len && memcmp(es_key_bytes(k), key, len) == 0) return k;
    }
}

es_key *es_intern_by_id(es_intern *t, uint32_t id) {
    if (id == 0 || id > t->capacity) return NULL;
    return __atomic_load_n(&t->by_id[id], __ATOMIC_ACQUIRE);
}
