/*
 * diff.c — structural diff of Erlang terms. See diff.h for the contract.
 *
 * The walk carries the path reversed (cons cells are cheap to prepend) and reverses
 * it only when an entry is emitted; entries are prepended to an accumulator that is
 * reversed once at the end.
 */
#include "diff.h"

#include <stdbool.h>

#define MAX_DEPTH 100

typedef struct diff_ctx {
    ErlNifEnv *env;
    ERL_NIF_TERM acc; /* entries, newest first */
    ERL_NIF_TERM added, removed, changed, nil;
} diff_ctx;

static ERL_NIF_TERM reversed(ErlNifEnv *env, ERL_NIF_TERM list) {
    ERL_NIF_TERM out;
    enif_make_reverse_list(env, list, &out);
    return out;
}

static void emit(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM op, ERL_NIF_TERM old,
                 ERL_NIF_TERM new_) {
    ERL_NIF_TERM entry = enif_make_tuple4(c->env, reversed(c->env, rpath), op, old, new_);
    c->acc = enif_make_list_cell(c->env, entry, c->acc);
}

static void walk(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth);

static void walk_maps(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth) {
    ErlNifEnv *env = c->env;
    ErlNifMapIterator it;
    ERL_NIF_TERM k, v, other;
    if (enif_map_iterator_create(env, a, &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        for (; enif_map_iterator_get_pair(env, &it, &k, &v); enif_map_iterator_next(env, &it)) {
            ERL_NIF_TERM p = enif_make_list_cell(env, k, rpath);
            if (enif_get_map_value(env, b, k, &other))
                walk(c, p, v, other, depth + 1);
            else
                emit(c, p, c->removed, v, c->nil);
        }
        enif_map_iterator_destroy(env, &it);
    }
    if (enif_map_iterator_create(env, b, &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        for (; enif_map_iterator_get_pair(env, &it, &k, &v); enif_map_iterator_next(env, &it))
            if (!enif_get_map_value(env, a, k, &other))
                emit(c, enif_make_list_cell(env, k, rpath), c->added, c->nil, v);
        enif_map_iterator_destroy(env, &it);
    }
}

/* A keyword list with unique keys becomes a map (for lookup); false otherwise. */
static bool keyword_map(ErlNifEnv *env, ERL_NIF_TERM list, ERL_NIF_TERM *map) {
    ERL_NIF_TERM head, m = enif_make_new_map(env), tail = list;
    unsigned n = 0;
    while (enif_get_list_cell(env, tail, &head, &tail)) {
        const ERL_NIF_TERM *el;
        int arity;
        if (!enif_get_tuple(env, head, &arity, &el) || arity != 2 || !enif_is_atom(env, el[0]) ||
            !enif_make_map_put(env, m, el[0], el[1], &m))
            return false;
        n++;
    }
    size_t size;
    if (!enif_is_empty_list(env, tail) || n == 0 || !enif_get_map_size(env, m, &size) || size != n)
        return false; /* improper, empty (not distinguishable) or repeated keys */
    *map = m;
    return true;
}

static void walk_lists(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth) {
    ErlNifEnv *env = c->env;
    ERL_NIF_TERM ma, mb;
    if (keyword_map(env, a, &ma) && keyword_map(env, b, &mb)) {
        walk_maps(c, rpath, ma, mb, depth);
        return;
    }
    ERL_NIF_TERM ha, hb, ta, tb;
    unsigned i = 0;
    for (; enif_get_list_cell(env, a, &ha, &ta) && enif_get_list_cell(env, b, &hb, &tb); i++) {
        walk(c, enif_make_list_cell(env, enif_make_uint(env, i), rpath), ha, hb, depth + 1);
        a = ta;
        b = tb;
    }
    /* One list ran out: the rest of the other is removed or added element by element. */
    for (; enif_get_list_cell(env, a, &ha, &a); i++)
        emit(c, enif_make_list_cell(env, enif_make_uint(env, i), rpath), c->removed, ha, c->nil);
    for (; enif_get_list_cell(env, b, &hb, &b); i++)
        emit(c, enif_make_list_cell(env, enif_make_uint(env, i), rpath), c->added, c->nil, hb);
    /* Improper tails: compare them as the element after the last index. */
    if (!enif_is_identical(a, b) && !(enif_is_empty_list(env, a) && enif_is_empty_list(env, b)))
        emit(c, enif_make_list_cell(env, enif_make_atom(env, "tail"), rpath), c->changed, a, b);
}

static void walk(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth) {
    ErlNifEnv *env = c->env;
    if (enif_is_identical(a, b)) return;
    if (depth > MAX_DEPTH) {
        emit(c, rpath, c->changed, a, b);
        return;
    }
    if (enif_is_map(env, a) && enif_is_map(env, b)) {
        walk_maps(c, rpath, a, b, depth);
        return;
    }
    if (enif_is_list(env, a) && enif_is_list(env, b) && !enif_is_empty_list(env, a) &&
        !enif_is_empty_list(env, b)) {
        walk_lists(c, rpath, a, b, depth);
        return;
    }
    const ERL_NIF_TERM *ea, *eb;
    int na, nb;
    if (enif_get_tuple(env, a, &na, &ea) && enif_get_tuple(env, b, &nb, &eb) && na == nb) {
        for (int i = 0; i < na; i++)
            walk(c, enif_make_list_cell(env, enif_make_int(env, i), rpath), ea[i], eb[i],
                 depth + 1);
        return;
    }
    emit(c, rpath, c->changed, a, b);
}

ERL_NIF_TERM es_diff(ErlNifEnv *env, ERL_NIF_TERM old, ERL_NIF_TERM new_) {
    diff_ctx c = {.env = env,
                  .acc = enif_make_list(env, 0),
                  .added = enif_make_atom(env, "added"),
                  .removed = enif_make_atom(env, "removed"),
                  .changed = enif_make_atom(env, "changed"),
                  .nil = enif_make_atom(env, "nil")};
    walk(&c, enif_make_list(env, 0), old, new_, 0);
    return reversed(env, c.acc);
}
