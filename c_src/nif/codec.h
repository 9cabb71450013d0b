/*
 * codec.h — Erlang terms in and out of the store: the one place that knows how an
 * event map maps onto a slot and a payload.
 *
 * In:  es_codec_encode() takes `type` and an event map, interns its indexed fields
 *      (:pid or :from_pid, :to_pid, :module, :function, :arity) and encodes the rest
 *      of the map as external term format, ready for es_store_append().
 * Out: es_codec_event() rebuilds the exact map: payload fields plus :id, :type,
 *      :timestamp and the indexed fields under the names they came in with.
 * Keys: es_codec_pid_key() and friends find (or create) the key entry of a term.
 *
 * Thread-safety: any thread; all state lives in the store and the caller's env.
 */
#ifndef ES_CODEC_H
#define ES_CODEC_H

#include "store.h"

#include <erl_nif.h>

typedef struct es_atoms {
    ERL_NIF_TERM ok, error, nil, true_, false_, asc, desc;
    ERL_NIF_TERM id, type, timestamp, pid, from_pid, to_pid, module, function, arity;
    ERL_NIF_TERM critical, truncated, payload_size;
    ERL_NIF_TERM max_events, max_bytes, max_payload_bytes, sample_rate, max_keys;
    ERL_NIF_TERM timestamp_start, timestamp_end, limit, order, after_id, before_id, between;
    /* query specs and their results (spec_nif.c, query_nif.c, agg_nif.c, history_nif.c) */
    ERL_NIF_TERM after, before, where, eq, lt, le, gt, ge, range, prefix, select, events, ids,
        count, struct_key, diff, page, state, group_by, measure, field, name, parent, args, result,
        class_, reason, duration, call_id, running, exception_kind, children, links, exited;
    ERL_NIF_TERM stored, appended, sampled_out, pruned, bytes, memory, oldest_id, newest_id,
        max_lateness, by_type, unindexed;
    ERL_NIF_TERM struct_, exception, message, argument_error, clock;
} es_atoms;

extern es_atoms es_atom;

void es_codec_init_atoms(ErlNifEnv *env);

/* An event being encoded. Its payload lives in a buffer of the calling thread, valid
 * until that thread's next encode. */
typedef struct es_encoded {
    es_event_in in;
} es_encoded;

/* Returns NULL on success, or a static message naming what is wrong with the input. */
const char *es_codec_encode(ErlNifEnv *env, es_store *s, ERL_NIF_TERM type, ERL_NIF_TERM map,
                            es_encoded *out);

/* Builds the event map of a live event; false when it was pruned meanwhile. With a
 * struct module (0: none) the map is tagged as that struct (__struct__). */
bool es_codec_event(ErlNifEnv *env, es_store *s, uint64_t id, ERL_NIF_TERM struct_tag,
                    ERL_NIF_TERM *out);

/* Builds a map of some fields of a live event: :id, :type and :timestamp, and each of
 * `fields` the event has (indexed fields from its slot, the rest decoded from its
 * payload alone: nothing else is decoded). false when it was pruned meanwhile. */
bool es_codec_fields(ErlNifEnv *env, es_store *s, uint64_t id, const ERL_NIF_TERM *fields,
                     unsigned nfields, ERL_NIF_TERM struct_tag, ERL_NIF_TERM *out);

/* The values of some fields of a live event, into values[] (0 where it has none; :id,
 * :type and :timestamp too), its slot into *view (may be NULL); nothing else decoded. */
bool es_codec_values(ErlNifEnv *env, es_store *s, uint64_t id, const ERL_NIF_TERM *fields,
                     unsigned nfields, ERL_NIF_TERM *values, es_event_view *view);

/* Key entries of terms: NULL when the term has none (create=false) or is not of the
 * kind (a pid, an atom). */
es_key *es_codec_pid_key(ErlNifEnv *env, es_store *s, ERL_NIF_TERM pid, bool create);
es_key *es_codec_atom_key(es_intern *t, ERL_NIF_TERM atom, bool create);
es_key *es_codec_mf_key(es_store *s, ERL_NIF_TERM module, ERL_NIF_TERM function, bool create);

/* The atom an atom key (type, module) stands for. */
ERL_NIF_TERM es_codec_atom_term(const es_key *k);

/* The pid term of a pid-table key id. */
ERL_NIF_TERM es_codec_pid_term(ErlNifEnv *env, es_store *s, uint32_t id);

/* Raises ArgumentError with the given message. */
ERL_NIF_TERM es_raise_arg(ErlNifEnv *env, const char *message);

#endif
