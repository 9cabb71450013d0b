/*
 * query_nif.c — the listing NIFs of the query engine: a spec's events (whole, some of
 * their fields, or ids) with the position to continue from, or their count; state
 * timelines with their diffs, and the counts of what those diffs change. The spec is
 * parsed by spec_nif.c.
 *
 * Scheduling: a query first runs on the calling (normal) scheduler with a budget of
 * visited events and of results to build; past it, it is rerun on a dirty CPU
 * scheduler. Counts of changes run dirty.
 *
 * Thread-safety: any number at once, concurrently with appends.
 */
#include "codec.h"
#include "diff.h"
#include "etf.h"
#include "nif.h"

#include <string.h>

#define NORMAL_VISITS 4000     /* events a query may visit on a normal scheduler */
#define NORMAL_RESULTS 400     /* events it may build there */
#define NORMAL_DIFF_TERMS 5000 /* terms timeline diffs may visit there */
#define MAX_FIELDS 64          /* fields a projection may name */
#define PREFETCH_SLOTS 8       /* a listing asks for the slot of the event this far ahead */
#define PREFETCH_PAYLOADS 4    /* and for the payload of the one this far ahead */

/* ---- listing ----------------------------------------------------------------------- */

typedef struct listing {
    enum { SEL_EVENTS, SEL_IDS, SEL_FIELDS, SEL_COUNT } select;
    ERL_NIF_TERM fields[MAX_FIELDS];
    unsigned nfields;
    ERL_NIF_TERM tag; /* struct to tag events with, 0: none */
    bool diff_states; /* :state events get :diff */
    bool page;        /* the position after the last item when more follow (else nil) */
} listing;

static const char *parse_listing(ErlNifEnv *env, ERL_NIF_TERM map, listing *l) {
    l->select = SEL_EVENTS, l->nfields = 0, l->tag = 0, l->diff_states = false;
    ERL_NIF_TERM v;
    l->page = enif_get_map_value(env, map, es_atom.page, &v) && v == es_atom.true_;
    if (enif_get_map_value(env, map, es_atom.select, &v)) {
        if (v == es_atom.events)
            l->select = SEL_EVENTS;
        else if (v == es_atom.ids)
            l->select = SEL_IDS;
        else if (v == es_atom.count)
            l->select = SEL_COUNT;
        else {
            ERL_NIF_TERM head, list = v;
            l->select = SEL_FIELDS;
            while (enif_get_list_cell(env, list, &head, &list)) {
                if (!enif_is_atom(env, head) || l->nfields == MAX_FIELDS)
                    return "select: must be :events, :ids, :count or a list of at most 64 "
                           "field names";
                l->fields[l->nfields++] = head;
            }
            if (!enif_is_empty_list(env, list))
                return "select: must be :events, :ids, :count or a list of field names";
        }
    }
    if (enif_get_map_value(env, map, es_atom.struct_key, &v)) {
        if (!enif_is_atom(env, v)) return "struct: must be a module";
        if (v != es_atom.nil) l->tag = v;
    }
    if (enif_get_map_value(env, map, es_atom.diff, &v)) {
        if (v != es_atom.state) return "diff: must be :state";
        l->diff_states = true;
    }
    return NULL;
}

/* The state recorded just before `pos` by the actor of a state timeline, so the oldest
 * listed state's diff is right even when the listing starts later. */
static ERL_NIF_TERM state_before(ErlNifEnv *env, es_store *s, const es_filter *f, es_pos pos) {
    es_key *state = es_vocab_key(s, ES_EV_STATE, false);
    if (!state) return 0;
    es_filter before;
    es_filter_init(&before);
    before.actors = f->actors;
    es_keyset_add(&before.types, state);
    before.has_before = true;
    before.before = pos;
    before.limit = 1;
    before.descending = true;
    es_hits ph = {0};
    ERL_NIF_TERM ev, value = 0;
    if (es_query(s, &before, &ph) == ES_Q_OK && ph.n == 1 &&
        es_codec_event(env, s, ph.v[0].id, 0, &ev) &&
        !enif_get_map_value(env, ev, es_atom.state, &value))
        value = 0;
    es_hits_free(&ph);
    return value;
}

/* Adds :diff to the :state events of evs[0..n) (in listing order), each against the
 * state before it, oldest first. False when the diffs need more than `budget`. */
static bool add_diffs(ErlNifEnv *env, ERL_NIF_TERM *evs, size_t n, ERL_NIF_TERM prev,
                      bool descending, unsigned long *budget) {
    ERL_NIF_TERM diff_key = enif_make_atom(env, "diff"), type;
    ERL_NIF_TERM state_type = es_vocab_atom[ES_EV_STATE];
    for (size_t j = 0; j < n; j++) {
        size_t i = descending ? n - 1 - j : j;
        ERL_NIF_TERM state, d = es_atom.nil;
        if (!enif_get_map_value(env, evs[i], es_atom.type, &type) || type != state_type ||
            !enif_get_map_value(env, evs[i], es_atom.state, &state))
            continue;
        if (prev && !es_diff(env, prev, state, budget, &d)) return false;
        enif_make_map_put(env, evs[i], diff_key, d, &evs[i]);
        prev = state;
    }
    return true;
}

static ERL_NIF_TERM query_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

static ERL_NIF_TERM reschedule(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return enif_schedule_nif(env, "query", ERL_NIF_DIRTY_JOB_CPU_BOUND, query_dirty, argc, argv);
}

static ERL_NIF_TERM make_pos(ErlNifEnv *env, const es_hit *h) {
    return enif_make_tuple2(env, enif_make_int64(env, h->ts), enif_make_uint64(env, h->id));
}

/* query(store, spec): {items, next position | nil} (nil unless the spec has page: true),
 * or a count. */
static ERL_NIF_TERM run_query(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], bool dirty) {
    STORE_OR_RAISE(s, argv[0]);
    es_spec spec;
    listing l;
    const char *err = es_spec_parse(env, s, argv[1], &spec);
    const char *lerr = !err || !*err ? parse_listing(env, argv[1], &l) : NULL;
    if (lerr) err = lerr;
    if (err) {
        es_spec_free(&spec);
        if (*err) return es_raise_arg(env, err);
        return l.select == SEL_COUNT ? enif_make_uint(env, 0)
                                     : enif_make_tuple2(env, enif_make_list(env, 0), es_atom.nil);
    }
    es_filter *f = &spec.f;
    if (!dirty) f->max_visits = NORMAL_VISITS;
    if (l.select == SEL_COUNT) {
        uint64_t n = 0;
        enum es_query_status st = es_query_count(s, f, &n);
        es_spec_free(&spec);
        if (st == ES_Q_OVER_BUDGET) return reschedule(env, argc, argv);
        if (f->limit && n > f->limit) n = f->limit;
        return enif_make_uint64(env, n);
    }
    /* One more than asked for says whether a page's listing goes on. */
    uint64_t limit = f->limit;
    if (limit && l.page) f->limit = limit + 1;
    es_hits h = {0};
    enum es_query_status st = es_query(s, f, &h);
    bool more = limit && h.n > limit;
    if (more) h.n = limit;
    if (st == ES_Q_OK && !dirty && h.n > NORMAL_RESULTS && l.select != SEL_IDS)
        st = ES_Q_OVER_BUDGET;
    if (st != ES_Q_OK) {
        es_hits_free(&h);
        es_spec_free(&spec);
        if (st == ES_Q_OVER_BUDGET) return reschedule(env, argc, argv);
        return es_raise_arg(env, "out of memory running the query");
    }
    ERL_NIF_TERM *items = enif_alloc((h.n ? h.n : 1) * sizeof *items);
    if (!items) {
        es_hits_free(&h);
        es_spec_free(&spec);
        return es_raise_arg(env, "out of memory running the query");
    }
    size_t k = 0;
    for (size_t i = 0; i < h.n; i++) {
        bool ok = true;
        /* the events a few ahead are asked for now: their cache misses overlap */
        if (i + PREFETCH_SLOTS < h.n) es_store_prefetch(s, h.v[i + PREFETCH_SLOTS].id, false);
        if (i + PREFETCH_PAYLOADS < h.n && l.select != SEL_IDS)
            es_store_prefetch(s, h.v[i + PREFETCH_PAYLOADS].id, true);
        if (l.select == SEL_IDS)
            items[k] = enif_make_uint64(env, h.v[i].id);
        else if (l.select == SEL_FIELDS)
            ok = es_codec_fields(env, s, h.v[i].id, l.fields, l.nfields, l.tag, &items[k]);
        else
            ok = es_codec_event(env, s, h.v[i].id, l.tag, &items[k]);
        if (ok) k++; /* else pruned meanwhile */
    }
    ERL_NIF_TERM next = more && h.n ? make_pos(env, &h.v[h.n - 1]) : es_atom.nil;
    bool ok = true;
    if (l.diff_states && k) {
        es_pos oldest = f->descending ? (es_pos){h.v[h.n - 1].ts, h.v[h.n - 1].id}
                                      : (es_pos){h.v[0].ts, h.v[0].id};
        unsigned long budget = NORMAL_DIFF_TERMS;
        ok = add_diffs(env, items, k, state_before(env, s, f, oldest), f->descending,
                       dirty ? NULL : &budget);
    }
    ERL_NIF_TERM list = enif_make_list_from_array(env, items, (unsigned)k);
    enif_free(items);
    es_hits_free(&h);
    es_spec_free(&spec);
    if (!ok) {
        if (!dirty) return reschedule(env, argc, argv);
        return es_raise_arg(env, "out of memory running the query");
    }
    return enif_make_tuple2(env, list, next);
}

static ERL_NIF_TERM query_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return run_query(env, argc, argv, true);
}

ERL_NIF_TERM es_nif_query(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return run_query(env, argc, argv, false);
}

/* query_ids(store, selection): the ids a spec, a union of specs or an id list selects,
 * in (timestamp, id) order. Dirty: selections may be long. */
ERL_NIF_TERM es_nif_query_ids(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_hits h;
    ERL_NIF_TERM err;
    if (!es_select_events(env, s, argv[1], &h, &err)) return err;
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = h.n; i-- > 0;)
        list = enif_make_list_cell(env, enif_make_uint64(env, h.v[i].id), list);
    es_hits_free(&h);
    return list;
}

/* ---- state change statistics -------------------------------------------------------- */

/* Counts of terms, by equality: a small open-addressing table on enif_hash. */
typedef struct term_counts {
    ERL_NIF_TERM *keys;
    uint64_t *counts;
    uint32_t *hashes;
    size_t n, mask;
} term_counts;

static bool counts_add(term_counts *c, ERL_NIF_TERM key) {
    if ((c->n + 1) * 2 > c->mask) {
        size_t cap = c->mask ? (c->mask + 1) * 2 : 64;
        ERL_NIF_TERM *keys = enif_alloc(cap * sizeof *keys);
        uint64_t *counts = enif_alloc(cap * sizeof *counts);
        uint32_t *hashes = enif_alloc(cap * sizeof *hashes);
        if (!keys || !counts || !hashes) {
            enif_free(keys);
            enif_free(counts);
            enif_free(hashes);
            return false;
        }
        memset(counts, 0, cap * sizeof *counts);
        for (size_t i = 0; c->keys && i <= c->mask; i++) {
            if (!c->counts[i]) continue;
            size_t j = c->hashes[i] & (cap - 1);
            while (counts[j]) j = (j + 1) & (cap - 1);
            keys[j] = c->keys[i], counts[j] = c->counts[i], hashes[j] = c->hashes[i];
        }
        enif_free(c->keys);
        enif_free(c->counts);
        enif_free(c->hashes);
        c->keys = keys, c->counts = counts, c->hashes = hashes, c->mask = cap - 1;
    }
    uint32_t h = (uint32_t)enif_hash(ERL_NIF_PHASH2, key, 0);
    size_t i = h & c->mask;
    for (; c->counts[i]; i = (i + 1) & c->mask)
        if (c->hashes[i] == h && enif_compare(c->keys[i], key) == 0) {
            c->counts[i]++;
            return true;
        }
    c->keys[i] = key, c->counts[i] = 1, c->hashes[i] = h;
    c->n++;
    return true;
}

static ERL_NIF_TERM counts_list(ErlNifEnv *env, term_counts *c) {
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = 0; c->keys && i <= c->mask; i++)
        if (c->counts[i])
            list = enif_make_list_cell(
                env, enif_make_tuple2(env, c->keys[i], enif_make_uint64(env, c->counts[i])), list);
    enif_free(c->keys);
    enif_free(c->counts);
    enif_free(c->hashes);
    return list;
}

/* What kind of message caused a change: the atom a tuple starts with, or the atom
 * itself; nil for anything else. */
static ERL_NIF_TERM cause_kind(ErlNifEnv *env, ERL_NIF_TERM cause) {
    const ERL_NIF_TERM *el;
    int n;
    if (enif_is_atom(env, cause)) return cause;
    if (enif_get_tuple(env, cause, &n, &el) && n > 0 && enif_is_atom(env, el[0])) return el[0];
    return es_atom.nil;
}

/* state_stats(store, spec): over the :state events a spec selects (a process's, oldest
 * first, up to its limit), each diffed against the one before: %{states: n, changes: m,
 * fields: [{path, times changed}], causes: [{{callback, cause kind}, changes}]}, in no
 * particular order. Dirty. */
ERL_NIF_TERM es_nif_state_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_spec spec;
    const char *err = es_spec_parse(env, s, argv[1], &spec);
    es_hits h = {0};
    enum es_query_status st = ES_Q_OK;
    if (!err) st = es_query(s, &spec.f, &h);
    es_spec_free(&spec);
    if (err && *err) return es_raise_arg(env, err);
    if (st != ES_Q_OK) {
        es_hits_free(&h);
        return es_raise_arg(env, "out of memory running the query");
    }
    ERL_NIF_TERM callback = enif_make_atom(env, "callback"), cause = enif_make_atom(env, "cause");
    ERL_NIF_TERM fields[] = {es_atom.state, callback, cause};
    term_counts paths = {0}, causes = {0};
    ERL_NIF_TERM prev = 0, ev, v;
    uint64_t states = 0, changes = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < h.n; i++) {
        ERL_NIF_TERM state, d, item, rest;
        if (!es_codec_fields(env, s, h.v[i].id, fields, 3, 0, &ev) ||
            !enif_get_map_value(env, ev, es_atom.state, &state))
            continue;
        states++;
        if (prev && es_diff(env, prev, state, NULL, &d) && !enif_is_empty_list(env, d)) {
            changes++;
            for (rest = d; ok && enif_get_list_cell(env, rest, &item, &rest);) {
                const ERL_NIF_TERM *el;
                int n;
                if (enif_get_tuple(env, item, &n, &el) && n >= 1) ok = counts_add(&paths, el[0]);
            }
            ERL_NIF_TERM cb = enif_get_map_value(env, ev, callback, &v) ? v : es_atom.nil;
            ERL_NIF_TERM kind =
                enif_get_map_value(env, ev, cause, &v) ? cause_kind(env, v) : es_atom.nil;
            if (ok) ok = counts_add(&causes, enif_make_tuple2(env, cb, kind));
        }
        prev = state;
    }
    es_hits_free(&h);
    ERL_NIF_TERM plist = counts_list(env, &paths), clist = counts_list(env, &causes);
    if (!ok) return es_raise_arg(env, "out of memory counting the changes");
    ERL_NIF_TERM keys[] = {enif_make_atom(env, "states"), enif_make_atom(env, "changes"),
                           enif_make_atom(env, "fields"), enif_make_atom(env, "causes")};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, states), enif_make_uint64(env, changes), plist,
                           clist};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, 4, &map);
    return map;
}
