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
 * its key arrives). The hash index is a few levels of 32-bit entry ids, each 16 times
 * the one before (4096 slots first, the last one 2 x capacity), each taking keys until
 * half full: a key a level no longer takes leaves a mark ("onward") in its place, so
 * a lookup walks one probe run per level it needs. A table of a few thousand keys
 * thus touches a few pages of index, not all of an index sized for `capacity` (a
 * hash spreads even a few keys over every page: 6 MB of the store's 1M-event bench).
 * Memory is reserved for `capacity` keys and committed as keys arrive.
 *
 * Groups: a table may list its entries by `aux` (es_intern_group_by_aux): the entry of
 * id `aux` in another table heads the list of this table's entries with that aux (the
 * store walks a module's {module, function} keys this way). An entry joins its list
 * before it is published, so whoever can find an entry finds it in its group too; an
 * entry that lost the race to insert its key stays listed, unused (no event has it).
 *
 * Thread-safety: es_intern_get() and es_intern_by_id() may be called from any
 * number of threads at once. An insert fills a fresh entry (its id reserved with one
 * atomic add), pushes it onto its group list (one CAS), then publishes it with one CAS
 * of the first empty slot of its probe run (or marks that slot onward, and goes on in
 * the next level); a thread that loses that CAS looks at the slot again: the same
 * key's entry (it uses the winner's), another key's, or a mark, seen alike by every
 * thread inserting the key. Readers never wait.
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
    /* Grouped tables: in a member, the id of the next older member of its group; in the
     * group's own entry (in the other table), the newest member; 0 ends the list. */
    _Atomic uint32_t group;
    union {
        uint8_t bytes[ES_KEY_INLINE];
        uint8_t *ptr;
    } key;
} es_key;

/* One cache line per entry: threads appending events of different pids write the chain
 * heads of different entries, and must not share a line. */
_Static_assert(sizeof(es_key) == 64, "an entry is one cache line");

#define ES_INTERN_LEVELS 5

typedef struct es_intern_level {
    _Atomic uint32_t *slots; /* entry ids; 0 = empty; UINT32_MAX = onward */
    uint64_t mask;           /* slots - 1 */
    uint32_t limit;          /* entries this level takes */
    _Atomic uint32_t used;   /* claims of its slots for entries (limit and more: full) */
} es_intern_level;

typedef struct es_intern {
    es_key *entries; /* entry of id i at entries[i], i in 1..capacity */
    es_intern_level level[ES_INTERN_LEVELS];
    int levels;
    uint32_t capacity; /* most entries ever inserted */
    _Atomic uint32_t next_id;
    _Atomic bool overflowed;
    struct es_intern *groups; /* entries are listed under groups->entries[aux]; or NULL */
} es_intern;

/* Creates a table for at most `capacity` keys. Returns false when out of memory. */
bool es_intern_init(es_intern *t, uint32_t capacity);
void es_intern_destroy(es_intern *t);

/* Lists each new entry of t under the entry of id `aux` in `groups` (an aux that is no
 * entry of groups lists nothing). Call before any insert into t. */
void es_intern_group_by_aux(es_intern *t, es_intern *groups);

/* First member of the group of entry g (0 = none); the next of member m: es_intern_next. */
static inline uint32_t es_intern_first(es_key *g) {
    return atomic_load_explicit(&g->group, memory_order_acquire);
}
static inline uint32_t es_intern_next(es_key *m) {
    return atomic_load_explicit(&m->group, memory_order_acquire);
}

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

/* Calls fn(entry, arg) for each published entry: each key once, never an entry still
 * being filled or one that lost the race to insert its key (es_intern_by_id can give
 * both: an id is reserved before its entry is filled). Reads the hash index, where an
 * id appears only once its entry is complete, and only the levels that keys reached;
 * keys published while it runs may be left out. Safe concurrently with inserts. */
void es_intern_each(es_intern *t, void (*fn)(es_key *k, void *arg), void *arg);

/* Bytes reserved by a table (committed only as keys arrive). */
size_t es_intern_reserved(const es_intern *t);

/* 64-bit hash of a byte string. */
uint64_t es_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
