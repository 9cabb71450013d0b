/*
 * agg_nif.c — the NIFs of the aggregations in agg.c (per function, slowest calls, the
 * events of a spec with the largest value of a field, traffic, peers, one process's
 * summary) and of the group-by aggregates of query specs
 * (group.c): argument checks, and the result terms. All run on dirty CPU schedulers.
 *
 * Thread-safety: as agg.c; any number at once, concurrently with appends.
 */
#include "agg.h"
#include "codec.h"
#include "etf.h"
#include "group.h"
#include "nif.h"

#include <string.h>

static es_key *type_key(es_store *s, int row) {
    return es_vocab_key(s, row, false);
}

/* A bucket midpoint can pass the largest value seen: quantiles never exceed max. */
static uint64_t quantile(const es_fn_stats *f, double q) {
    uint64_t v = es_hist_quantile(&f->hist, q);
    return v < f->max ? v : f->max;
}

ERL_NIF_TERM es_nif_perf(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_atom(env, argv[1])) return es_raise_arg(env, "module must be an atom");
    es_key *module = es_codec_atom_key(&es_store_tables(s)->module, argv[1], false);
    if (!module) return enif_make_list(env, 0);
    es_perf p;
    if (!es_agg_perf(s, module, type_key(s, ES_EV_CALL), type_key(s, ES_EV_RETURN),
                     type_key(s, ES_EV_EXCEPTION), enif_make_atom(env, "duration"), &p)) {
        es_perf_free(&p);
        return es_raise_arg(env, "out of memory running the analysis");
    }
    static const char *const names[] = {"function",   "arity", "calls", "returns",
                                        "exceptions", "total", "mean",  "p50",
                                        "p90",        "p99",   "max"};
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = p.n; i-- > 0;) {
        es_fn_stats *f = &p.fns[i];
        es_key *mf = es_intern_by_id(&es_store_tables(s)->mf, f->mf);
        ERL_NIF_TERM words[2] = {0, 0};
        if (mf) memcpy(words, es_key_bytes(mf), sizeof words);
        uint64_t timed = f->hist.count;
        ERL_NIF_TERM vals[] = {words[1] ? words[1] : es_atom.nil,
                               enif_make_uint(env, f->arity),
                               enif_make_uint64(env, f->calls),
                               enif_make_uint64(env, f->returns),
                               enif_make_uint64(env, f->exceptions),
                               enif_make_uint64(env, f->total),
                               timed ? enif_make_uint64(env, f->total / timed) : es_atom.nil,
                               timed ? enif_make_uint64(env, quantile(f, 0.50)) : es_atom.nil,
                               timed ? enif_make_uint64(env, quantile(f, 0.90)) : es_atom.nil,
                               timed ? enif_make_uint64(env, quantile(f, 0.99)) : es_atom.nil,
                               timed ? enif_make_uint64(env, f->max) : es_atom.nil};
        list = enif_make_list_cell(env, es_named_map(env, names, vals, 11), list);
    }
    es_perf_free(&p);
    return list;
}

ERL_NIF_TERM es_nif_slowest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    unsigned limit;
    if (!enif_get_uint(env, argv[1], &limit) || limit > 100000)
        return es_raise_arg(env, "limit must be an integer in 0..100000");
    es_key *module = NULL;
    if (argv[2] != es_atom.nil) {
        if (!enif_is_atom(env, argv[2])) return es_raise_arg(env, "module must be an atom or nil");
        module = es_codec_atom_key(&es_store_tables(s)->module, argv[2], false);
        if (!module) return enif_make_list(env, 0);
    }
    es_slow *top = enif_alloc((limit ? limit : 1) * sizeof *top);
    if (!top) return es_raise_arg(env, "out of memory running the analysis");
    size_t n = es_agg_slowest(s, type_key(s, ES_EV_RETURN), type_key(s, ES_EV_EXCEPTION), module,
                              enif_make_atom(env, "duration"), top, limit);
    ERL_NIF_TERM list = enif_make_list(env, 0), args = enif_make_atom(env, "args"),
                 call_id = enif_make_atom(env, "call_id");
    for (size_t i = n; i-- > 0;) {
        ERL_NIF_TERM ev, cid, call, a;
        if (!es_codec_event(env, s, top[i].id, 0, &ev)) continue;
        /* The arguments live in the :call event the return pairs with. */
        ErlNifUInt64 id;
        if (enif_get_map_value(env, ev, call_id, &cid) && enif_get_uint64(env, cid, &id) &&
            es_codec_event(env, s, id, 0, &call) && enif_get_map_value(env, call, args, &a))
            enif_make_map_put(env, ev, args, a, &ev);
        list = enif_make_list_cell(env, ev, list);
    }
    enif_free(top);
    return list;
}

/* top(store, spec, field): the events of the spec with the largest `field`, largest
 * first, as many as its limit (at most 10,000), tagged as its :struct. */
ERL_NIF_TERM es_nif_top(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_atom(env, argv[2])) return es_raise_arg(env, "field must be an atom");
    ERL_NIF_TERM tag = es_spec_struct(env, argv[1]);
    es_spec spec;
    const char *err = es_spec_parse(env, s, argv[1], &spec);
    if (err) {
        es_spec_free(&spec);
        return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    }
    es_filter f = spec.f;
    size_t limit = f.limit;
    f.limit = 0, f.descending = false; /* every match is a candidate */
    if (limit == 0 || limit > 10000) {
        es_spec_free(&spec);
        return es_raise_arg(env, "limit must be an integer in 1..10000");
    }
    es_slow *top = enif_alloc(limit * sizeof *top);
    size_t n = 0;
    bool ok = top && es_agg_top(s, &f, (uint64_t)argv[2], top, limit, &n);
    es_spec_free(&spec);
    if (!ok) {
        enif_free(top);
        return es_raise_arg(env, "out of memory running the analysis");
    }
    ERL_NIF_TERM list = enif_make_list(env, 0), ev;
    for (size_t i = n; i-- > 0;)
        if (es_codec_event(env, s, top[i].id, tag, &ev)) list = enif_make_list_cell(env, ev, list);
    enif_free(top);
    return list;
}

ERL_NIF_TERM es_nif_traffic(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifSInt64 from, to;
    if (!enif_get_int64(env, argv[1], &from) || !enif_get_int64(env, argv[2], &to))
        return es_raise_arg(env, "timestamps must be integers");
    es_traffic *t;
    size_t n;
    if (!es_agg_traffic(s, type_key(s, ES_EV_SEND), type_key(s, ES_EV_RECEIVE), from, to, &t, &n))
        return es_raise_arg(env, "out of memory running the analysis");
    static const char *const names[] = {"pid", "sent", "inflow", "received"};
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;) {
        ERL_NIF_TERM vals[] = {es_codec_pid_term(env, s, t[i].pid),
                               enif_make_uint64(env, t[i].sent), enif_make_uint64(env, t[i].inflow),
                               enif_make_uint64(env, t[i].received)};
        list = enif_make_list_cell(env, es_named_map(env, names, vals, 4), list);
    }
    es_agg_free(t);
    return list;
}

ERL_NIF_TERM es_nif_peers(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_pid(env, argv[1])) return es_raise_arg(env, "expected a pid");
    es_key *pid = es_codec_pid_key(env, s, argv[1], false);
    if (!pid) return enif_make_list(env, 0);
    es_peer_count *p;
    size_t n;
    if (!es_agg_peers(s, pid, type_key(s, ES_EV_SEND), type_key(s, ES_EV_RECEIVE), &p, &n))
        return es_raise_arg(env, "out of memory running the analysis");
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;)
        list = enif_make_list_cell(env,
                                   enif_make_tuple2(env, es_codec_pid_term(env, s, p[i].pid),
                                                    enif_make_uint64(env, p[i].count)),
                                   list);
    es_agg_free(p);
    return list;
}

/* Every process the store has indexed (its pid table), in no particular order. Pids
 * stay indexed after their events are pruned. es_intern_each, not the ids 1..size: an
 * id may be reserved by an entry still being filled. */
typedef struct actors_ctx {
    ErlNifEnv *env;
    es_store *s;
    ERL_NIF_TERM list;
} actors_ctx;

static void add_actor(es_key *k, void *arg) {
    actors_ctx *c = arg;
    c->list = enif_make_list_cell(c->env, es_codec_pid_term(c->env, c->s, k->id), c->list);
}

ERL_NIF_TERM es_nif_actors(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    actors_ctx c = {env, s, enif_make_list(env, 0)};
    es_intern_each(&es_store_tables(s)->pid, add_actor, &c);
    return c.list;
}

ERL_NIF_TERM es_nif_actor_summary(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (!enif_is_pid(env, argv[1])) return es_raise_arg(env, "expected a pid");
    es_key *pid = es_codec_pid_key(env, s, argv[1], false);
    es_actor_summary a = {0, INT64_MIN, INT64_MIN, NULL};
    if (pid && !es_agg_actor(s, pid, &a))
        return es_raise_arg(env, "out of memory running the analysis");
    es_tables *t = es_store_tables(s);
    ERL_NIF_TERM by_type = enif_make_new_map(env);
    for (uint32_t id = 1; a.by_type && id <= es_intern_size(&t->type); id++) {
        es_key *k = es_intern_by_id(&t->type, id);
        if (k && a.by_type[id])
            enif_make_map_put(env, by_type, es_codec_atom_term(k),
                              enif_make_uint64(env, a.by_type[id]), &by_type);
    }
    es_agg_free(a.by_type);
    static const char *const names[] = {"events", "first", "last", "by_type"};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, a.events),
                           a.events ? enif_make_int64(env, a.first) : es_atom.nil,
                           a.events ? enif_make_int64(env, a.last) : es_atom.nil, by_type};
    return es_named_map(env, names, vals, 4);
}

/* ---- group-by aggregates (group.c) --------------------------------------------------- */

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
    if (enif_get_map_value(env, map, es_atom.group_by, &v)) {
        const ERL_NIF_TERM *el;
        int n;
        if (v == es_atom.type)
            g->by = ES_BY_TYPE;
        else if (v == es_atom.pid)
            g->by = ES_BY_PID;
        else if (v == es_atom.module)
            g->by = ES_BY_MODULE;
        else if (v == es_atom.function)
            g->by = ES_BY_MF;
        else if (enif_get_tuple(env, v, &n, &el) && n == 3 && el[0] == es_atom.field &&
                 enif_is_atom(env, el[1]) && es_spec_path(env, el[2], g->path, &g->depth)) {
            g->by = ES_BY_FIELD;
            g->field = (uint64_t)el[1];
        } else
            return "group_by: must be :type, :pid, :module, :function or {:field, name, path}";
    }
    if (enif_get_map_value(env, map, es_atom.measure, &v)) {
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
