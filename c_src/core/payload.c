/*
 * payload.c — byte-level readers of the payload format. See payload.h for the format
 * and the contract; nothing here builds an Erlang term.
 */
#include "payload.h"
#include "intern.h"

#include <string.h>

/* Nesting a reader follows: the encoder nests direct terms ES_PL_DIRECT_DEPTH deep
 * under a field (whose map is one more), and everything deeper is a blob. */
#define MAX_DEPTH (ES_PL_DIRECT_DEPTH + 2)

uint64_t es_pl_hash(const uint8_t *bytes, size_t len) {
    return es_hash_bytes(bytes, len, ES_PL_HASH_SEED) | 1;
}

static inline uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t term_size(const uint8_t *p, size_t left, int depth) {
    if (left < 1 || depth > MAX_DEPTH) return 0;
    size_t at, count;
    switch (p[0]) {
    case SMALL_BIG_EXT:
        return left >= 3 && left >= 3u + p[1] ? 3u + p[1] : 0;
    case SMALL_TUPLE_EXT:
        if (left < 2) return 0;
        count = p[1], at = 2;
        break;
    case LARGE_TUPLE_EXT:
    case LIST_EXT: /* elements, then the tail */
    case MAP_EXT:  /* key and value per entry */
        if (left < 5) return 0;
        count = be32(p + 1), at = 5;
        if (p[0] == LIST_EXT) count += 1;
        if (p[0] == MAP_EXT) count *= 2;
        break;
    default: /* the scalars of es_pl_value_size(), or a tag the encoder never writes */
        return p[0] == ES_ATOM_REF || p[0] == SMALL_INTEGER_EXT || p[0] == INTEGER_EXT ||
                       p[0] == NEW_FLOAT_EXT || p[0] == NIL_EXT || p[0] == BINARY_EXT ||
                       p[0] == ES_ETF_BLOB
                   ? es_pl_value_size(p, left)
                   : 0;
    }
    for (size_t i = 0; i < count; i++) {
        /* Elements are mostly scalars: sized inline, containers by recursion. */
        uint8_t tag = at < left ? p[at] : 0;
        size_t sz = tag == SMALL_TUPLE_EXT || tag == LARGE_TUPLE_EXT || tag == LIST_EXT ||
                            tag == MAP_EXT || tag == SMALL_BIG_EXT
                        ? term_size(p + at, left - at, depth + 1)
                        : es_pl_value_size(p + at, left - at);
        if (!sz) return 0;
        at += sz;
    }
    return at;
}

size_t es_pl_term_size(const uint8_t *p, size_t left) {
    return term_size(p, left, 0);
}

/* Field i of a map found by es_pl_map(): its key's offset and its value; the next
 * field's key offset in *next. False when the image is malformed there. */
static bool field_at(const uint8_t *payload, size_t len, const uint8_t *index, uint32_t i,
                     uint32_t count, size_t at, size_t *key_at, es_pl_span *value, size_t *next) {
    if (index) {
        size_t k = (size_t)index[2 * i] << 8 | index[2 * i + 1];
        size_t end = i + 1 < count ? (size_t)index[2 * i + 2] << 8 | index[2 * i + 3] : len;
        size_t ksz = k < end && end <= len ? es_pl_value_size(payload + k, end - k) : 0;
        if (!ksz || k + ksz >= end) return false;
        *key_at = k, *value = (es_pl_span){payload + k + ksz, end - k - ksz}, *next = end;
        return true;
    }
    size_t ksz = at < len ? es_pl_value_size(payload + at, len - at) : 0;
    size_t vsz = ksz && at + ksz < len ? es_pl_value_size(payload + at + ksz, len - at - ksz) : 0;
    if (!vsz) return false;
    *key_at = at, *value = (es_pl_span){payload + at + ksz, vsz}, *next = at + ksz + vsz;
    return true;
}

/* The atom word of a field's key, when it is an atom (fields are named by atoms). */
static inline bool atom_key(const uint8_t *payload, size_t key_at, es_pl_span value,
                            uint64_t *word) {
    if (payload[key_at] != ES_ATOM_REF || value.p != payload + key_at + 9) return false;
    memcpy(word, payload + key_at + 1, 8);
    return true;
}

bool es_pl_fields(const uint8_t *payload, size_t len, es_pl_field_fn fn, void *ctx) {
    uint32_t fields;
    size_t at;
    const uint8_t *index;
    if (!es_pl_map(payload, len, &fields, &at, &index)) return false;
    for (uint32_t i = 0; i < fields; i++) {
        size_t key_at;
        es_pl_span value;
        uint64_t key;
        if (!field_at(payload, len, index, i, fields, at, &key_at, &value, &at)) return false;
        if (atom_key(payload, key_at, value, &key) && !fn(key, value, ctx)) return true;
    }
    return true;
}

bool es_pl_field(const uint8_t *payload, size_t len, uint64_t key, es_pl_span *out) {
    uint32_t fields;
    size_t at;
    const uint8_t *index;
    if (!es_pl_map(payload, len, &fields, &at, &index)) return false;
    for (uint32_t i = 0; i < fields; i++) {
        if (index) { /* only the key asked for has its value sized */
            size_t k = (size_t)index[2 * i] << 8 | index[2 * i + 1];
            uint64_t word;
            if (k + 9 > len || payload[k] != ES_ATOM_REF) continue;
            memcpy(&word, payload + k + 1, 8);
            if (word != key) continue;
        }
        size_t key_at;
        es_pl_span value;
        uint64_t word;
        if (!field_at(payload, len, index, i, fields, at, &key_at, &value, &at)) return false;
        if (atom_key(payload, key_at, value, &word) && word == key) {
            *out = value;
            return true;
        }
    }
    return false;
}

bool es_pl_element(es_pl_span t, uint32_t index, es_pl_span *out) {
    const uint8_t *p = t.p;
    size_t len = t.len, at;
    uint32_t count;
    if (len < 1) return false;
    if (p[0] == SMALL_TUPLE_EXT && len >= 2) {
        count = p[1], at = 2;
    } else if ((p[0] == LARGE_TUPLE_EXT || p[0] == LIST_EXT) && len >= 5) {
        count = be32(p + 1), at = 5;
        /* A list's elements are only its elements when it is proper. */
        if (p[0] == LIST_EXT) {
            size_t end = at;
            for (uint32_t i = 0; i < count; i++) {
                size_t sz = term_size(p + end, len - end, 1);
                if (!sz) return false;
                end += sz;
            }
            if (end >= len || p[end] != NIL_EXT) return false;
        }
    } else {
        return false;
    }
    if (index >= count) return false;
    for (uint32_t i = 0;; i++) {
        size_t sz = term_size(p + at, len - at, 1);
        if (!sz) return false;
        if (i == index) {
            *out = (es_pl_span){p + at, sz};
            return true;
        }
        at += sz;
    }
}

bool es_pl_number(es_pl_span t, es_pl_num *out) {
    const uint8_t *x = t.p;
    size_t left = t.len;
    if (left < 1) return false;
    out->is_float = false;
    switch (x[0]) {
    case SMALL_INTEGER_EXT:
        if (left < 2) return false;
        out->i = x[1];
        return true;
    case INTEGER_EXT:
        if (left < 5) return false;
        out->i = (int32_t)be32(x + 1);
        return true;
    case SMALL_BIG_EXT: {
        /* The encoder writes up to 8 digit bytes: magnitudes up to 2^64 - 1. */
        if (left < 3 || x[1] > 8 || left < 3u + x[1]) return false;
        uint64_t mag = 0;
        for (int i = x[1] - 1; i >= 0; i--) mag = mag << 8 | x[3 + i];
        if (x[2] == 0 && mag <= INT64_MAX) {
            out->i = (int64_t)mag;
        } else if (x[2] != 0 && mag <= (uint64_t)INT64_MAX + 1) {
            out->i = (int64_t)(0 - mag);
        } else { /* beyond int64: still a number, compared as a double */
            out->is_float = true;
            out->d = x[2] ? -(double)mag : (double)mag;
        }
        return true;
    }
    case NEW_FLOAT_EXT: {
        if (left < 9) return false;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | x[1 + i];
        out->is_float = true;
        memcpy(&out->d, &bits, 8);
        return true;
    }
    default:
        return false;
    }
}

int es_pl_num_cmp(const es_pl_num *a, const es_pl_num *b) {
    if (!a->is_float && !b->is_float) return (a->i > b->i) - (a->i < b->i);
    /* Mixed or floats: long double holds every int64 exactly (x86's 64-bit mantissa). */
    long double x = a->is_float ? (long double)a->d : (long double)a->i;
    long double y = b->is_float ? (long double)b->d : (long double)b->i;
    return (x > y) - (x < y);
}

bool es_pl_binary(es_pl_span t, const uint8_t **data, size_t *len) {
    const uint8_t *p = t.p;
    if (t.len >= 5 && p[0] == BINARY_EXT) {
        *data = p + 5;
        *len = be32(p + 1);
        return *len <= t.len - 5;
    }
    /* A large binary is a blob: a term_to_binary image, 131 109 length bytes. */
    if (t.len >= 11 && p[0] == ES_ETF_BLOB && p[5] == ETF_VERSION && p[6] == BINARY_EXT) {
        *data = p + 11;
        *len = be32(p + 7);
        return *len <= t.len - 11;
    }
    return false;
}

bool es_pl_atom(es_pl_span t, uint64_t *word) {
    if (t.len != 9 || t.p[0] != ES_ATOM_REF) return false;
    memcpy(word, t.p + 1, 8);
    return true;
}
