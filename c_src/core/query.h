/*
 * query.h — the query engine: filtered, ordered, limited event queries over the store's
 * indexes, with predicates on payload fields.
 *
 * Contract: es_query() returns the (timestamp, id) of the live events that match every
 * given filter, sorted by (timestamp, id) ascending or descending and cut to `limit`.
 *   - Key filters are sets: an event matches a set when its key is one of them (types,
 *     actors, peers, modules, {module, function}s). The walk is driven by the most
 *     selective index the filter names — {actor, peer} pairs, {module, function}s,
 *     actors, peers, modules, types — one chain per key of that set, and the chains'
 *     hits are merged; without a key filter it walks the time blocks. Its cost follows
 *     the length of those chains within the time range, not the size of the store.
 *     An ascending query with a limit over types that make up a large share of the
 *     store walks the time blocks forward instead, and stops at the limit.
 *   - Bounds: ts_min/ts_max (inclusive), after_id/before_id (exclusive ids), and
 *     after/before: exclusive positions in (timestamp, id) order — a cursor.
 *   - Predicates (pred.h) are tested on the payloads of events that pass the rest, in
 *     walk order; an ascending query with a limit over chains (which walk newest first)
 *     tests them in result order instead, only until the limit is reached.
 * Positions: a listing that continues from the last event it returned (after: that
 * event's position) sees every event of the store at or beyond that position — none
 * twice, none skipped — except events pruned meanwhile, and except events appended
 * after the listing began with a position before its cursor (a caller-given timestamp
 * in the past, or two appends racing between reading the clock and taking an id).
 *
 * A query may be given a visit budget: when more events than that would be visited it
 * stops and reports ES_Q_OVER_BUDGET so the caller can rerun it where long work is
 * allowed (a dirty scheduler).
 *
 * Thread-safety: runs concurrently with appends, clears and other queries. Everything
 * it allocates is its own (mimalloc), freed with es_hits_free().
 */
#ifndef ES_QUERY_H
#define ES_QUERY_H

#include "pred.h"
#include "store.h"

#define ES_KEYSET_MAX 64 /* keys a set of a filter may hold */

typedef struct es_keyset {
    es_key *v[ES_KEYSET_MAX];
    uint32_t n; /* 0: not filtered */
} es_keyset;

/* Adds a key once; false when the set is full. */
bool es_keyset_add(es_keyset *set, es_key *key);

/* A position in the store's order. */
typedef struct es_pos {
    int64_t ts;
    uint64_t id;
} es_pos;

static inline int es_pos_cmp(es_pos a, es_pos b) {
    if (a.ts != b.ts) return a.ts < b.ts ? -1 : 1;
    return (a.id > b.id) - (a.id < b.id);
}

typedef struct es_filter {
    /* The caller resolves terms to keys; a term with no key matches nothing and should
     * not reach es_query() (a set of only such terms makes the whole query empty). */
    bool both_directions;   /* one actor and one peer: either way round (messages between two) */
    int64_t ts_min, ts_max; /* inclusive */
    uint64_t after_id;      /* only ids greater than this (0: no bound) */
    uint64_t before_id;     /* only ids smaller than this (0: no bound) */
    bool has_after, has_before;
    es_pos after, before; /* only events strictly after / before these positions */
    const es_pred *preds; /* all of them hold (pred.h) */
    size_t npreds;
    uint64_t limit; /* 0: no limit */
    bool descending;
    uint64_t max_visits; /* 0: unbounded */
    /* Last, as they are large: es_filter_init() clears only their counts. */
    es_keyset types, actors, peers, modules, mfs;
} es_filter;

typedef struct es_hit {
    int64_t ts;
    uint64_t id;
} es_hit;

typedef struct es_hits {
    es_hit *v;
    size_t n, cap;
} es_hits;

enum es_query_status { ES_Q_OK, ES_Q_OVER_BUDGET, ES_Q_NO_MEMORY };

void es_filter_init(es_filter *f);
enum es_query_status es_query(es_store *s, const es_filter *f, es_hits *out);

/* How many live events match (limit and order ignored). */
enum es_query_status es_query_count(es_store *s, const es_filter *f, uint64_t *count);

/* Calls fn for every live event that matches, in no particular order (limit and order
 * ignored), with its payload when `payloads` is set and it has one (NULL otherwise;
 * valid during the call): for aggregations. fn returns ES_ACCEPT or ES_REJECT to go
 * on, ES_ABORT to stop (reported as OK). */
typedef int (*es_match_fn)(const es_event_view *v, const uint8_t *payload, void *ctx);
enum es_query_status es_query_each(es_store *s, const es_filter *f, bool payloads, es_match_fn fn,
                                   void *ctx);

void es_hits_free(es_hits *h);

/* Room for `need` elements of `size` bytes in the array *v of capacity *cap (doubled as
 * needed, 16 at first; mimalloc): for the arrays the engine's walks collect. False when
 * out of memory (the array is as it was). */
bool es_grow(void **v, size_t *cap, size_t need, size_t size);
/* Room for n more hits; false when out of memory. */
bool es_hits_reserve(es_hits *h, size_t n);
/* Sorts hits by (timestamp, id) ascending; cheap when they come as a few sorted runs
 * (ascending or descending), as chain walks give them. */
void es_hits_sort(es_hits *h);

/* Copies the payload of a peeked event into a buffer of the calling thread, valid
 * until its next call; NULL when the event has no payload or was pruned. Checked as
 * es_store_payload_fast() checks. */
const uint8_t *es_query_payload(es_store *s, const es_event_view *v);

#endif
