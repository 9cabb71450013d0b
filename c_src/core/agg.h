/*
 * agg.h — aggregations over the store, computed in C over one index chain each:
 * per-function call statistics with latency percentiles, the slowest calls, message
 * traffic per process, and a process's event summary.
 *
 * Contract: each function visits only the events its key's chain holds (a module's,
 * a type's, a pid's), so it costs what that chain costs, not the store's size.
 * Durations come from the `duration` field that the tracer writes first in the
 * payload of :return and :exception events (see tracer.c); `duration_key` is the
 * term word of the atom `duration`. Percentiles come from a log-linear histogram
 * (16 buckets per power of two: within 6.25% of the exact value).
 *
 * Thread-safety: run concurrently with appends; results describe the events live
 * during the walk. Callers run them on dirty schedulers.
 */
#ifndef ES_AGG_H
#define ES_AGG_H

#include "query.h"

#define ES_HIST_BUCKETS (64 * 16)

typedef struct es_histogram {
    uint64_t count;
    uint64_t buckets[ES_HIST_BUCKETS];
} es_histogram;

void es_hist_add(es_histogram *h, uint64_t value);
/* The value at quantile q (0..1): the midpoint of its bucket; 0 when empty. */
uint64_t es_hist_quantile(const es_histogram *h, double q);

typedef struct es_fn_stats {
    uint32_t mf; /* {module, function} key id */
    uint8_t arity;
    uint64_t calls, returns, exceptions;
    uint64_t total, max; /* of durations, native units */
    es_histogram hist;
} es_fn_stats;

typedef struct es_perf {
    es_fn_stats *fns;
    size_t n, cap;
} es_perf;

/* Statistics per {function, arity} of one module, from its :call, :return and
 * :exception events (type keys may be NULL when never seen). */
bool es_agg_perf(es_store *s, es_key *module, const es_key *call, const es_key *ret,
                 const es_key *exc, uint64_t duration_key, es_perf *out);
void es_perf_free(es_perf *p);

typedef struct es_slow {
    uint64_t id;
    int64_t duration;
} es_slow;

/* The `limit` events a filter selects with the largest `field` (a non-negative
 * integer: events without one are left out), largest first, then oldest: a query's
 * events in `out` (duration holding the field's value). False when the filter's visit
 * budget ran out. Its cost is the filter's walk (query.h). */
bool es_agg_top(es_store *s, const es_filter *f, uint64_t field, es_slow *out, size_t limit,
                size_t *n);

/* The `limit` :return/:exception events with the longest durations, longest first
 * (module may be NULL for all). Returns how many were found. */
size_t es_agg_slowest(es_store *s, const es_key *ret, const es_key *exc, es_key *module,
                      uint64_t duration_key, es_slow *out, size_t limit);

typedef struct es_traffic {
    uint32_t pid; /* pid key id */
    uint64_t sent, inflow, received;
} es_traffic;

/* Per process, between ts_min and ts_max: :send events it sent, :send events sent to
 * it (inflow) and :receive events (messages that arrived in its queue: the runtime
 * reports a receive when a message is queued, not when it is taken out). */
bool es_agg_traffic(es_store *s, const es_key *send, const es_key *receive, int64_t ts_min,
                    int64_t ts_max, es_traffic **out, size_t *n);

typedef struct es_peer_count {
    uint32_t pid;
    uint64_t count;
} es_peer_count;

/* The processes `pid` exchanged messages with (either way), most messages first: its
 * :send events and those sent to it, and :receive events that name their sender (their
 * peer: vocab.h) on either side. */
bool es_agg_peers(es_store *s, es_key *pid, const es_key *send, const es_key *receive,
                  es_peer_count **out, size_t *n);

typedef struct es_actor_summary {
    uint64_t events;
    int64_t first, last;
    uint64_t *by_type; /* indexed by type key id, es_intern_size(types) + 1 entries */
} es_actor_summary;

bool es_agg_actor(es_store *s, es_key *pid, es_actor_summary *out);

void es_agg_free(void *p);

#endif
