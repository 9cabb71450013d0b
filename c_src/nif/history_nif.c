/*
 * history_nif.c — the NIFs of history.c and call_tree.c: processes alive at a moment,
 * snapshots with names, states, links and parents, one process's links, call trees and
 * state transitions. The lifecycle types come from the vocabulary's roles (vocab.h); results
 * are built from the few events each answer names, decoding only the fields it shows.
 *
 * All run on dirty CPU schedulers. Thread-safety: as history.c and call_tree.c.
 */
#include "codec.h"
#include "etf.h"
#include "cause.h"
#include "call_tree.h"
#include "history.h"
#include "nif.h"

#include <limits.h>
#include <string.h>

static void life_keys(es_store *s, es_life_keys *k) {
    memset(k, 0, sizeof *k);
    es_vocab_role_keys(s, ES_LC_BORN, &k->born);
    es_vocab_role_keys(s, ES_LC_DIED, &k->died);
    es_vocab_role_keys(s, ES_LC_LINK, &k->link);
    es_vocab_role_keys(s, ES_LC_UNLINK, &k->unlink);
    es_vocab_role_keys(s, ES_LC_NAMED, &k->named);
    es_vocab_role_keys(s, ES_LC_UNNAMED, &k->unnamed);
    k->nborn_v = es_vocab_role_variants(s, ES_LC_BORN, k->born_v, ES_ROLE_VARIANTS);
    k->ndied_v = es_vocab_role_variants(s, ES_LC_DIED, k->died_v, ES_ROLE_VARIANTS);
    k->state = es_vocab_key(s, ES_EV_STATE, false);
    k->name_field = (uint64_t)es_atom.name;
}

static ERL_NIF_TERM oom(ErlNifEnv *env) {
    return es_raise_arg(env, "out of memory running the query");
}

/* A timestamp argument: an integer, or nil for "now and ever since". */
static bool get_ts(ErlNifEnv *env, ERL_NIF_TERM t, int64_t *ts) {
    ErlNifSInt64 v;
    if (t == es_atom.nil) {
        *ts = INT64_MAX;
        return true;
    }
    if (!enif_get_int64(env, t, &v)) return false;
    *ts = v;
    return true;
}

/* One payload field of a live event, decoded; 0 when it has none. */
static ERL_NIF_TERM field_of(ErlNifEnv *env, es_store *s, uint64_t id, ERL_NIF_TERM field) {
    ERL_NIF_TERM map, v;
    if (!id || !es_codec_fields(env, s, id, &field, 1, 0, &map)) return 0;
    return enif_get_map_value(env, map, field, &v) ? v : 0;
}

static int cmp_terms(const void *a, const void *b) {
    return enif_compare(*(const ERL_NIF_TERM *)a, *(const ERL_NIF_TERM *)b);
}

static ERL_NIF_TERM pid_list(ErlNifEnv *env, es_store *s, const uint32_t *ids, size_t n) {
    ERL_NIF_TERM stack[64], *pids = n <= 64 ? stack : enif_alloc(n * sizeof *pids);
    if (!pids) return enif_make_list(env, 0);
    for (size_t i = 0; i < n; i++) pids[i] = es_codec_pid_term(env, s, ids[i]);
    qsort(pids, n, sizeof *pids, cmp_terms); /* pid order, as Enum.sort/1 gives */
    ERL_NIF_TERM list = enif_make_list_from_array(env, pids, (unsigned)n);
    if (pids != stack) enif_free(pids);
    return list;
}

/* live_pids(store, ts): pids with a born event and no died event at or before ts. */
ERL_NIF_TERM es_nif_live_pids(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    int64_t ts;
    if (!get_ts(env, argv[1], &ts)) return es_raise_arg(env, "timestamp must be an integer");
    es_life_keys k;
    life_keys(s, &k);
    uint32_t *ids;
    size_t n;
    if (es_history_live(s, &k, ts, &ids, &n) != ES_Q_OK) return oom(env);
    ERL_NIF_TERM list = pid_list(env, s, ids, n);
    es_history_free(ids);
    return list;
}

/* links(store, pid, ts | nil): the pid's recorded links then, in pid order. */
ERL_NIF_TERM es_nif_links(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    int64_t ts;
    if (!enif_is_pid(env, argv[1])) return es_raise_arg(env, "expected a pid");
    if (!get_ts(env, argv[2], &ts)) return es_raise_arg(env, "timestamp must be an integer or nil");
    es_key *pid = es_codec_pid_key(env, s, argv[1], false);
    if (!pid) return enif_make_list(env, 0);
    es_life_keys k;
    life_keys(s, &k);
    uint32_t *ids;
    size_t n;
    if (es_history_links(s, &k, pid, ts, &ids, &n) != ES_Q_OK) return oom(env);
    ERL_NIF_TERM list = pid_list(env, s, ids, n);
    es_history_free(ids);
    return list;
}

typedef struct snap_row {
    ERL_NIF_TERM pid;
    const es_snap_entry *e;
} snap_row;

static int cmp_rows(const void *a, const void *b) {
    return enif_compare(((const snap_row *)a)->pid, ((const snap_row *)b)->pid);
}

/* snapshot(store, ts, %{after: pid, limit: n}): the processes alive at ts in pid order,
 * from the first after `after`, at most `limit` of them: %{pid, name, state, links,
 * parent, exited}. The parent is the :parent of the process's last born event, in the
 * vocabulary's order of born types (a spawn before a process found running); `exited`
 * whether an exit of it is recorded at all (after ts too). */
ERL_NIF_TERM es_nif_snapshot(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    int64_t ts;
    ERL_NIF_TERM after = 0, v;
    unsigned long limit = ULONG_MAX;
    if (!get_ts(env, argv[1], &ts)) return es_raise_arg(env, "timestamp must be an integer");
    if (!enif_is_map(env, argv[2])) return es_raise_arg(env, "snapshot options must be a map");
    if (enif_get_map_value(env, argv[2], es_atom.after, &v)) {
        if (!enif_is_pid(env, v)) return es_raise_arg(env, "after: must be a pid");
        after = v;
    }
    if (enif_get_map_value(env, argv[2], es_atom.limit, &v) && !enif_get_ulong(env, v, &limit))
        return es_raise_arg(env, "limit: must be a non-negative integer");
    es_life_keys k;
    life_keys(s, &k);
    es_snapshot snap;
    if (es_history_snapshot(s, &k, ts, &snap) != ES_Q_OK) return oom(env);
    snap_row *rows = enif_alloc((snap.n ? snap.n : 1) * sizeof *rows);
    if (!rows) {
        es_snapshot_free(&snap);
        return oom(env);
    }
    for (size_t i = 0; i < snap.n; i++)
        rows[i] = (snap_row){es_codec_pid_term(env, s, snap.v[i].pid), &snap.v[i]};
    qsort(rows, snap.n, sizeof *rows, cmp_rows);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    size_t first = 0, last;
    while (after && first < snap.n && enif_compare(rows[first].pid, after) <= 0) first++;
    last = snap.n - first > limit ? first + limit : snap.n;
    for (size_t i = last; i-- > first;) {
        const es_snap_entry *e = rows[i].e;
        ERL_NIF_TERM name = es_atom.nil, state = es_atom.nil, parent = es_atom.nil;
        es_event_view nv;
        if (e->name_id && es_store_peek(s, e->name_id, &nv)) {
            bool unnamed = false;
            for (uint32_t u = 0; u < k.unnamed.n; u++) unnamed |= nv.type_id == k.unnamed.v[u]->id;
            ERL_NIF_TERM got = unnamed ? 0 : field_of(env, s, e->name_id, es_atom.name);
            if (got) name = got;
        }
        ERL_NIF_TERM got = field_of(env, s, e->state_id, es_atom.state);
        if (got) state = got;
        for (int b = 0; b < ES_BORN_TYPES && parent == es_atom.nil; b++) {
            got = field_of(env, s, e->born_ids[b], es_atom.parent);
            if (got && enif_is_pid(env, got)) parent = got;
        }
        ERL_NIF_TERM keys[] = {es_atom.pid,   es_atom.name,   es_atom.state,
                               es_atom.links, es_atom.parent, es_atom.exited};
        ERL_NIF_TERM vals[] = {rows[i].pid, name,
                               state,       pid_list(env, s, e->links, e->nlinks),
                               parent,      e->exited ? es_atom.true_ : es_atom.false_};
        ERL_NIF_TERM map;
        enif_make_map_from_arrays(env, keys, vals, 6, &map);
        list = enif_make_list_cell(env, map, list);
    }
    enif_free(rows);
    es_snapshot_free(&snap);
    return list;
}

/* ---- call trees ------------------------------------------------------------------- */

/* A node's map keys. Maps are made from keys in term order (sorted once per tree), so
 * that making each one only checks the order instead of sorting. */
enum {
    NK_CALL_ID,
    NK_PID,
    NK_MODULE,
    NK_FUNCTION,
    NK_ARITY,
    NK_ARGS,
    NK_TIMESTAMP,
    NK_CHILDREN,
    NK_DURATION,
    NK_RESULT,
    NK_CLASS,
    NK_REASON,
    NK_KEYS
};

typedef struct tree_terms {
    ErlNifEnv *env;
    es_store *s;
    const es_call_tree *t;
    es_key *exc;
    ERL_NIF_TERM key[NK_KEYS];
    unsigned order[NK_KEYS]; /* NK_* in their keys' term order */
    uint32_t actor, mf;      /* the last pid and {module, function} made, and their terms */
    ERL_NIF_TERM pid, module, function;
} tree_terms;

static void tree_terms_init(tree_terms *tt, ErlNifEnv *env, es_store *s, const es_call_tree *t) {
    *tt = (tree_terms){.env = env, .s = s, .t = t, .exc = es_vocab_key(s, ES_EV_EXCEPTION, false)};
    const ERL_NIF_TERM key[NK_KEYS] = {
        [NK_CALL_ID] = es_atom.call_id,     [NK_PID] = es_atom.pid,
        [NK_MODULE] = es_atom.module,       [NK_FUNCTION] = es_atom.function,
        [NK_ARITY] = es_atom.arity,         [NK_ARGS] = es_atom.args,
        [NK_TIMESTAMP] = es_atom.timestamp, [NK_CHILDREN] = es_atom.children,
        [NK_DURATION] = es_atom.duration,   [NK_RESULT] = es_atom.result,
        [NK_CLASS] = es_atom.class_,        [NK_REASON] = es_atom.reason};
    memcpy(tt->key, key, sizeof key);
    for (unsigned i = 0; i < NK_KEYS; i++) { /* insertion sort: twelve keys */
        unsigned j = i, slot = i;
        for (; j > 0 && enif_compare(key[slot], key[tt->order[j - 1]]) < 0; j--)
            tt->order[j] = tt->order[j - 1];
        tt->order[j] = slot;
    }
}

/* A field's value from the tree's payload copies: nil when absent, 0 when malformed. */
static ERL_NIF_TERM span_term(tree_terms *tt, es_call_span f) {
    ERL_NIF_TERM v;
    if (!f.len) return es_atom.nil;
    const uint8_t *p = tt->t->bytes + f.off;
    return etf_decode_value(tt->env, p, f.len, &v) ? v : 0;
}

/* The call's fields: from the slot and the payload copy read by the walk, or, for an
 * event whose slot does not hold its pid, module, function and arity (stored by hand),
 * from the store as es_codec_values() reads any event. False when it is gone. */
static bool call_fields(tree_terms *tt, const es_call_event *e, ERL_NIF_TERM *vals) {
    enum { WANT = ES_F_ACTOR | ES_F_MODULE | ES_F_FUNCTION | ES_F_ARITY };
    bool made = tt->module && e->mf == tt->mf; /* its module and function terms */
    es_key *mf = made ? NULL : es_intern_by_id(&es_store_tables(tt->s)->mf, e->mf);
    if ((e->flags & (WANT | ES_F_ACTOR_FROM | ES_F_PEER)) != WANT || (!made && !mf)) {
        ERL_NIF_TERM fields[] = {es_atom.pid,   es_atom.module, es_atom.function,
                                 es_atom.arity, es_atom.args,   es_atom.timestamp};
        unsigned slot[] = {NK_PID, NK_MODULE, NK_FUNCTION, NK_ARITY, NK_ARGS, NK_TIMESTAMP};
        ERL_NIF_TERM got[6];
        if (!es_codec_values(tt->env, tt->s, e->id, fields, 6, got, NULL)) return false;
        for (int i = 0; i < 6; i++) vals[slot[i]] = got[i] ? got[i] : es_atom.nil;
        return true;
    }
    if (e->actor != tt->actor || !tt->pid) {
        tt->actor = e->actor;
        tt->pid = es_codec_pid_term(tt->env, tt->s, e->actor);
    }
    if (mf) {
        ERL_NIF_TERM words[2];
        memcpy(words, es_key_bytes(mf), sizeof words);
        tt->mf = e->mf, tt->module = words[0], tt->function = words[1];
    }
    vals[NK_PID] = tt->pid;
    vals[NK_MODULE] = tt->module;
    vals[NK_FUNCTION] = tt->function;
    vals[NK_ARITY] = enif_make_uint(tt->env, e->arity);
    vals[NK_TIMESTAMP] = enif_make_int64(tt->env, e->ts);
    return (vals[NK_ARGS] = span_term(tt, e->field[ES_CALL_ARGS])) != 0;
}

/* The outcome: of the end event when there is one (an exception's class and reason
 * only when recorded), else :running; false when an end field is malformed. */
static bool outcome(tree_terms *tt, const es_call_node *n, ERL_NIF_TERM *vals) {
    if (n->end == UINT32_MAX) return false;
    const es_call_event *e = &tt->t->events[n->end];
    vals[NK_DURATION] = span_term(tt, e->field[ES_END_DURATION]);
    if (tt->exc && e->type_id == tt->exc->id) {
        vals[NK_RESULT] = es_atom.exception_kind;
        if (e->field[ES_END_CLASS].len) vals[NK_CLASS] = span_term(tt, e->field[ES_END_CLASS]);
        if (e->field[ES_END_REASON].len) vals[NK_REASON] = span_term(tt, e->field[ES_END_REASON]);
        return vals[NK_DURATION] && (vals[NK_CLASS] || !e->field[ES_END_CLASS].len) &&
               (vals[NK_REASON] || !e->field[ES_END_REASON].len);
    }
    vals[NK_RESULT] = span_term(tt, e->field[ES_END_RESULT]);
    return vals[NK_DURATION] && vals[NK_RESULT];
}

/* A node's map: the call's fields and its outcome, with its children (a list); 0 when
 * its call is gone. */
static ERL_NIF_TERM node_map(tree_terms *tt, const es_call_node *n, ERL_NIF_TERM children) {
    ERL_NIF_TERM vals[NK_KEYS] = {0};
    if (!call_fields(tt, &tt->t->events[n->call], vals)) return 0;
    vals[NK_CALL_ID] = enif_make_uint64(tt->env, n->call_id);
    vals[NK_CHILDREN] = children;
    if (!outcome(tt, n, vals)) {
        vals[NK_RESULT] = es_atom.running;
        vals[NK_DURATION] = es_atom.nil;
        vals[NK_CLASS] = vals[NK_REASON] = 0;
    }
    ERL_NIF_TERM keys[NK_KEYS], in_order[NK_KEYS], map;
    unsigned k = 0;
    for (unsigned i = 0; i < NK_KEYS; i++)
        if (vals[tt->order[i]]) keys[k] = tt->key[tt->order[i]], in_order[k++] = vals[tt->order[i]];
    enif_make_map_from_arrays(tt->env, keys, in_order, k, &map);
    return map;
}

/* call_tree(store, pid, %{after_id:, timestamp_start:, timestamp_end:}): the pid's
 * top-level calls in order, each a node with its :children. Built bottom-up: a node's
 * children have later indexes, so walking the nodes backwards finds every child list
 * complete when its parent is made. Linear in the calls; the store is not read again
' * (call_tree.h), the nodes' fields are decoded from the walk's payload copies. */
ERL_NIF_TERM es_nif_call_tree(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_pid(env, argv[1])) return es_raise_arg(env, "expected a pid");
    es_key *pid = es_codec_pid_key(env, s, argv[1], false);
    if (!pid) return enif_make_list(env, 0);
    es_spec spec;
    const char *err = es_spec_parse(env, s, argv[2], &spec);
    if (err) {
        es_spec_free(&spec);
        return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    }
    es_filter f = spec.f;
    es_spec_free(&spec);
    f.actors.n = 0;
    es_keyset_add(&f.actors, pid);
    es_call_keys k = {.call = es_vocab_key(s, ES_EV_CALL, false),
                      .ret = es_vocab_key(s, ES_EV_RETURN, false),
                      .exc = es_vocab_key(s, ES_EV_EXCEPTION, false),
                      .call_id_field = (uint64_t)es_atom.call_id,
                      .call_fields = {[ES_CALL_ARGS] = (uint64_t)es_atom.args},
                      .end_fields = {[ES_END_RESULT] = (uint64_t)es_atom.result,
                                     [ES_END_DURATION] = (uint64_t)es_atom.duration,
                                     [ES_END_CLASS] = (uint64_t)es_atom.class_,
                                     [ES_END_REASON] = (uint64_t)es_atom.reason}};
    es_call_tree t;
    if (es_history_call_tree(s, &f, &k, &t) != ES_Q_OK) return oom(env);
    size_t n = t.n;
    ERL_NIF_TERM *kids = enif_alloc((n + 1) * sizeof *kids); /* kids[n]: the roots */
    if (!kids) {
        es_call_tree_free(&t);
        return oom(env);
    }
    tree_terms tt;
    tree_terms_init(&tt, env, s, &t);
    for (size_t i = 0; i <= n; i++) kids[i] = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;) {
        ERL_NIF_TERM node = node_map(&tt, &t.nodes[i], kids[i]);
        if (!node) continue; /* its call was pruned meanwhile */
        size_t parent = t.nodes[i].parent < 0 ? n : (size_t)t.nodes[i].parent;
        kids[parent] = enif_make_list_cell(env, node, kids[parent]);
    }
    ERL_NIF_TERM roots = kids[n];
    enif_free(kids);
    es_call_tree_free(&t);
    return roots;
}

/* state_change(store, pid, before, after): {before_id, after_id}, or nil. */
ERL_NIF_TERM es_nif_state_change(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_pid(env, argv[1])) return es_raise_arg(env, "expected a pid");
    es_key *pid = es_codec_pid_key(env, s, argv[1], false);
    es_key *state = es_vocab_key(s, ES_EV_STATE, false);
    if (!pid || !state || !es_vocab_hashed_atom[ES_EV_STATE]) return es_atom.nil;
    etf_buf before = {0}, after = {0};
    if (!etf_field_term(env, &before, argv[2]) || !etf_field_term(env, &after, argv[3])) {
        etf_free(&before);
        etf_free(&after);
        return es_raise_arg(env, "the states could not be encoded");
    }
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.actors, pid);
    es_keyset_add(&f.types, state);
    uint64_t b, a;
    enum es_query_status st =
        es_history_state_change(s, &f, (uint64_t)es_vocab_hashed_atom[ES_EV_STATE], before.data,
                                before.len, after.data, after.len, &b, &a);
    etf_free(&before);
    etf_free(&after);
    if (st != ES_Q_OK) return oom(env);
    if (!b || !a) return es_atom.nil;
    return enif_make_tuple2(env, enif_make_uint64(env, b), enif_make_uint64(env, a));
}

/* request_timeline(store, pid, window, page): the events of the window spec's bounds
 * that concern pid and what its gen calls caused in the processes it called (cause.h),
 * those of the page spec (types, positions, order, limit), tagged as its :struct. */
ERL_NIF_TERM es_nif_request_timeline(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_pid(env, argv[1])) return es_raise_arg(env, "expected a pid");
    ERL_NIF_TERM tag = es_spec_struct(env, argv[3]);
    es_key *pid = es_codec_pid_key(env, s, argv[1], false);
    if (!pid) return enif_make_list(env, 0);
    es_spec window, page;
    const char *err = es_spec_parse(env, s, argv[2], &window);
    if (err) {
        es_spec_free(&window);
        return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    }
    if ((err = es_spec_parse(env, s, argv[3], &page))) {
        es_spec_free(&window);
        es_spec_free(&page);
        return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    }
    etf_buf pid_term = {0};
    bool encoded = etf_field_term(env, &pid_term, argv[1]);
    es_cause_keys k = {.receive = es_vocab_key(s, ES_EV_RECEIVE, false),
                       .send = es_vocab_key(s, ES_EV_SEND, false),
                       .call = es_vocab_key(s, ES_EV_CALL, false),
                       .ret = es_vocab_key(s, ES_EV_RETURN, false),
                       .exc = es_vocab_key(s, ES_EV_EXCEPTION, false),
                       .state = es_vocab_key(s, ES_EV_STATE, false),
                       .exit = es_vocab_key(s, ES_EV_EXIT, false),
                       .crash = es_vocab_key(s, ES_EV_CRASH, false),
                       .message = (uint64_t)es_atom.message,
                       .args = (uint64_t)es_atom.args,
                       .callback = (uint64_t)enif_make_atom(env, "callback"),
                       .cause = (uint64_t)enif_make_atom(env, "cause"),
                       .call_id = (uint64_t)es_atom.call_id,
                       .gen_call = (uint64_t)enif_make_atom(env, "$gen_call"),
                       .gen_cast = (uint64_t)enif_make_atom(env, "$gen_cast"),
                       .alias = (uint64_t)enif_make_atom(env, "alias"),
                       .callbacks = {(uint64_t)enif_make_atom(env, "handle_call"),
                                     (uint64_t)enif_make_atom(env, "handle_cast"),
                                     (uint64_t)enif_make_atom(env, "handle_info"),
                                     (uint64_t)enif_make_atom(env, "handle_continue")}};
    es_hits h;
    enum es_query_status st =
        encoded ? es_cause_of(s, &window.f, &page.f, pid, pid_term.data, pid_term.len, &k, &h)
                : ES_Q_NO_MEMORY;
    etf_free(&pid_term);
    es_spec_free(&window);
    es_spec_free(&page);
    if (st != ES_Q_OK) return oom(env);
    ERL_NIF_TERM list = enif_make_list(env, 0), ev;
    for (size_t i = h.n; i-- > 0;)
        if (es_codec_event(env, s, h.v[i].id, tag, &ev)) list = enif_make_list_cell(env, ev, list);
    es_hits_free(&h);
    return list;
}
