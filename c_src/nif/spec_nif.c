/*
 * spec_nif.c — query specs: the plain-data map ElixirScope.Query validates and
 * normalizes, parsed into a filter (query.h) and predicates (pred.h), with the memory
 * they hold; and selections (a spec, a union of specs, a list of ids) turned into hits,
 * for listings, exports and dumps. See nif.h.
 *
 * Atoms: none is made from a spec; field names are atoms the caller already has, and
 * predicate values are encoded as a payload holds them (payload.h: canonical bytes).
 *
 * Thread-safety: any number at once, concurrently with appends.
 */
#include "codec.h"
#include "etf.h"
#include "nif.h"

#include <string.h>

#define MAX_UNION 64 /* specs a selection may unite */

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
bool es_spec_path(ErlNifEnv *env, ERL_NIF_TERM list, uint32_t *path, uint8_t *depth) {
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
    if (!es_spec_path(env, el[1], p->path, &p->depth))
        return "where: a field path must be a list of at most 4 element indexes";
    p->field = (uint64_t)el[0];
    p->negate = el[3] == es_atom.true_;
    if (el[2] == es_atom.eq || el[2] == es_atom.prefix) {
        p->op = el[2] == es_atom.eq ? ES_OP_EQ : ES_OP_PREFIX;
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
    if (el[2] == es_atom.range) {
        const ERL_NIF_TERM *lh;
        int two;
        p->op = ES_OP_RANGE;
        if (!enif_get_tuple(env, el[4], &two, &lh) || two != 2 || !get_num(env, lh[0], &p->a) ||
            !get_num(env, lh[1], &p->b))
            return "where: a range needs two numbers within 64 bits";
        return NULL;
    }
    p->op = el[2] == es_atom.lt   ? ES_OP_LT
            : el[2] == es_atom.le ? ES_OP_LE
            : el[2] == es_atom.gt ? ES_OP_GT
            : el[2] == es_atom.ge ? ES_OP_GE
                                  : 255;
    if (p->op == 255) return "where: unknown operator";
    if (!get_num(env, el[4], &p->a)) return "where: a comparison needs a number within 64 bits";
    return NULL;
}

/* The filter keys of a spec, read in one pass over its map (a spec has a few of them;
 * a lookup per possible key would cost each query more than that). */
enum {
    K_TYPE,
    K_PID,
    K_TO_PID,
    K_BETWEEN,
    K_MODULE,
    K_FUNCTION,
    K_TIMESTAMP_START,
    K_TIMESTAMP_END,
    K_AFTER_ID,
    K_BEFORE_ID,
    K_AFTER,
    K_BEFORE,
    K_LIMIT,
    K_ORDER,
    K_WHERE,
    K_COUNT
};

typedef struct spec_keys {
    ERL_NIF_TERM v[K_COUNT];
    unsigned present; /* bit k: the spec has key k */
} spec_keys;

static void read_keys(ErlNifEnv *env, ERL_NIF_TERM map, spec_keys *k) {
    const ERL_NIF_TERM names[K_COUNT] = {es_atom.type,
                                         es_atom.pid,
                                         es_atom.to_pid,
                                         es_atom.between,
                                         es_atom.module,
                                         es_atom.function,
                                         es_atom.timestamp_start,
                                         es_atom.timestamp_end,
                                         es_atom.after_id,
                                         es_atom.before_id,
                                         es_atom.after,
                                         es_atom.before,
                                         es_atom.limit,
                                         es_atom.order,
                                         es_atom.where};
    k->present = 0;
    ErlNifMapIterator it;
    if (!enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST)) return;
    ERL_NIF_TERM key, value;
    for (; enif_map_iterator_get_pair(env, &it, &key, &value); enif_map_iterator_next(env, &it))
        for (int i = 0; i < K_COUNT; i++)
            if (key == names[i]) {
                k->v[i] = value, k->present |= 1u << i;
                break;
            }
    enif_map_iterator_destroy(env, &it);
}

static inline bool has(const spec_keys *k, int key, ERL_NIF_TERM *v) {
    if (!(k->present >> key & 1)) return false;
    *v = k->v[key];
    return true;
}

const char *es_spec_parse(ErlNifEnv *env, es_store *s, ERL_NIF_TERM map, es_spec *spec) {
    spec->mem = NULL; /* (the predicates are set as they are parsed) */
    es_filter *f = &spec->f;
    es_filter_init(f);
    if (!enif_is_map(env, map)) return "a query spec must be a map";
    spec_keys keys;
    read_keys(env, map, &keys);
    ERL_NIF_TERM v, modules = 0, functions = 0;
    bool none = false;
    const char *err = NULL;
    ErlNifSInt64 i64;
    ErlNifUInt64 u64;
    if (has(&keys, K_TYPE, &v))
        err = parse_keys(env, s, v, false, type_key, &f->types, &none,
                         "type: must be an atom or a list of atoms");
    if (!err && has(&keys, K_PID, &v))
        err = parse_keys(env, s, v, true, pid_key, &f->actors, &none,
                         "pid: must be a pid or a list of pids");
    if (!err && has(&keys, K_TO_PID, &v))
        err = parse_keys(env, s, v, true, pid_key, &f->peers, &none,
                         "to_pid: must be a pid or a list of pids");
    if (!err && has(&keys, K_BETWEEN, &v)) {
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
    if (!err && has(&keys, K_MODULE, &modules))
        err = parse_keys(env, s, modules, false, module_key, &f->modules, &none,
                         "module: must be an atom or a list of atoms");
    if (!err && has(&keys, K_FUNCTION, &functions)) {
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
    if (!err && has(&keys, K_TIMESTAMP_START, &v)) {
        if (!enif_get_int64(env, v, &i64)) err = "timestamp_start: must be an integer";
        f->ts_min = i64;
    }
    if (!err && has(&keys, K_TIMESTAMP_END, &v)) {
        if (!enif_get_int64(env, v, &i64)) err = "timestamp_end: must be an integer";
        f->ts_max = i64;
    }
    if (!err && has(&keys, K_AFTER_ID, &v)) {
        if (!enif_get_uint64(env, v, &u64)) err = "after_id: must be a non-negative integer";
        f->after_id = u64;
    }
    if (!err && has(&keys, K_BEFORE_ID, &v)) {
        if (!enif_get_uint64(env, v, &u64)) err = "before_id: must be a non-negative integer";
        f->before_id = u64;
        if (u64 <= 1) none = true;
    }
    if (!err && has(&keys, K_AFTER, &v)) {
        if (!get_pos(env, v, &f->after)) err = "after: must be a cursor";
        f->has_after = true;
    }
    if (!err && has(&keys, K_BEFORE, &v)) {
        if (!get_pos(env, v, &f->before)) err = "before: must be a cursor";
        f->has_before = true;
    }
    if (!err && has(&keys, K_LIMIT, &v)) {
        if (!enif_get_uint64(env, v, &u64)) err = "limit: must be a non-negative integer";
        f->limit = u64;
        if (u64 == 0) none = true;
    }
    if (!err && has(&keys, K_ORDER, &v)) {
        if (v == es_atom.desc)
            f->descending = true;
        else if (v != es_atom.asc)
            err = "order: must be :asc or :desc";
    }
    if (!err && has(&keys, K_WHERE, &v)) {
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
        if (part.n) memcpy(h->v + h->n, part.v, part.n * sizeof *part.v);
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
