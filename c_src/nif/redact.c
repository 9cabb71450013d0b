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

/* Whether a name contains a pattern (ASCII lowercase). */
static bool secret_name(const unsigned char *s, size_t len, const es_patterns *p) {
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

/* Whether a key (an atom or a binary) names a secret. */
static bool secret(ErlNifEnv *env, ERL_NIF_TERM key, const es_patterns *p) {
    char text[256];
    ErlNifBinary b;
    if (enif_is_atom(env, key)) {
        int n = enif_get_atom(env, key, text, sizeof text, ERL_NIF_LATIN1);
        return n > 1 && secret_name((const unsigned char *)text, (size_t)n - 1, p);
    }
    return enif_is_binary(env, key) && enif_inspect_binary(env, key, &b) &&
           secret_name(b.data, b.size, p);
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

/* Whether a binary term holds exactly `text`. */
static bool is_text(ErlNifEnv *env, ERL_NIF_TERM t, const char *text) {
    ErlNifBinary b;
    size_t n = strlen(text);
    return enif_is_binary(env, t) && enif_inspect_binary(env, t, &b) && b.size == n &&
           memcmp(b.data, text, n) == 0;
}

static int hex(unsigned char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A url-encoded form (k=v&k2=v2) with the values of secret fields (their decoded names
 * checked) replaced; the same term when none is. */
static ERL_NIF_TERM redact_form(ErlNifEnv *env, ERL_NIF_TERM form, const es_patterns *p) {
    static const char mark[] = "%5BREDACTED%5D";
    ErlNifBinary in;
    if (!enif_inspect_binary(env, form, &in)) return form;
    ErlNifBinary out;
    if (!enif_alloc_binary(in.size + 16 * (in.size / 2 + 1), &out)) return form;
    size_t o = 0;
    bool changed = false;
    for (size_t at = 0; at <= in.size;) {
        size_t end = at;
        while (end < in.size && in.data[end] != '&') end++;
        size_t eq = at;
        while (eq < end && in.data[eq] != '=') eq++;
        /* the field's name, decoded, as a binary key to test */
        unsigned char name[256];
        size_t n = 0;
        for (size_t i = at; i < eq && n < sizeof name; i++) {
            unsigned char c = in.data[i];
            if (c == '+') c = ' ';
            if (c == '%' && i + 2 < eq && hex(in.data[i + 1]) >= 0 && hex(in.data[i + 2]) >= 0) {
                c = (unsigned char)(hex(in.data[i + 1]) * 16 + hex(in.data[i + 2]));
                i += 2;
            }
            name[n++] = c;
        }
        bool hide = eq < end && secret_name(name, n, p);
        if (o) out.data[o++] = '&';
        size_t keep = hide ? eq + 1 - at : end - at;
        memcpy(out.data + o, in.data + at, keep);
        o += keep;
        if (hide) {
            memcpy(out.data + o, mark, sizeof mark - 1);
            o += sizeof mark - 1;
            changed = true;
        }
        at = end + 1;
    }
    if (!changed) {
        enif_release_binary(&out);
        return form;
    }
    enif_realloc_binary(&out, o);
    return enif_make_binary(env, &out);
}

static ERL_NIF_TERM walk_map(ErlNifEnv *env, ERL_NIF_TERM map, const es_patterns *p, int depth) {
    ErlNifMapIterator it;
    if (!enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST)) return map;
    ERL_NIF_TERM out = map, k, v, struct_key = enif_make_atom(env, "__struct__");
    ERL_NIF_TERM form_key = 0, form = 0; /* a LiveView form event's fields, url-encoded */
    bool is_form = false;
    while (enif_map_iterator_get_pair(env, &it, &k, &v)) {
        if (k != struct_key) {
            bool hide = secret(env, k, p);
            ERL_NIF_TERM nv = hide ? redacted(env) : walk(env, v, p, depth + 1);
            if (nv != v) enif_make_map_update(env, out, k, nv, &out);
            if (is_text(env, k, "type") && is_text(env, v, "form")) is_form = true;
            if (!hide && is_text(env, k, "value") && enif_is_binary(env, v)) form_key = k, form = v;
        }
        enif_map_iterator_next(env, &it);
    }
    enif_map_iterator_destroy(env, &it);
    if (is_form && form_key) {
        ERL_NIF_TERM nv = redact_form(env, form, p);
        if (nv != form) enif_make_map_update(env, out, form_key, nv, &out);
    }
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
