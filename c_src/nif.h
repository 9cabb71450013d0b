/*
 * nif.h — what the NIF files share: the store resource and how to get a store from
 * a term. Thread-safety: read-only after load.
 */
#ifndef ES_NIF_H
#define ES_NIF_H

#include "store.h"

#include <erl_nif.h>

typedef struct es_ref {
    es_store *store;
} es_ref;

extern ErlNifResourceType *es_store_resource_type;

/* The store behind a resource term, or NULL (and *ref NULL) when it is not one. */
es_store *es_get_store(ErlNifEnv *env, ERL_NIF_TERM term, es_ref **ref);

#endif
