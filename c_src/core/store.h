/*
 * store.h — the bounded, lock-free event store every ElixirScope feature reads.
 *
 * Contract
 *  - Events get ids 1, 2, 3, ... from one atomic counter: unique and increasing.
 *  - An event is a fixed 64-byte slot, one cache line (timestamp, type, flags,
 *    interned actor pid, peer pid, {module, function} and arity, and one link per
 *    index chain) plus a payload of opaque bytes (the NIF layer stores external term
 *    format there).
 *  - Bounded: `max_events` slots in a ring and `max_bytes` of payload in a byte ring
 *    (the arena). Appending past either bound overwrites the oldest events: pruning
 *    is implicit, oldest first, and costs nothing extra.
 *  - Indexes: every interned key has the newest event id of its chain; each slot links
 *    to the previous event of the same key as a signed 32-bit id delta. A query walks
 *    one chain newest-to-oldest: O(results). Pid keys (actor, peer, pair) keep their
 *    head in the key entry (one process appends its own events); keys that many
 *    threads append under at once (type, {module, function}) have one head
 *    per shard, a thread appending to its own shard's chain, so producers do not
 *    fight over one cache line; a walk of such a key walks every shard. The module
 *    chain is no chain of its own: a module's events are those of its {module,
 *    function} keys (an event's module is its mf key's), and the mf table lists those
 *    keys under the module's entry, so a module walk walks their chains.
 *  - Payload space comes from one shared cursor, bumped right after the id (the two
 *    counters share a cache line: an append under contention moves one line), so the
 *    arena overwrites payloads oldest-first. Two appends racing between the two
 *    counters may reserve in the opposite order of their ids; readers then count
 *    every id below a lapped payload as pruned, so the live ids stay one run.
 *  - Time: every 256 ids form a block; once a block is complete one thread at a
 *    time (the one appending the next block's last id, if nobody else is at it: by
 *    then the block's own appends are over) records its min/max timestamp and the
 *    running maximum of all timestamps up to it, plus the largest "lateness" ever seen
 *    (how far a timestamp fell behind an earlier id's). Time-range queries
 *    binary-search those blocks, scan the (at most two) blocks not summarized yet, and
 *    stop exactly where no later event can match, so caller-given timestamps may be
 *    out of order.
 *  - Payload fields: queries keep summaries of the fields they test per block (zone.h),
 *    in space the store makes with the first of them (es_store_zones) and frees with
 *    itself; a block's summaries are kept as long as its place in the ring is not reused.
 *
 * Reclamation (why readers never see freed or torn memory)
 *  Nothing is freed while the store lives: slots and arena are allocated once and
 *  reused in place. Each slot is a seqlock: a writer claims it with a CAS on `seq` (a
 *  stamp of the ring's lap, with a busy bit), writes, then publishes the stamp.
 *  Readers check an id against the live range, copy the fields and re-check `seq`; a
 *  change means the slot was reused (the event was pruned). Payload bytes
 *  are copied and then validated twice: the arena's reservation cursor must not have
 *  lapped them, and a 32-bit checksum of (id, bytes) stored in the slot must match,
 *  which also catches a writer that stalled for a whole lap of the arena and wrote
 *  late. Such a writer, seeing after its write that the arena lapped its bytes, raises
 *  a byte floor past them: every event reserved below it (those its late bytes may have
 *  spoiled, and all older ones) counts as pruned, so the live ids stay one run and the
 *  statistics count only events that can be read. The store itself is freed only when
 *  its last reference (an Erlang resource) is gone, so no query or append can outlive
 *  it.
 *
 * Thread-safety: es_store_append() may run on any number of threads at once with no
 * lock; readers (es_store_peek/read, chain walks, time scans) run concurrently with
 * appends and never block them. es_store_clear() is safe at any time. Only creation
 * and destruction need exclusive access. The only waits: a writer whose slot is
 * still being written by the previous lap's writer (which needs `max_events`
 * appends during one append), and readers meeting a chain link that is a few
 * instructions from being published; both spin briefly, then yield.
 */
#ifndef ES_STORE_H
#define ES_STORE_H

#include "intern.h"
#include "wallclock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ES_BLOCK 256        /* ids per time-summary block */
#define ES_SLOT_BYTES 64    /* bytes of one event's slot (a cache line) */
#define ES_TS_NOW INT64_MIN /* es_event_in.ts: es_clock_now() at append */
#define ES_TYPE_WORDS 65    /* 64-bit words of a bitmap of type ids (the table holds 4096) */

enum es_chain {
    ES_CHAIN_ACTOR,  /* key: pid table, head[0] */
    ES_CHAIN_PEER,   /* key: pid table, head[1] */
    ES_CHAIN_PAIR,   /* key: pair table */
    ES_CHAIN_MODULE, /* key: module table (walks its {module, function} keys' chains) */
    ES_CHAIN_MF,     /* key: {module, function} table */
    ES_CHAIN_TYPE,   /* key: type table */
    ES_CHAIN_COUNT
};

/* Slot flags: which optional fields an event has, and how it was stored. */
enum {
    ES_F_CRITICAL = 1 << 0,   /* never sampled out */
    ES_F_TRUNCATED = 1 << 1,  /* payload over max_payload_bytes: len is its size, no bytes */
    ES_F_ACTOR = 1 << 2,      /* has an actor pid */
    ES_F_ACTOR_FROM = 1 << 3, /* the actor came from :from_pid rather than :pid */
    ES_F_PEER = 1 << 4,       /* has a peer pid (:to_pid) */
    ES_F_MODULE = 1 << 5,
    ES_F_FUNCTION = 1 << 6,
    ES_F_ARITY = 1 << 7,
};

typedef struct es_store_config {
    uint64_t max_events;        /* slots in the ring */
    uint64_t max_bytes;         /* payload arena bytes */
    uint32_t max_payload_bytes; /* larger payloads are stored as truncated markers */
    double sample_rate;         /* share of non-critical events kept, 0.0..1.0 */
    uint32_t max_keys;          /* distinct pids / modules / functions / pairs indexed */
} es_store_config;

/* The integer options of a store: their defaults and ranges, for everything that checks
 * or documents them (the NIF, and ElixirScope.TraceDB through it). max_payload_bytes is
 * also at most max_bytes / 4. The sample rate is 0.0..1.0, 1.0 by default. */
enum { ES_OPT_MAX_EVENTS, ES_OPT_MAX_BYTES, ES_OPT_MAX_PAYLOAD_BYTES, ES_OPT_MAX_KEYS, ES_OPTS };
typedef struct es_store_option {
    const char *name;
    uint64_t def, min, max;
} es_store_option;
extern const es_store_option es_store_options[ES_OPTS];
#define ES_DEFAULT_SAMPLE_RATE 1.0

/* The default configuration. */
es_store_config es_store_defaults(void);

/* What an append stores. Keys are entries of the store's own tables (es_store_*_key). */
typedef struct es_event_in {
    int64_t ts; /* ES_TS_NOW: taken at append */
    es_key *type;
    es_key *actor, *peer, *pair, *module, *mf; /* module: mf's module (implied, not read) */
    uint8_t flags, arity;
    bool sampled; /* the caller already applied es_store_keep() */
    const uint8_t *payload;
    uint32_t payload_len;
    /* A digest of part of the payload (payload.h: a :state event's state), kept in the
     * slot so that history can be searched without reading payloads. It takes the place
     * of the peer: ignored (not kept) when the event has one. 0: none. */
    uint64_t hash;
} es_event_in;

/* A consistent copy of one event's slot. */
typedef struct es_event_view {
    uint64_t id;
    int64_t ts;
    uint64_t off;
    uint32_t len, csum;
    uint16_t type_id;
    uint8_t flags, arity;
    uint32_t actor, peer, mf; /* key ids, 0 = absent */
    uint64_t hash;            /* es_event_in.hash, 0 = none */
} es_event_view;

typedef struct es_store_stats {
    uint64_t stored;      /* events currently held (approximate under concurrent appends) */
    uint64_t appended;    /* events ever accepted */
    uint64_t sampled_out; /* events dropped by sampling */
    uint64_t pruned;      /* accepted events no longer held (cap, bytes, clear) */
    uint64_t truncated;   /* events whose payload exceeded max_payload_bytes */
    uint64_t dropped;     /* events lapped by the ring before their append finished */
    uint64_t bytes;       /* payload bytes currently held */
    uint64_t memory;      /* bytes the store has reserved: slots + arena + tables */
    uint64_t oldest_id, newest_id;
    int64_t max_lateness; /* largest out-of-order timestamp step seen */
} es_store_stats;

typedef struct es_store es_store;

/* Key tables, exposed so callers intern once and append many times. */
typedef struct es_tables {
    es_intern type, pid, pair, module, mf;
} es_tables;

/* A store for a configuration within the ranges above; NULL when out of range or out of
 * memory. */
es_store *es_store_new(const es_store_config *cfg);
void es_store_free(es_store *s);
const es_store_config *es_store_config_of(const es_store *s);

/* A number no other store of this process ever had (caches key on it, not on the
 * address, which a later store may reuse). */
uint64_t es_store_serial(const es_store *s);
es_tables *es_store_tables(es_store *s);

/* Sets the sample rate at runtime (0.0..1.0). */
void es_store_set_sample_rate(es_store *s, double rate);

/* The sampling decision for one non-critical event, at the store's rate or at
 * `threshold` (see sample.h) if lower; counts it when dropped. Callers that decide
 * before doing expensive work (the tracer) pass `sampled = true` to the append. */
bool es_store_keep(es_store *s, uint64_t threshold);

/* Small per-thread index (0..7) that spreads per-thread counters apart. */
unsigned es_thread_shard(void);

/* Appends an event. Returns its id, or 0 when it was sampled out or dropped.
 * ES_F_TRUNCATED in flags stores the payload as a truncated marker. */
uint64_t es_store_append(es_store *s, const es_event_in *ev);

/* Copies the slot of `id` when that event is live. */
bool es_store_peek(es_store *s, uint64_t id, es_event_view *out);

/* Copies the payload of a peeked event into buf (at least view->len bytes).
 * Returns false when the payload has been overwritten since (the event is pruned). */
bool es_store_payload(es_store *s, const es_event_view *v, uint8_t *buf);

/* The same copy without the checksum, for reading many payloads to test them (query
 * predicates, aggregations), into buf of at least view->len rounded up to 8 bytes: false when the
 * arena has come round over the bytes since (the event is pruned). Bytes a writer stalled for a
 * whole lap of the arena spoiled go unnoticed here; es_store_payload() catches them, and every
 * event a query returns is read with it. */
bool es_store_payload_fast(es_store *s, const es_event_view *v, uint8_t *buf);

/* Whether a copy es_store_payload_fast() made holds the event's bytes: the checks
 * es_store_payload() makes of its own copy (the checksum, the arena), without copying
 * again — for a reader that tested the fast copy and now returns what it read. */
bool es_store_payload_verify(es_store *s, const es_event_view *v, const uint8_t *copy);

/* The payload of a peeked event where it lies in the arena, to be read in place, or NULL
 * when it wraps round the arena's end (copy it then). Whatever is read there counts
 * only if es_store_payload_held() says so afterwards: the arena may come round over it
 * meanwhile (the bytes read are then garbage: readers must check every length). This is
 * the seqlock's optimistic read, without the copy. Builds under ThreadSanitizer always
 * answer NULL (callers copy with es_store_payload_fast()), since these reads race by
 * design with the writer that reuses the space. */
const uint8_t *es_store_payload_at(es_store *s, const es_event_view *v);
bool es_store_payload_held(es_store *s, const es_event_view *v);

/* Asks for the slot of event id (or, with `payload`, for its payload's first lines: the
 * slot is read for where they are, unchecked), to be read shortly: loops over lists of
 * ids call it a few ids ahead, so the misses of scattered events overlap. */
void es_store_prefetch(es_store *s, uint64_t id, bool payload);

/* The store's summaries of payload fields per block (zone.h), made on the first call;
 * NULL when out of memory. Freed with the store. */
struct es_zones *es_store_zones(es_store *s);

/* Lowest id that may still be live, and the newest id handed out. */
uint64_t es_store_low_id(es_store *s);
uint64_t es_store_high_id(es_store *s);

/* Visitor for walks: returns ES_ACCEPT when the event is a result, ES_REJECT when it
 * is not, ES_ABORT to end the walk at once. */
enum { ES_REJECT = 0, ES_ACCEPT = 1, ES_ABORT = -1 };
typedef int (*es_visit_fn)(const es_event_view *v, void *ctx);

/* A walk visits every live event with ts in [ts_min, ts_max] among those it covers.
 * With want > 0 it may stop early once `want` events were accepted and no event not
 * yet visited can sort before them (ascending: smaller (ts, id); descending: larger). */
typedef struct es_walk {
    int64_t ts_min, ts_max;
    uint64_t want;
    bool descending; /* the order the caller will sort results in */
    bool payloads;   /* the visitor reads payloads: fetch them ahead */
    /* The event types the visitor wants, as a bitmap of type ids (ES_TYPE_WORDS words),
     * or NULL for every type: time walks ask ahead only for those types' payloads (the
     * visitor still sees every event, and counts it against its budget). */
    const uint64_t *types;
    /* Time walks ask it, when set, before reading each complete block (one whose
     * appends are all committed and whose time is summarized): true passes over the
     * block (zone.h: its payloads' summaries rule it out). */
    bool (*skip_block)(uint64_t block, void *ctx);
    void *skip_ctx;
} es_walk;

/* Walks one index chain from `key` newest-to-oldest. */
void es_store_walk_chain(es_store *s, es_key *key, enum es_chain chain, const es_walk *w,
                         es_visit_fn fn, void *ctx);

/* Walks all events by time, using the block summaries to skip what cannot match. A
 * forward walk that has not found `want` events by the newest one goes on over the events
 * appended meanwhile, from the live floor when the ring has pruned past them, reading at
 * most a ring's worth of ids that way. */
void es_store_walk_time(es_store *s, const es_walk *w, es_visit_fn fn, void *ctx);

/* For a store being filled from a file, by one writer: the first id it will hand out
 * (false when something was appended already), and a jump over ids that will hold no
 * event (ids must keep increasing). */
bool es_store_start_at(es_store *s, uint64_t id);
void es_store_skip_to(es_store *s, uint64_t id);
/* (Statistics of such a store count its holes out of `stored`, exactly while they
 * are all in the live range.) */

/* The store's wall clock (wallclock.h): the time offsets its events' timestamps read,
 * kept apart from the events (never pruned with them, kept by a clear). */
es_wallclock *es_store_wallclock(es_store *s);

/* Forgets every event appended so far. */
void es_store_clear(es_store *s);

void es_store_get_stats(es_store *s, es_store_stats *out);

/* Events ever appended with a type key id. */
uint64_t es_store_type_count(es_store *s, uint32_t type_id);

#endif
