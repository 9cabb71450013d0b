/*
 * map_order.h — a map's entries in one defined order, the same on every OTP.
 *
 * The runtime iterates a map in an order of its own: by hash for maps of more than 32
 * keys, and for small maps with atom keys by the atoms' creation order since OTP 26
 * (term order before). Everything ElixirScope writes out entry by entry — JSON objects,
 * diffs — goes through here instead, so its output depends on the map alone.
 *
 * Contract: es_map_entries() gives the entries of a map sorted by key in Erlang term
 * order (numbers < atoms < references < funs < ports < pids < tuples < maps < lists <
 * binaries; atoms by their text, binaries byte by byte), with the keys term order
 * calls equal made distinct: an integer before the equal float, -0.0 before 0.0.
 *
 * Thread-safety: pure; any scheduler. Cost: O(n log n) comparisons for n entries.
 */
#ifndef ES_MAP_ORDER_H
#define ES_MAP_ORDER_H

#include <erl_nif.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct es_map_entry {
    ERL_NIF_TERM key, value;
} es_map_entry;

/* The entries of `map`, sorted by key, into *out (*n of them): into `stack` when its
 * stack_n entries hold them, else into memory from enif_alloc() that
 * es_map_entries_free() releases. False when `map` is not a map or memory ran out. */
bool es_map_entries(ErlNifEnv *env, ERL_NIF_TERM map, es_map_entry *stack, size_t stack_n,
                    es_map_entry **out, size_t *n);

void es_map_entries_free(es_map_entry *entries, const es_map_entry *stack);

#endif
