/*
 * intern.c — lock-free insert-only hash table from byte keys to dense ids.
 *
 * Open addressing with linear probing over a power-of-two index at most half full
 * (capacity keys in >= 2*capacity slots), so probe sequences stay short and always
 * end at an empty slot. See intern.h for the contract.
 */
#include "intern.h"
#include "vmem.h"

#include <mimalloc.h>
#include <string.h>

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

static size_t entries_bytes(const es_intern *t) {
    return ((size_t)t->capacity + 1) * sizeof(es_key);
}
static size_t index_bytes(const es_intern *t) {
    return (t->mask + 1) * sizeof(uint32_t);
}

size_t es_intern_reserved(const es_intern *t) {
    return entries_bytes(t) + index_bytes(t);
}

bool es_intern_init(es_intern *t, uint32_t capacity) {
    memset(t, 0, sizeof *t);
    uint64_t slots = 16;
    while (slots < (uint64_t)capacity * 2) slots <<= 1;
    t->mask = slots - 1;
    t->capacity = capacity;
    t->entries = es_vm_zalloc(entries_bytes(t));
    t->index = es_vm_zalloc(index_bytes(t));
    if (!t->entries || !t->index) {
        es_intern_destroy(t);
        return false;
    }
    return true;
}

void es_intern_destroy(es_intern *t) {
    uint32_t n = atomic_load_explicit(&t->next_id, memory_order_relaxed);
    if (t->entries)
        for (uint32_t id = 1; id <= n && id <= t->capacity; id++)
            if (t->entries[id].len > ES_KEY_INLINE) mi_free(t->entries[id].key.ptr);
    es_vm_free(t->entries, entries_bytes(t));
    es_vm_free((void *)t->index, index_bytes(t));
    memset(t, 0, sizeof *t);
}

void es_intern_group_by_aux(es_intern *t, es_intern *groups) {
    t->groups = groups;
}

/* Pushes a filled, unpublished entry onto its group's list (release: a walker that
 * reads its id sees the entry's fields). */
static void join_group(es_intern *t, es_key *k) {
    es_intern *g = t->groups;
    if (!g || k->aux == 0 || k->aux > g->capacity) return;
    _Atomic uint32_t *head = &g->entries[k->aux].group;
    uint32_t first = atomic_load_explicit(head, memory_order_relaxed);
    do atomic_store_explicit(&k->group, first, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(head, &first, k->id, memory_order_release,
                                                  memory_order_relaxed));
}

static inline bool same_key(const es_key *k, uint64_t h, const void *key, size_t len) {
    return k->hash == h && k->len == len && memcmp(es_key_bytes(k), key, len) == 0;
}

es_key *es_intern_get(es_intern *t, const void *key, size_t len, bool create, uint32_t aux) {
    uint64_t h = es_hash_bytes(key, len, 0);
    es_key *mine = NULL; /* our filled, not yet published entry */
    for (uint64_t i = h;; i++) {
        _Atomic uint32_t *slot = &t->index[i & t->mask];
        uint32_t id = atomic_load_explicit(slot, memory_order_acquire);
        if (id != 0) {
            es_key *k = &t->entries[id];
            if (same_key(k, h, key, len)) return k; /* mine, if any, stays unused */
            continue;
        }
        if (!create) return NULL;
        if (!mine) {
            uint32_t nid = atomic_fetch_add_explicit(&t->next_id, 1, memory_order_relaxed) + 1;
            if (nid > t->capacity) {
                atomic_fetch_sub_explicit(&t->next_id, 1, memory_order_relaxed);
                atomic_store_explicit(&t->overflowed, true, memory_order_relaxed);
                return NULL;
            }
            mine = &t->entries[nid];
            uint8_t *dst = mine->key.bytes;
            if (len > ES_KEY_INLINE && !(dst = mine->key.ptr = mi_malloc(len))) return NULL;
            memcpy(dst, key, len);
            mine->len = (uint32_t)len;
            mine->hash = h;
            mine->id = nid;
            mine->aux = aux;
            join_group(t, mine);
        }
        uint32_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(slot, &expected, mine->id, memory_order_release,
                                                    memory_order_acquire))
            return mine;
        i--; /* someone published into this slot first: look at it again */
    }
}

es_key *es_intern_by_id(es_intern *t, uint32_t id) {
    if (id == 0 || id > t->capacity) return NULL;
    if (id > atomic_load_explicit(&t->next_id, memory_order_acquire)) return NULL;
    return &t->entries[id];
}
