/*
 * payload_writer.h — a tiny writer of stored payloads (payload.h) for the C tests: maps
 * with atom-ref keys, small terms, tuples, lists and stand-ins for the blobs pids and
 * references are stored as.
 */
#ifndef ES_TEST_PAYLOAD_WRITER_H
#define ES_TEST_PAYLOAD_WRITER_H

#include "payload.h"

#include <stdint.h>
#include <string.h>

typedef struct pl {
    uint8_t b[512];
    size_t n;
    size_t fields_at;
    uint32_t fields;
} pl;

static inline void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static inline void pl_begin(pl *p) {
    p->n = 0;
    p->b[p->n++] = ETF_VERSION;
    p->b[p->n++] = MAP_EXT;
    p->fields_at = p->n;
    p->n += 4;
    p->fields = 0;
}

static inline void pl_end(pl *p) {
    be32(p->b + p->fields_at, p->fields);
}

static inline void put_atom(pl *p, uint64_t word) {
    p->b[p->n++] = ES_ATOM_REF;
    memcpy(p->b + p->n, &word, 8);
    p->n += 8;
}

static inline void put_int(pl *p, int64_t v) {
    if (v >= 0 && v <= 255) {
        p->b[p->n++] = SMALL_INTEGER_EXT;
        p->b[p->n++] = (uint8_t)v;
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        p->b[p->n++] = INTEGER_EXT;
        be32(p->b + p->n, (uint32_t)v);
        p->n += 4;
    } else {
        uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        size_t at = p->n;
        p->n += 3;
        uint8_t k = 0;
        for (; mag; mag >>= 8) p->b[p->n++] = (uint8_t)mag, k++;
        p->b[at] = SMALL_BIG_EXT, p->b[at + 1] = k, p->b[at + 2] = v < 0;
    }
}

static inline void put_float(pl *p, double d) {
    uint64_t bits;
    memcpy(&bits, &d, 8);
    p->b[p->n++] = NEW_FLOAT_EXT;
    for (int i = 0; i < 8; i++) p->b[p->n++] = (uint8_t)(bits >> (56 - 8 * i));
}

static inline void put_bin(pl *p, const char *s) {
    size_t len = strlen(s);
    p->b[p->n++] = BINARY_EXT;
    be32(p->b + p->n, (uint32_t)len);
    p->n += 4;
    memcpy(p->b + p->n, s, len);
    p->n += len;
}

static inline void key(pl *p, uint64_t word) {
    put_atom(p, word);
    p->fields++;
}

/* A tuple or a proper list of n elements: write the elements next (and, for a list,
 * put_nil() after them). */
static inline void put_tuple(pl *p, uint8_t n) {
    p->b[p->n++] = SMALL_TUPLE_EXT;
    p->b[p->n++] = n;
}

static inline void put_list(pl *p, uint32_t n) {
    p->b[p->n++] = LIST_EXT;
    be32(p->b + p->n, n);
    p->n += 4;
}

static inline void put_nil(pl *p) {
    p->b[p->n++] = NIL_EXT;
}

/* An opaque blob (how pids and references are stored), its bytes from a number. */
static inline void put_blob(pl *p, uint64_t n) {
    p->b[p->n++] = ES_ETF_BLOB;
    be32(p->b + p->n, 8);
    p->n += 4;
    memcpy(p->b + p->n, &n, 8);
    p->n += 8;
}

#endif
