/*
 * store.c — the lock-free event ring, payload arena, index chains and time blocks.
 * The contract, the reclamation scheme and the thread-safety rules are in store.h.
 */
#include "store.h"
#include "clock.h"
#include "sample.h"
#include "vmem.h"

#include <mimalloc.h>
#include <sched.h>
#include <string.h>

#define LINK_UNSET 0        /* chain link not written yet */
#define LINK_NONE INT32_MIN /* no older event in this chain */
#define SPINS_BEFORE_YIELD 64

/* The links a slot keeps, by chain: the module chain has none (a module's events are
 * the union of its {module, function} chains; see es_store_walk_chain). */
#define SLOT_LINKS 5
static const int8_t link_index[ES_CHAIN_COUNT] = {
    [ES_CHAIN_ACTOR] = 0,   [ES_CHAIN_PEER] = 1, [ES_CHAIN_PAIR] = 2,
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
    es_block *blocks;
    uint64_t nblocks;
    es_tables tables;
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
    uint64_t lap = (id - 1) / s->cap;
    *stamp = stamp_of_lap(lap);
    return &s->slots[(id - 1) - lap * s->cap];
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

static void spin_wait(unsigned *spins) {
    if (++*spins > SPINS_BEFORE_YIELD) sched_yield();
}

static _Atomic unsigned thread_ordinals;
static _Thread_local int my_shard = -1;

/* The shard of the calling thread: threads are dealt round-robin. */
static inline unsigned shard_of_thread(void) {
    if (my_shard < 0) my_shard = (int)(atomic_fetch_add(&thread_ordinals, 1) % SHARDS);
    return (unsigned)my_shard;
}

unsigned es_thread_shard(void) {
    return shard_of_thread();
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
static size_t heads_bytes(const es_intern *t) {
    return ((size_t)t->capacity + 1) * 8;
}

const es_store_option es_store_options[ES_OPTS] = {
    [ES_OPT_MAX_EVENTS] = {"max_events", 1000000, 16, UINT64_C(1) << 31},
    [ES_OPT_MAX_BYTES] = {"max_bytes", 256u << 20, 4096, UINT64_C(1) << 40},
    [ES_OPT_MAX_PAYLOAD_BYTES] = {"max_payload_bytes", 64u << 10, 0, UINT32_MAX},
    [ES_OPT_MAX_KEYS] = {"max_keys", 262144, 16, 1u << 26},
};

es_store_config es_store_defaults(void) {
    return (es_store_config){.max_events = es_store_options[ES_OPT_MAX_EVENTS].def,
                             .max_bytes = es_store_options[ES_OPT_MAX_BYTES].def,
                             .max_payload_bytes =
                                 (uint32_t)es_store_options[ES_OPT_MAX_PAYLOAD_BYTES].def,
                             .sample_rate = ES_DEFAULT_SAMPLE_RATE,
                             .max_keys = (uint32_t)es_store_options[ES_OPT_MAX_KEYS].def};
}

static bool in_range(int opt, uint64_t v) {
    return v >= es_store_options[opt].min && v <= es_store_options[opt].max;
}

es_store *es_store_new(const es_store_config *cfg) {
    if (!in_range(ES_OPT_MAX_EVENTS, cfg->max_events) ||
        !in_range(ES_OPT_MAX_BYTES, cfg->max_bytes) || !in_range(ES_OPT_MAX_KEYS, cfg->max_keys) ||
        cfg->max_payload_bytes > cfg->max_bytes / 4 ||
        !(cfg->sample_rate >= 0.0 && cfg->sample_rate <= 1.0))
        return NULL;
    es_store *s = mi_zalloc_aligned(sizeof *s, 64);
    if (!s) return NULL;
    s->cfg = *cfg;
    s->cap = cfg->max_events;
    s->arena_words = (cfg->max_bytes + 7) / 8;
    s->nblocks = s->cap / ES_BLOCK + 3;
    /* Large zeroed allocations come straight from the OS: pages are committed only
     * when first written, so a store costs memory in proportion to what it holds. */
    s->slots = es_vm_zalloc(s->cap * sizeof(es_slot));
    s->arena = es_vm_zalloc(s->arena_words * 8);
    s->blocks = es_vm_zalloc(s->nblocks * sizeof(es_block));
    bool ok = s->slots && s->arena && s->blocks;
    uint32_t k = cfg->max_keys;
    ok = ok && es_intern_init(&s->tables.type, 4096) && es_intern_init(&s->tables.pid, k) &&
         es_intern_init(&s->tables.pair, k) && es_intern_init(&s->tables.module, k) &&
         es_intern_init(&s->tables.mf, k);
    if (ok) es_intern_group_by_aux(&s->tables.mf, &s->tables.module);
    es_intern *sharded[SHARDED_CHAINS] = {&s->tables.mf, &s->tables.type};
    for (int c = 0; ok && c < SHARDED_CHAINS; c++)
        for (int sh = 0; ok && sh < SHARDS; sh++)
            ok = (s->heads[c][sh] = es_vm_zalloc(heads_bytes(sharded[c])));
    for (int sh = 0; ok && sh < SHARDS; sh++)
        ok = (s->type_counts[sh] = es_vm_zalloc(heads_bytes(&s->tables.type)));

    if (!ok) {
        es_store_free(s);
        return NULL;
    }
    static _Atomic uint64_t serials = 1;
    s->serial = atomic_fetch_add(&serials, 1);
    atomic_init(&s->next_id, 1);
    atomic_init(&s->low_water, 1);
    atomic_init(&s->sample_threshold, es_sample_threshold(cfg->sample_rate));
    s->pm_running = INT64_MIN;
    return s;
}

void es_store_free(es_store *s) {
    if (!s) return;
    es_intern *sharded[SHARDED_CHAINS] = {&s->tables.mf, &s->tables.type};
    for (int c = 0; c < SHARDED_CHAINS; c++)
        for (int sh = 0; sh < SHARDS; sh++) es_vm_free(s->heads[c][sh], heads_bytes(sharded[c]));
    for (int sh = 0; sh < SHARDS; sh++)
        es_vm_free(s->type_counts[sh], heads_bytes(&s->tables.type));
    es_vm_free(s->slots, s->cap * sizeof(es_slot));
    es_vm_free(s->arena, s->arena_words * 8);
    es_vm_free(s->blocks, s->nblocks * sizeof(es_block));
    es_intern_destroy(&s->tables.type);
    es_intern_destroy(&s->tables.pid);
    es_intern_destroy(&s->tables.pair);
    es_intern_destroy(&s->tables.module);
    es_intern_destroy(&s->tables.mf);
    mi_free(s);
}

uint64_t es_store_serial(const es_store *s) {
    return s->serial;
}

const es_store_config *es_store_config_of(const es_store *s) {
    return &s->cfg;
}
es_tables *es_store_tables(es_store *s) {
    return &s->tables;
}

void es_store_set_sample_rate(es_store *s, double rate) {
    s->cfg.sample_rate = rate;
    atomic_store_explicit(&s->sample_threshold, es_sample_threshold(rate), memory_order_relaxed);
}

uint64_t es_store_high_id(es_store *s) {
    return atomic_load_explicit(&s->next_id, memory_order_acquire) - 1;
}

uint64_t es_store_low_id(es_store *s) {
    uint64_t next = atomic_load_explicit(&s->next_id, memory_order_acquire);
    uint64_t low = atomic_load_explicit(&s->low_water, memory_order_acquire);
    if (next > s->cap && next - s->cap > low) low = next - s->cap;
    return low;
}

/* ---- payload arena --------------------------------------------------------------- */

static inline uint64_t mix_word(uint64_t h, uint64_t w) {
    h ^= w * 0x87c37b91114253d5ULL;
    h = (h << 31) | (h >> 33);
    return h * 0x4cf5ad432745937fULL;
}

static inline uint32_t finish_csum(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
    return (uint32_t)h;
}

/* The checksum of (id, bytes) runs in two lanes, words 0, 2, 4, ... and 1, 3, 5, ...,
 * so that the two multiply chains overlap instead of one chain as long as the payload. */
typedef struct csum_lanes {
    uint64_t h[2];
} csum_lanes;

static inline csum_lanes csum_start(uint64_t id, uint32_t len) {
    return (csum_lanes){{mix_word(id, len), id ^ len}};
}

static inline uint32_t csum_end(csum_lanes c) {
    return finish_csum(mix_word(c.h[0], c.h[1]));
}

/* The first n (< 8) bytes of p in a zero-padded word; fixed-size copies only, so the
 * compiler inlines them (a variable-length memcpy is a libc call per word). */
static inline uint64_t tail_word(const uint8_t *p, uint32_t n) {
    uint8_t b[8] = {0};
    for (uint32_t i = 0; i < n; i++) b[i] = p[i];
    uint64_t w;
    memcpy(&w, b, 8);
    return w;
}

/* Copies len bytes into the arena at logical offset off; returns their checksum. */
static uint32_t arena_write(es_store *s, uint64_t off, uint64_t id, const uint8_t *src,
                            uint32_t len) {
    csum_lanes c = csum_start(id, len);
    uint64_t w = (off / 8) % s->arena_words, word;
    uint32_t i = 0, words = len / 8;
    for (; i < words; i++) {
        memcpy(&word, src + (size_t)i * 8, 8);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        atomic_store_explicit(&s->arena[w], word, memory_order_relaxed);
        if (++w == s->arena_words) w = 0;
    }
    if (len % 8) {
        word = tail_word(src + (size_t)i * 8, len % 8);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        atomic_store_explicit(&s->arena[w], word, memory_order_relaxed);
    }
    return csum_end(c);
}

static inline bool arena_intact(es_store *s, uint64_t off) {
    uint64_t cursor = atomic_load_explicit(&s->arena_cursor, memory_order_relaxed);
    return cursor <= off + s->arena_words * 8;
}

bool es_store_payload(es_store *s, const es_event_view *v, uint8_t *buf) {
    if (v->flags & ES_F_TRUNCATED) return true;
    csum_lanes c = csum_start(v->id, v->len);
    uint64_t w = (v->off / 8) % s->arena_words, word;
    uint32_t i = 0, words = v->len / 8;
    for (; i < words; i++) {
        word = atomic_load_explicit(&s->arena[w], memory_order_relaxed);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        memcpy(buf + (size_t)i * 8, &word, 8);
        if (++w == s->arena_words) w = 0;
    }
    if (v->len % 8) {
        word = atomic_load_explicit(&s->arena[w], memory_order_relaxed);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        uint8_t b[8];
        memcpy(b, &word, 8);
        for (uint32_t k = 0; k < v->len % 8; k++) buf[(size_t)i * 8 + k] = b[k];
    }
    atomic_thread_fence(memory_order_acquire);
    return arena_intact(s, v->off) && csum_end(c) == v->csum;
}

bool es_store_payload_fast(es_store *s, const es_event_view *v, uint8_t *buf) {
    if (v->flags & ES_F_TRUNCATED) return true;
    uint64_t w = (v->off / 8) % s->arena_words, word;
    uint32_t i = 0, words = (v->len + 7) / 8;
    /* Whole words, the last one too: buf has room for them (callers size it so). */
    if (w + words <= s->arena_words) {
        for (; i < words; i++) {
            word = atomic_load_explicit(&s->arena[w + i], memory_order_relaxed);
            memcpy(buf + (size_t)i * 8, &word, 8);
        }
    } else {
        for (; i < words; i++) {
            word = atomic_load_explicit(&s->arena[w], memory_order_relaxed);
            memcpy(buf + (size_t)i * 8, &word, 8);
            if (++w == s->arena_words) w = 0;
        }
    }
    atomic_thread_fence(memory_order_acquire);
    return arena_intact(s, v->off);
}

/* ---- slots ----------------------------------------------------------------------- */

enum slot_state { SLOT_GONE, SLOT_LIVE, SLOT_PENDING, SLOT_NO_PAYLOAD };

/* The meta word of an id skipped by es_store_skip_to(): no type, no flags, arity 255
 * (a real event with no type never has an arity). */
#define HOLE_META 0xFFu

/* Reads slot `id` consistently. With li >= 0 also returns the slot's link li, which
 * is valid for pending (still being written) slots too once it is non-zero. */
static enum slot_state slot_read(es_store *s, uint64_t id, es_event_view *v, int li,
                                 int32_t *link) {
    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    for (unsigned spins = 0;;) {
        uint32_t s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if ((s1 & ~STAMP_BUSY) != stamp) return SLOT_GONE;
        v->id = id;
        v->ts = atomic_load_explicit(&sl->ts, memory_order_relaxed);
        v->off = atomic_load_explicit(&sl->off, memory_order_relaxed);
        v->len = atomic_load_explicit(&sl->len, memory_order_relaxed);
        v->csum = atomic_load_explicit(&sl->csum, memory_order_relaxed);
        uint32_t meta = atomic_load_explicit(&sl->meta, memory_order_relaxed);
        v->type_id = (uint16_t)((meta >> 16) & META_TYPE_MASK);
        v->flags = (uint8_t)(meta >> 8);
        v->arity = (uint8_t)meta;
        v->actor = atomic_load_explicit(&sl->actor, memory_order_relaxed);
        v->peer = atomic_load_explicit(&sl->peer, memory_order_relaxed);
        v->mf = atomic_load_explicit(&sl->mf, memory_order_relaxed);
        v->hash = 0;
        if (meta & META_HASHED) {
            uint32_t high =
                (uint32_t)atomic_load_explicit(&sl->link[PAIR_LINK], memory_order_relaxed);
            v->hash = (uint64_t)high << 32 | v->peer;
            v->peer = 0;
        }
        int32_t l = li >= 0 ? atomic_load_explicit(&sl->link[li], memory_order_acquire) : 0;
        atomic_thread_fence(memory_order_acquire);
        uint32_t s2 = atomic_load_explicit(&sl->seq, memory_order_relaxed);
        if (s2 != s1) {
            if (s2 == stamp) continue; /* it was just committed: read it again */
            return SLOT_GONE;
        }
        if (li >= 0 && l == LINK_UNSET) { /* linked but the link is not stored yet */
            spin_wait(&spins);
            continue;
        }
        if (link) *link = l;
        if (s1 & STAMP_BUSY) return SLOT_PENDING;
        if (meta == HOLE_META) return SLOT_GONE;
        /* Truncated markers hold no bytes but sit at an arena position too, so byte
         * pruning takes them in order with everything else. */
        if (!arena_intact(s, v->off)) return SLOT_NO_PAYLOAD;
        return SLOT_LIVE;
    }
}

#define INVERSION_WINDOW 64

/* The lowest id that is live: above clears and the ring's lap, and above every event
 * whose payload the arena has lapped. Payload offsets follow ids except where two
 * appends raced between taking an id and reserving bytes, so after a binary search
 * a short window is checked: ids below a lapped event count as pruned too, keeping
 * the live ids one contiguous run (oldest first, as the contract says). */
static uint64_t live_floor(es_store *s) {
    uint64_t low = es_store_low_id(s), high = es_store_high_id(s);
    uint64_t cursor = atomic_load_explicit(&s->arena_cursor, memory_order_relaxed);
    if (cursor <= s->arena_words * 8 || low > high) return low;
    uint64_t lo = low, hi = high + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        es_event_view v;
        if (slot_read(s, mid, &v, -1, NULL) == SLOT_NO_PAYLOAD)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t floor = lo;
    for (uint64_t id = lo; id <= high && id < lo + INVERSION_WINDOW; id++) {
        es_event_view v;
        if (slot_read(s, id, &v, -1, NULL) == SLOT_NO_PAYLOAD) floor = id + 1;
    }
    return floor;
}

bool es_store_peek(es_store *s, uint64_t id, es_event_view *out) {
    if (id == 0 || id < es_store_low_id(s) || id > es_store_high_id(s)) return false;
    return slot_read(s, id, out, -1, NULL) == SLOT_LIVE;
}

/* ---- time blocks ----------------------------------------------------------------- */

static bool block_summary(es_store *s, uint64_t b, int64_t *min, int64_t *max, int64_t *pmax) {
    es_block *bl = &s->blocks[b % s->nblocks];
    uint64_t s1 = atomic_load_explicit(&bl->summarized, memory_order_acquire);
    if (s1 != b + 1) return false;
    *min = atomic_load_explicit(&bl->min, memory_order_relaxed);
    *max = atomic_load_explicit(&bl->max, memory_order_relaxed);
    *pmax = atomic_load_explicit(&bl->pmax, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&bl->summarized, memory_order_relaxed) == s1;
}

enum { TS_PENDING, TS_NONE, TS_SOME };

/* The timestamp of `id` for its block's summary: TS_PENDING while its append is in
 * flight or not started yet (the block is not complete), TS_NONE when the slot holds no
 * event of it (a hole, or lapped by the ring), else TS_SOME and *ts. */
static int summary_ts(es_store *s, uint64_t id, int64_t *ts) {
    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if (s1 == 0 || lap_diff(s1, stamp) < 0 || s1 == (stamp | STAMP_BUSY)) return TS_PENDING;
        if (s1 != stamp) return TS_NONE;
        *ts = atomic_load_explicit(&sl->ts, memory_order_relaxed);
        uint32_t meta = atomic_load_explicit(&sl->meta, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != s1) continue;
        return meta == HOLE_META ? TS_NONE : TS_SOME;
    }
}

/* Summarizes complete blocks in order, up to (not including) block `upto`. One thread
 * at a time (try-lock, never waits). A block whose appends are not all committed stops
 * the summary until a later call. Appends call this for the block before the one they
 * complete: its appends on other threads are long over, so the summarizer rarely reads
 * a block in vain. */
static void summarize(es_store *s, uint64_t upto) {
    if (atomic_exchange_explicit(&s->summarizing, true, memory_order_acquire)) return;
    uint64_t c = atomic_load_explicit(&s->sum_cursor, memory_order_relaxed);
    while (c < upto) {
        uint64_t low = es_store_low_id(s);
        if ((c + 1) * ES_BLOCK < low) { /* wholly pruned: nothing to describe */
            c = block_of(low);
            continue;
        }
        /* Ids below this were cleared (or precede a loaded store's first id): an
         * append of one still in flight does not hold the block up. */
        uint64_t cleared = atomic_load_explicit(&s->low_water, memory_order_acquire);
        int64_t mn = INT64_MAX, mx = INT64_MIN, late = 0, pm = s->pm_running, ts = 0;
        bool complete = true;
        for (uint64_t id = c * ES_BLOCK + 1; id <= (c + 1) * ES_BLOCK; id++) {
            int r = summary_ts(s, id, &ts);
            if (r == TS_PENDING && id >= cleared) {
                complete = false;
                break;
            }
            if (r != TS_SOME) continue;
            if (ts < mn) mn = ts;
            if (ts > mx) mx = ts;
            if (pm != INT64_MIN && sat_sub(pm, ts) > late) late = sat_sub(pm, ts);
            if (ts > pm) pm = ts;
        }
        if (!complete) break;
        s->pm_running = pm;
        es_block *bl = &s->blocks[c % s->nblocks];
        if (late > atomic_load_explicit(&s->lateness, memory_order_relaxed))
            atomic_store_explicit(&s->lateness, late, memory_order_release);
        atomic_store_explicit(&bl->summarized, 0, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&bl->min, mn, memory_order_relaxed);
        atomic_store_explicit(&bl->max, mx, memory_order_relaxed);
        atomic_store_explicit(&bl->pmax, pm, memory_order_relaxed);
        atomic_store_explicit(&bl->summarized, c + 1, memory_order_release);
        c++;
    }
    atomic_store_explicit(&s->sum_cursor, c, memory_order_release);
    atomic_store_explicit(&s->summarizing, false, memory_order_release);
}

/* ---- append ---------------------------------------------------------------------- */

static inline int32_t link_to(uint64_t id, uint64_t prev) {
    if (prev == 0) return LINK_NONE;
    int64_t d = (int64_t)(id - prev);
    if (d == 0 || d >= INT32_MAX || d <= -INT32_MAX) return LINK_NONE;
    return (int32_t)d;
}

bool es_store_keep(es_store *s, uint64_t threshold) {
    uint64_t own = atomic_load_explicit(&s->sample_threshold, memory_order_relaxed);
    if (es_sample_keep(own < threshold ? own : threshold)) return true;
    atomic_fetch_add_explicit(&s->shard_stats[shard_of_thread()].sampled_out, 1,
                              memory_order_relaxed);
    return false;
}

uint64_t es_store_append(es_store *s, const es_event_in *ev) {
    uint8_t flags = ev->flags;
    unsigned shard = shard_of_thread();
    es_shard_stats *stats = &s->shard_stats[shard];
    if (!(flags & ES_F_CRITICAL) && !ev->sampled && !es_store_keep(s, ES_SAMPLE_ALL)) return 0;
    /* The counters' line is most likely in another producer's cache: ask for it now,
     * so that its trip overlaps the clock read below rather than stalling the add. */
    __builtin_prefetch(&s->next_id, 1, 3);
    int64_t ts = ev->ts == ES_TS_NOW ? es_clock_now() : ev->ts;
    uint32_t len = ev->payload_len;
    if (len > s->cfg.max_payload_bytes) {
        flags |= ES_F_TRUNCATED;
        atomic_fetch_add_explicit(&stats->truncated, 1, memory_order_relaxed);
    }
    uint32_t stored_len = (flags & ES_F_TRUNCATED) ? 0 : len;

    /* The id, then the payload's bytes, back to back from two counters on one line: an
     * append moves that line once, and payload offsets follow ids almost exactly (byte
     * pruning stays oldest-first). The bytes are written at once: the longer a writer
     * holds bytes it has not written, the likelier the arena comes round while it waits
     * (preempted, or waiting for its slot) and its late write spoils newer events'
     * bytes. (Writing them last, after the locked instructions below, measured ~8 ns
     * less per append with two producers, and failed the byte-pruning stress test under
     * load.) An append dropped below leaves its bytes to nobody. Release: the cursor's
     * bump is visible before any byte we write (readers check it after copying). */
    uint64_t id = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_acq_rel);
    uint64_t off = atomic_fetch_add_explicit(&s->arena_cursor, ((uint64_t)stored_len + 7) & ~7ull,
                                             memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    uint32_t csum = arena_write(s, off, id, ev->payload, stored_len);

    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    for (unsigned spins = 0;;) {
        uint32_t seen = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if (seen != 0 && lap_diff(seen, stamp) > 0) {
            /* a whole lap passed us by: the event is already pruned */
            atomic_fetch_add_explicit(&stats->dropped, 1, memory_order_relaxed);
            return 0;
        }
        if (seen & STAMP_BUSY) { /* the previous lap's writer is still here */
            spin_wait(&spins);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&sl->seq, &seen, stamp | STAMP_BUSY,
                                                  memory_order_acquire, memory_order_relaxed))
            break;
    }
    atomic_thread_fence(memory_order_release);
    for (int l = 0; l < SLOT_LINKS; l++)
        atomic_store_explicit(&sl->link[l], LINK_UNSET, memory_order_relaxed);

    atomic_store_explicit(&sl->ts, ts, memory_order_relaxed);
    atomic_store_explicit(&sl->off, off, memory_order_relaxed);
    atomic_store_explicit(&sl->len, flags & ES_F_TRUNCATED ? len : stored_len,
                          memory_order_relaxed);
    atomic_store_explicit(&sl->csum, csum, memory_order_relaxed);
    uint32_t type_id = ev->type ? ev->type->id : 0;
    bool hashed = ev->hash && !ev->peer;
    atomic_store_explicit(
        &sl->meta, (hashed ? META_HASHED : 0) | type_id << 16 | (uint32_t)flags << 8 | ev->arity,
        memory_order_relaxed);
    atomic_store_explicit(&sl->actor, ev->actor ? ev->actor->id : 0, memory_order_relaxed);
    atomic_store_explicit(&sl->peer,
                          hashed     ? (uint32_t)ev->hash
                          : ev->peer ? ev->peer->id
                                     : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&sl->mf, ev->mf ? ev->mf->id : 0, memory_order_relaxed);

    /* ev->module is implied by ev->mf: the module chain is its mf chains. */
    es_key *const keys[SLOT_LINKS] = {ev->actor, ev->peer, ev->pair, ev->mf, ev->type};
    static const int chain_of_link[SLOT_LINKS] = {ES_CHAIN_ACTOR, ES_CHAIN_PEER, ES_CHAIN_PAIR,
                                                  ES_CHAIN_MF, ES_CHAIN_TYPE};
    for (int l = 0; l < SLOT_LINKS; l++) {
        int32_t link = LINK_NONE;
        if (keys[l])
            link =
                link_to(id, atomic_exchange_explicit(head_of(s, keys[l], chain_of_link[l], shard),
                                                     id, memory_order_acq_rel));
        else if (l == PAIR_LINK && hashed)
            link = (int32_t)(uint32_t)(ev->hash >> 32);
        atomic_store_explicit(&sl->link[l], link, memory_order_release);
    }
    if (ev->type)
        atomic_fetch_add_explicit(&s->type_counts[shard][type_id], 1, memory_order_relaxed);
    atomic_store_explicit(&sl->seq, stamp, memory_order_release);
    if (id % ES_BLOCK == 0) summarize(s, block_of(id));
    return id;
}

/* ---- walks ----------------------------------------------------------------------- */

/* Walks one chain (one shard's, for sharded keys) from `id` towards older events.
 * Returns false when the visitor aborted. */
static bool walk_one(es_store *s, uint64_t low, uint64_t id, int chain, const es_walk *w,
                     es_visit_fn fn, void *ctx) {
    uint64_t cursor_id = atomic_load_explicit(&s->sum_cursor, memory_order_acquire) * ES_BLOCK;
    uint64_t accepted = 0;
    int64_t worst = INT64_MAX; /* descending: smallest accepted timestamp */
    while (id >= low && id != 0) {
        es_event_view v;
        int32_t link = LINK_NONE;
        enum slot_state st = slot_read(s, id, &v, link_index[chain], &link);
        if (st == SLOT_GONE) return true;
        if (id <= cursor_id) {
            /* Every event at or before this block has a timestamp <= its pmax. */
            int64_t mn, mx, pmax;
            if (block_summary(s, block_of(id), &mn, &mx, &pmax) &&
                (pmax < w->ts_min ||
                 (w->descending && w->want && accepted >= w->want && pmax < worst)))
                return true;
        }
        if (st == SLOT_LIVE && v.ts >= w->ts_min && v.ts <= w->ts_max) {
            int r = fn(&v, ctx);
            if (r == ES_ABORT) return false;
            if (r == ES_ACCEPT) {
                accepted++;
                if (v.ts < worst) worst = v.ts;
            }
        }
        if (link == LINK_NONE) return true;
        id = (uint64_t)((int64_t)id - link);
    }
    return true;
}

/* Walks every shard's chain c of key. Returns false when the visitor aborted. */
static bool walk_key(es_store *s, uint64_t low, es_key *key, int c, const es_walk *w,
                     es_visit_fn fn, void *ctx) {
    for (int sh = 0; sh < shards_of(c); sh++) {
        uint64_t head =
            atomic_load_explicit(head_of(s, key, c, (unsigned)sh), memory_order_acquire);
        if (!walk_one(s, low, head, c, w, fn, ctx)) return false;
    }
    return true;
}

void es_store_walk_chain(es_store *s, es_key *key, enum es_chain chain, const es_walk *w,
                         es_visit_fn fn, void *ctx) {
    uint64_t low = live_floor(s);
    if (chain != ES_CHAIN_MODULE) {
        walk_key(s, low, key, chain, w, fn, ctx);
        return;
    }
    /* A module's events are those of its {module, function} keys, which the mf table
     * lists under the module's entry; a key joins that list before any event can
     * carry it. Costs O(results + the module's functions x shards). */
    es_intern *mfs = &s->tables.mf;
    for (uint32_t m = es_intern_first(key); m; m = es_intern_next(&mfs->entries[m]))
        if (!walk_key(s, low, &mfs->entries[m], ES_CHAIN_MF, w, fn, ctx)) return;
}

/* Visits ids [from, to] of one block in the given direction. */
static int scan_ids(es_store *s, uint64_t from, uint64_t to, bool forward, const es_walk *w,
                    es_visit_fn fn, void *ctx, uint64_t *accepted, int64_t *best) {
    for (uint64_t i = 0; i <= to - from; i++) {
        uint64_t id = forward ? from + i : to - i;
        es_event_view v;
        if (slot_read(s, id, &v, -1, NULL) != SLOT_LIVE) continue;
        if (v.ts < w->ts_min || v.ts > w->ts_max) continue;
        int r = fn(&v, ctx);
        if (r == ES_ABORT) return r;
        if (r == ES_ACCEPT) {
            ++*accepted;
            if (forward ? v.ts > *best : v.ts < *best) *best = v.ts;
        }
    }
    return ES_REJECT;
}

void es_store_walk_time(es_store *s, const es_walk *w, es_visit_fn fn, void *ctx) {
    uint64_t low = live_floor(s), high = es_store_high_id(s);
    if (low > high) return;
    uint64_t b_lo = block_of(low), b_hi = block_of(high);
    uint64_t cursor = atomic_load_explicit(&s->sum_cursor, memory_order_acquire);
    if (cursor > b_hi + 1) cursor = b_hi + 1;
    int64_t late = atomic_load_explicit(&s->lateness, memory_order_acquire);
    uint64_t accepted = 0;
    int64_t mn, mx, pmax;
    /* Ascending results walk forward, descending ones backward, so `want` can stop
     * the walk as soon as the rest cannot sort before what was found. */
    bool forward = !w->descending;
    if (forward) {
        int64_t best = INT64_MIN; /* greatest accepted timestamp */
        /* First summarized block whose running max reaches ts_min. */
        uint64_t lo = b_lo, hi = cursor > b_lo ? cursor : b_lo;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (block_summary(s, mid, &mn, &mx, &pmax) && pmax >= w->ts_min)
                hi = mid;
            else
                lo = mid + 1;
        }
        int64_t prev_pmax = INT64_MIN;
        if (lo > b_lo && block_summary(s, lo - 1, &mn, &mx, &pmax)) prev_pmax = pmax;
        for (uint64_t b = lo; b <= b_hi; b++) {
            bool summarized = b < cursor && block_summary(s, b, &mn, &mx, &pmax);
            if (summarized) {
                /* Later events have ts >= prev_pmax - lateness: past ts_max, or past
                 * every result we already need? Then only the unsummarized tail is left. */
                /* A saturated lateness means "unbounded": no floor. */
                int64_t floor = prev_pmax == INT64_MIN || late == INT64_MAX
                                    ? INT64_MIN
                                    : sat_sub(prev_pmax, late);
                if (floor > w->ts_max || (w->want && accepted >= w->want && floor > best)) {
                    b = cursor - 1;
                    prev_pmax = INT64_MIN;
                    continue;
                }
                prev_pmax = pmax;
                if (mn > w->ts_max || mx < w->ts_min) continue;
            }
            uint64_t from = b * ES_BLOCK + 1, to = (b + 1) * ES_BLOCK;
            if (from < low) from = low;
            if (to > high) to = high;
            if (scan_ids(s, from, to, true, w, fn, ctx, &accepted, &best) == ES_ABORT) return;
        }
    } else {
        int64_t best = INT64_MAX; /* smallest accepted timestamp */
        for (uint64_t b = b_hi + 1; b-- > b_lo;) {
            if (b < cursor && block_summary(s, b, &mn, &mx, &pmax)) {
                /* Every event up to this block has ts <= pmax. */
                if (pmax < w->ts_min || (w->want && accepted >= w->want && pmax < best)) return;
                if (mn > w->ts_max || mx < w->ts_min) continue;
            }
            uint64_t from = b * ES_BLOCK + 1, to = (b + 1) * ES_BLOCK;
            if (from < low) from = low;
            if (to > high) to = high;
            if (scan_ids(s, from, to, false, w, fn, ctx, &accepted, &best) == ES_ABORT) return;
        }
    }
}

/* ---- maintenance ------------------------------------------------------------------ */

bool es_store_start_at(es_store *s, uint64_t id) {
    if (id == 0 || es_store_high_id(s) != 0) return false;
    atomic_store_explicit(&s->low_water, id, memory_order_release);
    atomic_store_explicit(&s->next_id, id, memory_order_release);
    atomic_store_explicit(&s->sum_cursor, block_of(id), memory_order_release);
    s->base = id - 1;
    return true;
}

void es_store_skip_to(es_store *s, uint64_t id) {
    for (uint64_t next = es_store_high_id(s) + 1; next < id; next = es_store_high_id(s) + 1) {
        /* An id that will never hold an event: committed as a hole, so the time block
         * it belongs to still completes. */
        uint64_t hole = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_acq_rel);
        uint32_t stamp;
        es_slot *sl = slot_of(s, hole, &stamp);
        atomic_store_explicit(&sl->meta, HOLE_META, memory_order_relaxed);
        atomic_store_explicit(&sl->off, atomic_load(&s->arena_cursor), memory_order_relaxed);
        atomic_store_explicit(&sl->seq, stamp, memory_order_release);
        atomic_fetch_add_explicit(&s->shard_stats[shard_of_thread()].dropped, 1,
                                  memory_order_relaxed);
        if (hole % ES_BLOCK == 0) summarize(s, block_of(hole));
    }
}

void es_store_clear(es_store *s) {
    uint64_t next = atomic_load_explicit(&s->next_id, memory_order_acquire);
    atomic_store_explicit(&s->low_water, next, memory_order_release);
}

void es_store_get_stats(es_store *s, es_store_stats *out) {
    memset(out, 0, sizeof *out);
    uint64_t low = es_store_low_id(s), high = es_store_high_id(s);
    uint64_t cursor = atomic_load_explicit(&s->arena_cursor, memory_order_relaxed);
    uint64_t arena_bytes = s->arena_words * 8;
    uint64_t first = live_floor(s);
    (void)low;
    for (int sh = 0; sh < SHARDS; sh++) {
        out->dropped += atomic_load_explicit(&s->shard_stats[sh].dropped, memory_order_relaxed);
        out->sampled_out +=
            atomic_load_explicit(&s->shard_stats[sh].sampled_out, memory_order_relaxed);
        out->truncated += atomic_load_explicit(&s->shard_stats[sh].truncated, memory_order_relaxed);
    }
    out->appended = high - s->base - s->holes - out->dropped;
    out->stored = first <= high ? high - first + 1 : 0;
    if (s->holes && first <= s->last_hole) /* holes in the live range: at most this many */
        out->stored -= s->holes < out->stored ? s->holes : out->stored;
    if (out->stored > out->appended) out->stored = out->appended;
    out->pruned = out->appended - out->stored;
    es_event_view v;
    if (out->stored && slot_read(s, first, &v, -1, NULL) != SLOT_GONE)
        out->bytes = cursor - v.off < arena_bytes ? cursor - v.off : arena_bytes;
    out->oldest_id = out->stored ? first : 0;
    out->newest_id = out->stored ? high : 0;
    out->max_lateness = atomic_load_explicit(&s->lateness, memory_order_relaxed);
    const es_intern *tables[] = {&s->tables.type, &s->tables.pid, &s->tables.pair,
                                 &s->tables.module, &s->tables.mf};
    out->memory = s->cap * sizeof(es_slot) + arena_bytes + s->nblocks * sizeof(es_block);
    for (int i = 0; i < 5; i++) out->memory += es_intern_reserved(tables[i]);
    out->memory += SHARDS * (heads_bytes(&s->tables.mf) + 2 * heads_bytes(&s->tables.type));
}

uint64_t es_store_type_count(es_store *s, uint32_t type_id) {
    uint64_t n = 0;
    if (type_id > s->tables.type.capacity) return 0;
    for (int sh = 0; sh < SHARDS; sh++)
        n += atomic_load_explicit(&s->type_counts[sh][type_id], memory_order_relaxed);
    return n;
}
