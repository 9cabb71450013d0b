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
 * The last write on halt (OTP 26+, ERL_NIF_OPT_ON_HALT): persist_on_halt(store, path,
 * last_id, segment_bytes) registers the file a store's persister appends to (nil
 * forgets it). On erlang:halt/0,1 — which skips every terminate callback, unlike
 * System.stop/0 or SIGTERM — es_persist_on_halt() appends each registered store's
 * events after the last id written, waiting for an append in flight to that file first.
 * Appends of dump to a registered file move its last id. halt(_, flush: false) skips
 * it, as it skips every other flush.
 *
 * Thread-safety: a dump reads the store like a query; a load must be the only writer
 * of its store. Both run on dirty I/O schedulers. The halt registry is guarded by
 * mutexes (held briefly, except the per-file one an append holds while it writes,
 * taken only by appends and the halt).
 */
#ifndef ES_PERSIST_H
#define ES_PERSIST_H

#include "store.h"

#include <erl_nif.h>
#include <stdbool.h>

/* Bounds of a dump's segment size (uncompressed bytes); Elixir checks them too. */
#define ES_SEGMENT_MIN 4096u
#define ES_SEGMENT_MAX (256u << 20)

ERL_NIF_TERM es_nif_dump(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_persist_on_halt(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* The registry's locks; false when they could not be made. Call from load(). */
bool es_persist_load(void);
/* Drops a store's registration (its destructor calls it). */
void es_persist_forget(es_store *s);
/* The on-halt callback (installed where the runtime has ERL_NIF_OPT_ON_HALT). */
void es_persist_on_halt(void *priv);
ERL_NIF_TERM es_nif_load(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
