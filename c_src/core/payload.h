/*
 * payload.h — the format of a stored event's payload, in one place for every C reader
 * and writer: the term encoder and decoder (etf.c), the predicate evaluator (pred.c),
 * the aggregations (agg.c, group.c) and the history queries (history.c, call_tree.c).
 *
 * Format: Erlang's external term format (version byte 131 first) with two private tags
 * that keep a round trip cheap inside one running VM:
 *   ES_ATOM_REF  (200) + 8 bytes: an atom as its term word. Atoms are global and never
 *                move, so decoding needs no atom-table lookup.
 *   ES_ETF_BLOB  (201) + u32 length + a term_to_binary image: any term the direct
 *                encoder leaves to enif_term_to_binary (pids, refs, funs, ports,
 *                integers beyond 64 bits, bitstrings, binaries over 4 KiB, terms deeper
 *                than ES_PL_DIRECT_DEPTH or longer than ES_PL_DIRECT_ELEMENTS).
 * Everything else — integers up to 64 bits, floats, binaries, lists (improper too),
 * tuples and maps — is standard ETF. A stored event's payload is always a map, the
 * event's fields other than the indexed ones (their keys mostly ES_ATOM_REFs):
 *   MAP_EXT (116) + u32 count + the key/value pairs, or, for a payload map of
 *     ES_PL_INDEX_FIELDS fields or more whose image stays under 64 KiB,
 *   ES_INDEXED_MAP (202) + u32 count + count u16s (big-endian): the offset of each key
 *     from the image's start, + the pairs as MAP_EXT has them. A field is then found,
 *     and its value's extent known, without sizing the fields before it.
 * Only the payload's own map is indexed; maps inside it are MAP_EXT.
 *
 * Canonical: the encoder writes each term in exactly one way (an integer in its
 * shortest form, a map in the runtime's iteration order, which two equal maps share),
 * and a field's value is always encoded at depth 1 (inside its map), so two fields hold
 * equal terms (===) exactly when their bytes are equal. That is what lets predicates
 * and state hashes compare bytes instead of terms. (Maps over 256 keys are blobs, whose
 * term_to_binary image follows the map's internal order; equal maps share it except for
 * keys whose 32-bit hashes collide, which nothing here accounts for.)
 *
 * Payloads are only valid in the VM that wrote them (atom words): dumps store
 * term_to_binary images of whole events instead (docs/FORMAT.md), and loading
 * re-encodes them.
 *
 * Thread-safety: pure functions over caller-owned bytes.
 */
#ifndef ES_PAYLOAD_H
#define ES_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
#define ES_ATOM_REF 200
#define ES_ETF_BLOB 201
#define ES_INDEXED_MAP 202

#define ES_PL_DIRECT_DEPTH 8      /* deeper terms become blobs */
#define ES_PL_DIRECT_BINARY 4096  /* so do larger binaries */
#define ES_PL_DIRECT_ELEMENTS 256 /* and longer lists, tuples and maps */
#define ES_PL_FIELD_DEPTH 1       /* the depth a field's value is encoded at */
#define ES_PL_INDEX_FIELDS 8      /* payload maps this wide get a key-offset table */

/* The digest of a field value's bytes kept with :state events (store.h: hash), and
 * compared by history queries. Never 0. */
#define ES_PL_HASH_SEED 0x5eed
uint64_t es_pl_hash(const uint8_t *bytes, size_t len);

/* A term inside a payload: its first byte (the tag) and its length. */
typedef struct es_pl_span {
    const uint8_t *p;
    size_t len;
} es_pl_span;

/* Length of the term at p (no version byte), or 0 when it is malformed or nested past
 * what the encoder writes. */
size_t es_pl_term_size(const uint8_t *p, size_t left);

/* The same, inline for the terms fields mostly hold (atoms, integers, floats, binaries,
 * []); containers go to es_pl_term_size(). */
static inline size_t es_pl_value_size(const uint8_t *p, size_t left) {
    if (left < 1) return 0;
    size_t n;
    switch (p[0]) {
    case ES_ATOM_REF:
    case NEW_FLOAT_EXT:
        return left >= 9 ? 9 : 0;
    case SMALL_INTEGER_EXT:
        return left >= 2 ? 2 : 0;
    case INTEGER_EXT:
        return left >= 5 ? 5 : 0;
    case NIL_EXT:
        return 1;
    case BINARY_EXT:
    case ES_ETF_BLOB:
        if (left < 5) return 0;
        n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        return left - 5 >= n ? 5 + n : 0;
    case SMALL_TUPLE_EXT:
    case LARGE_TUPLE_EXT:
    case LIST_EXT:
    case MAP_EXT:
    case SMALL_BIG_EXT:
        return es_pl_term_size(p, left);
    default:
        return 0;
    }
}

/* The value of field `key` (an atom's term word) in a whole payload image (version
 * byte first). False when the payload is no map or has no such field. */
bool es_pl_field(const uint8_t *payload, size_t len, uint64_t key, es_pl_span *out);

/* What a lookup in an indexed map's table finds. */
enum { ES_PL_MALFORMED = -1, ES_PL_ABSENT = 0, ES_PL_FOUND = 1 };

/* Entry i of an indexed map's table (es_pl_map() gave it, and its count): ES_PL_FOUND
 * and the value's span when its key is the atom `key`, ES_PL_MALFORMED when the entry
 * is not within the image. */
static inline int es_pl_table_entry(const uint8_t *payload, size_t len, const uint8_t *index,
                                    uint32_t i, uint32_t count, uint64_t key, es_pl_span *out) {
    size_t k = (size_t)index[2 * i] << 8 | index[2 * i + 1];
    size_t end = i + 1 < count ? (size_t)index[2 * i + 2] << 8 | index[2 * i + 3] : len;
    uint64_t word;
    if (end > len || k >= end) return ES_PL_MALFORMED;
    if (k + 9 >= end || payload[k] != ES_ATOM_REF) return ES_PL_ABSENT; /* no atom key */
    memcpy(&word, payload + k + 1, 8);
    if (word != key) return ES_PL_ABSENT;
    *out = (es_pl_span){payload + k + 9, end - k - 9};
    return ES_PL_FOUND;
}

/* Field `key` of an indexed map found by es_pl_map(), looked for first at *hint (any
 * value to begin with), which remembers where it was: events of one kind share their
 * layout, so a scan that passes one hint per field for every event finds each field at
 * once. ES_PL_FOUND (and the value), ES_PL_ABSENT, or ES_PL_MALFORMED when the table
 * points outside the image where it was read. Inline: scans look up a few fields of
 * every event. */
static inline int es_pl_table_field(const uint8_t *payload, size_t len, const uint8_t *index,
                                    uint32_t count, uint64_t key, uint8_t *hint, es_pl_span *out) {
    int r = *hint < count ? es_pl_table_entry(payload, len, index, *hint, count, key, out)
                          : ES_PL_ABSENT;
    for (uint32_t i = 0; r == ES_PL_ABSENT && i < count; i++)
        if ((r = es_pl_table_entry(payload, len, index, i, count, key, out)) == ES_PL_FOUND)
            *hint = (uint8_t)(i < 255 ? i : 255);
    return r;
}

/* The fields of a whole payload image: the count and where the first key is, and, for
 * an indexed map, its table of key offsets (NULL otherwise). False when it is no map. */
static inline bool es_pl_map(const uint8_t *payload, size_t len, uint32_t *count, size_t *first,
                             const uint8_t **index) {
    if (len < 6 || payload[0] != ETF_VERSION) return false;
    uint32_t n = (uint32_t)payload[2] << 24 | (uint32_t)payload[3] << 16 |
                 (uint32_t)payload[4] << 8 | payload[5];
    if (payload[1] == MAP_EXT) {
        *count = n, *first = 6, *index = NULL;
        return true;
    }
    if (payload[1] != ES_INDEXED_MAP || n > (len - 6) / 2) return false;
    *count = n, *first = 6 + 2 * (size_t)n, *index = payload + 6;
    return true;
}

/* Visits every field of a whole payload image in its stored order; stops early when
 * fn returns false. Returns false when the payload is malformed. */
typedef bool (*es_pl_field_fn)(uint64_t key, es_pl_span value, void *ctx);
bool es_pl_fields(const uint8_t *payload, size_t len, es_pl_field_fn fn, void *ctx);

/* Element `index` (0-based) of a tuple or a proper list term; false when the term is
 * neither or is shorter. */
bool es_pl_element(es_pl_span term, uint32_t index, es_pl_span *out);

/* Numbers: integers of the direct encoding (64 bits) and floats. */
typedef struct es_pl_num {
    bool is_float;
    int64_t i;
    double d;
} es_pl_num;
bool es_pl_number(es_pl_span term, es_pl_num *out);

/* -1, 0 or 1 as a compares with b numerically (as Erlang's < and == do). */
int es_pl_num_cmp(const es_pl_num *a, const es_pl_num *b);

/* The bytes of a binary term (a direct one, or a blob holding one). */
bool es_pl_binary(es_pl_span term, const uint8_t **data, size_t *len);

/* An atom term's word. */
bool es_pl_atom(es_pl_span term, uint64_t *word);

#endif
