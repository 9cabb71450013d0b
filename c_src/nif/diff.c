/*
 * diff.c — structural diff of Erlang terms. See diff.h for the contract.
 *
 * The walk carries the path reversed (cons cells are cheap to prepend) and reverses
 * it only when an entry is emitted; entries are prepended to an accumulator that is
 * reversed once at the end.
 */
#include "diff.h"
#include "map_order.h"

#include <limits.h>
#include <stdbool.h>

#define MAX_DEPTH 100

static ERL_NIF_TERM atom_added, atom_removed, atom_changed, atom_nil, atom_tail;

void es_diff_load(ErlNifEnv *env) {
    atom_added = enif_make_atom(env, "added");
    atom_removed = enif_make_atom(env, "removed");
    atom_changed = enif_make_atom(env, "changed");
    atom_nil = enif_make_atom(env, "nil");
    atom_tail = enif_make_atom(env, "tail");
}

typedef struct diff_ctx {
    ErlNifEnv *env;
    ERL_NIF_TERM acc; /* entries, newest first */
    ERL_NIF_TERM added, removed, changed, nil;
    unsigned long budget; /* terms left to visit; ULONG_MAX: unlimited */
    bool over;
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

/* Keys of a first, in term order (changed, then removed ones), then the keys only b
 * has, in term order (map_order.h): the same entries in the same order on every OTP. */
static void walk_maps(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth) {
    ErlNifEnv *env = c->env;
    size_t size_a = 0, size_b = 0, shared = 0, n;
    enif_get_map_size(env, a, &size_a);
    enif_get_map_size(env, b, &size_b);
    if (size_a + size_b > c->budget) { /* sorting them alone would overrun the budget */
        c->over = true;
        return;
    }
    c->budget -= size_a + size_b;
    es_map_entry stack[32], *e;
    ERL_NIF_TERM other;
    if (!es_map_entries(env, a, stack, 32, &e, &n)) {
        emit(c, rpath, c->changed, a, b);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ERL_NIF_TERM path = enif_make_list_cell(env, e[i].key, rpath);
        if (!enif_get_map_value(env, b, e[i].key, &other))
            emit(c, path, c->removed, e[i].value, c->nil);
        else if (shared++, !enif_is_identical(e[i].value, other))
            walk(c, path, e[i].value, other, depth + 1);
    }
    es_map_entries_free(e, stack);
    if (shared == size_b) return; /* every key of b is also in a: nothing was added */
    if (!es_map_entries(env, b, stack, 32, &e, &n)) {
        emit(c, rpath, c->changed, a, b);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!enif_get_map_value(env, a, e[i].key, &other))
            emit(c, enif_make_list_cell(env, e[i].key, rpath), c->added, c->nil, e[i].value);
    es_map_entries_free(e, stack);
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

/* The elements of a list as an array (on the stack when short) and its tail. */
static bool list_items(ErlNifEnv *env, ERL_NIF_TERM list, ERL_NIF_TERM *stack, unsigned stack_n,
                       ERL_NIF_TERM **items, unsigned *n, ERL_NIF_TERM *tail) {
    unsigned len = 0;
    ERL_NIF_TERM h, t = list;
    while (enif_get_list_cell(env, t, &h, &t)) len++;
    *items = len <= stack_n ? stack : enif_alloc(len * sizeof **items);
    if (!*items) return false;
    *n = 0;
    for (t = list; enif_get_list_cell(env, t, &h, &t);) (*items)[(*n)++] = h;
    *tail = t;
    return true;
}

static void walk_lists(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth) {
    ErlNifEnv *env = c->env;
    /* Keyword lists key by key; an empty list counts as one when the other list is. */
    ERL_NIF_TERM ma, mb, empty = enif_make_new_map(env);
    bool ka = keyword_map(env, a, &ma), kb = keyword_map(env, b, &mb);
    if (!ka && enif_is_empty_list(env, a)) ka = kb, ma = empty;
    if (!kb && enif_is_empty_list(env, b)) kb = ka, mb = empty;
    if (ka && kb) {
        walk_maps(c, rpath, ma, mb, depth);
        return;
    }
    /* Elements the two lists share at the front and at the back are equal; only the
     * middle differs: compared position by position, then what one has more of is
     * :removed (indices of the old list) or :added (indices of the new one). So taking
     * the head off a queue reads as one removal, not a change at every index. */
    ERL_NIF_TERM sa[64], sb[64], *va = sa, *vb = sb, ta, tb;
    unsigned na = 0, nb = 0;
    unsigned len_a = 0, len_b = 0;
    if (enif_get_list_length(env, a, &len_a) && enif_get_list_length(env, b, &len_b) &&
        len_a + len_b > c->budget) { /* too long for what is left of the budget */
        c->over = true;
        return;
    }
    if (!list_items(env, a, sa, 64, &va, &na, &ta) || !list_items(env, b, sb, 64, &vb, &nb, &tb)) {
        if (va != sa) enif_free(va);
        emit(c, rpath, c->changed, a, b);
        return;
    }
    unsigned pre = 0, suf = 0;
    while (pre < na && pre < nb && enif_is_identical(va[pre], vb[pre])) pre++;
    while (suf < na - pre && suf < nb - pre &&
           enif_is_identical(va[na - 1 - suf], vb[nb - 1 - suf]))
        suf++;
    unsigned mid_a = na - pre - suf, mid_b = nb - pre - suf;
    unsigned common = mid_a < mid_b ? mid_a : mid_b;
    for (unsigned i = 0; i < common; i++)
        walk(c, enif_make_list_cell(env, enif_make_uint(env, pre + i), rpath), va[pre + i],
             vb[pre + i], depth + 1);
    for (unsigned i = common; i < mid_a; i++)
        emit(c, enif_make_list_cell(env, enif_make_uint(env, pre + i), rpath), c->removed,
             va[pre + i], c->nil);
    for (unsigned i = common; i < mid_b; i++)
        emit(c, enif_make_list_cell(env, enif_make_uint(env, pre + i), rpath), c->added, c->nil,
             vb[pre + i]);
    if (va != sa) enif_free(va);
    if (vb != sb) enif_free(vb);
    a = ta;
    b = tb;
    /* Improper tails: compare them as the element after the last index. */
    if (!enif_is_identical(a, b) && !(enif_is_empty_list(env, a) && enif_is_empty_list(env, b)))
        emit(c, enif_make_list_cell(env, atom_tail, rpath), c->changed, a, b);
}

static void walk(diff_ctx *c, ERL_NIF_TERM rpath, ERL_NIF_TERM a, ERL_NIF_TERM b, int depth) {
    ErlNifEnv *env = c->env;
    if (c->over || c->budget-- == 0) {
        c->over = true;
        return;
    }
    if (enif_is_identical(a, b)) return;
    if (depth > MAX_DEPTH) {
        emit(c, rpath, c->changed, a, b);
        return;
    }
    if (enif_is_map(env, a) && enif_is_map(env, b)) {
        walk_maps(c, rpath, a, b, depth);
        return;
    }
    if (enif_is_list(env, a) && enif_is_list(env, b)) {
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

bool es_diff(ErlNifEnv *env, ERL_NIF_TERM old, ERL_NIF_TERM new_, unsigned long *budget,
             ERL_NIF_TERM *out) {
    diff_ctx c = {.env = env,
                  .acc = enif_make_list(env, 0),
                  .added = atom_added,
                  .removed = atom_removed,
                  .changed = atom_changed,
                  .nil = atom_nil,
                  .budget = budget ? *budget : ULONG_MAX};
    walk(&c, enif_make_list(env, 0), old, new_, 0);
    if (budget) *budget = c.budget;
    if (c.over) return false;
    *out = reversed(env, c.acc);
    return true;
}
