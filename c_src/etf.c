/*
 * etf.c — a direct encoder for small terms, falling back to enif_term_to_binary().
 * See etf.h for the contract.
 */
#include "etf.h"

#include <string.h>

#define ETF_VERSION 131
#define SMALL_INTEGER_EXT 97
#define INTEGER_EXT 98
#define NEW_FLOAT_EXT 70
#define SMALL_TUPLE_EXT 104
#define LARGE_TUPLE_EXT 105
#define NIL_EXT 106
#define LIST_EXT 108
#define BINARY_EXT 109
#define SMALL_BIG_EXT 110
#define MAP_EXT 116
#define SMALL_ATOM_UTF8_EXT 119
#define ATOM_UTF8_EXT 118

#define DIRECT_DEPTH 8      /* deeper terms go to enif_term_to_binary() */
#define DIRECT_BINARY 4096  /* so do larger binaries */
#define DIRECT_ELEMENTS 256 /* and longer lists, tuples and maps */

static bool reserve(etf_buf *b, size_t n) {
    if (b->len + n <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *d = enif_realloc(b->data, cap);
    if (!d) return false;
    b->data = d;
    b->cap = cap;
    return true;
}

static inline bool put(etf_buf *b, const void *p, size_t n) {
    if (!reserve(b, n)) return false;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static inline bool put_u8(etf_buf *b, uint8_t v) {
    return put(b, &v, 1);
}

static inline bool put_u32(etf_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return put(b, x, 4);
}

void etf_reset(etf_buf *b) {
    b->len = 0;
    b->map_fields = 0;
}

void etf_free(etf_buf *b) {
    enif_free(b->data);
    memset(b, 0, sizeof *b);
}

static bool put_int(etf_buf *b, int64_t v) {
    if (v >= 0 && v <= 255) return put_u8(b, SMALL_INTEGER_EXT) && put_u8(b, (uint8_t)v);
    if (v >= INT32_MIN && v <= INT32_MAX) return put_u8(b, INTEGER_EXT) && put_u32(b, (uint32_t)v);
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    uint8_t digits[8], n = 0;
    while (mag) {
        digits[n++] = (uint8_t)mag;
        mag >>= 8;
    }
    return put_u8(b, SMALL_BIG_EXT) && put_u8(b, n) && put_u8(b, v < 0) && put(b, digits, n);
}

static bool put_atom_text(etf_buf *b, const char *name, size_t len) {
    if (len <= 255)
        return put_u8(b, SMALL_ATOM_UTF8_EXT) && put_u8(b, (uint8_t)len) && put(b, name, len);
    return put_u8(b, ATOM_UTF8_EXT) && put_u8(b, (uint8_t)(len >> 8)) && put_u8(b, (uint8_t)len) &&
           put(b, name, len);
}

static bool fallback(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    ErlNifBinary bin;
    if (!enif_term_to_binary(env, t, &bin)) return false;
    bool ok = put(b, bin.data + 1, bin.size - 1); /* drop the version byte */
    enif_release_binary(&bin);
    return ok;
}

static bool encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t, int depth) {
    if (depth > DIRECT_DEPTH) return fallback(env, b, t);
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_ATOM: {
        /* OTP 25 reads atom text as Latin-1 only (atoms with other characters fall
         * back); ETF wants UTF-8, so characters 128..255 become two bytes. */
        char latin1[256], utf8[512];
        int n = enif_get_atom(env, t, latin1, sizeof latin1, ERL_NIF_LATIN1);
        if (n <= 0) return fallback(env, b, t);
        size_t len = 0;
        for (int i = 0; i < n - 1; i++) {
            uint8_t c = (uint8_t)latin1[i];
            if (c < 128) {
                utf8[len++] = (char)c;
            } else {
                utf8[len++] = (char)(0xc0 | c >> 6);
                utf8[len++] = (char)(0x80 | (c & 0x3f));
            }
        }
        return put_atom_text(b, utf8, len);
    }
    case ERL_NIF_TERM_TYPE_INTEGER: {
        ErlNifSInt64 v;
        return enif_get_int64(env, t, &v) ? put_int(b, v) : fallback(env, b, t);
    }
    case ERL_NIF_TERM_TYPE_FLOAT: {
        double d;
        if (!enif_get_double(env, t, &d)) return fallback(env, b, t);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        uint8_t x[9] = {NEW_FLOAT_EXT};
        for (int i = 0; i < 8; i++) x[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
        return put(b, x, 9);
    }
    case ERL_NIF_TERM_TYPE_BITSTRING: {
        ErlNifBinary bin;
        if (!enif_inspect_binary(env, t, &bin) || bin.size > DIRECT_BINARY)
            return fallback(env, b, t); /* bitstrings with a partial byte, or large */
        return put_u8(b, BINARY_EXT) && put_u32(b, (uint32_t)bin.size) &&
               put(b, bin.data, bin.size);
    }
    case ERL_NIF_TERM_TYPE_TUPLE: {
        const ERL_NIF_TERM *el;
        int arity;
        if (!enif_get_tuple(env, t, &arity, &el) || arity > DIRECT_ELEMENTS)
            return fallback(env, b, t);
        if (!(arity <= 255 ? put_u8(b, SMALL_TUPLE_EXT) && put_u8(b, (uint8_t)arity)
                           : put_u8(b, LARGE_TUPLE_EXT) && put_u32(b, (uint32_t)arity)))
            return false;
        for (int i = 0; i < arity; i++)
            if (!encode(env, b, el[i], depth + 1)) return false;
        return true;
    }
    case ERL_NIF_TERM_TYPE_LIST: {
        if (enif_is_empty_list(env, t)) return put_u8(b, NIL_EXT);
        size_t start = b->len;
        ERL_NIF_TERM list = t;
        if (!put_u8(b, LIST_EXT) || !put_u32(b, 0)) return false;
        uint32_t n = 0;
        ERL_NIF_TERM head;
        while (enif_get_list_cell(env, t, &head, &t)) {
            if (++n > DIRECT_ELEMENTS) {
                b->len = start;
                return fallback(env, b, list);
            }
            if (!encode(env, b, head, depth + 1)) return false;
        }
        if (!encode(env, b, t, depth + 1)) return false; /* [] or an improper tail */
        uint8_t *p = b->data + start + 1;
        p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8),
        p[3] = (uint8_t)n;
        return true;
    }
    case ERL_NIF_TERM_TYPE_MAP: {
        size_t n;
        if (!enif_get_map_size(env, t, &n) || n > DIRECT_ELEMENTS) return fallback(env, b, t);
        ErlNifMapIterator it;
        if (!enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST))
            return fallback(env, b, t);
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
        return fallback(env, b, t);
    }
}

bool etf_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    return encode(env, b, t, 0);
}

bool etf_encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t) {
    return put_u8(b, ETF_VERSION) && etf_term(env, b, t);
}

bool etf_map_begin(etf_buf *b) {
    b->map_fields = 0;
    if (!put_u8(b, ETF_VERSION) || !put_u8(b, MAP_EXT)) return false;
    b->map_at = b->len;
    return put_u32(b, 0);
}

static bool key(etf_buf *b, const char *k) {
    b->map_fields++;
    return put_atom_text(b, k, strlen(k));
}

bool etf_map_term(ErlNifEnv *env, etf_buf *b, const char *k, ERL_NIF_TERM value) {
    return key(b, k) && etf_term(env, b, value);
}

bool etf_map_int(etf_buf *b, const char *k, int64_t value) {
    return key(b, k) && put_int(b, value);
}

bool etf_map_atom(etf_buf *b, const char *k, const char *atom) {
    return key(b, k) && put_atom_text(b, atom, strlen(atom));
}

bool etf_map_encoded(etf_buf *b, const char *k, const uint8_t *image, size_t len) {
    return len > 1 && key(b, k) && put(b, image + 1, len - 1);
}

void etf_map_end(etf_buf *b) {
    uint8_t *p = b->data + b->map_at;
    uint32_t n = b->map_fields;
    p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8),
    p[3] = (uint8_t)n;
}
