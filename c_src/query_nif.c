/*
 * query_nif.c — the query engine's NIFs: a query spec (the plain-data map that
 * ElixirScope.Query validates and normalizes) parsed into a filter (query.h) and
 * predicates (pred.h), then listed (events, chosen fields, ids, with the position to
 * continue from), counted, or aggregated (group.h). State timelines get their diffs
 * here too.
 *
 * Scheduling: a query first runs on the calling (normal) scheduler with a budget of
 * visited events and of results to build; past it, it is rerun on a dirty CPU
 * scheduler. Aggregations run dirty.
 *
 * Atoms: none is made from a spec; field names are atoms the caller already has.
 *
 * Thread-safety: any number at once, concurrently with appends.
 */
#include "codec.h"
#include "diff.h"
#include "etf.h"
#include "group.h"
#include "nif.h"

#include <string.h>

#define NORMAL_VISITS 4000     /* events a query may visit on a normal scheduler */
#define NORMAL_RESULTS 400     /* events it may build there */
#define NORMAL_DIFF_TERMS 5000 /* terms timeline diffs may visit there */
#define MAX_FIELDS 64          /* fields a projection may name */
#define MAX_UNION 64           /* specs a selection may unite */
#define PREFETCH_SLOTS 8       /* a listing asks for the slot of the event this far ahead */
#define PREFETCH_PAYLOADS 4    /* and for the payload of the one this far ahead */

/* ---- spec memory ------------------------------------------------------------------- */

typedef struct block {
    struct block *next;
    size_t used, cap;
    uint8_t data[];
} block;

static void *arena_alloc(es_spec *spec, size_t n) {
    n = (n + 7) & ~(size_t)7;
    block *b = spec->mem;
    if (!b || b->used + n > b->cap) {
        size_t cap = n > 4096 ? n : 4096;
        block *nb = enif_alloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        spec->mem = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void es_spec_free(es_spec *spec) {
    for (block *b = spec->mem, *next; b; b = next) {
        next = b->next;
        enif_free(b);
    }
    spec->mem = NULL;
}

/* ---- parsing ----------------------------------------------------------------------- */

typedef struct atoms {
    ERL_NIF_TERM type, pid, to_pid, between, module, function, timestamp_start, timestamp_end,
        after_id, before_id, after, before, where, limit, order, select, group_by, measure, diff,
        struct_, events, ids, count, eq, lt, le, gt, ge, range, prefix, state, field, nil;
} atoms;

static atoms A;
static bool atoms_made;

static void make_atoms(ErlNifEnv *env) {
    if (atoms_made) return;
#define ATOM(f, n) A.f = enif_make_atom(env, n)
    ATOM(type, "type");
    ATOM(pid, "pid");
    ATOM(to_pid, "to_pid");
    ATOM(between, "between");
    ATOM(module, "module");
    ATOM(function, "function");
    ATOM(timestamp_start, "timestamp_start");
    ATOM(timestamp_end, "timestamp_end");
    ATOM(after_id, "after_id");
    ATOM(before_id, "before_id");
    ATOM(after, "after");
    ATOM(before, "before");
    ATOM(where, "where");
    ATOM(limit, "limit");
    ATOM(order, "order");
    ATOM(select, "select");
    ATOM(group_by, "group_by");
    ATOM(measure, "measure");
    ATOM(diff, "diff");
    ATOM(struct_, "struct");
    ATOM(events, "events");
    ATOM(ids, "ids");
    ATOM(count, "count");
    ATOM(eq, "eq");
    ATOM(lt, "lt");
    ATOM(le, "le");
    ATOM(gt, "gt");
    ATOM(ge, "ge");
    ATOM(range, "range");
    ATOM(prefix, "prefix");
    ATOM(state, "state");
    ATOM(field, "field");
    ATOM(nil, "nil");
#undef ATOM
    atoms_made = true; /* the same atoms every time: a benign race */
}

typedef es_key *(*key_of_fn)(ErlNifEnv *env, es_store *s, ERL_NIF_TERM term);

static es_key *pid_key(ErlNifEnv *env, es_store *s, ERL_NIF_TERM t) {
    return enif_is_pid(env, t) ? es_codec_pid_key(env, s, t, false) : NULL;
}
static es_key *type_key(ErlNifEnv *env, es_store *s, ERL_NIF_TERM t) {
    return enif_is_atom(env, t) ? es_codec_atom_key(&es_store_tables(s)->type, t, false) : NULL;
}
static es_key *module_key(ErlNifEnv *env, es_store *s, ERL_NIF_TERM t) {
    return enif_is_atom(env, t) ? es_codec_atom_key(&es_store_tables(s)->module, t, false) : NULL;
}

/* A list of terms of one kind into a key set. Terms the store never saw are left out;
 * *none is set when the list names only such terms. */
static const char *parse_keys(ErlNifEnv *env, es_store *s, ERL_NIF_TERM list, bool pids,
                              key_of_fn key_of, es_keyset *set, bool *none, const char *err) {
    ERL_NIF_TERM head;
    unsigned n = 0;
    bool any = false;
    while (enif_get_list_cell(env, list, &head, &list)) {
        if (pids ? !enif_is_pid(env, head) : !enif_is_atom(env, head)) return err;
        if (++n > ES_KEYSET_MAX) return "a key list of the spec holds more than 64 entries";
        es_key *k = key_of(env, s, head);
        if (k) {
            es_keyset_add(set, k);
            any = true;
        }
    }
    if (!enif_is_empty_list(env, list)) return err;
    if (!any) *none = true;
    return NULL;
}

static bool get_pos(ErlNifEnv *env, ERL_NIF_TERM t, es_pos *pos) {
    const ERL_NIF_TERM *el;
    int n;
    ErlNifSInt64 ts;
    ErlNifUInt64 id;
    if (!enif_get_tuple(env, t, &n, &el) || n != 2 || !enif_get_int64(env, el[0], &ts) ||
        !enif_get_uint64(env, el[1], &id))
        return false;
    *pos = (es_pos){ts, id};
    return true;
}

static bool get_num(ErlNifEnv *env, ERL_NIF_TERM t, es_pl_num *n) {
    ErlNifSInt64 i;
    double d;
    if (enif_get_int64(env, t, &i)) {
        *n = (es_pl_num){false, i, 0};
        return true;
    }
    if (enif_get_double(env, t, &d)) {
        *n = (es_pl_num){true, 0, d};
        return true;
    }
    return false;
}

/* A field path: a list of element indexes. */
static bool get_path(ErlNifEnv *env, ERL_NIF_TERM list, uint32_t *path, uint8_t *depth) {
    ERL_NIF_TERM head;
    unsigned n = 0;
    *depth = 0;
    while (enif_get_list_cell(env, list, &head, &list)) {
        unsigned i;
        if (n == ES_PRED_PATH || !enif_get_uint(env, head, &i)) return false;
        path[n++] = i;
    }
    *depth = (uint8_t)n;
    return enif_is_empty_list(env, list);
}

/* {field, path, op, negate, arg} */
static const char *parse_pred(ErlNifEnv *env, es_spec *spec, ERL_NIF_TERM t, es_pred *p) {
    const ERL_NIF_TERM *el;
    int n;
    memset(p, 0, sizeof *p);
    if (!enif_get_tuple(env, t, &n, &el) || n != 5 || !enif_is_atom(env, el[0]))
        return "where: each condition must be {field, path, op, negate, argument}";
    if (!get_path(env, el[1], p->path, &p->depth))
        return "where: a field path must be a list of at most 4 element indexes";
    p->field = (uint64_t)el[0];
    p->negate = el[3] == es_atom.true_;
    if (el[2] == A.eq || el[2] == A.prefix) {
        p->op = el[2] == A.eq ? ES_OP_EQ : ES_OP_PREFIX;
        unsigned count = 1;
        if (p->op == ES_OP_EQ &&
            (!enif_get_list_length(env, el[4], &count) || count == 0 || count > 4096))
            return "where: an equality or membership needs a list of 1 to 4096 values";
        if (p->op == ES_OP_PREFIX && !enif_is_binary(env, el[4]))
            return "where: a prefix must be a binary";
        const uint8_t **vals = arena_alloc(spec, count * sizeof *vals);
        uint32_t *lens = arena_alloc(spec, count * sizeof *lens);
        if (!vals || !lens) return "out of memory parsing the spec";
        ERL_NIF_TERM list = el[4], v;
        for (unsigned i = 0; i < count; i++) {
            if (p->op == ES_OP_PREFIX) {
                ErlNifBinary bin;
                enif_inspect_binary(env, el[4], &bin);
                uint8_t *copy = arena_alloc(spec, bin.size ? bin.size : 1);
                if (!copy) return "out of memory parsing the spec";
                memcpy(copy, bin.data, bin.size);
                vals[i] = copy;
                lens[i] = (uint32_t)bin.size;
                break;
            }
            enif_get_list_cell(env, list, &v, &list);
            etf_buf b = {0};
            if (!etf_field_term(env, &b, v) || b.len > UINT32_MAX) {
                etf_free(&b);
                return "where: a value could not be encoded";
            }
            uint8_t *copy = arena_alloc(spec, b.len);
            if (!copy) {
                etf_free(&b);
                return "out of memory parsing the spec";
            }
            memcpy(copy, b.data, b.len);
            vals[i] = copy;
            lens[i] = (uint32_t)b.len;
            etf_free(&b);
        }
        p->vals = vals;
        p->lens = lens;
        p->nvals = count;
        return NULL;
    }
    if (el[2] == A.range) {
        const ERL_NIF_TERM *lh;
        int two;
        p->op = ES_OP_RANGE;
        if (!enif_get_tuple(env, el[4], &two, &lh) || two != 2 || !get_num(env, lh[0], &p->a) ||
            !get_num(env, lh[1], &p->b))
            return "where: a range needs two numbers within 64 bits";
        return NULL;
    }
    p->op = el[2] == A.lt   ? ES_OP_LT
            : el[2] == A.le ? ES_OP_LE
            : el[2] == A.gt ? ES_OP_GT
            : el[2] == A.ge ? ES_OP_GE
                            : 255;
    if (p->op == 255) return "where: unknown operator";
    if (!get_num(env, el[4], &p->a)) return "where: a comparison needs a number within 64 bits";
    return NULL;
}

const char *es_spec_parse(ErlNifEnv *env, es_store *s, ERL_NIF_TERM map, es_spec *spec) {
    make_atoms(env);
    memset(spec, 0, sizeof *spec);
    es_filter *f = &spec->f;
    es_filter_init(f);
    if (!enif_is_map(env, map)) return "a query spec must be a map";
    ERL_NIF_TERM v, modules = 0, functions = 0;
    bool none = false;
    const char *err = NULL;
    ErlNifSInt64 i64;
    ErlNifUInt64 u64;
    if (enif_get_map_value(env, map, A.type, &v))
        err = parse_keys(env, s, v, false, type_key, &f->types, &none,
                         "type: must be an atom or a list of atoms");
    if (!err && enif_get_map_value(env, map, A.pid, &v))
        err = parse_keys(env, s, v, true, pid_key, &f->actors, &none,
                         "pid: must be a pid or a list of pids");
    if (!err && enif_get_map_value(env, map, A.to_pid, &v))
        err = parse_keys(env, s, v, true, pid_key, &f->peers, &none,
                         "to_pid: must be a pid or a list of pids");
    if (!err && enif_get_map_value(env, map, A.between, &v)) {
        const ERL_NIF_TERM *two;
        int n;
        if (!enif_get_tuple(env, v, &n, &two) || n != 2 || !enif_is_pid(env, two[0]) ||
            !enif_is_pid(env, two[1]))
            err = "between: must be a {pid, pid} tuple";
        else if (f->actors.n || f->peers.n)
            err = "between: cannot be combined with pid: or to_pid:";
        else {
            es_key *a = pid_key(env, s, two[0]), *b = pid_key(env, s, two[1]);
            if (a && b) {
                es_keyset_add(&f->actors, a);
                es_keyset_add(&f->peers, b);
                f->both_directions = true;
            } else {
                none = true;
            }
        }
    }
    if (!err && enif_get_map_value(env, map, A.module, &modules))
        err = parse_keys(env, s, modules, false, module_key, &f->modules, &none,
                         "module: must be an atom or a list of atoms");
    if (!err && enif_get_map_value(env, map, A.function, &functions)) {
        ERL_NIF_TERM m, fn, ml, fl = functions;
        if (!modules) err = "function: needs module:";
        /* {module, function} keys: every module with every function. */
        while (!err && enif_get_list_cell(env, fl, &fn, &fl)) {
            if (!enif_is_atom(env, fn)) {
                err = "function: must be an atom or a list of atoms";
                break;
            }
            for (ml = modules; !err && enif_get_list_cell(env, ml, &m, &ml);) {
                es_key *k = es_codec_mf_key(s, m, fn, false);
                if (k && !es_keyset_add(&f->mfs, k))
                    err = "module: x function: make more than 64 combinations";
            }
        }
        if (!err && !enif_is_empty_list(env, fl))
            err = "function: must be an atom or a list of atoms";
        if (!err && f->mfs.n == 0) none = true;
        f->modules.n = 0; /* implied by the {module, function} keys */
    }
    if (!err && enif_get_map_value(env, map, A.timestamp_start, &v)) {
        if (!enif_get_int64(env, v, &i64)) err = "timestamp_start: must be an integer";
        f->ts_min = i64;
    }
    if (!err && enif_get_map_value(env, map, A.timestamp_end, &v)) {
        if (!enif_get_int64(env, v, &i64)) err = "timestamp_end: must be an integer";
        f->ts_max = i64;
    }
    if (!err && enif_get_map_value(env, map, A.after_id, &v)) {
        if (!enif_get_uint64(env, v, &u64)) err = "after_id: must be a non-negative integer";
        f->after_id = u64;
    }
    if (!err && enif_get_map_value(env, map, A.before_id, &v)) {
        if (!enif_get_uint64(env, v, &u64)) err = "before_id: must be a non-negative integer";
        f->before_id = u64;
        if (u64 <= 1) none = true;
    }
    if (!err && enif_get_map_value(env, map, A.after, &v)) {
        if (!get_pos(env, v, &f->after)) err = "after: must be a cursor";
        f->has_after = true;
    }
    if (!err && enif_get_map_value(env, map, A.before, &v)) {
        if (!get_pos(env, v, &f->before)) err = "before: must be a cursor";
        f->has_before = true;
    }
    if (!err && enif_get_map_value(env, map, A.limit, &v)) {
        if (!enif_get_uint64(env, v, &u64)) err = "limit: must be a non-negative integer";
        f->limit = u64;
        if (u64 == 0) none = true;
    }
    if (!err && enif_get_map_value(env, map, A.order, &v)) {
        if (v == es_atom.desc)
            f->descending = true;
        else if (v != es_atom.asc)
            err = "order: must be :asc or :desc";
    }
    if (!err && enif_get_map_value(env, map, A.where, &v)) {
        ERL_NIF_TERM head, list = v;
        while (!err && enif_get_list_cell(env, list, &head, &list)) {
            if (f->npreds == sizeof spec->preds / sizeof *spec->preds)
                err = "where: at most 64 conditions";
            else
                err = parse_pred(env, spec, head, &spec->preds[f->npreds++]);
        }
        if (!err && !enif_is_empty_list(env, list)) err = "where: must be a list of conditions";
        f->preds = spec->preds;
    }
    if (err) return err;
    if (f->ts_min > f->ts_max) none = true;
    /* A key the store never indexed matches nothing, unless the key tables filled up
     * and newer keys went unindexed: then "nothing" would be a wrong answer. */
    es_tables *t = es_store_tables(s);
    if (none &&
        (t->pid.overflowed || t->pair.overflowed || t->module.overflowed || t->mf.overflowed))
        return "the spec names a pid, module or function the store did not index because it "
               "reached :max_keys distinct keys; start the store with a larger :max_keys";
    return none ? "" : NULL;
}

bool es_hits_of_ids(ErlNifEnv *env, es_store *s, ERL_NIF_TERM ids, es_hits *out) {
    unsigned n;
    if (!enif_get_list_length(env, ids, &n)) return false;
    memset(out, 0, sizeof *out);
    if (!es_hits_reserve(out, n ? n : 1)) return false;
    ERL_NIF_TERM head;
    while (enif_get_list_cell(env, ids, &head, &ids)) {
        ErlNifUInt64 id;
        es_event_view v;
        if (!enif_get_uint64(env, head, &id)) {
            es_hits_free(out);
            return false;
        }
        if (es_store_peek(s, id, &v)) out->v[out->n++] = (es_hit){v.ts, id};
    }
    return true;
}

static bool dedupe_sorted(es_hits *h) {
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++)
        if (k == 0 || h->v[i].id != h->v[k - 1].id) h->v[k++] = h->v[i];
    h->n = k;
    return true;
}

bool es_select_events(ErlNifEnv *env, es_store *s, ERL_NIF_TERM sel, es_hits *h,
                      ERL_NIF_TERM *err) {
    memset(h, 0, sizeof *h);
    ERL_NIF_TERM head, rest;
    bool ids = enif_is_list(env, sel) &&
               (!enif_get_list_cell(env, sel, &head, &rest) || !enif_is_map(env, head));
    if (ids) {
        if (!es_hits_of_ids(env, s, sel, h)) {
            *err = es_raise_arg(env, "a selection must be a spec, a list of specs or of event ids");
            return false;
        }
        es_hits_sort(h);
        return dedupe_sorted(h);
    }
    if (enif_is_map(env, sel)) sel = enif_make_list1(env, sel);
    unsigned n = 0;
    while (enif_get_list_cell(env, sel, &head, &sel)) {
        if (++n > MAX_UNION) {
            *err = es_raise_arg(env, "a selection unites at most 64 specs");
            es_hits_free(h);
            return false;
        }
        es_spec spec;
        const char *e = es_spec_parse(env, s, head, &spec);
        es_hits part = {0};
        enum es_query_status st = ES_Q_OK;
        if (!e) st = es_query(s, &spec.f, &part);
        es_spec_free(&spec);
        if ((e && *e) || st != ES_Q_OK || !es_hits_reserve(h, part.n)) {
            es_hits_free(&part);
            es_hits_free(h);
            *err = es_raise_arg(env, e && *e ? e : "out of memory selecting the events");
            return false;
        }
        memcpy(h->v + h->n, part.v, part.n * sizeof *part.v);
        h->n += part.n;
        es_hits_free(&part);
    }
    if (!enif_is_empty_list(env, sel)) {
        es_hits_free(h);
        *err = es_raise_arg(env, "a selection must be a spec, a list of specs or of event ids");
        return false;
    }
    es_hits_sort(h);
    return dedupe_sorted(h);
}

/* ---- listing ----------------------------------------------------------------------- */

typedef struct listing {
    enum { SEL_EVENTS, SEL_IDS, SEL_FIELDS, SEL_COUNT } select;
    ERL_NIF_TERM fields[MAX_FIELDS];
    unsigned nfields;
    ERL_NIF_TERM tag; /* struct to tag events with, 0: none */
    bool diff_states; /* :state events get :diff */
} listing;

static const char *parse_listing(ErlNifEnv *env, ERL_NIF_TERM map, listing *l) {
    memset(l, 0, sizeof *l);
    ERL_NIF_TERM v;
    if (enif_get_map_value(env, map, A.select, &v)) {
        if (v == A.events)
            l->select = SEL_EVENTS;
        else if (v == A.ids)
            l->select = SEL_IDS;
        else if (v == A.count)
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
    if (enif_get_map_value(env, map, A.struct_, &v)) {
        if (!enif_is_atom(env, v)) return "struct: must be a module";
        if (v != es_atom.nil) l->tag = v;
    }
    if (enif_get_map_value(env, map, A.diff, &v)) {
        if (v != A.state) return "diff: must be :state";
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
        es_codec_event(env, s, ph.v[0].id, 0, &ev) && !enif_get_map_value(env, ev, A.state, &value))
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
            !enif_get_map_value(env, evs[i], A.state, &state))
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

/* query(store, spec): {items, next position | nil}, or a count. */
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
    /* One more than asked for says whether the listing goes on. */
    uint64_t limit = f->limit;
    if (limit) f->limit = limit + 1;
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

/* ---- aggregation ------------------------------------------------------------------- */

static ERL_NIF_TERM number(ErlNifEnv *env, long double v, bool as_int) {
    if (as_int && v >= (long double)INT64_MIN && v <= (long double)INT64_MAX)
        return enif_make_int64(env, (int64_t)v);
    return enif_make_double(env, (double)v);
}

static ERL_NIF_TERM group_key(ErlNifEnv *env, es_store *s, const es_group_spec *g,
                              const es_group *e) {
    es_tables *t = es_store_tables(s);
    es_key *k;
    switch (g->by) {
    case ES_BY_TYPE:
        k = e->key_id ? es_intern_by_id(&t->type, e->key_id) : NULL;
        return k ? es_codec_atom_term(k) : es_atom.nil;
    case ES_BY_PID:
        return e->key_id ? es_codec_pid_term(env, s, e->key_id) : es_atom.nil;
    case ES_BY_MODULE:
        k = e->key_id ? es_intern_by_id(&t->module, e->key_id) : NULL;
        return k ? es_codec_atom_term(k) : es_atom.nil;
    case ES_BY_MF: {
        k = e->key_id ? es_intern_by_id(&t->mf, e->key_id) : NULL;
        if (!k) return es_atom.nil;
        ERL_NIF_TERM words[2];
        memcpy(words, es_key_bytes(k), sizeof words);
        return enif_make_tuple2(env, words[0], words[1] ? words[1] : es_atom.nil);
    }
    case ES_BY_FIELD: {
        ERL_NIF_TERM out;
        if (e->key && etf_decode_value(env, e->key, e->key_len, &out)) return out;
        return es_atom.nil;
    }
    default:
        return es_atom.nil;
    }
}

static ERL_NIF_TERM group_map(ErlNifEnv *env, es_store *s, const es_group_spec *g,
                              const es_group *e) {
    ERL_NIF_TERM keys[10], vals[10], map;
    size_t n = 0;
#define PUT(name, val) (keys[n] = enif_make_atom(env, name), vals[n] = (val), n++)
    if (g->by != ES_BY_NONE) PUT("group", group_key(env, s, g, e));
    PUT("count", enif_make_uint64(env, e->count));
    if (g->measure) {
        bool any = e->measured > 0, ints = e->all_int;
        PUT("measured", enif_make_uint64(env, e->measured));
        PUT("min", any ? number(env, e->min, ints) : es_atom.nil);
        PUT("max", any ? number(env, e->max, ints) : es_atom.nil);
        PUT("mean", any ? enif_make_double(env, (double)(e->sum / e->measured)) : es_atom.nil);
        PUT("p50", any ? number(env, e->p50, ints) : es_atom.nil);
        PUT("p90", any ? number(env, e->p90, ints) : es_atom.nil);
        PUT("p99", any ? number(env, e->p99, ints) : es_atom.nil);
    }
#undef PUT
    enif_make_map_from_arrays(env, keys, vals, n, &map);
    return map;
}

static const char *parse_group(ErlNifEnv *env, ERL_NIF_TERM map, es_group_spec *g) {
    memset(g, 0, sizeof *g);
    ERL_NIF_TERM v;
    if (enif_get_map_value(env, map, A.group_by, &v)) {
        const ERL_NIF_TERM *el;
        int n;
        if (v == A.type)
            g->by = ES_BY_TYPE;
        else if (v == A.pid)
            g->by = ES_BY_PID;
        else if (v == A.module)
            g->by = ES_BY_MODULE;
        else if (v == A.function)
            g->by = ES_BY_MF;
        else if (enif_get_tuple(env, v, &n, &el) && n == 3 && el[0] == A.field &&
                 enif_is_atom(env, el[1]) && get_path(env, el[2], g->path, &g->depth)) {
            g->by = ES_BY_FIELD;
            g->field = (uint64_t)el[1];
        } else
            return "group_by: must be :type, :pid, :module, :function or {:field, name, path}";
    }
    if (enif_get_map_value(env, map, A.measure, &v)) {
        if (!enif_is_atom(env, v)) return "measure: must be a field name";
        g->measure = true;
        g->measure_field = (uint64_t)v;
    }
    return NULL;
}

/* aggregate(store, spec): [%{group:, count:, measured:, min:, max:, mean:, p50:, p90:,
 * p99:}] (group only with group_by:, the statistics only with measure:), in no
 * particular order. Dirty. */
ERL_NIF_TERM es_nif_aggregate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_spec spec;
    es_group_spec g;
    const char *err = es_spec_parse(env, s, argv[1], &spec);
    const char *gerr = !err || !*err ? parse_group(env, argv[1], &g) : NULL;
    if (gerr) err = gerr;
    if (err) {
        es_spec_free(&spec);
        return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    }
    es_groups out;
    enum es_query_status st = es_group_run(s, &spec.f, &g, &out);
    es_spec_free(&spec);
    if (st != ES_Q_OK) return es_raise_arg(env, "out of memory running the aggregation");
    ERL_NIF_TERM *maps = enif_alloc((out.n ? out.n : 1) * sizeof *maps);
    if (!maps) {
        es_groups_free(&out);
        return es_raise_arg(env, "out of memory running the aggregation");
    }
    for (size_t i = 0; i < out.n; i++) maps[i] = group_map(env, s, &g, &out.v[i]);
    ERL_NIF_TERM list = enif_make_list_from_array(env, maps, (unsigned)out.n);
    enif_free(maps);
    es_groups_free(&out);
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
    ERL_NIF_TERM fields[] = {A.state, callback, cause};
    term_counts paths = {0}, causes = {0};
    ERL_NIF_TERM prev = 0, ev, v;
    uint64_t states = 0, changes = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < h.n; i++) {
        ERL_NIF_TERM state, d, item, rest;
        if (!es_codec_fields(env, s, h.v[i].id, fields, 3, 0, &ev) ||
            !enif_get_map_value(env, ev, A.state, &state))
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
