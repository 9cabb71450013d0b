/*
 * redact.c — the values of secret keys out of a term. See redact.h for the contract.
 */
#include "redact.h"

#include <string.h>

#define SMALL 16 /* elements rebuilt on the stack; more go to enif_alloc */

bool es_patterns_get(ErlNifEnv *env, ERL_NIF_TERM list, es_patterns *p) {
    memset(p, 0, sizeof *p);
    ERL_NIF_TERM head;
    ErlNifBinary b;
    while (enif_get_list_cell(env, list, &head, &list)) {
        if (p->n == ES_REDACT_PATTERNS || !enif_inspect_binary(env, head, &b) || b.size == 0 ||
            b.size >= ES_REDACT_LEN)
            return false;
        for (size_t i = 0; i < b.size; i++) {
            unsigned char c = b.data[i];
            p->p[p->n][i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        p->len[p->n++] = b.size;
    }
    return enif_is_empty_list(env, list);
}

/* Whether a key's name contains a pattern (ASCII lowercase). */
static bool secret(ErlNifEnv *env, ERL_NIF_TERM key, const es_patterns *p) {
    char text[256];
    const unsigned char *s;
    size_t len;
    ErlNifBinary b;
    if (enif_is_atom(env, key)) {
        int n = enif_get_atom(env, key, text, sizeof text, ERL_NIF_LATIN1);
        if (n <= 1) return false;
        s = (const unsigned char *)text, len = (size_t)n - 1;
    } else if (enif_is_binary(env, key) && enif_inspect_binary(env, key, &b)) {
        s = b.data, len = b.size;
    } else {
        return false;
    }
    for (unsigned i = 0; i < p->n; i++) {
        size_t m = p->len[i];
        for (size_t at = 0; at + m <= len; at++) {
            size_t k = 0;
            while (k < m) {
                unsigned char c = s[at + k];
                if ((char)(c >= 'A' && c <= 'Z' ? c + 32 : c) != p->p[i][k]) break;
                k++;
            }
            if (k == m) return true;
        }
    }
    return false;
}

static ERL_NIF_TERM walk(ErlNifEnv *env, ERL_NIF_TERM t, const es_patterns *p, int depth);

static ERL_NIF_TERM redacted(ErlNifEnv *env) {
    ERL_NIF_TERM out;
    unsigned char *d = enif_make_new_binary(env, 10, &out);
    if (d) memcpy(d, "[REDACTED]", 10);
    return out;
}

/* A {key, value} pair of a keyword list or a tuple: its value redacted or walked. */
static ERL_NIF_TERM pair(ErlNifEnv *env, const ERL_NIF_TERM *el, const es_patterns *p, int depth) {
    ERL_NIF_TERM v = secret(env, el[0], p) ? redacted(env) : walk(env, el[1], p, depth + 1);
    return v == el[1] ? 0 : enif_make_tuple2(env, el[0], v);
}

static ERL_NIF_TERM walk_map(ErlNifEnv *env, ERL_NIF_TERM map, const es_patterns *p, int depth) {
    ErlNifMapIterator it;
    if (!enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST)) return map;
    ERL_NIF_TERM out = map, k, v, struct_key = enif_make_atom(env, "__struct__");
    while (enif_map_iterator_get_pair(env, &it, &k, &v)) {
        if (k != struct_key) {
            ERL_NIF_TERM nv = secret(env, k, p) ? redacted(env) : walk(env, v, p, depth + 1);
            if (nv != v) enif_make_map_update(env, out, k, nv, &out);
        }
        enif_map_iterator_next(env, &it);
    }
    enif_map_iterator_destroy(env, &it);
    return out;
}

static ERL_NIF_TERM walk_tuple(ErlNifEnv *env, ERL_NIF_TERM t, const es_patterns *p, int depth) {
    const ERL_NIF_TERM *el;
    int n;
    if (!enif_get_tuple(env, t, &n, &el) || n == 0) return t;
    if (n == 2 && (enif_is_atom(env, el[0]) || enif_is_binary(env, el[0]))) {
        ERL_NIF_TERM out = pair(env, el, p, depth);
        return out ? out : t;
    }
    ERL_NIF_TERM stack[SMALL], *v = n <= SMALL ? stack : enif_alloc((size_t)n * sizeof *v);
    if (!v) return t;
    bool changed = false;
    for (int i = 0; i < n; i++) {
        v[i] = walk(env, el[i], p, depth + 1);
        changed |= v[i] != el[i];
    }
    ERL_NIF_TERM out = changed ? enif_make_tuple_from_array(env, v, (unsigned)n) : t;
    if (v != stack) enif_free(v);
    return out;
}

static ERL_NIF_TERM walk_list(ErlNifEnv *env, ERL_NIF_TERM list, const es_patterns *p, int depth) {
    ERL_NIF_TERM head, tail = list;
    unsigned n = 0;
    while (enif_get_list_cell(env, tail, &head, &tail)) n++;
    ERL_NIF_TERM stack[SMALL], *v = n <= SMALL ? stack : enif_alloc((size_t)n * sizeof *v);
    if (!v) return list;
    bool changed = false;
    ERL_NIF_TERM rest = list;
    for (unsigned i = 0; i < n; i++) {
        enif_get_list_cell(env, rest, &head, &rest);
        v[i] = walk(env, head, p, depth + 1);
        changed |= v[i] != head;
    }
    ERL_NIF_TERM end = enif_is_empty_list(env, tail) ? tail : walk(env, tail, p, depth + 1);
    changed |= end != tail;
    ERL_NIF_TERM out = end;
    if (changed)
        for (unsigned i = n; i-- > 0;) out = enif_make_list_cell(env, v[i], out);
    if (v != stack) enif_free(v);
    return changed ? out : list;
}

static ERL_NIF_TERM walk(ErlNifEnv *env, ERL_NIF_TERM t, const es_patterns *p, int depth) {
    if (depth > ES_REDACT_DEPTH) return t;
    if (enif_is_map(env, t)) return walk_map(env, t, p, depth);
    if (enif_is_tuple(env, t)) return walk_tuple(env, t, p, depth);
    if (enif_is_list(env, t) && !enif_is_empty_list(env, t)) return walk_list(env, t, p, depth);
    return t;
}

ERL_NIF_TERM es_redact(ErlNifEnv *env, ERL_NIF_TERM term, const es_patterns *p) {
    return p->n ? walk(env, term, p, 0) : term;
}
