/*
 * query.h — filtered, ordered, limited event queries over the store's indexes.
 *
 * Contract: es_query() returns the ids (with timestamps) of the live events that
 * match every given filter, sorted by (timestamp, id) ascending or descending and
 * cut to `limit`. It drives the walk from the most selective index the filter names
 * — {actor, peer} pair, {module, function}, actor, peer, module, type — and falls
 * back to the time blocks, so its cost follows the size of that index's chain within
 * the time range, not the size of the store.
 *
 * A query may be given a visit budget: when more events than that would be visited
 * it stops and reports ES_Q_OVER_BUDGET so the caller can rerun it where long work is
 * allowed (a dirty scheduler).
 *
 * Thread-safety: runs concurrently with appends, clears and other queries.
 */
#ifndef ES_QUERY_H
#define ES_QUERY_H

#include "store.h"

typedef struct es_filter {
    /* NULL: not filtered. The caller resolves terms to keys; a term with no key
     * matches nothing and should not reach es_query(). */
    es_key *type, *actor, *peer, *module, *mf;
    bool both_directions;   /* actor/peer match either way round (messages between two) */
    int64_t ts_min, ts_max; /* inclusive */
    uint64_t after_id;      /* only ids greater than this (0: no bound) */
    uint64_t before_id;     /* only ids smaller than this (0: no bound) */
    uint64_t limit;         /* 0: no limit */
    bool descending;
    uint64_t max_visits; /* 0: unbounded */
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
void es_hits_free(es_hits *h);
/* Room for n more hits; false when out of memory. */
bool es_hits_reserve(es_hits *h, size_t n);

/* Actors of events of a `born` type at or before ts that have no event of a `died`
 * type at or before ts (processes alive at ts). NULL keys are skipped. Writes key ids
 * of the pid table into out. */
enum es_query_status es_query_live_actors(es_store *s, es_key *const born[], size_t nborn,
                                          es_key *const died[], size_t ndied, int64_t ts,
                                          uint32_t **out, size_t *n);
void es_ids_free(uint32_t *ids);

#endif
