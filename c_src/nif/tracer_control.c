/*
 * tracer_control.c — the tracer's resource and atoms, and the NIFs that control a
 * tracer: create one over a store, set its level mask, governor step and sampling,
 * watch modules, functions and GenServers, and read its event counts. The callbacks are
 * tracer.c's. See tracer.h for the contract.
 */
#include "tracer.h"
#include "tracer_internal.h"

ErlNifResourceType *es_tracer_type;
tracer_atoms es_tracer_atoms;

static void tracer_dtor(ErlNifEnv *env, void *obj) {
    (void)env;
    es_tracer *t = ((tracer_ref *)obj)->t;
    if (!t) return;
    if (t->procs)
        for (uint32_t i = 0; i <= t->nkeys; i++) {
            proc_free(atomic_load_explicit(&t->procs[i], memory_order_relaxed));
        }
    size_t n = (size_t)t->nkeys + 1;
    es_vm_free((void *)t->procs, n * sizeof *t->procs);
    es_vm_free(t->gs, n * sizeof *t->gs);
    es_vm_free((void *)t->modules, n);
    es_vm_free((void *)t->functions, n);
    es_vm_free((void *)t->passing, n);
    es_vm_free((void *)t->senders, n);
    if (t->store_ref) enif_release_resource(t->store_ref);
    mi_free(t);
}

#define ATOM(f, name) A.f = enif_make_atom(env, name)

int es_tracer_load(ErlNifEnv *env) {
    ATOM(send, "send");
    ATOM(receive, "receive");
    ATOM(send_to_dead, "send_to_non_existing_process");
    ATOM(call, "call");
    ATOM(return_from, "return_from");
    ATOM(exception_from, "exception_from");
    ATOM(spawn, "spawn");
    ATOM(exit, "exit");
    ATOM(link, "link");
    ATOM(unlink, "unlink");
    ATOM(register_, "register");
    ATOM(unregister, "unregister");
    ATOM(trace_status, "trace_status");
    ATOM(trace, "trace");
    ATOM(discard, "discard");
    ATOM(remove, "remove");
    ATOM(extra, "extra");
    ATOM(normal, "normal");
    ATOM(shutdown, "shutdown");
    ATOM(reply, "reply");
    ATOM(noreply, "noreply");
    ATOM(stop, "stop");
    ATOM(handle_call, "handle_call");
    ATOM(handle_cast, "handle_cast");
    ATOM(handle_info, "handle_info");
    ATOM(handle_continue, "handle_continue");
    ATOM(mask, "mask");
    ATOM(step, "step");
    ATOM(truncate_bytes, "truncate_bytes");
    ATOM(step3_rate, "step3_rate");
    ATOM(stopped, "stopped");
    ATOM(genserver, "genserver");
    ATOM(initial, "initial");
    ATOM(max_frames, "max_frames");
    ATOM(owner, "owner");
    ATOM(match_spec_result, "match_spec_result");
    ATOM(returns, ES_TRACER_RETURNS);
    ATOM(frames_msg, "elixir_scope_frames");
    ATOM(frames_ok, "frames_ok");
    ATOM(exit_sink, "exit_sink");
    ATOM(exits_taken, "exits_taken");
    ATOM(exit_msg, "elixir_scope_exit");
    ATOM(redact, "redact");
    ATOM(callback, "callback");
    ATOM(cause, "cause");
    ATOM(to_name, "to_name");
    ATOM(to, "to");
    ATOM(initial_call, "initial_call");
    ATOM(other, "other");
    ATOM(gen_call, "$gen_call");
    ATOM(alias, "alias");
    es_tracer_type = enif_open_resource_type(env, NULL, "elixir_scope_tracer", tracer_dtor,
                                             ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return es_tracer_type ? 0 : 1;
}

/* ---- control --------------------------------------------------------------------- */

ERL_NIF_TERM es_tracer_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_ref *ref;
    es_store *s = es_get_store(env, argv[0], &ref);
    if (!s) return es_raise_arg(env, "not an ElixirScope store");
    unsigned mask;
    if (!enif_get_uint(env, argv[1], &mask) || mask > ES_CAT_ALL)
        return es_raise_arg(env, "tracer mask must be an integer in 0..31");
    tracer_ref *r = enif_alloc_resource(es_tracer_type, sizeof *r);
    if (!r) return es_raise_arg(env, "out of memory creating the tracer");
    es_tracer *t = r->t = mi_zalloc_aligned(sizeof *t, 64);
    ERL_NIF_TERM term = enif_make_resource(env, r);
    enif_release_resource(r);
    if (!t) return es_raise_arg(env, "out of memory creating the tracer");
    es_tables *tb = es_store_tables(s);
    t->nkeys = tb->pid.capacity > tb->mf.capacity ? tb->pid.capacity : tb->mf.capacity;
    size_t n = (size_t)t->nkeys + 1;
    t->procs = es_vm_zalloc(n * sizeof *t->procs);
    t->gs = es_vm_zalloc(n * sizeof *t->gs);
    t->modules = es_vm_zalloc(n);
    t->functions = es_vm_zalloc(n);
    t->passing = es_vm_zalloc(n);
    t->senders = es_vm_zalloc(n);
    if (!t->procs || !t->gs || !t->modules || !t->functions || !t->passing || !t->senders)
        return es_raise_arg(env, "out of memory creating the tracer");
    enif_keep_resource(ref);
    t->store_ref = ref;
    t->store = s;
    t->serial = es_store_serial(s);
    atomic_init(&t->mask, mask);
    atomic_init(&t->truncate_bytes, 256);
    atomic_init(&t->max_frames, ES_TRACER_MAX_FRAMES);
    atomic_init(&t->step3_threshold, es_sample_threshold(0.1));
    for (int i = 0; i < ES_EV_COUNT; i++)
        if (!(t->k[i] = es_vocab_key(s, i, true)))
            return es_raise_arg(env, "too many distinct event types");
    return term;
}

ERL_NIF_TERM es_tracer_set(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[0]);
    if (!t) return es_raise_arg(env, "not an ElixirScope tracer");
    unsigned u;
    double d;
    ErlNifPid owner;
    if (argv[1] == A.mask && enif_get_uint(env, argv[2], &u) && u <= ES_CAT_ALL)
        atomic_store(&t->mask, u);
    else if (argv[1] == A.step && enif_get_uint(env, argv[2], &u) && u <= STEP_CRITICAL_ONLY)
        atomic_store(&t->step, u);
    else if (argv[1] == A.truncate_bytes && enif_get_uint(env, argv[2], &u))
        atomic_store(&t->truncate_bytes, u);
    else if (argv[1] == A.step3_rate && enif_get_double(env, argv[2], &d) && d >= 0 && d <= 1)
        atomic_store(&t->step3_threshold, es_sample_threshold(d));
    else if (argv[1] == A.stopped && enif_is_atom(env, argv[2]))
        atomic_store(&t->stopped, argv[2] == es_atom.true_);
    else if (argv[1] == A.max_frames && enif_get_uint(env, argv[2], &u) && u >= 2)
        atomic_store(&t->max_frames, u);
    else if (argv[1] == A.owner && enif_get_local_pid(env, argv[2], &owner))
        atomic_store(&t->owner, (uint64_t)owner.pid);
    else if (argv[1] == A.exit_sink && enif_get_local_pid(env, argv[2], &owner))
        atomic_store(&t->exit_sink, (uint64_t)owner.pid);
    else if (argv[1] == A.exit_sink && argv[2] == es_atom.nil)
        atomic_store(&t->exit_sink, 0);
    else if (argv[1] == A.exits_taken && enif_get_uint(env, argv[2], &u)) {
        uint32_t n = atomic_load(&t->exits_in_flight);
        while (!atomic_compare_exchange_weak(&t->exits_in_flight, &n, n > u ? n - u : 0)) {
        }
    } else if (argv[1] == A.redact && atomic_load(&t->nviews) == 0) {
        es_patterns p;
        if (!es_patterns_get(env, argv[2], &p))
            return es_raise_arg(env, "redact: a list of at most 32 non-empty binaries of fewer "
                                     "than 64 bytes");
        t->redact = p;
    } else
        return es_raise_arg(env, "tracer setting must be mask 0..31, step 0..4, truncate_bytes, "
                                 "step3_rate 0.0..1.0, stopped, max_frames >= 2, owner, "
                                 "exit_sink (a pid or nil), exits_taken or redact (before any "
                                 "view)");
    return es_atom.ok;
}

ERL_NIF_TERM es_tracer_mask(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[0]);
    if (!t) return es_raise_arg(env, "not an ElixirScope tracer");
    return enif_make_uint(env, atomic_load(&t->mask));
}

/* Begins the payload of a :state event in b: the map, then the state. Its encoded bytes
 * are also what tells a changed state from the last one stored (their digest, which the
 * store keeps with the event: payload.h), so a state is encoded once. Returns that
 * digest (never 0), or 0 when the state cannot be encoded. */
uint64_t es_tracer_state_payload(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM state) {
    etf_reset(b);
    if (!etf_map_begin(b) || !etf_map_key(b, es_atom.state)) return 0;
    size_t at = b->len;
    if (!etf_field_term(env, b, state)) return 0;
    return es_pl_hash(b->data + at, b->len - at);
}

ERL_NIF_TERM es_tracer_view_state(ErlNifEnv *env, es_tracer *t, unsigned view, ERL_NIF_TERM state) {
    if (view == 0) return state;
    const gs_view *v = &t->views[view];
    for (unsigned i = 0; i < v->depth; i++)
        if (!enif_get_map_value(env, state, v->path[i], &state)) return 0;
    if (v->drop && enif_is_map(env, state)) enif_make_map_remove(env, state, v->drop, &state);
    return v->redact ? es_redact(env, state, &t->redact) : state;
}

ERL_NIF_TERM es_tracer_view_cause(ErlNifEnv *env, es_tracer *t, unsigned view, ERL_NIF_TERM cause) {
    return view && t->views[view].redact ? es_redact(env, cause, &t->redact) : cause;
}

/* The index of a view {path, drop, redact} (added when new), or -1 when it is not one or
 * the table is full. Called from the owner only. */
static int view_index(ErlNifEnv *env, es_tracer *t, ERL_NIF_TERM spec) {
    const ERL_NIF_TERM *el;
    int n;
    gs_view v;
    memset(&v, 0, sizeof v); /* compared whole, padding included */
    ERL_NIF_TERM head, list;
    if (!enif_get_tuple(env, spec, &n, &el) || n != 3 || !enif_is_atom(env, el[1]) ||
        !enif_is_atom(env, el[2]))
        return -1;
    for (list = el[0]; enif_get_list_cell(env, list, &head, &list);) {
        if (v.depth == VIEW_PATH || !enif_is_atom(env, head)) return -1;
        v.path[v.depth++] = head;
    }
    if (!enif_is_empty_list(env, list)) return -1;
    v.drop = el[1] == es_atom.nil ? 0 : el[1];
    v.redact = el[2] == es_atom.true_;
    unsigned count = atomic_load(&t->nviews);
    for (unsigned i = 1; i < count; i++)
        if (memcmp(&t->views[i], &v, sizeof v) == 0) return (int)i;
    if (count == 0) count = 1; /* view 0: as they are */
    if (count == VIEWS) return -1;
    t->views[count] = v;
    atomic_store(&t->nviews, count + 1); /* published before a watch names it */
    return (int)count;
}

ERL_NIF_TERM es_tracer_watch(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[0]);
    if (!t) return es_raise_arg(env, "not an ElixirScope tracer");
    const ERL_NIF_TERM *el;
    int n;
    if (!enif_get_tuple(env, argv[1], &n, &el) || n < 2)
        return es_raise_arg(env, "watch expects {:module, m, on}, {:function, m, f, on}, "
                                 "{:genserver, pid, module, state[, view]} or {:frames_ok, pid}");
    es_store *s = t->store;
    if (el[0] == es_atom.module && n == 3 && enif_is_atom(env, el[1])) {
        es_key *m = es_codec_atom_key(&es_store_tables(s)->module, el[1], true);
        if (!m) return es_raise_arg(env, "too many distinct modules to index (max_keys)");
        atomic_store(&t->modules[m->id], el[2] == es_atom.true_);
        return es_atom.ok;
    }
    if (el[0] == es_atom.function && n == 4 && enif_is_atom(env, el[1]) &&
        enif_is_atom(env, el[2])) {
        es_key *mf = es_codec_mf_key(s, el[1], el[2], true);
        if (!mf) return es_raise_arg(env, "too many distinct functions to index (max_keys)");
        atomic_store(&t->functions[mf->id], el[3] == es_atom.true_);
        return es_atom.ok;
    }
    if (el[0] == A.frames_ok && n == 2 && enif_is_pid(env, el[1])) {
        es_key *pid = es_codec_pid_key(env, s, el[1], true);
        if (!pid) return es_raise_arg(env, "too many distinct pids to index (max_keys)");
        atomic_store(&t->passing[pid->id], 1);
        return es_atom.ok;
    }
    if (el[0] == A.genserver && (n == 4 || n == 5) && enif_is_pid(env, el[1]) &&
        enif_is_atom(env, el[2])) {
        es_key *pid = es_codec_pid_key(env, s, el[1], true);
        if (!pid) return es_raise_arg(env, "too many distinct pids to index (max_keys)");
        gs_watch *w = &t->gs[pid->id];
        if (el[2] == es_atom.nil) { /* stop watching */
            atomic_store(&w->module, 0);
            return es_atom.ok;
        }
        int view = n == 5 ? view_index(env, t, el[4]) : 0;
        if (view < 0)
            return es_raise_arg(env, "a view is {[key, ...], drop_key | nil, redact?} with at "
                                     "most 4 keys, and at most 7 views");
        atomic_store(&w->view, (uint8_t)view);
        /* The state when watching starts: an :state event with callback :initial (none
         * while the level records no states, or while the state has not its view's
         * shape: a LiveView not mounted yet). */
        ERL_NIF_TERM state = es_tracer_view_state(env, t, (unsigned)view, el[3]);
        if (!(atomic_load(&t->mask) & es_vocab[ES_EV_STATE].category) || !state) {
            atomic_store(&w->last_state, 0);
            atomic_store(&w->module, (uint64_t)el[2]);
            return es_atom.ok;
        }
        etf_buf *b = &es_tracer_buf;
        uint64_t h = es_tracer_state_payload(env, b, state);
        es_key *mf = es_codec_mf_key(s, el[2], 0, true);
        if (!h || !mf || !etf_map_term(env, b, A.callback, A.initial))
            return es_raise_arg(env, "state could not be encoded");
        etf_map_end(b);
        es_event_in in = {.ts = ES_TS_NOW,
                          .type = t->k[ES_EV_STATE],
                          .actor = pid,
                          .mf = mf,
                          .module = es_intern_by_id(&es_store_tables(s)->module, mf->aux),
                          .flags = ES_F_ACTOR | ES_F_MODULE | ES_F_CRITICAL,
                          .payload = b->data,
                          .payload_len = (uint32_t)b->len,
                          .hash = h};
        es_store_append(s, &in);
        atomic_store(&w->last_state, h);
        atomic_store(&w->module, (uint64_t)el[2]);
        return es_atom.ok;
    }
    return es_raise_arg(env, "watch expects {:module, m, on}, {:function, m, f, on}, "
                             "{:genserver, pid, module, state[, view]} or {:frames_ok, pid}");
}

ERL_NIF_TERM es_tracer_counts(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[0]);
    if (!t) return es_raise_arg(env, "not an ElixirScope tracer");
    uint64_t events = 0, bytes = 0;
    for (int i = 0; i < SHARDS; i++) {
        events += atomic_exchange(&t->counts[i].events, 0);
        bytes += atomic_exchange(&t->counts[i].bytes, 0);
    }
    return enif_make_tuple2(env, enif_make_uint64(env, events), enif_make_uint64(env, bytes));
}

ERL_NIF_TERM es_tracer_discarded(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_tracer *t = get_tracer(env, argv[0]);
    if (!t) return es_raise_arg(env, "not an ElixirScope tracer");
    uint64_t discarded = 0;
    for (int i = 0; i < SHARDS; i++) discarded += atomic_load(&t->counts[i].discarded);
    return enif_make_uint64(env, discarded);
}
