/*
 * etf.c — the payload term format: a direct encoder and decoder for small terms,
 * with enif_term_to_binary()/enif_binary_to_term() for the rest. See etf.h.
 */
#include "etf.h"

#include <string.h>

#define DIRECT_DEPTH ES_PL_DIRECT_DEPTH
#define DIRECT_BINARY ES_PL_DIRECT_BINARY
#define DIRECT_ELEMENTS ES_PL_DIRECT_ELEMENTS

/* ---- immediate terms by their tag bits ---------------------------------------------- */

/* Small integers, atoms, [] and list cells are told apart by the low bits of the term
 * word, as the runtime lays them out on 64-bit machines (erl_term.h, unchanged since
 * R13): that skips enif_term_type() and enif_get_int64(), which are most of what
 * encoding an argument list or a return value cost the tracer. etf_load() checks the
 * layout against terms the runtime makes; when anything disagrees, `tags_known` stays
 * false and every term takes the enif_* way. */
#define TAG_SMALL_MASK 0xF
#define TAG_SMALL 0xF /* value << 4 | 0xF, value a signed 60-bit integer */
#define TAG_ATOM_MASK 0x3F
#define TAG_ATOM 0x0B
#define TAG_LIST_MASK 0x3
#define TAG_LIST 0x1 /* a pointer to a list cell */
#define TERM_NIL ((ERL_NIF_TERM)0x3B)

static bool tags_known;

static inline bool is_small(ERL_NIF_TERM t) {
    return tags_known && (t & TAG_SMALL_MASK) == TAG_SMALL;
}

static inline int64_t small_value(ERL_NIF_TERM t) {
    return (int64_t)t >> 4; /* arithmetic shift: gcc and clang, as the runtime itself */
}

static inline bool is_atom(ERL_NIF_TERM t) {
    return tags_known && (t & TAG_ATOM_MASK) == TAG_ATOM;
}

static inline bool is_nil(ERL_NIF_TERM t) {
    return tags_known && t == TERM_NIL;
}

static inline bool is_cons(ERL_NIF_TERM t) {
    return tags_known && (t & TAG_LIST_MASK) == TAG_LIST;
}

static bool small_is(ErlNifEnv *env, int64_t v) {
    ERL_NIF_TERM t = enif_make_int64(env, v);
    return (t & TAG_SMALL_MASK) == TAG_SMALL && small_value(t) == v;
}

void etf_load(ErlNifEnv *env) {
    tags_known = false;
    if (sizeof(ERL_NIF_TERM) != 8 || (-16 >> 4) != -1) return;
    const int64_t big = INT64_C(1) << 59; /* the first integer that is not small */
    bool ok = small_is(env, 0) && small_is(env, 1) && small_is(env, -1) &&
              small_is(env, 123456789) && small_is(env, -987654321) && small_is(env, big - 1) &&
              small_is(env, -big) && (enif_make_int64(env, big) & TAG_SMALL_MASK) != TAG_SMALL &&
              (enif_make_int64(env, -big - 1) & TAG_SMALL_MASK) != TAG_SMALL;
    const char *atoms[] = {"ok", "true", "false", "nil", "undefined", "elixir_scope"};
    for (size_t i = 0; ok && i < sizeof atoms / sizeof *atoms; i++) {
        ERL_NIF_TERM a = enif_make_atom(env, atoms[i]);
        ok = (a & TAG_ATOM_MASK) == TAG_ATOM && (a & TAG_SMALL_MASK) != TAG_SMALL;
    }
    ERL_NIF_TERM one = enif_make_int(env, 1), list = enif_make_list1(env, one), head, tail;
    ok = ok && enif_make_list(env, 0) == TERM_NIL && enif_is_empty_list(env, TERM_NIL) &&
         (list & TAG_LIST_MASK) == TAG_LIST &&
         (enif_make_tuple1(env, one) & TAG_LIST_MASK) != TAG_LIST &&
         enif_get_list_cell(env, list, &head, &tail) && head == one && tail == TERM_NIL;
    tags_known = ok;
}

bool etf_get_int64(ErlNifEnv *env, ERL_NIF_TERM t, int64_t *v) {
    if (is_small(t)) {
        *v = small_value(t);
        return true;
    }
    ErlNifSInt64 x;
    if (!enif_get_int64(env, t, &x)) return false;
    *v = x;
    return true;
}

/* ---- writing ---------------------------------------------------------------------- */

bool etf_grow(etf_buf *b, size_t n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *d = enif_realloc(b->data, cap);
    if (!d) return false;
    b->data = d;
    b->cap = cap;
    return true;
}

static inline bool put(etf_buf *b, const void *p, size_t n) {
    if (!etf_reserve(b, n)) return false;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static inline bool put_u8(etf_buf *b, uint8_t v) {
    return put(b, &v, 1);
}

static inline bool put_u32(etf_buf *b, uint32_t v) {
    uint8_t x[4];
    etf_be32(x, v);
    return put(b, x, 4);
}

void etf_free(etf_buf *b) {
    enif_free(b->data);
    memset(b, 0, sizeof *b);
}

static bool blob(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    ErlNifBinary bin;
    if (!enif_term_to_binary(env, t, &bin)) return false;
    bool ok = bin.size <= UINT32_MAX && put_u8(b, ES_ETF_BLOB) && put_u32(b, (uint32_t)bin.size) &&
              put(b, bin.data, bin.size);
    enif_release_binary(&bin);
    return ok;
}

static bool encode_list(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t, int depth);
/* Kept out of line: inlined, its large frame would be set up for every immediate too. */
__attribute__((noinline)) static bool encode_other(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t,
                                                   int depth);

/* Immediates inline (into the callers, encode_list() included, so an element costs no
 * call); everything else in encode_other(). */
__attribute__((always_inline)) static inline bool encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t,
                                                         int depth) {
    if (depth <= DIRECT_DEPTH) {
        if (is_small(t)) return etf_put_int(b, small_value(t));
        if (is_atom(t)) return etf_put_atom(b, t);
        if (is_nil(t)) return put_u8(b, NIL_EXT);
        if (is_cons(t)) return encode_list(env, b, t, depth);
    }
    return encode_other(env, b, t, depth);
}

__attribute__((noinline)) static bool encode_other(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t,
                                                   int depth) {
    if (depth > DIRECT_DEPTH) return blob(env, b, t);
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_ATOM:
        return etf_put_atom(b, t);
    case ERL_NIF_TERM_TYPE_INTEGER: {
        ErlNifSInt64 v;
        return enif_get_int64(env, t, &v) ? etf_put_int(b, v) : blob(env, b, t);
    }
    case ERL_NIF_TERM_TYPE_FLOAT: {
        double d;
        if (!enif_get_double(env, t, &d)) return blob(env, b, t);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        uint8_t x[9] = {NEW_FLOAT_EXT};
        for (int i = 0; i < 8; i++) x[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
        return put(b, x, 9);
    }
    case ERL_NIF_TERM_TYPE_BITSTRING: {
        ErlNifBinary bin;
        if (!enif_inspect_binary(env, t, &bin) || bin.size > DIRECT_BINARY)
            return blob(env, b, t); /* bitstrings with a partial byte, or large */
        return put_u8(b, BINARY_EXT) && put_u32(b, (uint32_t)bin.size) &&
               put(b, bin.data, bin.size);
    }
    case ERL_NIF_TERM_TYPE_TUPLE: {
        const ERL_NIF_TERM *el;
        int arity;
        if (!enif_get_tuple(env, t, &arity, &el) || arity > DIRECT_ELEMENTS) return blob(env, b, t);
        if (!(arity <= 255 ? put_u8(b, SMALL_TUPLE_EXT) && put_u8(b, (uint8_t)arity)
                           : put_u8(b, LARGE_TUPLE_EXT) && put_u32(b, (uint32_t)arity)))
            return false;
        for (int i = 0; i < arity; i++)
            if (!encode(env, b, el[i], depth + 1)) return false;
        return true;
    }
    case ERL_NIF_TERM_TYPE_LIST:
        if (enif_is_empty_list(env, t)) return put_u8(b, NIL_EXT);
        return encode_list(env, b, t, depth);
    case ERL_NIF_TERM_TYPE_MAP: {
        size_t n;
        if (!enif_get_map_size(env, t, &n) || n > DIRECT_ELEMENTS) return blob(env, b, t);
        ErlNifMapIterator it;
        if (!enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST))
            return blob(env, b, t);
        bool ok = put_u8(b, MAP_EXT) && put_u32(b, (uint32_t)n);
        ERL_NIF_TERM k, v;
        while (ok && enif_map_iterator_get_pair(env, &it, &k, &v)) {
            ok = encode(env, b, k, depth + 1) && encode(env, b, v, depth + 1);
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
        return ok;
    }
    default:
        return blob(env, b, t);
    }
}

/* A non-empty list. */
static bool encode_list(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t, int depth) {
    size_t start = b->len;
    ERL_NIF_TERM list = t, head;
    if (!put_u8(b, LIST_EXT) || !put_u32(b, 0)) return false;
    uint32_t n = 0;
    /* With the tags known, a term that is not a list cell ends the list without a call. */
    while ((!tags_known || is_cons(t)) && enif_get_list_cell(env, t, &head, &t)) {
        if (++n > DIRECT_ELEMENTS) {
            b->len = start;
            return blob(env, b, list);
        }
        if (!encode(env, b, head, depth + 1)) return false;
    }
    if (!encode(env, b, t, depth + 1)) return false; /* [] or an improper tail */
    etf_be32(b->data + start + 1, n);
    return true;
}

bool etf_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    return encode(env, b, t, 0);
}

/* A payload map of ES_PL_INDEX_FIELDS fields or more, with its table of key offsets
 * (payload.h); plain MAP_EXT when the image passes 64 KiB (u16 offsets). */
static bool encode_indexed_map(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t, size_t n) {
    size_t start = b->len, table = start + 6;
    if (!etf_reserve(b, 6 + 2 * n)) return false;
    b->data[start] = ETF_VERSION, b->data[start + 1] = ES_INDEXED_MAP;
    etf_be32(b->data + start + 2, (uint32_t)n);
    b->len += 6 + 2 * n;
    ErlNifMapIterator it;
    if (!enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST)) return false;
    ERL_NIF_TERM k, v;
    bool ok = true;
    for (size_t i = 0; ok && i < n && enif_map_iterator_get_pair(env, &it, &k, &v); i++) {
        size_t off = b->len - start;
        b->data[table + 2 * i] = (uint8_t)(off >> 8), b->data[table + 2 * i + 1] = (uint8_t)off;
        ok = encode(env, b, k, ES_PL_FIELD_DEPTH) && encode(env, b, v, ES_PL_FIELD_DEPTH);
        enif_map_iterator_next(env, &it);
    }
    enif_map_iterator_destroy(env, &it);
    if (!ok) return false;
    if (b->len - start > 0xFFFF) { /* too long for u16 offsets: drop the table */
        memmove(b->data + table, b->data + table + 2 * n, b->len - table - 2 * n);
        b->len -= 2 * n;
        b->data[start + 1] = MAP_EXT;
    }
    return true;
}

/* Whether k is one of the n keys in skip. */
static inline bool skipped(ERL_NIF_TERM k, const ERL_NIF_TERM *skip, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        if (skip[i] == k) return true;
    return false;
}

bool etf_encode_without(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM map, const ERL_NIF_TERM *skip,
                        unsigned nskip, size_t *fields) {
    size_t size;
    if (!enif_get_map_size(env, map, &size)) return false;
    if (nskip == 0 || size > ETF_FLATMAP_KEYS) {
        ERL_NIF_TERM rest = map;
        for (unsigned i = 0; i < nskip; i++) enif_make_map_remove(env, rest, skip[i], &rest);
        enif_get_map_size(env, rest, fields);
        return *fields == 0 || etf_encode(env, b, rest);
    }
    /* A small map iterates in key order, which removing keys keeps: the same bytes as
     * the map without them, encoded by etf_encode(). */
    size_t n = size >= nskip ? size - nskip : 0;
    *fields = n;
    if (n == 0) return true;
    bool indexed = tags_known && n >= ES_PL_INDEX_FIELDS;
    size_t start = b->len, table = start + 6;
    if (!etf_reserve(b, 6 + (indexed ? 2 * n : 0))) return false;
    b->data[start] = ETF_VERSION, b->data[start + 1] = indexed ? ES_INDEXED_MAP : MAP_EXT;
    etf_be32(b->data + start + 2, (uint32_t)n);
    b->len += 6 + (indexed ? 2 * n : 0);
    ErlNifMapIterator it;
    if (!enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST)) return false;
    ERL_NIF_TERM k, v;
    bool ok = true;
    size_t i = 0;
    for (; ok && enif_map_iterator_get_pair(env, &it, &k, &v); enif_map_iterator_next(env, &it)) {
        if (skipped(k, skip, nskip)) continue;
        if (i == n) { /* a skipped key was not in the map */
            ok = false;
            break;
        }
        if (indexed) {
            size_t off = b->len - start;
            b->data[table + 2 * i] = (uint8_t)(off >> 8), b->data[table + 2 * i + 1] = (uint8_t)off;
        }
        ok = encode(env, b, k, ES_PL_FIELD_DEPTH) && encode(env, b, v, ES_PL_FIELD_DEPTH);
        i++;
    }
    enif_map_iterator_destroy(env, &it);
    if (!ok || i != n) return false;
    if (indexed && b->len - start > 0xFFFF) { /* too long for u16 offsets: drop the table */
        memmove(b->data + table, b->data + table + 2 * n, b->len - table - 2 * n);
        b->len -= 2 * n;
        b->data[start + 1] = MAP_EXT;
    }
    return true;
}

bool etf_encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    size_t n;
    if (tags_known && !is_cons(t) && enif_is_map(env, t) && enif_get_map_size(env, t, &n) &&
        n >= ES_PL_INDEX_FIELDS && n <= DIRECT_ELEMENTS)
        return encode_indexed_map(env, b, t, n);
    return put_u8(b, ETF_VERSION) && etf_term(env, b, t);
}

bool etf_field_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    return encode(env, b, t, ES_PL_FIELD_DEPTH);
}

bool etf_map_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM k, ERL_NIF_TERM value) {
    return etf_map_key(b, k) && etf_field_term(env, b, value);
}

bool etf_map_encoded(etf_buf *b, ERL_NIF_TERM k, const uint8_t *value, size_t len) {
    return len > 0 && etf_map_key(b, k) && put(b, value, len);
}

/* ---- reading ---------------------------------------------------------------------- */

typedef struct reader {
    ErlNifEnv *env;
    const uint8_t *p, *end;
} reader;

static inline bool need(reader *r, size_t n) {
    return (size_t)(r->end - r->p) >= n;
}

static inline uint32_t get_u32(reader *r) {
    uint32_t v =
        (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return v;
}

static bool decode(reader *r, ERL_NIF_TERM *out, int depth);

/* Decodes n terms into an array (on the stack when small). */
static bool decode_many(reader *r, uint32_t n, ERL_NIF_TERM *stack, size_t stack_n,
                        ERL_NIF_TERM **items, int depth) {
    *items = n <= stack_n ? stack : enif_alloc(n * sizeof **items);
    if (!*items) return false;
    for (uint32_t i = 0; i < n; i++)
        if (!decode(r, &(*items)[i], depth + 1)) {
            if (*items != stack) enif_free(*items);
            return false;
        }
    return true;
}

static bool decode(reader *r, ERL_NIF_TERM *out, int depth) {
    ErlNifEnv *env = r->env;
    if (depth > DIRECT_DEPTH + 1 || !need(r, 1)) return false;
    uint8_t tag = *r->p++;
    switch (tag) {
    case ES_ATOM_REF:
        if (!need(r, sizeof *out)) return false;
        memcpy(out, r->p, sizeof *out);
        r->p += sizeof *out;
        return true;
    case SMALL_INTEGER_EXT:
        if (!need(r, 1)) return false;
        *out = enif_make_int(env, *r->p++);
        return true;
    case INTEGER_EXT:
        if (!need(r, 4)) return false;
        *out = enif_make_int(env, (int32_t)get_u32(r));
        return true;
    case SMALL_BIG_EXT: {
        if (!need(r, 2)) return false;
        uint8_t n = r->p[0], sign = r->p[1];
        r->p += 2;
        if (n > 8 || !need(r, n)) return false;
        uint64_t mag = 0;
        for (int i = n - 1; i >= 0; i--) mag = mag << 8 | r->p[i];
        r->p += n;
        *out = sign ? enif_make_int64(env, (int64_t)(0 - mag)) : enif_make_uint64(env, mag);
        return true;
    }
    case NEW_FLOAT_EXT: {
        if (!need(r, 8)) return false;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | r->p[i];
        r->p += 8;
        double d;
        memcpy(&d, &bits, 8);
        *out = enif_make_double(env, d);
        return true;
    }
    case BINARY_EXT: {
        if (!need(r, 4)) return false;
        uint32_t n = get_u32(r);
        if (!need(r, n)) return false;
        memcpy(enif_make_new_binary(env, n, out), r->p, n);
        r->p += n;
        return true;
    }
    case NIL_EXT:
        *out = enif_make_list(env, 0);
        return true;
    case SMALL_TUPLE_EXT:
    case LARGE_TUPLE_EXT: {
        uint32_t n;
        if (tag == SMALL_TUPLE_EXT) {
            if (!need(r, 1)) return false;
            n = *r->p++;
        } else {
            if (!need(r, 4)) return false;
            n = get_u32(r);
        }
        ERL_NIF_TERM stack[16], *items;
        if (!decode_many(r, n, stack, 16, &items, depth)) return false;
        *out = enif_make_tuple_from_array(env, items, n);
        if (items != stack) enif_free(items);
        return true;
    }
    case LIST_EXT: {
        if (!need(r, 4)) return false;
        uint32_t n = get_u32(r);
        ERL_NIF_TERM stack[16], *items, tail;
        if (!decode_many(r, n, stack, 16, &items, depth)) return false;
        bool ok = decode(r, &tail, depth + 1);
        if (ok) {
            *out = tail;
            for (uint32_t i = n; i-- > 0;) *out = enif_make_list_cell(env, items[i], *out);
        }
        if (items != stack) enif_free(items);
        return ok;
    }
    case ES_INDEXED_MAP: /* only a payload's own map: its table of key offsets is skipped */
    case MAP_EXT: {
        if (!need(r, 4)) return false;
        uint32_t n = get_u32(r);
        if (tag == ES_INDEXED_MAP) {
            if (depth != 0 || !need(r, 2 * (size_t)n)) return false;
            r->p += 2 * (size_t)n;
        }
        ERL_NIF_TERM stack[32], *kv;
        if (n > UINT32_MAX / 2 || !decode_many(r, 2 * n, stack, 32, &kv, depth)) return false;
        ERL_NIF_TERM ks[16], vs[16];
        ERL_NIF_TERM *k = n <= 16 ? ks : enif_alloc(n * sizeof *k);
        ERL_NIF_TERM *v = n <= 16 ? vs : enif_alloc(n * sizeof *v);
        bool ok = k && v;
        for (uint32_t i = 0; ok && i < n; i++) k[i] = kv[2 * i], v[i] = kv[2 * i + 1];
        ok = ok && enif_make_map_from_arrays(env, k, v, n, out);
        if (k && k != ks) enif_free(k);
        if (v && v != vs) enif_free(v);
        if (kv != stack) enif_free(kv);
        return ok;
    }
    case ES_ETF_BLOB: {
        if (!need(r, 4)) return false;
        uint32_t n = get_u32(r);
        if (!need(r, n) || enif_binary_to_term(env, r->p, n, out, 0) != n) return false;
        r->p += n;
        return true;
    }
    default:
        return false;
    }
}

bool etf_decode(ErlNifEnv *env, const uint8_t *data, size_t len, ERL_NIF_TERM *out) {
    reader r = {env, data, data + len};
    if (len < 1 || *r.p++ != ETF_VERSION) return false;
    return decode(&r, out, 0) && r.p == r.end;
}

bool etf_decode_value(ErlNifEnv *env, const uint8_t *data, size_t len, ERL_NIF_TERM *out) {
    reader r = {env, data, data + len};
    return decode(&r, out, ES_PL_FIELD_DEPTH) && r.p == r.end;
}
