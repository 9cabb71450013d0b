/*
 * persist.h — dumps of a store to a file and loads of a file into a store (post-mortem
 * debugging in another VM). The format is docs/FORMAT.md: zstd-compressed segments
 * with hashes, so a damaged file still loads everything before the damage.
 *
 * Contract: dump(store, path, after_id | selection, :write | :append, segment_bytes)
 * writes the live events with ids above after_id, or those a selection names — a query
 * spec, a list of specs (their union) or a list of ids — (ids, timestamps and terms
 * exactly), to a file created 0600 — truncating it, or appending segments to
 * it (the continuous persister) — in segments of about segment_bytes uncompressed,
 * and says the last id written; load(store, path) appends a file's events to a store keeping
 * their ids and timestamps (files load in order: ids only grow), skipping damaged
 * segments and saying which and why.
 *
 * Thread-safety: a dump reads the store like a query; a load must be the only writer
 * of its store. Both run on dirty I/O schedulers.
 */
#ifndef ES_PERSIST_H
#define ES_PERSIST_H

#include <erl_nif.h>

/* Bounds of a dump's segment size (uncompressed bytes); Elixir checks them too. */
#define ES_SEGMENT_MIN 4096u
#define ES_SEGMENT_MAX (256u << 20)

ERL_NIF_TERM es_nif_dump(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_load(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
