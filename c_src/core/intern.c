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
    /* The tail's bytes as a little-endian word (what a copy into a zeroed word gives on
     * the machines we run on), without a call to memcpy of a variable length: short keys
     * and field values (atoms, small integers) are mostly tail. */
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++) tail |= (uint64_t)p[i] << (8 * i);
    h ^= tail * 0x87c37b91114253d5ULL;
    return mix64(h);
}

#define FIRST_LEVEL_SLOTS 4096
#define LEVEL_GROWTH 16
#define ONWARD UINT32_MAX

static size_t entries_bytes(const es_intern *t) {
    return ((size_t)t->capacity + 1) * sizeof(es_key);
}
static size_t level_bytes(const es_intern_level *l) {
    return (l->mask + 1) * sizeof(uint32_t);
}

size_t es_intern_reserved(const es_intern *t) {
    size_t n = entries_bytes(t);
    for (int l = 0; l < t->levels; l++) n += level_bytes(&t->level[l]);
    return n;
}

bool es_intern_init(es_intern *t, uint32_t capacity) {
    memset(t, 0, sizeof *t);
    uint64_t full = 16;
    while (full < (uint64_t)capacity * 2) full <<= 1;
    t->capacity = capacity;
    t->entries = es_vm_zalloc(entries_bytes(t));
    bool ok = t->entries != NULL;
    /* Levels 4096, 65536, ... slots, each taking keys until half full; the last has
     * 2 x capacity slots and takes every key that gets there. */
    for (uint64_t slots = FIRST_LEVEL_SLOTS; ok; slots *= LEVEL_GROWTH) {
        bool last = slots >= full || t->levels == ES_INTERN_LEVELS - 1;
        es_intern_level *l = &t->level[t->levels++];
        if (last) slots = full;
        l->mask = slots - 1;
        l->limit = last ? capacity : (uint32_t)(slots / 2);
        ok = (l->slots = es_vm_zalloc(level_bytes(l))) != NULL;
        if (last) break;
    }
    if (!ok) {
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
    for (int l = 0; l < t->levels; l++)
        es_vm_free((void *)t->level[l].slots, level_bytes(&t->level[l]));
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

/* Reserves and fills an entry for key, not yet published; NULL when the table is full
 * or out of memory. */
static es_key *new_entry(es_intern *t, const void *key, size_t len, uint64_t h, uint32_t aux) {
    uint32_t nid = atomic_fetch_add_explicit(&t->next_id, 1, memory_order_relaxed) + 1;
    if (nid > t->capacity) {
        atomic_fetch_sub_explicit(&t->next_id, 1, memory_order_relaxed);
        atomic_store_explicit(&t->overflowed, true, memory_order_relaxed);
        return NULL;
    }
    es_key *k = &t->entries[nid];
    uint8_t *dst = k->key.bytes;
    if (len > ES_KEY_INLINE && !(dst = k->key.ptr = mi_malloc(len))) return NULL;
    memcpy(dst, key, len);
    k->len = (uint32_t)len;
    k->hash = h;
    k->id = nid;
    k->aux = aux;
    join_group(t, k);
    return k;
}

es_key *es_intern_get(es_intern *t, const void *key, size_t len, bool create, uint32_t aux) {
    uint64_t h = es_hash_bytes(key, len, 0);
    es_key *mine = NULL; /* our filled, not yet published entry */
    for (int l = 0; l < t->levels; l++) {
        es_intern_level *lv = &t->level[l];
        bool last = l == t->levels - 1;
        for (uint64_t i = h;; i++) {
            _Atomic uint32_t *slot = &lv->slots[i & lv->mask];
            uint32_t id = atomic_load_explicit(slot, memory_order_acquire);
            if (id == ONWARD) break; /* the key is in a later level, if anywhere */
            if (id != 0) {
                es_key *k = &t->entries[id];
                if (same_key(k, h, key, len)) return k; /* mine, if any, stays unused */
                continue;
            }
            /* The end of the key's run: it was never inserted, or we insert it here. */
            if (!create) return NULL;
            if (!mine && !(mine = new_entry(t, key, len, h, aux))) return NULL;
            bool here =
                last || atomic_fetch_add_explicit(&lv->used, 1, memory_order_relaxed) < lv->limit;
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong_explicit(slot, &expected, here ? mine->id : ONWARD,
                                                        memory_order_release,
                                                        memory_order_acquire)) {
                if (here) return mine;
                break;
            }
            if (here && !last) atomic_fetch_sub_explicit(&lv->used, 1, memory_order_relaxed);
            i--; /* someone published into this slot first: look at it again */
        }
    }
    return NULL; /* unreachable: the last level has room for every entry */
}

void es_intern_each(es_intern *t, void (*fn)(es_key *k, void *arg), void *arg) {
    /* A key goes on to a level only past an onward mark in the one before: a level with
     * no mark seen (and those after it) holds nothing published before the walk. */
    bool onward = true;
    for (int l = 0; l < t->levels && onward; l++) {
        es_intern_level *lv = &t->level[l];
        onward = false;
        for (uint64_t i = 0; i <= lv->mask; i++) {
            uint32_t id = atomic_load_explicit(&lv->slots[i], memory_order_acquire);
            if (id == ONWARD)
                onward = true;
            else if (id != 0)
                fn(&t->entries[id], arg);
        }
    }
}

es_key *es_intern_by_id(es_intern *t, uint32_t id) {
    if (id == 0 || id > t->capacity) return NULL;
    if (id > atomic_load_explicit(&t->next_id, memory_order_acquire)) return NULL;
    return &t->entries[id];
}
