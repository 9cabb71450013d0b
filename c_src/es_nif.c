/*
 * es_nif.c — the NIF glue: the store resource, argument checking and the function
 * table of module Elixir.ElixirScope.Native. No storage or query logic lives here:
 * it converts terms (codec.c), calls the store (store.c) or the query engine
 * (query.c), and keeps every call on a normal scheduler short — work that may be
 * long is rerun on a dirty CPU scheduler.
 *
 * Thread-safety: every NIF may run on any scheduler at once; the store is lock-free.
 * A store lives as long as any term refers to its resource.
 */
#include "clock.h"
#include "codec.h"
#include "diff.h"
#include "etf.h"
#include "json.h"
#include "nif.h"
#include "persist.h"
#include "query.h"
#include "tracer.h"

#include <erl_nif.h>
#include <string.h>

#define NORMAL_VISITS 4000 /* events a query may visit on a normal scheduler */
#define NORMAL_RESULTS 400 /* event maps it may build there */

ErlNifResourceType *es_store_resource_type;

static void store_dtor(ErlNifEnv *env, void *obj) {
    (void)env;
    es_persist_forget(((es_ref *)obj)->store);
    es_store_free(((es_ref *)obj)->store);
}

/* The runtime's monotonic time, for es_clock_calibrate(). */
static int64_t runtime_monotonic(void) {
    return enif_monotonic_time(ERL_NIF_NSEC);
}

/* Re-measures the clock (clock.c); the governor calls it every tick. Returns the source
 * event timestamps are read from now and the runtime's offset from CLOCK_MONOTONIC. */
static ERL_NIF_TERM calibrate_clock(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    es_clock_calibrate(runtime_monotonic);
    const char *source = es_clock_source() == ES_CLOCK_TSC ? "tsc" : "clock_monotonic";
    return enif_make_tuple2(env, enif_make_atom(env, source),
                            enif_make_int64(env, es_clock_offset()));
}

es_store *es_get_store(ErlNifEnv *env, ERL_NIF_TERM term, es_ref **ref) {
    es_ref *r = NULL;
    if (!enif_get_resource(env, term, es_store_resource_type, (void **)&r)) r = NULL;
    if (ref) *ref = r;
    return r ? r->store : NULL;
}

/* ---- options --------------------------------------------------------------------- */

static bool opt_u64(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, uint64_t min, uint64_t max,
                    uint64_t *out) {
    ERL_NIF_TERM v;
    if (!enif_get_map_value(env, map, key, &v)) return true; /* keep the default */
    ErlNifUInt64 x;
    if (!enif_get_uint64(env, v, &x) || x < min || x > max) return false;
    *out = x;
    return true;
}

static ERL_NIF_TERM store_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    if (!enif_is_map(env, argv[0])) return es_raise_arg(env, "store options must be a map");
    es_store_config cfg = {.max_events = 1000000,
                           .max_bytes = 256u << 20,
                           .max_payload_bytes = 64u << 10,
                           .sample_rate = 1.0,
                           .max_keys = 262144};
    uint64_t payload = cfg.max_payload_bytes, keys = cfg.max_keys;
    if (!opt_u64(env, argv[0], es_atom.max_events, 16, 1ull << 31, &cfg.max_events))
        return es_raise_arg(env, "max_events must be an integer in 16..2147483648");
    if (!opt_u64(env, argv[0], es_atom.max_bytes, 4096, 1ull << 40, &cfg.max_bytes))
        return es_raise_arg(env, "max_bytes must be an integer in 4096..1099511627776");
    if (!opt_u64(env, argv[0], es_atom.max_payload_bytes, 0, cfg.max_bytes / 4, &payload))
        return es_raise_arg(env, "max_payload_bytes must be an integer from 0 to max_bytes / 4");
    if (!opt_u64(env, argv[0], es_atom.max_keys, 16, 1u << 26, &keys))
        return es_raise_arg(env, "max_keys must be an integer in 16..67108864");
    cfg.max_payload_bytes = (uint32_t)payload;
    cfg.max_keys = (uint32_t)keys;
    ERL_NIF_TERM v;
    if (enif_get_map_value(env, argv[0], es_atom.sample_rate, &v)) {
        double rate;
        if (!enif_get_double(env, v, &rate) || !(rate >= 0.0 && rate <= 1.0))
            return es_raise_arg(env, "sample_rate must be a float in 0.0..1.0");
        cfg.sample_rate = rate;
    }
    es_ref *r = enif_alloc_resource(es_store_resource_type, sizeof *r);
    if (!r) return es_raise_arg(env, "out of memory creating the store");
    r->store = es_store_new(&cfg);
    ERL_NIF_TERM term = enif_make_resource(env, r);
    enif_release_resource(r);
    if (!r->store) return es_raise_arg(env, "out of memory creating the store");
    return term;
}

static ERL_NIF_TERM set_sample_rate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    double rate;
    if (!enif_get_double(env, argv[1], &rate) || !(rate >= 0.0 && rate <= 1.0))
        return es_raise_arg(env, "sample_rate must be a float in 0.0..1.0");
    es_store_set_sample_rate(s, rate);
    return es_atom.ok;
}

/* ---- append ---------------------------------------------------------------------- */

static ERL_NIF_TERM append(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_encoded e;
    const char *err = es_codec_encode(env, s, argv[1], argv[2], &e);
    if (err) return es_raise_arg(env, err);
    es_store_append(s, &e.in);
    return es_atom.ok;
}

/* ---- queries --------------------------------------------------------------------- */

/* Parses a filter map. Returns NULL when fine, "" when a filter names something the
 * store never saw (so nothing can match), or an error message. */
const char *es_nif_parse_filter(ErlNifEnv *env, es_store *s, ERL_NIF_TERM map, es_filter *f) {
    es_filter_init(f);
    if (!enif_is_map(env, map)) return "filters must be a map";
    es_tables *t = es_store_tables(s);
    ERL_NIF_TERM v, module = 0, function = 0;
    bool none = false;
    ErlNifMapIterator it;
    if (!enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST))
        return "filters must be a map";
    const char *err = NULL;
    ERL_NIF_TERM k;
    for (; !err && enif_map_iterator_get_pair(env, &it, &k, &v); enif_map_iterator_next(env, &it)) {
        ErlNifSInt64 i64;
        ErlNifUInt64 u64;
        if (k == es_atom.type) {
            if (!enif_is_atom(env, v))
                err = "filter :type must be an atom";
            else if (!(f->type = es_codec_atom_key(&t->type, v, false)))
                none = true;
        } else if (k == es_atom.pid || k == es_atom.from_pid) {
            if (!enif_is_pid(env, v)) {
                err = "filters :pid and :from_pid must be pids";
            } else {
                es_key *a = es_codec_pid_key(env, s, v, false);
                if (!a || (f->actor && f->actor != a)) none = true;
                f->actor = a;
            }
        } else if (k == es_atom.between) {
            const ERL_NIF_TERM *two;
            int n;
            if (!enif_get_tuple(env, v, &n, &two) || n != 2 || !enif_is_pid(env, two[0]) ||
                !enif_is_pid(env, two[1])) {
                err = "filter :between must be a {pid, pid} tuple";
            } else {
                f->actor = es_codec_pid_key(env, s, two[0], false);
                f->peer = es_codec_pid_key(env, s, two[1], false);
                f->both_directions = true;
                if (!f->actor || !f->peer) none = true;
            }
        } else if (k == es_atom.to_pid) {
            if (!enif_is_pid(env, v))
                err = "filter :to_pid must be a pid";
            else if (!(f->peer = es_codec_pid_key(env, s, v, false)))
                none = true;
        } else if (k == es_atom.module) {
            if (!enif_is_atom(env, v)) err = "filter :module must be an atom";
            module = v;
        } else if (k == es_atom.function) {
            if (!enif_is_atom(env, v)) err = "filter :function must be an atom";
            function = v;
        } else if (k == es_atom.timestamp_start) {
            if (!enif_get_int64(env, v, &i64)) err = "filter :timestamp_start must be an integer";
            f->ts_min = i64;
        } else if (k == es_atom.timestamp_end) {
            if (!enif_get_int64(env, v, &i64)) err = "filter :timestamp_end must be an integer";
            f->ts_max = i64;
        } else if (k == es_atom.limit) {
            if (!enif_get_uint64(env, v, &u64))
                err = "filter :limit must be a non-negative integer";
            f->limit = u64;
            if (u64 == 0) none = true;
        } else if (k == es_atom.after_id) {
            if (!enif_get_uint64(env, v, &u64))
                err = "filter :after_id must be a non-negative integer";
            f->after_id = u64;
        } else if (k == es_atom.before_id) {
            if (!enif_get_uint64(env, v, &u64))
                err = "filter :before_id must be a non-negative integer";
            f->before_id = u64;
            if (u64 <= 1) none = true;
        } else if (k == es_atom.order) {
            if (v == es_atom.desc)
                f->descending = true;
            else if (v != es_atom.asc)
                err = "filter :order must be :asc or :desc";
        } else {
            err = "unknown filter key (allowed: type, pid, from_pid, to_pid, between, module, "
                  "function, timestamp_start, timestamp_end, limit, order, after_id, before_id)";
        }
    }
    enif_map_iterator_destroy(env, &it);
    if (err) return err;
    if (function && !module) return "filter :function needs :module";
    if (module && function) {
        if (!(f->mf = es_codec_mf_key(s, module, function, false))) none = true;
    } else if (module) {
        if (!(f->module = es_codec_atom_key(&t->module, module, false))) none = true;
    }
    if (f->ts_min > f->ts_max) none = true;
    /* A key the store never indexed matches nothing, unless the key tables filled up
     * and newer keys went unindexed: then "nothing" would be a wrong answer. */
    if (none &&
        (t->pid.overflowed || t->pair.overflowed || t->module.overflowed || t->mf.overflowed))
        return "a filter names a pid, module or function the store did not index because it "
               "reached :max_keys distinct keys; start the store with a larger :max_keys";
    return none ? "" : NULL;
}

static ERL_NIF_TERM build_events(ErlNifEnv *env, es_store *s, const es_hits *h, ERL_NIF_TERM tag) {
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = h->n; i-- > 0;) {
        ERL_NIF_TERM ev;
        if (es_codec_event(env, s, h->v[i].id, tag, &ev)) list = enif_make_list_cell(env, ev, list);
    }
    return list;
}

static ERL_NIF_TERM query_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#define NORMAL_DIFF_TERMS 5000 /* terms diffs may visit on a normal scheduler */

/* State timelines: the events of a :state query, each with :diff, the change from the
 * state recorded before it (`prev`, or the previous event's), computed oldest first
 * whatever the listing order. False when the diffs need more than `budget` allows. */
static bool build_timeline(ErlNifEnv *env, es_store *s, const es_hits *h, ERL_NIF_TERM tag,
                           ERL_NIF_TERM prev, bool descending, unsigned long *budget,
                           ERL_NIF_TERM *out) {
    ERL_NIF_TERM *evs = enif_alloc((h->n ? h->n : 1) * sizeof *evs);
    if (!evs) return false;
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++)
        if (es_codec_event(env, s, h->v[i].id, tag, &evs[k])) k++;
    ERL_NIF_TERM diff_key = enif_make_atom(env, "diff"), state_key = enif_make_atom(env, "state");
    bool ok = true;
    for (size_t j = 0; ok && j < k; j++) {
        size_t i = descending ? k - 1 - j : j;
        ERL_NIF_TERM state, d = es_atom.nil;
        if (!enif_get_map_value(env, evs[i], state_key, &state)) continue;
        if (prev) ok = es_diff(env, prev, state, budget, &d);
        enif_make_map_put(env, evs[i], diff_key, d, &evs[i]);
        prev = state;
    }
    if (ok) {
        *out = enif_make_list_from_array(env, evs, (unsigned)k);
    }
    enif_free(evs);
    return ok;
}

static ERL_NIF_TERM run_query(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], bool dirty) {
    STORE_OR_RAISE(s, argv[0]);
    es_filter f;
    const char *err = es_nif_parse_filter(env, s, argv[1], &f);
    if (err) return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    if (!dirty) f.max_visits = NORMAL_VISITS;
    es_hits h = {0};
    enum es_query_status st = es_query(s, &f, &h);
    if (st == ES_Q_OK && !dirty && h.n > NORMAL_RESULTS) st = ES_Q_OVER_BUDGET;
    if (st == ES_Q_OVER_BUDGET) {
        es_hits_free(&h);
        return enif_schedule_nif(env, "query", ERL_NIF_DIRTY_JOB_CPU_BOUND, query_dirty, argc,
                                 argv);
    }
    if (st == ES_Q_NO_MEMORY) {
        es_hits_free(&h);
        return es_raise_arg(env, "out of memory running the query");
    }
    /* query/3 names a struct to tag the events with (ElixirScope.Event); query/4 with
     * `true` also diffs each :state event with the state before it. */
    ERL_NIF_TERM tag = 0;
    if (argc >= 3) {
        if (!enif_is_atom(env, argv[2])) return es_raise_arg(env, "event struct must be an atom");
        if (argv[2] != es_atom.nil) tag = argv[2];
    }
    if (argc < 4 || argv[3] != es_atom.true_) {
        ERL_NIF_TERM list = build_events(env, s, &h, tag);
        es_hits_free(&h);
        return list;
    }
    /* The state recorded just before the oldest one listed, so its diff is right even
     * when the listing starts later (a limit, a time range, a later page). */
    ERL_NIF_TERM prev = 0;
    if (h.n > 0) {
        es_filter before;
        es_filter_init(&before);
        before.actor = f.actor;
        before.type = f.type;
        before.before_id = f.descending ? h.v[h.n - 1].id : h.v[0].id;
        before.limit = 1;
        before.descending = true;
        es_hits ph = {0};
        ERL_NIF_TERM ev, state;
        if (es_query(s, &before, &ph) == ES_Q_OK && ph.n == 1 &&
            es_codec_event(env, s, ph.v[0].id, 0, &ev) &&
            enif_get_map_value(env, ev, enif_make_atom(env, "state"), &state))
            prev = state;
        es_hits_free(&ph);
    }
    unsigned long budget = NORMAL_DIFF_TERMS;
    ERL_NIF_TERM list;
    bool ok = build_timeline(env, s, &h, tag, prev, f.descending, dirty ? NULL : &budget, &list);
    es_hits_free(&h);
    if (ok) return list;
    if (!dirty)
        return enif_schedule_nif(env, "query", ERL_NIF_DIRTY_JOB_CPU_BOUND, query_dirty, argc,
                                 argv);
    return es_raise_arg(env, "out of memory running the query");
}

static ERL_NIF_TERM query_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return run_query(env, argc, argv, true);
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

/* The ids a filter map selects, in query order, without building the events: for
 * exports and dumps that combine several queries. Dirty: lists may be long. */
static ERL_NIF_TERM query_ids(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_filter f;
    const char *err = es_nif_parse_filter(env, s, argv[1], &f);
    if (err) return *err ? es_raise_arg(env, err) : enif_make_list(env, 0);
    es_hits h = {0};
    if (es_query(s, &f, &h) != ES_Q_OK) {
        es_hits_free(&h);
        return es_raise_arg(env, "out of memory running the query");
    }
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = h.n; i-- > 0;)
        list = enif_make_list_cell(env, enif_make_uint64(env, h.v[i].id), list);
    es_hits_free(&h);
    return list;
}

static ERL_NIF_TERM query(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return run_query(env, argc, argv, false);
}

static ERL_NIF_TERM get_event(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifUInt64 id;
    if (!enif_get_uint64(env, argv[1], &id))
        return es_raise_arg(env, "event id must be a non-negative integer");
    ERL_NIF_TERM ev;
    return es_codec_event(env, s, id, 0, &ev) ? ev : es_atom.nil;
}

static ERL_NIF_TERM live_pids(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifSInt64 ts;
    if (!enif_get_int64(env, argv[1], &ts))
        return es_raise_arg(env, "timestamp must be an integer");
    es_tables *t = es_store_tables(s);
    /* Born: spawned while traced, or alive when tracing began; gone: exited or crashed. */
    es_key *born[2] = {es_codec_atom_key(&t->type, es_atom.spawn, false),
                       es_codec_atom_key(&t->type, es_atom.alive, false)};
    es_key *died[2] = {es_codec_atom_key(&t->type, es_atom.exit, false),
                       es_codec_atom_key(&t->type, es_atom.crash, false)};
    uint32_t *ids = NULL;
    size_t n = 0;
    if (es_query_live_actors(s, born, 2, died, 2, ts, &ids, &n) != ES_Q_OK)
        return es_raise_arg(env, "out of memory running the query");
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;)
        list = enif_make_list_cell(env, es_codec_pid_term(env, s, ids[i]), list);
    es_ids_free(ids);
    return list;
}

static ERL_NIF_TERM diff_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    ERL_NIF_TERM out;
    return es_diff(env, argv[0], argv[1], NULL, &out) ? out : enif_make_badarg(env);
}

/* Small diffs (state changes are) answer at once; big ones move to a dirty scheduler. */
static ERL_NIF_TERM diff(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    ERL_NIF_TERM out;
    unsigned long budget = NORMAL_DIFF_TERMS;
    if (es_diff(env, argv[0], argv[1], &budget, &out)) return out;
    return enif_schedule_nif(env, "diff", ERL_NIF_DIRTY_JOB_CPU_BOUND, diff_dirty, argc, argv);
}

/* ---- maintenance ----------------------------------------------------------------- */

static ERL_NIF_TERM clear(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_store_clear(s);
    return es_atom.ok;
}

static ERL_NIF_TERM stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    es_store_stats st;
    es_store_get_stats(s, &st);
    es_tables *t = es_store_tables(s);
    ERL_NIF_TERM by_type = enif_make_new_map(env);
    for (uint32_t id = 1; id <= es_intern_size(&t->type); id++) {
        es_key *k = es_intern_by_id(&t->type, id);
        if (!k || es_intern_get(&t->type, es_key_bytes(k), k->len, false, 0) != k) continue;
        uint64_t n = es_store_type_count(s, k->id);
        if (n == 0) continue;
        enif_make_map_put(env, by_type, es_codec_atom_term(k), enif_make_uint64(env, n), &by_type);
    }
    bool full = t->pid.overflowed || t->pair.overflowed || t->module.overflowed || t->mf.overflowed;
    const es_store_config *cfg = es_store_config_of(s);
    ERL_NIF_TERM keys[] = {es_atom.stored,       es_atom.appended,  es_atom.sampled_out,
                           es_atom.pruned,       es_atom.truncated, es_atom.bytes,
                           es_atom.memory,       es_atom.oldest_id, es_atom.newest_id,
                           es_atom.max_lateness, es_atom.by_type,   es_atom.unindexed,
                           es_atom.max_events,   es_atom.max_bytes, es_atom.max_payload_bytes,
                           es_atom.sample_rate,  es_atom.max_keys};
    _Static_assert(sizeof keys / sizeof *keys == 17, "one value per key");
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, st.stored),
                           enif_make_uint64(env, st.appended),
                           enif_make_uint64(env, st.sampled_out),
                           enif_make_uint64(env, st.pruned),
                           enif_make_uint64(env, st.truncated),
                           enif_make_uint64(env, st.bytes),
                           enif_make_uint64(env, st.memory),
                           enif_make_uint64(env, st.oldest_id),
                           enif_make_uint64(env, st.newest_id),
                           enif_make_int64(env, st.max_lateness),
                           by_type,
                           full ? es_atom.true_ : es_atom.false_,
                           enif_make_uint64(env, cfg->max_events),
                           enif_make_uint64(env, cfg->max_bytes),
                           enif_make_uint64(env, cfg->max_payload_bytes),
                           enif_make_double(env, cfg->sample_rate),
                           enif_make_uint(env, cfg->max_keys)};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, sizeof keys / sizeof *keys, &map);
    return map;
}

/* ---- load ------------------------------------------------------------------------ */

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info) {
    (void)priv;
    (void)info;
    es_codec_init_atoms(env);
    etf_load(env);
    es_diff_load(env);
    es_clock_calibrate(runtime_monotonic);
    es_store_resource_type = enif_open_resource_type(env, NULL, "elixir_scope_store", store_dtor,
                                                     ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    if (!es_store_resource_type || !es_persist_load()) return 1;
#if ERL_NIF_MAJOR_VERSION > 2 || (ERL_NIF_MAJOR_VERSION == 2 && ERL_NIF_MINOR_VERSION >= 17)
    /* OTP 26+: the persisters' last events reach disk on erlang:halt/0,1 (persist.h). */
    if (enif_set_option(env, ERL_NIF_OPT_ON_HALT, es_persist_on_halt) != 0) return 1;
#endif
    return es_tracer_load(env);
}

static int upgrade(ErlNifEnv *env, void **priv, void **old, ERL_NIF_TERM info) {
    (void)old;
    return load(env, priv, info);
}

static ErlNifFunc funcs[] = {
    {"store_new", 1, store_new, 0},
    {"set_sample_rate", 2, set_sample_rate, 0},
    {"append", 3, append, 0},
    {"query", 2, query, 0},
    {"query", 3, query, 0},
    {"query", 4, query, 0},
    {"query_ids", 2, query_ids, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"get", 2, get_event, 0},
    {"live_pids", 2, live_pids, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"clear", 1, clear, 0},
    {"diff", 2, diff, 0},
    {"calibrate_clock", 0, calibrate_clock, 0},
    {"export_chrome", 3, es_nif_export_chrome, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"dump", 5, es_nif_dump, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"persist_on_halt", 4, es_nif_persist_on_halt, 0},
    {"load", 4, es_nif_load, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"export_mermaid", 5, es_nif_export_mermaid, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"perf", 2, es_nif_perf, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"slowest", 3, es_nif_slowest, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"traffic", 3, es_nif_traffic, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"peers", 2, es_nif_peers, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"actor_summary", 2, es_nif_actor_summary, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"actors", 1, es_nif_actors, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    /* JSON (json.c): big inputs and outputs move to a dirty scheduler themselves. */
    {"json_decode", 2, es_nif_json_decode, 0},
    {"json_encode", 1, es_nif_json_encode, 0},
    {"stats", 1, stats, 0},
    {"tracer_new", 2, es_tracer_new, 0},
    {"tracer_set", 3, es_tracer_set, 0},
    {"tracer_watch", 2, es_tracer_watch, 0},
    {"tracer_counts", 1, es_tracer_counts, 0},
    {"tracer_discarded", 1, es_tracer_discarded, 0},
    /* The erl_tracer behaviour: this module is the tracer module. */
    {"enabled", 3, es_tracer_enabled, 0},
    {"trace", 5, es_tracer_trace, 0},
};

ERL_NIF_INIT(Elixir.ElixirScope.Native, funcs, load, NULL, upgrade, NULL)
