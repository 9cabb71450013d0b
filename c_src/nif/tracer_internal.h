/*
 * tracer_internal.h — what the tracer's two halves share: tracer.c (the erl_tracer
 * callbacks, run in traced processes) and tracer_control.c (the tracer's resource, its
 * atoms, and the NIFs that create and steer it). Nothing else includes it; tracer.h is
 * the tracer's contract.
 *
 * Thread-safety: as tracer.h.
 */
#ifndef ES_TRACER_INTERNAL_H
#define ES_TRACER_INTERNAL_H

#include "clock.h"
#include "codec.h"
#include "etf.h"
#include "nif.h"
#include "redact.h"
#include "sample.h"
#include "vmem.h"
#include "vocab.h"

#include <mimalloc.h>
#include <string.h>

enum { STEP_FULL, STEP_TRUNCATE, STEP_METADATA, STEP_SAMPLE, STEP_CRITICAL_ONLY };

#define SHARDS 8

typedef struct frame {
    int64_t ts;
    uint64_t call_id;      /* id of the recorded :call event, 0 when not recorded */
    es_key *mf;            /* what was called, to match the return */
    es_key *module;        /* its module's key */
    ERL_NIF_TERM callback; /* GenServer callback name, 0 when not one */
    uint8_t *cause;        /* encoded first argument of that callback */
    uint32_t cause_len;
} frame;

/* Call frames of one process, touched only from that process's own callbacks. */
#define CALL_TAGS 8

typedef struct proc {
    uint32_t depth, cap; /* frames in use (may exceed cap when out of memory), allocated */
    bool warned;         /* the owner was told this process's frames passed half the soft bound */
    ERL_NIF_TERM last_m, last_f; /* the function called last, its key and its module's */
    es_key *last_mf, *last_module;
    frame *frames;
    /* gen calls this process received (or made) lately: the hash of the reply alias and
     * the caller (or the process called), so that a reply — sent to the alias, not to a
     * pid, and naming no sender — joins the flow of the two. */
    struct {
        uint64_t alias;
        es_key *peer;
        bool made; /* a call this process made: peer is the process called */
    } tags[CALL_TAGS];
    unsigned next_tag;
} proc;

static inline void proc_free(proc *p) {
    if (!p) return;
    for (uint32_t d = 0; d < p->depth && d < p->cap; d++) mi_free(p->frames[d].cause);
    mi_free(p->frames);
    mi_free(p);
}

/* Room for one more frame; false when out of memory. (enabled/3 keeps depth within the
 * tracer's max_frames.) */
static inline bool proc_reserve(proc *p) {
    if (p->depth < p->cap) return true;
    if (p->depth > p->cap) return false;
    uint32_t cap = p->cap ? p->cap * 2 : 16;
    frame *f = mi_realloc(p->frames, (size_t)cap * sizeof *f);
    if (!f) return false;
    p->frames = f;
    p->cap = cap;
    return true;
}

typedef struct gs_watch {
    _Atomic uint64_t module;     /* callback module atom of a watched GenServer, 0 = none */
    _Atomic uint64_t last_state; /* hash of the last state stored */
    _Atomic uint8_t view;        /* how its states and causes are recorded: views[view] */
} gs_watch;

/* How a watched GenServer's states and causes are recorded. View 0: as they are. Others
 * (set with es_tracer_watch's {:genserver, pid, module, state, {path, drop, redact}}):
 * the state is the term under `path` (map keys, structs included) less the key `drop`,
 * and, with `redact`, states and causes lose the values of the keys the tracer's
 * patterns name (redact.h) — a LiveView's assigns ([:socket, :assigns], less
 * :__changed__), which hold what its forms sent. A view is written once, before any
 * watch names it. */
#define VIEWS 8
#define VIEW_PATH 4
typedef struct gs_view {
    ERL_NIF_TERM path[VIEW_PATH];
    unsigned depth;
    ERL_NIF_TERM drop; /* 0: none */
    bool redact;
} gs_view;

typedef struct es_tracer {
    es_ref *store_ref;
    es_store *store;
    uint64_t serial; /* the store's */
    _Atomic uint32_t mask, step, truncate_bytes;
    _Atomic uint32_t max_frames; /* return frames a process may hold; calls past it are discarded */
    _Atomic uint64_t step3_threshold;
    _Atomic bool stopped;
    /* The local pid (its term word: ErlNifPid.pid) told {:elixir_scope_frames, pid, mfa,
     * depth} when a process's frames pass half of max_frames; 0: none. */
    _Atomic uint64_t owner;
    /* The crash collector (its local pid's term word) that abnormal exits go to, and how
     * many it has not taken yet (tracer.h); 0: none. */
    _Atomic uint64_t exit_sink;
    _Atomic uint32_t exits_in_flight;
    uint32_t nkeys; /* arrays below are indexed by key ids 1..nkeys */
    proc *_Atomic *procs;
    gs_watch *gs;
    _Atomic uint8_t *modules, *functions;
    _Atomic uint8_t *passing; /* by pid key: frames_ok received, calls go on past the soft bound */
    _Atomic uint8_t *senders; /* by pid key: its sends are recorded (a receive need not name it) */
    gs_view views[VIEWS];
    _Atomic unsigned nviews;
    es_patterns redact;     /* set once, before any redacting view is used */
    es_key *k[ES_EV_COUNT]; /* type keys of the vocabulary's rows (vocab.h) */
    struct {
        _Alignas(64) _Atomic uint64_t events, bytes;
        _Atomic uint64_t discarded; /* calls not traced for the frame bound (never reset) */
    } counts[SHARDS];
} es_tracer;

/* The resource only points at the tracer: enif_alloc_resource() memory is not
 * 64-byte aligned, and the per-shard counters must be. */
typedef struct tracer_ref {
    es_tracer *t;
} tracer_ref;

extern ErlNifResourceType *es_tracer_type;

typedef struct tracer_atoms {
    ERL_NIF_TERM send, receive, send_to_dead, call, return_from, exception_from, spawn, exit, link,
        unlink, register_, unregister, trace_status, trace, discard, remove, extra, normal,
        shutdown, reply, noreply, stop, handle_call, handle_cast, handle_info, handle_continue,
        mask, step, truncate_bytes, step3_rate, stopped, genserver, initial, max_frames, owner,
        match_spec_result, returns, frames_msg, frames_ok, exit_sink, exits_taken, exit_msg, redact;
    /* payload field names (those the store reads too are es_atom's: ok, module, function,
     * args, result, class, reason, duration, call_id, state, message, name, parent) */
    ERL_NIF_TERM callback, cause, to_name, to, initial_call, other, gen_call, alias;
} tracer_atoms;
extern tracer_atoms es_tracer_atoms;
#define A es_tracer_atoms

/* The payload each scheduler thread builds an event in (tracer.c). */
extern _Thread_local etf_buf es_tracer_buf;

static inline es_tracer *get_tracer(ErlNifEnv *env, ERL_NIF_TERM term) {
    tracer_ref *r;
    return enif_get_resource(env, term, es_tracer_type, (void **)&r) ? r->t : NULL;
}

/* Begins the payload of a :state event in b: the map, then the state. Its encoded bytes
 * are also what tells a changed state from the last one stored (their digest, which the
 * store keeps with the event: payload.h), so a state is encoded once. Returns that
 * digest (never 0), or 0 when the state cannot be encoded. */
uint64_t es_tracer_state_payload(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM state);

/* A watched GenServer's state or cause as its view records it (see gs_view); a state
 * of another shape than the view's is 0: not recorded. */
ERL_NIF_TERM es_tracer_view_state(ErlNifEnv *env, es_tracer *t, unsigned view, ERL_NIF_TERM state);
ERL_NIF_TERM es_tracer_view_cause(ErlNifEnv *env, es_tracer *t, unsigned view, ERL_NIF_TERM cause);

#endif
