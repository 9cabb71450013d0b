/*
 * es_nif.c — the NIF glue: the store resource, argument checks and the function table
 * of module Elixir.ElixirScope.Native. No storage or query logic lives here: the
 * queries are spec_nif.c's, query_nif.c's and history_nif.c's, the aggregations
 * agg_nif.c's, the tracer tracer*.c's, files export.c's and persist.c's, JSON
 * json_*.c's; this file creates and checks stores, appends, and dispatches. Work that
 * may be long runs (or is rerun) on a dirty scheduler.
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
#include "redact.h"
#include "tracer.h"

#include <erl_nif.h>
#include <stdio.h>
#include <string.h>

#define NORMAL_DIFF_TERMS 5000 /* terms a diff may visit on a normal scheduler */

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

/* ---- options --------------------------------------------------------------------- */

/* store_options() -> [{name, default, min, max}] for the integer options (store.h). */
static ERL_NIF_TERM store_options(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (int i = ES_OPTS; i-- > 0;) {
        const es_store_option *o = &es_store_options[i];
        list = enif_make_list_cell(
            env,
            enif_make_tuple4(env, enif_make_atom(env, o->name), enif_make_uint64(env, o->def),
                             enif_make_uint64(env, o->min), enif_make_uint64(env, o->max)),
            list);
    }
    return list;
}

static ERL_NIF_TERM store_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    if (!enif_is_map(env, argv[0])) return es_raise_arg(env, "store options must be a map");
    es_store_config cfg = es_store_defaults();
    uint64_t vals[ES_OPTS] = {cfg.max_events, cfg.max_bytes, cfg.max_payload_bytes, cfg.max_keys};
    for (int i = 0; i < ES_OPTS; i++) {
        const es_store_option *o = &es_store_options[i];
        ERL_NIF_TERM v;
        ErlNifUInt64 x;
        if (!enif_get_map_value(env, argv[0], enif_make_atom(env, o->name), &v)) continue;
        if (!enif_get_uint64(env, v, &x) || x < o->min || x > o->max) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s must be an integer in %llu..%llu", o->name,
                     (unsigned long long)o->min, (unsigned long long)o->max);
            return es_raise_arg(env, msg);
        }
        vals[i] = x;
    }
    cfg.max_events = vals[ES_OPT_MAX_EVENTS];
    cfg.max_bytes = vals[ES_OPT_MAX_BYTES];
    cfg.max_payload_bytes = (uint32_t)vals[ES_OPT_MAX_PAYLOAD_BYTES];
    cfg.max_keys = (uint32_t)vals[ES_OPT_MAX_KEYS];
    if (cfg.max_payload_bytes > cfg.max_bytes / 4)
        return es_raise_arg(env, "max_payload_bytes must be at most max_bytes / 4");
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

/* ---- reading -------------------------------------------------------------------- */

static ERL_NIF_TERM get_event(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifUInt64 id;
    if (!enif_get_uint64(env, argv[1], &id))
        return es_raise_arg(env, "event id must be a non-negative integer");
    ERL_NIF_TERM ev;
    return es_codec_event(env, s, id, 0, &ev) ? ev : es_atom.nil;
}

static ERL_NIF_TERM diff_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    ERL_NIF_TERM out;
    return es_diff(env, argv[0], argv[1], NULL, &out) ? out : enif_make_badarg(env);
}

/* redact(term, patterns): the rule the tracer applies to a redacting view's states
 * (redact.h), for tests to hold it against the Phoenix handler's. Dirty: a term may be
 * big. */
static ERL_NIF_TERM redact(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    es_patterns p;
    if (!es_patterns_get(env, argv[1], &p))
        return es_raise_arg(env, "patterns: a list of at most 32 non-empty binaries of fewer "
                                 "than 64 bytes");
    return es_redact(env, argv[0], &p);
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
    es_vocab_load(env);
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
    {"store_options", 0, store_options, 0},
    {"vocabulary", 0, es_nif_vocabulary, 0},
    {"store_new", 1, store_new, 0},
    {"set_sample_rate", 2, set_sample_rate, 0},
    {"append", 3, append, 0},
    /* The query engine (query_nif.c, history_nif.c). */
    {"query", 2, es_nif_query, 0},
    {"query_ids", 2, es_nif_query_ids, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"aggregate", 2, es_nif_aggregate, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"state_stats", 2, es_nif_state_stats, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"live_pids", 2, es_nif_live_pids, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"snapshot", 3, es_nif_snapshot, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"links", 3, es_nif_links, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"call_tree", 3, es_nif_call_tree, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"state_change", 4, es_nif_state_change, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"request_timeline", 4, es_nif_request_timeline, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"get", 2, get_event, 0},
    {"clear", 1, clear, 0},
    {"diff", 2, diff, 0},
    {"redact", 2, redact, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"calibrate_clock", 0, calibrate_clock, 0},
    {"export_chrome", 3, es_nif_export_chrome, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"dump", 5, es_nif_dump, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"persist_on_halt", 4, es_nif_persist_on_halt, 0},
    {"load", 4, es_nif_load, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"export_mermaid", 5, es_nif_export_mermaid, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"perf", 2, es_nif_perf, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"slowest", 3, es_nif_slowest, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"top", 3, es_nif_top, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"traffic", 3, es_nif_traffic, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"peers", 2, es_nif_peers, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"actor_summary", 2, es_nif_actor_summary, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"actors", 1, es_nif_actors, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    /* The wall clock (wallclock_nif.c). */
    {"wall_note", 3, es_nif_wall_note, 0},
    {"wall_offset", 2, es_nif_wall_offset, 0},
    {"wall_timestamp", 2, es_nif_wall_timestamp, 0},
    {"wall_offsets", 1, es_nif_wall_offsets, 0},
    /* JSON (json_*.c): big inputs and outputs move to a dirty scheduler themselves. */
    {"json_decode", 2, es_nif_json_decode, 0},
    {"json_encode", 1, es_nif_json_encode, 0},
    {"stats", 1, stats, 0},
    {"tracer_new", 2, es_tracer_new, 0},
    {"tracer_set", 3, es_tracer_set, 0},
    {"tracer_watch", 2, es_tracer_watch, 0},
    {"tracer_counts", 1, es_tracer_counts, 0},
    {"tracer_discarded", 1, es_tracer_discarded, 0},
    {"tracer_mask", 1, es_tracer_mask, 0},
    /* The erl_tracer behaviour: this module is the tracer module. */
    {"enabled", 3, es_tracer_enabled, 0},
    {"trace", 5, es_tracer_trace, 0},
};

ERL_NIF_INIT(Elixir.ElixirScope.Native, funcs, load, NULL, upgrade, NULL)
