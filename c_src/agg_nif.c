/*
 * agg_nif.c — the NIFs of the aggregations in agg.c: argument checks, and the result
 * terms (maps per function, per process). All run on dirty CPU schedulers.
 *
 * Thread-safety: as agg.c; any number at once, concurrently with appends.
 */
#include "agg.h"
#include "codec.h"
#include "nif.h"

#include <string.h>

static ERL_NIF_TERM make_map(ErlNifEnv *env, const char *const names[], ERL_NIF_TERM vals[],
                             size_t n) {
    ERL_NIF_TERM keys[16], map;
    for (size_t i = 0; i < n; i++) keys[i] = enif_make_atom(env, names[i]);
    enif_make_map_from_arrays(env, keys, vals, n, &map);
    return map;
}

static es_key *type_key(es_store *s, const char *name, ErlNifEnv *env) {
    return es_codec_atom_key(&es_store_tables(s)->type, enif_make_atom(env, name), false);
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
    if (!es_agg_perf(s, module, type_key(s, "call", env), type_key(s, "return", env),
                     type_key(s, "exception", env), enif_make_atom(env, "duration"), &p)) {
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
        list = enif_make_list_cell(env, make_map(env, names, vals, 11), list);
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
    size_t n = es_agg_slowest(s, type_key(s, "return", env), type_key(s, "exception", env), module,
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

ERL_NIF_TERM es_nif_traffic(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifSInt64 from, to;
    if (!enif_get_int64(env, argv[1], &from) || !enif_get_int64(env, argv[2], &to))
        return es_raise_arg(env, "timestamps must be integers");
    es_traffic *t;
    size_t n;
    if (!es_agg_traffic(s, type_key(s, "send", env), type_key(s, "receive", env), from, to, &t, &n))
        return es_raise_arg(env, "out of memory running the analysis");
    static const char *const names[] = {"pid", "sent", "inflow", "received"};
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;) {
        ERL_NIF_TERM vals[] = {es_codec_pid_term(env, s, t[i].pid),
                               enif_make_uint64(env, t[i].sent), enif_make_uint64(env, t[i].inflow),
                               enif_make_uint64(env, t[i].received)};
        list = enif_make_list_cell(env, make_map(env, names, vals, 4), list);
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
    if (!es_agg_peers(s, pid, type_key(s, "send", env), &p, &n))
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
    return make_map(env, names, vals, 4);
}
