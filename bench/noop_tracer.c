/*
 * noop_tracer.c — the floor of the tracer benchmark (bench/tracer_bench.exs): an
 * erl_tracer NIF module, :es_noop_tracer, whose callbacks do nothing. enabled/3 says
 * `trace` to every event and trace/5 returns `ok`, so what it costs per event is what
 * the runtime's trace hook itself costs with a NIF tracer.
 */
#include <erl_nif.h>

static ERL_NIF_TERM atom_trace, atom_ok;

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info) {
    (void)priv;
    (void)info;
    atom_trace = enif_make_atom(env, "trace");
    atom_ok = enif_make_atom(env, "ok");
    return 0;
}

static ERL_NIF_TERM enabled(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)env;
    (void)argc;
    (void)argv;
    return atom_trace;
}

static ERL_NIF_TERM trace(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)env;
    (void)argc;
    (void)argv;
    return atom_ok;
}

static ErlNifFunc funcs[] = {{"enabled", 3, enabled, 0}, {"trace", 5, trace, 0}};

ERL_NIF_INIT(es_noop_tracer, funcs, load, NULL, NULL, NULL)
