/*
 * etf.h — the payload term format (payload.h) from and to Erlang terms: encoding into a
 * caller-owned buffer, and decoding back.
 *
 * The encoder is the one writer of payloads, and writes each term one way (payload.h,
 * "Canonical"): a map field's value is always encoded at depth ES_PL_FIELD_DEPTH, by
 * etf_map_term() and etf_field_term() alike, so that a value encoded on its own for a
 * comparison has the bytes it has inside a payload.
 *
 * etf_map_*() build a map payload from fields, the format of every stored event,
 * without building the map as a term first.
 *
 * Thread-safety: a buffer belongs to one thread at a time. The only shared state is
 * the term-layout check etf_load() makes once, before any NIF runs.
 */
#ifndef ES_ETF_H
#define ES_ETF_H

#include "payload.h"

#include <erl_nif.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct etf_buf {
    uint8_t *data;
    size_t len, cap;
    size_t map_at;       /* where the open map's arity goes */
    uint32_t map_fields; /* fields written so far */
} etf_buf;

/* Once, when the library loads: checks the runtime's term layout (see etf.c). */
void etf_load(ErlNifEnv *env);

/* enif_get_int64(), without a call into the runtime for a small integer. */
bool etf_get_int64(ErlNifEnv *env, ERL_NIF_TERM t, int64_t *v);

void etf_free(etf_buf *b);

/* Appends one term (no version byte). */
bool etf_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* A whole payload image: version byte + term. */
bool etf_encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* The payload image of `map` without the n keys of `skip`, each of which the map holds
 * (the same bytes as etf_encode() of the map they were removed from); *fields: the
 * fields left (nothing is written when none are). */
#define ETF_FLATMAP_KEYS 32 /* maps this small iterate in key order */
bool etf_encode_without(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM map, const ERL_NIF_TERM *skip,
                        unsigned n, size_t *fields);

/* A map field's value as it is encoded inside a payload (no version byte). */
bool etf_field_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* Decodes a whole image written by this module; false when it is malformed. */
bool etf_decode(ErlNifEnv *env, const uint8_t *data, size_t len, ERL_NIF_TERM *out);

/* Decodes one term found inside a payload (no version byte), e.g. a field's value. */
bool etf_decode_value(ErlNifEnv *env, const uint8_t *data, size_t len, ERL_NIF_TERM *out);

/* Map payloads: etf_map_begin() (version byte included), fields, etf_map_end(). */
bool etf_map_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM key, ERL_NIF_TERM value);
/* A field whose value is already encoded (etf_field_term() bytes). */
bool etf_map_encoded(etf_buf *b, ERL_NIF_TERM key, const uint8_t *value, size_t len);

/* ---- inline writers ------------------------------------------------------------------
 * The tracer writes a map of two or three small fields per event; a call per byte
 * group would cost more than the bytes. */

bool etf_grow(etf_buf *b, size_t n); /* room for n more bytes; false when out of memory */

static inline bool etf_reserve(etf_buf *b, size_t n) {
    return b->len + n <= b->cap || etf_grow(b, n);
}

static inline void etf_reset(etf_buf *b) {
    b->len = 0;
    b->map_fields = 0;
}

static inline void etf_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* always_inline: left to itself the compiler keeps these out of line, and the call costs
 * about as much as the integer. */
#define ETF_INLINE __attribute__((always_inline)) static inline

ETF_INLINE bool etf_put_int(etf_buf *b, int64_t v) {
    if (!etf_reserve(b, 11)) return false; /* the longest form: SMALL_BIG_EXT, 8 digits */
    uint8_t *p = b->data + b->len;
    if (v >= 0 && v <= 255) {
        p[0] = SMALL_INTEGER_EXT, p[1] = (uint8_t)v;
        b->len += 2;
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        p[0] = INTEGER_EXT;
        etf_be32(p + 1, (uint32_t)v);
        b->len += 5;
    } else {
        uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        uint8_t n = 0;
        for (; mag; mag >>= 8) p[3 + n++] = (uint8_t)mag;
        p[0] = SMALL_BIG_EXT, p[1] = n, p[2] = v < 0;
        b->len += 3 + (size_t)n;
    }
    return true;
}

static inline bool etf_put_atom(etf_buf *b, ERL_NIF_TERM atom) {
    if (!etf_reserve(b, 1 + sizeof atom)) return false;
    b->data[b->len] = ES_ATOM_REF;
    memcpy(b->data + b->len + 1, &atom, sizeof atom);
    b->len += 1 + sizeof atom;
    return true;
}

static inline bool etf_map_begin(etf_buf *b) {
    b->map_fields = 0;
    if (!etf_reserve(b, 6)) return false;
    uint8_t *p = b->data + b->len;
    p[0] = ETF_VERSION, p[1] = MAP_EXT, p[2] = p[3] = p[4] = p[5] = 0; /* arity: map_end */
    b->map_at = b->len + 2;
    b->len += 6;
    return true;
}

static inline bool etf_map_key(etf_buf *b, ERL_NIF_TERM key) {
    b->map_fields++;
    return etf_put_atom(b, key);
}

ETF_INLINE bool etf_map_int(etf_buf *b, ERL_NIF_TERM key, int64_t value) {
    return etf_map_key(b, key) && etf_put_int(b, value);
}

static inline void etf_map_end(etf_buf *b) {
    etf_be32(b->data + b->map_at, b->map_fields);
}

#endif
