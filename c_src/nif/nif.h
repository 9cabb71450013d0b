/*
 * nif.h — what the NIF-side modules share (codec, etf, export, persist, json, tracer,
 * and the *_nif.c files): the store resource and how to get a store from a term, the
 * vocabulary's atoms and type keys, query specs, and the NIF functions each module
 * adds to the table in es_nif.c. No module calls into es_nif.c, which only checks
 * arguments, owns the resource types and dispatches.
 *
 * Thread-safety: everything here is read-only after load.
 */
#ifndef ES_NIF_H
#define ES_NIF_H

#include "codec.h"
#include "history.h"
#include "query.h"
#include "store.h"
#include "vocab.h"

#include <erl_nif.h>

typedef struct es_ref {
    es_store *store;
} es_ref;

/* The store resource type (created by es_nif.c's load). */
extern ErlNifResourceType *es_store_resource_type;

/* The store behind a resource term, or NULL (and *ref NULL) when it is not one. */
static inline es_store *es_get_store(ErlNifEnv *env, ERL_NIF_TERM term, es_ref **ref) {
    es_ref *r = NULL;
    if (!enif_get_resource(env, term, es_store_resource_type, (void **)&r)) r = NULL;
    if (ref) *ref = r;
    return r ? r->store : NULL;
}

/* A map from atoms named `names` to `vals` (n <= 16): for results built once per call. */
static inline ERL_NIF_TERM es_named_map(ErlNifEnv *env, const char *const names[],
                                        ERL_NIF_TERM vals[], size_t n) {
    ERL_NIF_TERM keys[16], map;
    for (size_t i = 0; i < n && i < 16; i++) keys[i] = enif_make_atom(env, names[i]);
    if (n > 16 || !enif_make_map_from_arrays(env, keys, vals, n, &map))
        return enif_make_badarg(env);
    return map;
}

/* Declares `var` as the store of resource term `term`, or raises ArgumentError. */
#define STORE_OR_RAISE(var, term)                                                                  \
    es_store *var = es_get_store(env, term, NULL);                                                 \
    if (!var) return es_raise_arg(env, "not an ElixirScope store")

/* ---- the vocabulary (vocab_nif.c) ---------------------------------------------------- */

/* Once, when the library loads. */
void es_vocab_load(ErlNifEnv *env);
/* The type atom of each row, and the atom of its hashed field (0: none). */
extern ERL_NIF_TERM es_vocab_atom[ES_EV_COUNT], es_vocab_hashed_atom[ES_EV_COUNT];
/* The row of a type atom, or -1 for a type the vocabulary does not know. */
int es_vocab_row_of(ERL_NIF_TERM type);
/* A row's type key in a store (NULL: never seen, unless created). */
es_key *es_vocab_key(es_store *s, int row, bool create);
/* The rows of one lifecycle role (vocab.h) as type keys the store has. */
void es_vocab_role_keys(es_store *s, int role, es_keyset *out);
/* Variant rows (vocab.h): the variant of an event map of that row's type (NULL: none of
 * them); the rows with variants of one role as type keys the store has, each with the
 * predicate its events of that role satisfy (at most `max`; returns how many). */
const es_vocab_variant *es_vocab_variant_of(ErlNifEnv *env, int row, ERL_NIF_TERM event);
uint32_t es_vocab_role_variants(es_store *s, int role, es_role_variant *out, uint32_t max);
/* Whether the peer of events of this type (an atom) is their sender (:from_pid, vocab.h). */
bool es_vocab_peer_is_sender(ERL_NIF_TERM type);

/* ---- query specs (spec_nif.c) --------------------------------------------------------- */

/* A parsed spec: the filter, and the memory its key lists and predicates use. */
typedef struct es_spec {
    es_filter f;
    es_pred preds[64];
    void *mem; /* encoded predicate values */
} es_spec;

/* Parses a query spec map (ElixirScope.Query's normalized form). NULL when fine, ""
 * when the spec can match nothing (it names something the store never saw), else an
 * error message naming the bad part. Free with es_spec_free() in every case. */
const char *es_spec_parse(ErlNifEnv *env, es_store *s, ERL_NIF_TERM map, es_spec *spec);
void es_spec_free(es_spec *spec);

/* The struct a spec's events are to be tagged as (its :struct), or 0 for none. */
static inline ERL_NIF_TERM es_spec_struct(ErlNifEnv *env, ERL_NIF_TERM map) {
    ERL_NIF_TERM v;
    return enif_get_map_value(env, map, es_atom.struct_key, &v) && v != es_atom.nil ? v : 0;
}

/* A field path of a spec (where:, group_by:): a list of at most ES_PRED_PATH indexes. */
bool es_spec_path(ErlNifEnv *env, ERL_NIF_TERM list, uint32_t *path, uint8_t *depth);

/* The live events of a list of ids, as query hits (unsorted); false when the list is
 * not one of integers. Ids no longer live are left out. */
bool es_hits_of_ids(ErlNifEnv *env, es_store *s, ERL_NIF_TERM ids, es_hits *out);

/* The events a spec, a list of specs (their union) or a list of ids selects, sorted by
 * (timestamp, id); false after putting an exception or error term in *err. */
bool es_select_events(ErlNifEnv *env, es_store *s, ERL_NIF_TERM selection, es_hits *h,
                      ERL_NIF_TERM *err);

/* The time offsets the store noted for timestamps in [from, to], as [{ts, offset}],
 * oldest first (wallclock_nif.c); false when out of memory. */
bool es_wall_offsets_term(ErlNifEnv *env, es_store *s, int64_t from, int64_t to, ERL_NIF_TERM *out);

/* ---- NIFs of each module, in the function table of es_nif.c ---------------------------- */

#define NIF(name) ERL_NIF_TERM name(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
NIF(es_nif_vocabulary);
NIF(es_nif_query);
NIF(es_nif_query_ids);
NIF(es_nif_aggregate);
NIF(es_nif_state_stats);
NIF(es_nif_live_pids);
NIF(es_nif_snapshot);
NIF(es_nif_links);
NIF(es_nif_call_tree);
NIF(es_nif_state_change);
NIF(es_nif_request_timeline);
NIF(es_nif_export_chrome);
NIF(es_nif_export_mermaid);
NIF(es_nif_perf);
NIF(es_nif_slowest);
NIF(es_nif_top);
NIF(es_nif_traffic);
NIF(es_nif_peers);
NIF(es_nif_actor_summary);
NIF(es_nif_actors);
NIF(es_nif_wall_note);
NIF(es_nif_wall_offset);
NIF(es_nif_wall_timestamp);
NIF(es_nif_wall_offsets);
#undef NIF

#endif
