/*
 * tracer.h — the erl_tracer callbacks: trace events go from the traced process's
 * scheduler straight into the store, with no tracer process and no mailbox.
 *
 * Contract: a tracer (a NIF resource, passed as the tracer state to
 * erlang:trace/3 as {tracer, 'Elixir.ElixirScope.Native', Tracer}) records into one
 * store. enabled/3 decides from the tag alone, before any work, whether a probe
 * fires (level mask, governor step, stopped tracer: 'remove' detaches us); trace/5
 * samples, encodes only what the governor allows and appends:
 *
 *   send       -> :send     from_pid, to_pid, message (+ to_name for a registered name)
 *   send_to_non_existing_process -> :send_to_dead  from_pid, to_pid, message
 *   receive    -> :receive  pid, message
 *   call       -> :call     pid, module, function, arity, args        (traced modules)
 *   return     -> :return   ... result, duration, call_id
 *   exception  -> :exception ... class, reason, duration, call_id
 *   callbacks of a watched GenServer -> :state pid, module, state, callback, cause
 *   spawn      -> :spawn    pid (the child), parent, initial_call
 *   exit       -> :exit (normal, shutdown) or :crash (anything else), reason
 *   link/unlink -> :link/:unlink pid, to_pid; register/unregister -> name
 *
 * Calls are paired with their returns per process on a stack owned by that process
 * (only its own scheduler touches it), so durations are recursion-safe. A GenServer
 * state equal to the previous one is not stored again.
 *
 * Governor steps (set from Elixir, enforced here): 0 full payloads, 1 payloads over
 * `truncate_bytes` become truncated markers, 2 metadata only, 3 non-critical events
 * sampled at `sample_rate` of step 3, 4 non-critical events off.
 *
 * Thread-safety: the callbacks run concurrently on every scheduler; control NIFs
 * (watch, level, step, stop) may run at any time from any process.
 */
#ifndef ES_TRACER_H
#define ES_TRACER_H

#include <erl_nif.h>

int es_tracer_load(ErlNifEnv *env);

ERL_NIF_TERM es_tracer_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_set(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_watch(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_counts(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_enabled(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_trace(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
