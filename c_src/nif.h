/*
 * nif.h — what the NIF files share: the store resource and how to get a store from
 * a term. Thread-safety: read-only after load.
 */
#ifndef ES_NIF_H
#define ES_NIF_H

#include "query.h"
#include "store.h"

#include <erl_nif.h>

typedef struct es_ref {
    es_store *store;
} es_ref;

extern ErlNifResourceType *es_store_resource_type;

/* The store behind a resource term, or NULL (and *ref NULL) when it is not one. */
es_store *es_get_store(ErlNifEnv *env, ERL_NIF_TERM term, es_ref **ref);

/* Declares `var` as the store of resource term `term`, or raises ArgumentError. */
#define STORE_OR_RAISE(var, term)                                                                  \
    es_store *var = es_get_store(env, term, NULL);                                                 \
    if (!var) return es_raise_arg(env, "not an ElixirScope store")

/* Parses a query filter map (es_nif.c). NULL when fine, "" when a filter names
 * something the store never saw (nothing can match), else an error message. */
const char *es_nif_parse_filter(ErlNifEnv *env, es_store *s, ERL_NIF_TERM map, es_filter *f);

/* The live events of a list of ids, as query hits (unsorted); false when the list is
 * not one of integers. Ids no longer live are left out. */
bool es_hits_of_ids(ErlNifEnv *env, es_store *s, ERL_NIF_TERM ids, es_hits *out);

/* Export NIFs (export.c). */
ERL_NIF_TERM es_nif_export_chrome(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_export_mermaid(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* Aggregation NIFs (agg_nif.c). */
ERL_NIF_TERM es_nif_perf(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_slowest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_traffic(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_peers(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_actor_summary(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_actors(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
