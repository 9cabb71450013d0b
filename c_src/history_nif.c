/*
 * history_nif.c — the NIFs of history.c: processes alive at a moment, snapshots with
 * names, states, links and parents, one process's links, call trees and state
 * transitions. The lifecycle types come from the vocabulary's roles (vocab.h); results
 * are built from the few events each answer names, decoding only the fields it shows.
 *
 * All run on dirty CPU schedulers. Thread-safety: as history.c.
 */
#include "codec.h"
#include "etf.h"
#include "cause.h"
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

/* A node's map: the call's fields and its outcome, with its children (a list): one map
 * built from the values read out of the two events. */
static ERL_NIF_TERM node_map(ErlNifEnv *env, es_store *s, const es_call_node *n,
                             ERL_NIF_TERM children) {
    ERL_NIF_TERM call_fields[] = {es_atom.pid,   es_atom.module, es_atom.function,
                                  es_atom.arity, es_atom.args,   es_atom.timestamp};
    ERL_NIF_TERM keys[12], vals[12];
    if (!es_codec_values(env, s, n->call_id, call_fields, 6, vals + 1, NULL)) return 0;
    keys[0] = es_atom.call_id, vals[0] = enif_make_uint64(env, n->call_id);
    for (int i = 0; i < 6; i++) {
        keys[1 + i] = call_fields[i];
        if (!vals[1 + i]) vals[1 + i] = es_atom.nil;
    }
    size_t k = 7;
    keys[k] = es_atom.children, vals[k++] = children;
    ERL_NIF_TERM end_fields[] = {es_atom.result, es_atom.duration, es_atom.class_, es_atom.reason},
                 end[4];
    es_event_view ev;
    if (n->end_id && es_codec_values(env, s, n->end_id, end_fields, 4, end, &ev)) {
        es_key *exc = es_vocab_key(s, ES_EV_EXCEPTION, false);
        keys[k] = es_atom.duration, vals[k++] = end[1] ? end[1] : es_atom.nil;
        if (exc && ev.type_id == exc->id) {
            keys[k] = es_atom.result, vals[k++] = es_atom.exception_kind;
            if (end[2]) keys[k] = es_atom.class_, vals[k++] = end[2];
            if (end[3]) keys[k] = es_atom.reason, vals[k++] = end[3];
        } else {
            keys[k] = es_atom.result, vals[k++] = end[0] ? end[0] : es_atom.nil;
        }
    } else {
        keys[k] = es_atom.result, vals[k++] = es_atom.running;
        keys[k] = es_atom.duration, vals[k++] = es_atom.nil;
    }
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, k, &map);
    return map;
}

/* call_tree(store, pid, %{after_id:, timestamp_start:, timestamp_end:}): the pid's
 * top-level calls in order, each a node with its :children. Built bottom-up: a node's
 * children have later indexes, so walking the nodes backwards finds every child list
 * complete when its parent is made. Linear in the calls. */
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
    es_call_keys k = {es_vocab_key(s, ES_EV_CALL, false), es_vocab_key(s, ES_EV_RETURN, false),
                      es_vocab_key(s, ES_EV_EXCEPTION, false), (uint64_t)es_atom.call_id};
    es_call_node *nodes;
    size_t n;
    if (es_history_call_tree(s, &f, &k, &nodes, &n) != ES_Q_OK) return oom(env);
    ERL_NIF_TERM *kids = enif_alloc((n + 1) * sizeof *kids); /* kids[n]: the roots */
    if (!kids) {
        es_history_free(nodes);
        return oom(env);
    }
    for (size_t i = 0; i <= n; i++) kids[i] = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;) {
        /* the nodes a few ahead (below) are asked for now: their cache misses overlap */
        if (i >= 8) {
            es_store_prefetch(s, nodes[i - 8].call_id, false);
            es_store_prefetch(s, nodes[i - 8].end_id, false);
        }
        if (i >= 4) {
            es_store_prefetch(s, nodes[i - 4].call_id, true);
            es_store_prefetch(s, nodes[i - 4].end_id, true);
        }
        ERL_NIF_TERM node = node_map(env, s, &nodes[i], kids[i]);
        if (!node) continue; /* its call was pruned meanwhile */
        size_t parent = nodes[i].parent < 0 ? n : (size_t)nodes[i].parent;
        kids[parent] = enif_make_list_cell(env, node, kids[parent]);
    }
    ERL_NIF_TERM roots = kids[n];
    enif_free(kids);
    es_history_free(nodes);
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
