/*
 * wallclock_nif.c — a store's wall clock (wallclock.h) on the NIF side: the time
 * offsets noted by ElixirScope.TraceDB (at start, and at each change the runtime
 * reports) and read by ElixirScope.WallClock to tell an event's wall-clock time, or the
 * timestamp of a wall-clock time.
 *
 * Thread-safety: as wallclock.h.
 */
#include "codec.h"
#include "nif.h"

/* wall_note(store, ts, offset) -> true when it changed the store's offsets. */
ERL_NIF_TERM es_nif_wall_note(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifSInt64 ts, offset;
    if (!enif_get_int64(env, argv[1], &ts) || !enif_get_int64(env, argv[2], &offset))
        return es_raise_arg(env, "a timestamp and an offset must be integers");
    return es_wallclock_note(es_store_wallclock(s), ts, offset) ? es_atom.true_ : es_atom.false_;
}

/* wall_offset(store, ts) -> the offset in effect at ts, or nil. */
ERL_NIF_TERM es_nif_wall_offset(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifSInt64 ts;
    int64_t offset;
    if (!enif_get_int64(env, argv[1], &ts)) return es_raise_arg(env, "a timestamp is an integer");
    return es_wallclock_offset_at(es_store_wallclock(s), ts, &offset) ? enif_make_int64(env, offset)
                                                                      : es_atom.nil;
}

/* wall_timestamp(store, wall) -> the timestamp of a wall-clock time (native units since
 * the epoch), or nil. */
ERL_NIF_TERM es_nif_wall_timestamp(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ErlNifSInt64 wall;
    int64_t ts;
    if (!enif_get_int64(env, argv[1], &wall))
        return es_raise_arg(env, "a wall-clock time is an integer");
    return es_wallclock_mono_of(es_store_wallclock(s), wall, &ts) ? enif_make_int64(env, ts)
                                                                  : es_atom.nil;
}

bool es_wall_offsets_term(ErlNifEnv *env, es_store *s, int64_t from, int64_t to,
                          ERL_NIF_TERM *out) {
    es_offset *v = enif_alloc(ES_WALLCLOCK_MAX * sizeof *v);
    if (!v) return false;
    size_t n = es_wallclock_span(es_store_wallclock(s), from, to, v, ES_WALLCLOCK_MAX);
    *out = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;)
        *out = enif_make_list_cell(
            env,
            enif_make_tuple2(env, enif_make_int64(env, v[i].ts), enif_make_int64(env, v[i].offset)),
            *out);
    enif_free(v);
    return true;
}

/* wall_offsets(store) -> [{ts, offset}], oldest first. */
ERL_NIF_TERM es_nif_wall_offsets(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ERL_NIF_TERM list;
    if (!es_wall_offsets_term(env, s, INT64_MIN, INT64_MAX, &list))
        return es_raise_arg(env, "out of memory");
    return list;
}
