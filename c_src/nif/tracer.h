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
 *   receive    -> :receive  pid, message (+ from_pid, below)
 *   call       -> :call     pid, module, function, arity, args        (traced modules)
 *   return     -> :return   ... result, duration, call_id
 *   exception  -> :exception ... class, reason, duration, call_id
 *   callbacks of a watched GenServer -> :state pid, module, state, callback, cause
 *     (as the watch's view records them: the whole state, or a part of it, redacted —
 *     a LiveView's assigns; tracer_internal.h: gs_view)
 *   spawn      -> :spawn    pid (the child), parent, initial_call
 *   exit       -> :exit (normal, shutdown, {shutdown, _}), reason; any other exit is
 *                 handed to the crash collector (`exit_sink`, ElixirScope.Crashes) as
 *                 {:elixir_scope_exit, pid, reason, timestamp}: it joins what the
 *                 runtime's reports say of that exit into one :crash (or :exit) event.
 *                 With no collector, or ES_TRACER_MAX_EXITS exits not taken yet
 *                 (`exits_taken` counts them off), it is recorded here as a :crash.
 *   link/unlink -> :link/:unlink pid, to_pid; register/unregister -> name
 *
 * Senders: a received gen call {'$gen_call', {Caller, Tag}, Request} names its caller,
 * and the reply {Tag, Reply} to a call the receiver made earlier (its :send of the call
 * seen here) is from the process it called. When that sender's own sends are not
 * recorded (it is not traced), the :receive stands for the message in the pair index:
 * its peer is the sender, shown as :from_pid (vocab.h), so message flows and a process's
 * peers show both directions when one side alone is traced; when they are, the :send
 * is the record and the :receive names no sender. A process counts as having its sends
 * recorded from its first send seen here on (the flag is not cleared when tracing of it
 * stops).
 *
 * Calls are paired with their returns per process on a stack owned by that process
 * (only its own scheduler touches it), so durations are recursion-safe. A GenServer
 * state equal to the previous one is not stored again.
 *
 * Return frames: a call whose match spec has {return_trace} pushes a frame on the
 * traced process's own stack (3 words on OTP 25/26, 4 on 27+); a traced tail-recursive
 * loop would grow it without bound. ElixirScope's return-tracing match specs carry the
 * marker {message, ES_TRACER_RETURNS}, seen here as the call's match_spec_result: only
 * those calls keep a frame here (calls of calls-only patterns, or of another tool's,
 * are recorded without one), so a process's depth here is the number of ElixirScope's
 * frames on its stack. Bounds (set from Elixir: `max_frames`, the bound in words over
 * the frame size): enabled/3 discards a process's calls (counted, tracer_discarded/1)
 * at max_frames, and from a soft bound FRAME_HEADROOM below it until the tracer's
 * `owner` answered {:frames_ok, pid} (es_tracer_watch); a call not traced pushes no
 * frame, since its match spec does not run. The owner is told
 * {:elixir_scope_frames, pid, {m, f, arity}, depth} at half the soft bound (again once
 * the depth fell below a quarter of it) and halfway into the headroom, and switches
 * that function to calls only before answering.
 *
 * Governor steps (set from Elixir, enforced here): 0 full payloads, 1 payloads over
 * `truncate_bytes` become truncated markers, 2 metadata only, 3 non-critical events
 * sampled at `sample_rate` of step 3, 4 non-critical events off.
 *
 * Thread-safety: the callbacks run concurrently on every scheduler; control NIFs
 * (watch, level, step, stop, max_frames, owner, frames_ok) may run at any time from any
 * process.
 */
#ifndef ES_TRACER_H
#define ES_TRACER_H

#include <erl_nif.h>

/* The atom of the return-tracing marker, and the frame bound before Elixir sets one
 * (100,000 words at 4 words a frame). */
#define ES_TRACER_RETURNS "$elixir_scope_returns"
#define ES_TRACER_MAX_FRAMES 25000
/* Abnormal exits handed to the crash collector and not taken yet, at most. */
#define ES_TRACER_MAX_EXITS 10000

int es_tracer_load(ErlNifEnv *env);

ERL_NIF_TERM es_tracer_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_set(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_watch(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_counts(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_discarded(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_mask(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_enabled(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_tracer_trace(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
