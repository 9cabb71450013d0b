/*
 * diff.h — structural difference of two terms, for state timelines.
 *
 * Contract: es_diff() returns a list of {path, op, old, new} tuples, op one of
 * :added, :removed, :changed, in the order the terms are walked. Maps and structs are
 * compared key by key, in Erlang term order of the keys (map_order.h) — first the keys
 * of the old term (:changed and :removed), then those only the new one has (:added) —
 * so a diff comes out the same on every OTP; keyword lists (every element a
 * {atom, value} pair, keys unique; [] counts as one next to a keyword list) key by key
 * the same way; other lists by their differing middle — equal elements at the front and
 * back are skipped, the rest compared position by position, and what one list has more
 * of is :removed (old index) or :added (new index); same-size tuples position by
 * position; anything else that is not identical is :changed at its path. `path` is the
 * list of keys and indices from the root. Identical terms give []. Recursion deeper
 * than 100 levels reports the subtree as :changed.
 *
 * Thread-safety: pure; any scheduler. Cost grows with the size of the terms: with a
 * budget (terms visited), es_diff() gives up past it and returns false, so a caller on
 * a normal scheduler can move big diffs to a dirty one.
 */
#ifndef ES_DIFF_H
#define ES_DIFF_H

#include <erl_nif.h>
#include <stdbool.h>

/* Makes the atoms diffs are written with; call once when the library loads. */
void es_diff_load(ErlNifEnv *env);

/* *budget: terms left to visit, decreased by what this diff visits; NULL: unlimited. */
bool es_diff(ErlNifEnv *env, ERL_NIF_TERM old, ERL_NIF_TERM new_, unsigned long *budget,
             ERL_NIF_TERM *out);

#endif
