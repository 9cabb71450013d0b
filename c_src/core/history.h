/*
 * history.h — questions about the history of processes, answered on the query engine
 * (query.h): which were alive at a moment and what they were then (name, state, links,
 * parent), and where its state went from one value to another. How one process's calls
 * nested is call_tree.h.
 *
 * Contract: every function takes the event types it reads from the caller (the
 * vocabulary's lifecycle roles, vocab.h: born, died, link, unlink, named, unnamed, and
 * the :state type) and walks only their chains, or one process's chain: its cost
 * follows those chains and its output, not the store.
 *   es_history_live()      the actors of a born event at or before ts with no died
 *                          event at or before ts (sorted by pid key id).
 *   es_history_snapshot()  every actor with any event at or before ts and no died event
 *                          at or before ts: those of a born or state event found through
 *                          those chains, the others by walking their own chain back to
 *                          the first event at or before ts (a cost of their events after
 *                          ts) — each with the ids of its last born event of each born
 *                          type, its last born/named/unnamed event, its last state event,
 *                          all at or before ts, whether a died event of it is recorded
 *                          at all (after ts too), and its links then: link/unlink events
 *                          of either side replayed in (timestamp, id) order, less the
 *                          peers dead by ts.
 *   es_history_links()     one actor's links at ts, replayed the same way.
 *   es_history_state_change() among one actor's state events (a filter), the first whose
 *                          hashed field (vocab.h) equals `before`, then the first later
 *                          one equal to `after`: compared by the digest the store keeps
 *                          (store.h), confirmed on the bytes of the few that match it.
 *
 * Thread-safety: as query.h; results describe the events live during the walks.
 */
#ifndef ES_HISTORY_H
#define ES_HISTORY_H

#include "query.h"

#define ES_BORN_TYPES 4 /* born types a snapshot tells apart (the rest are ignored) */

/* The events of one type that take a role when `pred` holds (vocab.h's variant rows:
 * :process events whose `event:` is :spawn, :exit, ...). */
typedef struct es_role_variant {
    es_key *type;
    es_pred pred;
} es_role_variant;

#define ES_ROLE_VARIANTS 2

typedef struct es_life_keys {
    es_keyset born, died, link, unlink, named, unnamed; /* roles; empty sets are fine */
    /* born and died events of variant rows; a born variant counts as a born type after
     * those of `born` (born_ids) */
    es_role_variant born_v[ES_ROLE_VARIANTS], died_v[ES_ROLE_VARIANTS];
    uint32_t nborn_v, ndied_v;
    es_key *state;       /* or NULL */
    uint64_t name_field; /* atom word of the `name` field */
} es_life_keys;

enum es_query_status es_history_live(es_store *s, const es_life_keys *k, int64_t ts,
                                     uint32_t **pids, size_t *n);

typedef struct es_snap_entry {
    uint32_t pid;                     /* pid key id */
    uint64_t born_ids[ES_BORN_TYPES]; /* per k->born type, the last one (0: none) */
    uint64_t name_id;                 /* last born/named/unnamed event, 0: none */
    uint64_t state_id;                /* last state event, 0: none */
    bool born;                        /* a born event at or before ts (else only seen) */
    bool exited;                      /* a died event is recorded, at any time */
    uint32_t *links;                  /* pid key ids, ascending */
    uint32_t nlinks;
} es_snap_entry;

typedef struct es_snapshot {
    es_snap_entry *v;
    size_t n;
    uint32_t *link_ids; /* storage of every entry's links */
} es_snapshot;

enum es_query_status es_history_snapshot(es_store *s, const es_life_keys *k, int64_t ts,
                                         es_snapshot *out);
void es_snapshot_free(es_snapshot *snap);

/* pid's links at ts (ts INT64_MAX: ever since), ascending pid key ids. */
enum es_query_status es_history_links(es_store *s, const es_life_keys *k, es_key *pid, int64_t ts,
                                      uint32_t **links, size_t *n);

/* `f` selects the state events (an actor and the :state type). ids are 0 when not found. */
enum es_query_status es_history_state_change(es_store *s, const es_filter *f, uint64_t field,
                                             const uint8_t *before, size_t before_len,
                                             const uint8_t *after, size_t after_len,
                                             uint64_t *before_id, uint64_t *after_id);

void es_history_free(void *p);

#endif
