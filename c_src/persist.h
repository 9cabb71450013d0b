/*
 * persist.h — dumps of a store to a file and loads of a file into a store (post-mortem
 * debugging in another VM). The format is docs/FORMAT.md: zstd-compressed segments
 * with hashes, so a damaged file still loads everything before the damage.
 *
 * Contract: dump(store, path, after_id, :write | :append) writes the live events with
 * ids above after_id (ids, timestamps and terms exactly) to a file created 0600 —
 * truncating it, or appending segments to it (the continuous persister) — and says
 * the last id written; load(store, path) appends a file's events to a store keeping
 * their ids and timestamps (files load in order: ids only grow), skipping damaged
 * segments and saying which and why.
 *
 * Thread-safety: a dump reads the store like a query; a load must be the only writer
 * of its store. Both run on dirty I/O schedulers.
 */
#ifndef ES_PERSIST_H
#define ES_PERSIST_H

#include <erl_nif.h>

ERL_NIF_TERM es_nif_dump(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_load(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
