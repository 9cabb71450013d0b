/*
 * store_internal.h — the store's layout, shared by its two halves only: store.c (the
 * writer side: creation, the payload arena, appends, maintenance, statistics) and
 * store_read.c (the reader side: slot reads, time-block summaries, chain and time
 * walks). Nothing else includes it; store.h is the store's contract (and explains the
 * scheme these structures implement).
 *
 * Thread-safety: as store.h.
 */
#ifndef ES_STORE_INTERNAL_H
#define ES_STORE_INTERNAL_H

#include "store.h"

#include <sched.h>
#include <string.h>

#define LINK_UNSET 0        /* chain link not written yet */
#define LINK_NONE INT32_MIN /* no older event in this chain */
#define SPINS_BEFORE_YIELD 64

/* The links a slot keeps, by chain: the module chain has none (a module's events are
 * the union of its {module, function} chains; see es_store_walk_chain). */
#define SLOT_LINKS 5
static const int8_t link_index[ES_CHAIN_COUNT]
    __attribute__((unused)) = {[ES_CHAIN_ACTOR] = 0,   [ES_CHAIN_PEER] = 1, [ES_CHAIN_PAIR] = 2,
                               [ES_CHAIN_MODULE] = -1, [ES_CHAIN_MF] = 3,   [ES_CHAIN_TYPE] = 4};

/* One event: exactly one cache line (the ring is page-aligned), so producers writing
 * different events never share a line, and a reader copies one line. */
typedef struct es_slot {
    _Atomic uint32_t seq;  /* stamp of the lap it holds, | 1 while being written (below) */
    _Atomic uint32_t meta; /* META_HASHED | type id << 16 | flags << 8 | arity */
    _Atomic int64_t ts;
    _Atomic uint64_t off; /* payload position in the arena (logical, ever-growing) */
    _Atomic uint32_t len;
    _Atomic uint32_t csum;
    _Atomic uint32_t actor, peer, mf;
    _Atomic int32_t link[SLOT_LINKS];
} es_slot;

_Static_assert(sizeof(es_slot) == ES_SLOT_BYTES, "a slot is ES_SLOT_BYTES bytes");

/* An event with a hash (store.h) and no peer keeps the hash where a peer's key id and
 * its pair link would be: the low half in `peer`, the high half in link[PAIR_LINK] (an
 * event without a peer is in no pair chain, so no walk reads that link). META_HASHED
 * says so; type ids stay below 2^13 (the type table holds 4096 keys). */
#define META_HASHED (1u << 31)
#define META_TYPE_MASK 0x7FFFu
#define PAIR_LINK 2
_Static_assert(ES_SLOT_BYTES == 64, "a slot is one cache line");

/* Slot stamps. Id `id` lives in slot (id - 1) % cap during lap (id - 1) / cap, and the
 * slot's seq says which lap it holds: the lap's low 30 bits << 2 | STAMP_USED, with
 * STAMP_BUSY while its writer is at it; 0 = never written. The id that a stamp stands
 * for is always known from elsewhere (a chain, a cursor, a range): every reader first
 * checks that id against the live range (at most one lap back, from the 64-bit
 * counters), so the 30-bit lap can only be mistaken by a reader that stalls between
 * two loads of the same slot for 2^30 laps of the ring. */
#define STAMP_BUSY 1u
#define STAMP_USED 2u

static inline uint32_t stamp_of_lap(uint64_t lap) {
    return (uint32_t)(lap << 2) | STAMP_USED;
}

/* Laps of stamp a minus laps of stamp b (both used; fewer than 2^29 laps apart). */
static inline int32_t lap_diff(uint32_t a, uint32_t b) {
    return (int32_t)((a & ~3u) - (b & ~3u)) / 4;
}

/* Division by a number fixed when the store is made (its ring's slots, its arena's
 * words), without a divide instruction while dividend and divisor fit in 32 bits, as a
 * store's ids and payload positions do for its first 4 billion events and 32 GiB
 * (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019). Every slot
 * read and payload read divides: a divide costs 20-40 cycles, and a scan reads two or
 * three of them per event. */
typedef struct es_divisor {
    uint64_t d, m; /* m: 2^64 / d rounded up; 0 when d is past 32 bits (or 1) */
} es_divisor;

static inline es_divisor divisor_of(uint64_t d) {
    return (es_divisor){d, d > 1 && d <= UINT32_MAX ? UINT64_MAX / d + 1 : 0};
}

static inline uint64_t div_by(es_divisor v, uint64_t n) {
    if (v.m && n <= UINT32_MAX) return (uint64_t)(((unsigned __int128)v.m * n) >> 64);
    return n / v.d;
}

/* Summary of one block of ES_BLOCK ids, kept by the summarizer. */
typedef struct es_block {
    _Atomic uint64_t summarized; /* block number + 1 once min/max/pmax describe it */
    _Atomic int64_t min, max;
    _Atomic int64_t pmax; /* greatest timestamp of any id up to the end of this block */
} es_block;

#define SHARDS 8
#define SHARDED_CHAINS 2 /* mf, type: chains ES_CHAIN_MF.. */

/* Per-shard counters, a cache line each so producers never share one. */
typedef struct es_shard_stats {
    _Alignas(64) _Atomic uint64_t sampled_out, truncated, dropped;
} es_shard_stats;

struct es_store {
    es_store_config cfg;
    es_slot *slots;
    uint64_t cap;
    _Atomic uint64_t *arena;
    uint64_t arena_words;
    es_divisor by_cap, by_arena_words;
    es_block *blocks;
    uint64_t nblocks;
    es_tables tables;
    es_wallclock *clock;              /* the runtime's time offsets over the recording */
    _Atomic(struct es_zones *) zones; /* payload field summaries (zone.h), made on first use */
    /* Heads of sharded chains: heads[chain][shard][key id]. A shard's array is
     * written by the threads of that shard only, so shards never share a line. */
    _Atomic uint64_t *heads[SHARDED_CHAINS][SHARDS];
    _Atomic uint64_t *type_counts[SHARDS];
    es_shard_stats shard_stats[SHARDS];
    uint64_t serial;

    /* Every append takes an id, then reserves payload bytes: both counters on one
     * line, so that under contention an append moves one line between cores, not two. */
    _Alignas(64) _Atomic uint64_t next_id;
    _Atomic uint64_t arena_cursor;           /* bytes reserved so far */
    _Alignas(64) _Atomic uint64_t low_water; /* ids below were cleared */
    /* Payloads reserved below this logical offset are pruned: raised (rarely) by a
     * writer that wrote its bytes after the arena had lapped them (es_store_append), so
     * that the newer events its late bytes may have spoiled count as pruned too. */
    _Atomic uint64_t byte_floor;
    _Atomic uint64_t sample_threshold;
    /* A store filled from a file: ids before `base` never existed, and `holes` ids
     * (the last at `last_hole`) hold no event. */
    uint64_t base, holes, last_hole;

    _Alignas(64) _Atomic bool summarizing;
    _Atomic uint64_t sum_cursor; /* blocks below are summarized (or pruned) */
    _Atomic int64_t lateness;
    int64_t pm_running; /* only touched by the thread holding `summarizing` */
};

/* Where id lives in the ring, and the stamp of its lap there. Consecutive ids take
 * consecutive slots: a slot is a line of its own, so producers appending at once share
 * no line, and a lone producer writes one sequential stream (spreading neighbouring ids
 * apart measured ~5 ns slower per append, and no faster with two producers). */
static inline es_slot *slot_of(const es_store *s, uint64_t id, uint32_t *stamp) {
    uint64_t lap = div_by(s->by_cap, id - 1);
    *stamp = stamp_of_lap(lap);
    return &s->slots[(id - 1) - lap * s->cap];
}

/* The arena word where the payload at logical offset off begins. */
static inline uint64_t arena_word(const es_store *s, uint64_t off) {
    uint64_t w = off / 8;
    return w - div_by(s->by_arena_words, w) * s->arena_words;
}

/* a - b, clamped to the int64 range (timestamps may span all of it). */
static inline int64_t sat_sub(int64_t a, int64_t b) {
    int64_t r;
    if (!__builtin_sub_overflow(a, b, &r)) return r;
    return b < 0 ? INT64_MAX : INT64_MIN;
}

static inline uint64_t block_of(uint64_t id) {
    return (id - 1) / ES_BLOCK;
}

static inline void spin_wait(unsigned *spins) {
    if (++*spins > SPINS_BEFORE_YIELD) sched_yield();
}

/* Head of key k's chain c in shard sh (not for the module chain, which has none). */
static inline _Atomic uint64_t *head_of(es_store *s, es_key *k, int c, unsigned sh) {
    if (c < ES_CHAIN_MODULE) return &k->head[c == ES_CHAIN_PEER];
    return &s->heads[c - ES_CHAIN_MF][sh][k->id];
}

static inline int shards_of(int c) {
    return c < ES_CHAIN_MODULE ? 1 : SHARDS;
}

/* Bytes of one shard's head (or counter) array for the keys of table t. */
static inline size_t heads_bytes(const es_intern *t) {
    return ((size_t)t->capacity + 1) * 8;
}

/* ---- shared between the halves (store_read.c) ------------------------------------- */

/* Whether the arena has not come round over bytes reserved at logical offset off, and
 * no late writer may have spoiled them (byte_floor). */
static inline bool arena_intact(es_store *s, uint64_t off) {
    uint64_t cursor = atomic_load_explicit(&s->arena_cursor, memory_order_relaxed);
    return cursor <= off + s->arena_words * 8 &&
           off >= atomic_load_explicit(&s->byte_floor, memory_order_relaxed);
}

enum slot_state { SLOT_GONE, SLOT_LIVE, SLOT_PENDING, SLOT_NO_PAYLOAD };

/* The meta word of an id skipped by es_store_skip_to(): no type, no flags, arity 255
 * (a real event with no type never has an arity). */
#define HOLE_META 0xFFu

enum slot_state slot_read(es_store *s, uint64_t id, es_event_view *v, int li, int32_t *link);
uint64_t live_floor(es_store *s);
bool block_summary(es_store *s, uint64_t b, int64_t *min, int64_t *max, int64_t *pmax);
void summarize(es_store *s, uint64_t upto);

#endif
