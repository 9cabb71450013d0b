/*
 * tracer.c — the erl_tracer NIF callbacks: trace events go from the traced process's
 * scheduler into the store. The tracer's resource and the NIFs that control it are
 * tracer_control.c's. See tracer.h for the contract and the event shapes.
 */
#include "tracer.h"
#include "tracer_internal.h"

_Thread_local etf_buf es_tracer_buf;

/* The process this thread traced last: a scheduler runs one process for many events,
 * so most events skip even the pid cache of codec.c. Only local pids are kept, whose
 * ErlNifPid is the term word itself, so an equal word is the same pid; the serial
 * tells stores apart (a key belongs to one store). */
static _Thread_local struct {
    uint64_t serial;
    ERL_NIF_TERM pid;
    es_key *key;
} tl_tracee;

static es_key *tracee_key(ErlNifEnv *env, es_tracer *t, ERL_NIF_TERM pid) {
    if (pid == tl_tracee.pid && t->serial == tl_tracee.serial) return tl_tracee.key;
    es_key *k = es_codec_pid_key(env, t->store, pid, true);
    ErlNifPid local;
    if (k && enif_get_local_pid(env, pid, &local) && local.pid == pid) {
        tl_tracee.serial = t->serial;
        tl_tracee.pid = pid;
        tl_tracee.key = k;
    }
    return k;
}

/* How far down a process's frames a return that does not match the top one is looked
 * for (see on_return). */
#define RETURN_SEARCH 64
/* Frames between the soft bound, where a process's calls are discarded until its owner
 * acknowledged (frames_ok) that the functions that pushed them are calls only now, and
 * max_frames, where they are discarded whatever (see frame_bounds). */
#define FRAME_HEADROOM 1024

/* ---- callbacks ------------------------------------------------------------------- */

static proc *proc_of(es_tracer *t, uint32_t pid_id, bool create) {
    proc *p = atomic_load_explicit(&t->procs[pid_id], memory_order_relaxed);
    if (!p && create) {
        p = mi_zalloc(sizeof *p);
        atomic_store_explicit(&t->procs[pid_id], p, memory_order_relaxed);
    }
    return p;
}

/* The frame bounds of a process: `hard` (max_frames) and `soft`, below it by the
 * headroom; `half` of soft, where the owner is first told. */
typedef struct bounds {
    uint32_t hard, soft, half;
} bounds;

static inline bounds frame_bounds(es_tracer *t) {
    uint32_t hard = atomic_load_explicit(&t->max_frames, memory_order_relaxed);
    uint32_t room = hard / 4 < FRAME_HEADROOM ? hard / 4 : FRAME_HEADROOM;
    return (bounds){hard, hard - room, (hard - room) / 2};
}

/* Whether a call of the tracee must not be traced, lest it push a return frame past its
 * bound (its match spec's return_trace runs only if the call is traced): from the soft
 * bound until the owner acknowledged (frames_ok), and at max_frames whatever. Counted. */
static bool frames_full(ErlNifEnv *env, es_tracer *t, ERL_NIF_TERM tracee) {
    es_key *pid = tracee_key(env, t, tracee);
    proc *p = pid ? proc_of(t, pid->id, false) : NULL;
    if (!p) return false;
    bounds b = frame_bounds(t);
    if (p->depth < b.soft) return false;
    if (p->depth < b.hard && atomic_load_explicit(&t->passing[pid->id], memory_order_relaxed))
        return false;
    unsigned sh = es_thread_shard();
    atomic_store_explicit(&t->counts[sh].discarded,
                          atomic_load_explicit(&t->counts[sh].discarded, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return true;
}

ERL_NIF_TERM es_tracer_enabled(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[1]);
    if (!t || atomic_load_explicit(&t->stopped, memory_order_relaxed)) return A.remove;
    ERL_NIF_TERM tag = argv[0];
    if (tag == A.trace_status) return A.trace;
    uint32_t mask = atomic_load_explicit(&t->mask, memory_order_relaxed);
    /* The categories (vocab.h) of the events each probe may record. */
    if (tag == A.exit) /* a normal exit or a crash: the level decides once it is known */
        return mask & (es_vocab[ES_EV_EXIT].category | es_vocab[ES_EV_CRASH].category) ? A.trace
                                                                                       : A.discard;
    if (tag == A.spawn) return mask & es_vocab[ES_EV_SPAWN].category ? A.trace : A.discard;
    if (atomic_load_explicit(&t->step, memory_order_relaxed) >= STEP_CRITICAL_ONLY)
        return A.discard;
    uint32_t calls = es_vocab[ES_EV_CALL].category | es_vocab[ES_EV_STATE].category;
    if (tag == A.call) /* at its bound, a call could push one return frame too many */
        return mask & calls && !frames_full(env, t, argv[2]) ? A.trace : A.discard;
    uint32_t cat = 0;
    if (tag == A.send || tag == A.receive || tag == A.send_to_dead)
        cat = es_vocab[ES_EV_SEND].category | es_vocab[ES_EV_RECEIVE].category |
              es_vocab[ES_EV_SEND_TO_DEAD].category;
    else if (tag == A.return_from || tag == A.exception_from)
        cat = calls;
    else if (tag == A.link || tag == A.unlink || tag == A.register_ || tag == A.unregister)
        cat = es_vocab[ES_EV_LINK].category | es_vocab[ES_EV_REGISTER].category;
    return mask & cat ? A.trace : A.discard;
}

/* The payload under construction for one event: governed by the step. */
typedef struct payload {
    etf_buf *b;
    bool fields; /* false: metadata only, no fields are encoded */
} payload;

static payload payload_begin(uint32_t step) {
    payload p = {&es_tracer_buf, step < STEP_METADATA};
    etf_reset(p.b);
    if (p.fields && !etf_map_begin(p.b)) p.fields = false;
    return p;
}

/* Finishes the payload into `in`; returns false when encoding failed. */
static bool payload_end(es_tracer *t, payload *p, uint32_t step, es_event_in *in) {
    if (!p->fields) {
        in->flags |= ES_F_TRUNCATED;
        return true;
    }
    etf_map_end(p->b);
    in->payload = p->b->data;
    in->payload_len = (uint32_t)p->b->len;
    if (step == STEP_TRUNCATE && p->b->len > atomic_load(&t->truncate_bytes))
        in->flags |= ES_F_TRUNCATED;
    return true;
}

static void append(es_tracer *t, es_event_in *in, uint64_t *id) {
    uint64_t got = es_store_append(t->store, in);
    if (id) *id = got;
    /* Rate counters for the governor: a shard's line is (nearly) its own thread's, so a
     * plain add is enough; a rare lost update only blurs a rate estimate. */
    unsigned sh = es_thread_shard();
    atomic_store_explicit(&t->counts[sh].events,
                          atomic_load_explicit(&t->counts[sh].events, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&t->counts[sh].bytes,
                          atomic_load_explicit(&t->counts[sh].bytes, memory_order_relaxed) +
                              in->payload_len + 72,
                          memory_order_relaxed);
}

/* Sampling for non-critical events, decided before any encoding. */
static bool keep(es_tracer *t, uint32_t step, es_event_in *in) {
    uint64_t threshold = step >= STEP_SAMPLE ? atomic_load(&t->step3_threshold) : ES_SAMPLE_ALL;
    in->sampled = true;
    return es_store_keep(t->store, threshold);
}

/* OTP's normal exits (no crash report, no restart of a transient child). */
static bool is_normal_exit(ErlNifEnv *env, ERL_NIF_TERM reason) {
    if (reason == A.normal || reason == A.shutdown) return true;
    const ERL_NIF_TERM *el;
    int n;
    return enif_get_tuple(env, reason, &n, &el) && n == 2 && el[0] == A.shutdown;
}

/* Hands an exit the runtime reports (a crash report, a supervisor report may follow) to
 * the crash collector, {:elixir_scope_exit, pid, reason, timestamp}, which records one
 * event with what every report adds (tracer.h); false when there is no collector, it
 * is gone, or ES_TRACER_MAX_EXITS exits wait for it already: the exit is recorded here. */
static bool hand_over_exit(ErlNifEnv *env, es_tracer *t, ERL_NIF_TERM tracee, ERL_NIF_TERM reason) {
    ErlNifPid to = {.pid = (ERL_NIF_TERM)atomic_load_explicit(&t->exit_sink, memory_order_relaxed)};
    if (!to.pid) return false;
    if (atomic_fetch_add_explicit(&t->exits_in_flight, 1, memory_order_relaxed) >=
        ES_TRACER_MAX_EXITS) {
        atomic_fetch_sub_explicit(&t->exits_in_flight, 1, memory_order_relaxed);
        return false;
    }
    ERL_NIF_TERM msg =
        enif_make_tuple4(env, A.exit_msg, tracee, reason, enif_make_int64(env, es_clock_now()));
    if (enif_send(env, &to, NULL, msg)) return true;
    atomic_fetch_sub_explicit(&t->exits_in_flight, 1, memory_order_relaxed);
    return false;
}

static uint64_t ref_hash(ErlNifEnv *env, ERL_NIF_TERM ref) {
    (void)env;
    return enif_hash(ERL_NIF_INTERNAL_HASH, ref, 0) << 32 |
           enif_hash(ERL_NIF_INTERNAL_HASH, ref, 1);
}

/* The reply alias of a gen call message {'$gen_call', {Caller, Tag}, Request}, where
 * Tag is a reference or [alias | Ref]; false for any other message. */
static bool gen_call_tag(ErlNifEnv *env, ERL_NIF_TERM msg, ERL_NIF_TERM *caller,
                         ERL_NIF_TERM *ref) {
    const ERL_NIF_TERM *el, *from;
    int n;
    if (!enif_get_tuple(env, msg, &n, &el) || n != 3 || el[0] != A.gen_call ||
        !enif_get_tuple(env, el[1], &n, &from) || n != 2 || !enif_is_pid(env, from[0]))
        return false;
    ERL_NIF_TERM head, tail = from[1];
    if (enif_get_list_cell(env, from[1], &head, &tail) && head != A.alias) return false;
    *caller = from[0];
    *ref = tail;
    return enif_is_ref(env, tail);
}

/* The reply alias of a gen reply {Tag, Reply}, where Tag is a reference or [alias | Ref];
 * false for any other message. */
static bool gen_reply_tag(ErlNifEnv *env, ERL_NIF_TERM msg, ERL_NIF_TERM *ref) {
    const ERL_NIF_TERM *el;
    int n;
    if (!enif_get_tuple(env, msg, &n, &el) || n != 2) return false;
    ERL_NIF_TERM head, tail = el[0];
    if (enif_get_list_cell(env, el[0], &head, &tail) && head != A.alias) return false;
    *ref = tail;
    return enif_is_ref(env, tail);
}

/* Remembers a gen call's alias with the process at the other end. */
static void remember_call(ErlNifEnv *env, proc *p, ERL_NIF_TERM ref, es_key *peer, bool made) {
    unsigned i = p->next_tag++ % CALL_TAGS;
    p->tags[i].alias = ref_hash(env, ref);
    p->tags[i].peer = peer;
    p->tags[i].made = made;
}

/* The other end of a remembered gen call with this alias, or NULL. */
static es_key *call_peer(ErlNifEnv *env, proc *p, ERL_NIF_TERM ref, bool made) {
    uint64_t h = p ? ref_hash(env, ref) : 0;
    es_key *peer = NULL;
    for (unsigned i = 0; p && i < CALL_TAGS; i++)
        if (p->tags[i].peer && p->tags[i].made == made && p->tags[i].alias == h)
            peer = p->tags[i].peer;
    return peer;
}

static bool is_gs_callback(ERL_NIF_TERM f) {
    return f == A.handle_call || f == A.handle_cast || f == A.handle_info || f == A.handle_continue;
}

/* The new state in a GenServer callback's return value, or 0 when there is none. */
static ERL_NIF_TERM state_of_result(ErlNifEnv *env, ERL_NIF_TERM result) {
    const ERL_NIF_TERM *el;
    int n;
    if (!enif_get_tuple(env, result, &n, &el) || n < 2) return 0;
    if (el[0] == A.reply && n >= 3) return el[2];
    if (el[0] == A.noreply) return el[1];
    if (el[0] == A.stop) return n == 3 ? el[2] : n == 4 ? el[3] : 0;
    if (el[0] == es_atom.ok) return el[1];
    return 0;
}

/* A :call, :return or :exception event of the function of frame f. Field by field: a
 * designated initializer zero-fills the struct first (a `rep stos` on x86, slow to
 * start for 80 bytes), and every traced call builds two of these. */
static inline void call_event(es_event_in *in, int64_t ts, es_key *type, es_key *pid,
                              const frame *f, uint8_t arity) {
    in->ts = ts, in->type = type, in->actor = pid, in->peer = NULL, in->pair = NULL;
    in->module = f->module, in->mf = f->mf;
    in->flags = ES_F_ACTOR | ES_F_MODULE | ES_F_FUNCTION | ES_F_ARITY, in->arity = arity;
    in->sampled = false, in->payload = NULL, in->payload_len = 0;
}

/* Tells the tracer's owner (the Tracing process) that `tracee` holds `depth` return
 * frames, the last pushed by a call of m:f/arity: it switches that function to calls
 * only and answers {:frames_ok, pid} (es_tracer_watch). */
static void tell_owner(ErlNifEnv *env, es_tracer *t, ERL_NIF_TERM tracee, const ERL_NIF_TERM *mf,
                       unsigned arity, uint32_t depth) {
    ErlNifPid to = {.pid = (ERL_NIF_TERM)atomic_load_explicit(&t->owner, memory_order_relaxed)};
    if (!to.pid) return;
    ERL_NIF_TERM mfa = enif_make_tuple3(env, mf[0], mf[1], enif_make_uint(env, arity));
    enif_send(env, &to, NULL,
              enif_make_tuple4(env, A.frames_msg, tracee, mfa, enif_make_uint(env, depth)));
}

/* A call. `returns`: its match spec pushed a return frame (it carries ElixirScope's
 * marker, see tracer.h), so a frame is kept here to pair the return with; without one
 * (calls only, or another tool's pattern) only the call is recorded. */
static void on_call(ErlNifEnv *env, es_tracer *t, uint32_t step, es_key *pid, ERL_NIF_TERM tracee,
                    ERL_NIF_TERM mfa, bool returns) {
    const ERL_NIF_TERM *el;
    int n;
    unsigned arity;
    if (!enif_get_tuple(env, mfa, &n, &el) || n != 3 || !enif_get_list_length(env, el[2], &arity))
        return;
    es_store *s = t->store;
    proc *p = proc_of(t, pid->id, true);
    if (!p) return;
    es_key *mf = p->last_mf, *module = p->last_module;
    if (!mf || p->last_m != el[0] || p->last_f != el[1]) { /* hot loops call one function */
        if (!(mf = es_codec_mf_key(s, el[0], el[1], true))) return;
        module = es_intern_by_id(&es_store_tables(s)->module, mf->aux);
        p->last_m = el[0], p->last_f = el[1], p->last_mf = mf, p->last_module = module;
    }
    frame only_call, *f = &only_call;
    if (returns) {
        if (!proc_reserve(p)) { /* counted, so the returns still pair up, but not kept */
            p->depth++;
            return;
        }
        f = &p->frames[p->depth++];
        /* Told at half the soft bound, and again halfway into the headroom (a second
         * function growing the stack, after the first went to calls only). */
        bounds b = frame_bounds(t);
        if (p->depth >= b.half && !p->warned) {
            p->warned = true;
            tell_owner(env, t, tracee, el, arity, p->depth);
        } else if (p->depth == b.soft + (b.hard - b.soft) / 2) {
            tell_owner(env, t, tracee, el, arity, p->depth);
        }
    }
    f->ts = es_clock_now();
    f->call_id = 0, f->mf = mf, f->module = module, f->callback = 0;
    f->cause = NULL, f->cause_len = 0;
    uint32_t mask = atomic_load_explicit(&t->mask, memory_order_relaxed);
    gs_watch *w = &t->gs[pid->id];
    if (returns && (mask & es_vocab[ES_EV_STATE].category) &&
        atomic_load_explicit(&w->module, memory_order_relaxed) == el[0] && is_gs_callback(el[1])) {
        ERL_NIF_TERM msg;
        etf_buf *cause = &es_tracer_buf; /* copied out before the call event's payload reuses it */
        etf_reset(cause);
        unsigned view = atomic_load_explicit(&w->view, memory_order_acquire);
        if (enif_get_list_cell(env, el[2], &msg, &(ERL_NIF_TERM){0}) &&
            etf_field_term(env, cause, es_tracer_view_cause(env, t, view, msg))) {
            f->cause = mi_malloc(cause->len);
            if (f->cause) memcpy(f->cause, cause->data, cause->len);
            f->cause_len = f->cause ? (uint32_t)cause->len : 0;
        }
        f->callback = el[1];
    }
    bool traced = atomic_load_explicit(&t->functions[mf->id], memory_order_relaxed) ||
                  atomic_load_explicit(&t->modules[mf->aux], memory_order_relaxed);
    if (!(mask & es_vocab[ES_EV_CALL].category) || !traced || arity > 255) return;
    es_event_in in;
    call_event(&in, f->ts, t->k[ES_EV_CALL], pid, f, (uint8_t)arity);
    if (!keep(t, step, &in)) return;
    payload pl = payload_begin(step);
    if (pl.fields && !etf_map_term(env, pl.b, es_atom.args, el[2])) return;
    payload_end(t, &pl, step, &in);
    append(t, &in, &f->call_id);
}

static void record_state(ErlNifEnv *env, es_tracer *t, uint32_t step, es_key *pid, frame *f,
                         ERL_NIF_TERM result) {
    ERL_NIF_TERM state = state_of_result(env, result);
    gs_watch *w = &t->gs[pid->id];
    uint64_t module = atomic_load_explicit(&w->module, memory_order_relaxed);
    if (!state || !module) return;
    unsigned view = atomic_load_explicit(&w->view, memory_order_acquire);
    if (!(state = es_tracer_view_state(env, t, view, state))) return;
    payload pl = {&es_tracer_buf, step < STEP_METADATA};
    uint64_t h = es_tracer_state_payload(env, pl.b, state);
    if (!h || h == atomic_load_explicit(&w->last_state, memory_order_relaxed)) return;
    atomic_store_explicit(&w->last_state, h, memory_order_relaxed);
    es_store *s = t->store;
    es_key *mf = es_codec_mf_key(s, (ERL_NIF_TERM)module, 0, true);
    if (!mf) return;
    es_event_in in = {.ts = ES_TS_NOW,
                      .type = t->k[ES_EV_STATE],
                      .actor = pid,
                      .mf = mf,
                      .module = es_intern_by_id(&es_store_tables(s)->module, mf->aux),
                      .flags = ES_F_ACTOR | ES_F_MODULE,
                      .hash = h};
    if (!keep(t, step, &in)) return;
    if (pl.fields) {
        if (!etf_map_term(env, pl.b, A.callback, f->callback)) return;
        if (f->cause && !etf_map_encoded(pl.b, A.cause, f->cause, f->cause_len)) return;
    }
    payload_end(t, &pl, step, &in);
    append(t, &in, NULL);
}

static void on_return(ErlNifEnv *env, es_tracer *t, uint32_t step, es_key *pid, ERL_NIF_TERM mfa,
                      ERL_NIF_TERM extra, bool exception) {
    proc *p = proc_of(t, pid->id, false);
    if (!p || p->depth == 0) return; /* tracing began inside this call */
    const ERL_NIF_TERM *el;
    int n;
    if (!enif_get_tuple(env, mfa, &n, &el) || n != 3) return;
    if (p->depth > p->cap) { /* a frame counted but not kept (out of memory) */
        p->depth--;
        return;
    }
    /* The frame of the returning function: the top one, unless returns were lost above
     * it (the process's call flag was off a while), then one a little further down; a
     * return matching none is another tool's (OTP < 27 shares patterns), not ours. */
    ERL_NIF_TERM called[2] = {el[0], el[1]}; /* an mf key's bytes are its two atoms */
    uint32_t at = p->depth, lowest = p->depth > RETURN_SEARCH ? p->depth - RETURN_SEARCH : 0;
    while (at > lowest && memcmp(es_key_bytes(p->frames[at - 1].mf), called, sizeof called) != 0)
        at--;
    if (at == lowest) return;
    for (uint32_t d = at; d < p->depth; d++) mi_free(p->frames[d].cause);
    p->depth = at - 1;
    frame f = p->frames[p->depth];
    if (p->warned && p->depth < frame_bounds(t).half / 2) { /* unwound: a new episode */
        p->warned = false;
        atomic_store_explicit(&t->passing[pid->id], 0, memory_order_relaxed);
    }
    if (f.callback) {
        if (!exception) record_state(env, t, step, pid, &f, extra);
        mi_free(f.cause);
    }
    if (!f.call_id) return;
    int64_t now = es_clock_now();
    int64_t arity;
    if (!etf_get_int64(env, el[2], &arity) || arity < 0 || arity > 255) arity = 0;
    es_event_in in;
    call_event(&in, now, exception ? t->k[ES_EV_EXCEPTION] : t->k[ES_EV_RETURN], pid, &f,
               (uint8_t)arity);
    in.sampled = true;
    payload pl = payload_begin(step);
    if (pl.fields) {
        bool ok = etf_map_int(pl.b, es_atom.duration, now - f.ts) &&
                  etf_map_int(pl.b, es_atom.call_id, (int64_t)f.call_id);
        const ERL_NIF_TERM *cv;
        int cn;
        if (exception && enif_get_tuple(env, extra, &cn, &cv) && cn == 2)
            ok = ok && etf_map_term(env, pl.b, es_atom.class_, cv[0]) &&
                 etf_map_term(env, pl.b, es_atom.reason, cv[1]);
        else
            ok = ok && etf_map_term(env, pl.b, es_atom.result, extra);
        if (!ok) return;
    }
    payload_end(t, &pl, step, &in);
    append(t, &in, NULL);
}

static ERL_NIF_TERM opt_extra(ErlNifEnv *env, ERL_NIF_TERM opts) {
    ERL_NIF_TERM v;
    return enif_get_map_value(env, opts, A.extra, &v) ? v : 0; /* false for a non-map too */
}

ERL_NIF_TERM es_tracer_trace(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[1]);
    if (!t || atomic_load_explicit(&t->stopped, memory_order_relaxed)) return es_atom.ok;
    ERL_NIF_TERM tag = argv[0], tracee = argv[2], term = argv[3];
    es_store *s = t->store;
    es_key *pid = tracee_key(env, t, tracee);
    if (!pid) return es_atom.ok; /* a port, or the key table is full */
    uint32_t step = atomic_load_explicit(&t->step, memory_order_relaxed);
    uint32_t mask = atomic_load_explicit(&t->mask, memory_order_relaxed);

    ERL_NIF_TERM ms_result;
    if (tag == A.call) {
        on_call(env, t, step, pid, tracee, term,
                enif_get_map_value(env, argv[4], A.match_spec_result, &ms_result) &&
                    ms_result == A.returns);
        return es_atom.ok;
    }
    if (tag == A.return_from || tag == A.exception_from) {
        on_return(env, t, step, pid, term, opt_extra(env, argv[4]), tag == A.exception_from);
        return es_atom.ok;
    }

    es_event_in in = {.ts = ES_TS_NOW, .actor = pid, .flags = ES_F_ACTOR};
    payload pl;
    bool to_dead = tag == A.send_to_dead; /* a send to a process that no longer exists */
    if (tag == A.send || tag == A.receive || to_dead) {
        int row = to_dead ? ES_EV_SEND_TO_DEAD : tag == A.send ? ES_EV_SEND : ES_EV_RECEIVE;
        bool sends = tag != A.receive;
        if (!(mask & es_vocab[row].category)) return es_atom.ok;
        if (sends && !atomic_load_explicit(&t->senders[pid->id], memory_order_relaxed))
            atomic_store_explicit(&t->senders[pid->id], 1, memory_order_relaxed);
        if (!keep(t, step, &in)) return es_atom.ok;
        in.type = t->k[row];
        /* A send to a registered name is reported with the name: resolve it, so the
         * message joins the pair index, and keep the name as :to_name. */
        ERL_NIF_TERM to = sends ? opt_extra(env, argv[4]) : 0, to_pid = to;
        ErlNifPid resolved;
        if (to && enif_is_atom(env, to) && enif_whereis_pid(env, to, &resolved))
            to_pid = enif_make_pid(env, &resolved);
        ERL_NIF_TERM caller, ref;
        es_key *other = NULL; /* the process at the other end, when the message says */
        if (!sends && gen_call_tag(env, term, &caller, &ref)) {
            proc *p = proc_of(t, pid->id, true);
            other = es_codec_pid_key(env, s, caller, true);
            if (p && other) remember_call(env, p, ref, other, false);
        } else if (!sends && gen_reply_tag(env, term, &ref)) { /* to a call it made */
            other = call_peer(env, proc_of(t, pid->id, false), ref, true);
        } else if (to && enif_is_ref(env, to)) { /* a gen reply goes to the caller's alias */
            other = call_peer(env, proc_of(t, pid->id, false), to, false);
        }
        if (sends) {
            in.flags |= ES_F_ACTOR_FROM;
            if ((in.peer = other) ||
                (to_pid && (in.peer = es_codec_pid_key(env, s, to_pid, true)))) {
                in.flags |= ES_F_PEER;
                uint32_t ids[2] = {pid->id, in.peer->id};
                in.pair = es_intern_get(&es_store_tables(s)->pair, ids, sizeof ids, true, 0);
            }
            proc *p;
            if (in.peer && gen_call_tag(env, term, &caller, &ref) &&
                enif_is_identical(caller, tracee) && (p = proc_of(t, pid->id, true)))
                remember_call(env, p, ref, in.peer, true);
        } else if (other && !atomic_load_explicit(&t->senders[other->id], memory_order_relaxed)) {
            /* The sender named by the message, whose own :send is not recorded: the
             * receive stands for it in the pair index (vocab.h: :from_pid). */
            in.peer = other;
            in.flags |= ES_F_PEER;
            uint32_t ids[2] = {pid->id, other->id};
            in.pair = es_intern_get(&es_store_tables(s)->pair, ids, sizeof ids, true, 0);
        }
        pl = payload_begin(step);
        if (pl.fields && !etf_map_term(env, pl.b, es_atom.message, term)) return es_atom.ok;
        if (pl.fields && to && to != to_pid && !etf_map_term(env, pl.b, A.to_name, to))
            return es_atom.ok;
        if (pl.fields && to && !in.peer && !etf_map_term(env, pl.b, A.to, to)) return es_atom.ok;
    } else if (tag == A.spawn) {
        in.type = t->k[ES_EV_SPAWN];
        if (es_vocab[ES_EV_SPAWN].critical) in.flags |= ES_F_CRITICAL;
        if (!(in.actor = es_codec_pid_key(env, s, term, true))) return es_atom.ok;
        pl = payload_begin(step < STEP_METADATA ? step : STEP_FULL); /* small: always whole */
        const ERL_NIF_TERM *el;
        int n;
        unsigned len;
        ERL_NIF_TERM mfa = opt_extra(env, argv[4]);
        if (!etf_map_term(env, pl.b, es_atom.parent, tracee)) return es_atom.ok;
        if (mfa && enif_get_tuple(env, mfa, &n, &el) && n == 3 &&
            enif_get_list_length(env, el[2], &len)) {
            ERL_NIF_TERM ic = enif_make_tuple3(env, el[0], el[1], enif_make_uint(env, len));
            if (!etf_map_term(env, pl.b, A.initial_call, ic)) return es_atom.ok;
        }
    } else if (tag == A.exit) {
        /* The process is gone: what the tracer kept of it goes, recorded or not. */
        proc_free(atomic_exchange(&t->procs[pid->id], NULL));
        atomic_store_explicit(&t->passing[pid->id], 0, memory_order_relaxed);
        atomic_store_explicit(&t->senders[pid->id], 0, memory_order_relaxed);
        bool normal = is_normal_exit(env, term);
        if (!normal && hand_over_exit(env, t, tracee, term)) return es_atom.ok;
        int row = normal ? ES_EV_EXIT : ES_EV_CRASH;
        if (!(mask & es_vocab[row].category))
            return es_atom.ok; /* crashes: at every level but :off */
        in.type = t->k[row];
        if (es_vocab[row].critical) in.flags |= ES_F_CRITICAL;
        pl = payload_begin(step < STEP_METADATA ? step : STEP_TRUNCATE);
        if (!etf_map_term(env, pl.b, es_atom.reason, term)) return es_atom.ok;
    } else if (tag == A.link || tag == A.unlink || tag == A.register_ || tag == A.unregister) {
        if (!keep(t, step, &in)) return es_atom.ok;
        bool links = tag == A.link || tag == A.unlink;
        in.type = tag == A.link        ? t->k[ES_EV_LINK]
                  : tag == A.unlink    ? t->k[ES_EV_UNLINK]
                  : tag == A.register_ ? t->k[ES_EV_REGISTER]
                                       : t->k[ES_EV_UNREGISTER];
        pl = payload_begin(step);
        if (links && (in.peer = es_codec_pid_key(env, s, term, true))) {
            in.flags |= ES_F_PEER;
            uint32_t ids[2] = {pid->id, in.peer->id};
            in.pair = es_intern_get(&es_store_tables(s)->pair, ids, sizeof ids, true, 0);
        } else if (pl.fields && !etf_map_term(env, pl.b, links ? A.other : es_atom.name, term)) {
            return es_atom.ok;
        }
    } else {
        return es_atom.ok;
    }
    payload_end(t, &pl, step, &in);
    append(t, &in, NULL);
    return es_atom.ok;
}
