/*
 * pred.c — field predicates over encoded payloads. See pred.h for the contract.
 */
#include "pred.h"

#include <string.h>

#define MAX_PREDS 64 /* a list longer than this is checked field by field */

/* Sizes of the fixed-size terms by tag (payload.h); 0: sized otherwise. */
static const uint8_t fixed_size[256] = {[ES_ATOM_REF] = 9,
                                        [SMALL_INTEGER_EXT] = 2,
                                        [INTEGER_EXT] = 5,
                                        [NEW_FLOAT_EXT] = 9,
                                        [NIL_EXT] = 1};

/* Equal bytes; short ones (atoms, integers: most values compared) without a call: two
 * overlapping 8-byte words from 8 to 16 bytes, bytes below. */
static inline bool bytes_equal(const uint8_t *a, const uint8_t *b, size_t n) {
    if (n > 16) return memcmp(a, b, n) == 0;
    if (n >= 8) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8), memcpy(&b0, b, 8), memcpy(&a1, a + n - 8, 8), memcpy(&b1, b + n - 8, 8);
        return a0 == b0 && a1 == b1;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* The test itself, on the value at the end of the path (before negation). */
static bool test_value(const es_pred *p, es_pl_span v) {
    es_pl_num x;
    const uint8_t *data;
    size_t len;
    int c;
    switch (p->op) {
    case ES_OP_EQ:
        for (uint32_t i = 0; i < p->nvals; i++)
            if (p->lens[i] == v.len && bytes_equal(p->vals[i], v.p, v.len)) return true;
        return false;
    case ES_OP_PREFIX:
        return p->nvals == 1 && es_pl_binary(v, &data, &len) && len >= p->lens[0] &&
               memcmp(data, p->vals[0], p->lens[0]) == 0;
    default:
        if (!es_pl_number(v, &x)) return false;
        c = es_pl_num_cmp(&x, &p->a);
        switch (p->op) {
        case ES_OP_LT:
            return c < 0;
        case ES_OP_LE:
            return c <= 0;
        case ES_OP_GT:
            return c > 0;
        case ES_OP_GE:
            return c >= 0;
        case ES_OP_RANGE:
            return c >= 0 && es_pl_num_cmp(&x, &p->b) <= 0;
        default:
            return false;
        }
    }
}

bool es_pred_test(const es_pred *p, es_pl_span value) {
    bool found = true;
    for (uint8_t d = 0; found && d < p->depth; d++)
        found = es_pl_element(value, p->path[d], &value);
    bool r = found && test_value(p, value);
    return p->negate ? !r : r;
}

/* What a list of predicates says of an event without fields: only negations hold. */
static bool only_negations(const es_pred *preds, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!preds[i].negate) return false;
    return true;
}

/* An indexed map: each predicate's field found through the table (payload.h), at the
 * place it had in the payload before (hint) when the key there is the same. A damaged
 * table is refused: no fields, so only negations hold. */
static bool match_indexed(const es_pred *preds, size_t n, const uint8_t *payload, size_t len,
                          const uint8_t *index, uint32_t fields, uint8_t *hints, size_t *failed) {
    for (size_t i = 0; i < n; i++) {
        uint8_t none = UINT8_MAX, *hint = hints && i < ES_PRED_HINTS ? &hints[i] : &none;
        es_pl_span value;
        int found = es_pl_table_field(payload, len, index, fields, preds[i].field, hint, &value);
        if (found == ES_PL_MALFORMED) return only_negations(preds, n);
        *failed = i;
        if (found == ES_PL_ABSENT) {
            if (!preds[i].negate) return false; /* missing field */
            continue;
        }
        if (!es_pred_test(&preds[i], value)) return false;
    }
    return true;
}

bool es_preds_match_hinted(const es_pred *preds, size_t n, const uint8_t *payload, size_t len,
                           uint8_t *hints) {
    size_t failed;
    return es_preds_match_at(preds, n, payload, len, hints, &failed);
}

bool es_preds_match_at(const es_pred *preds, size_t n, const uint8_t *payload, size_t len,
                       uint8_t *hints, size_t *failed) {
    *failed = n; /* none in particular (no payload, a malformed one, a long list) */
    if (n == 0) return true;
    uint32_t fields;
    size_t at;
    const uint8_t *index;
    bool map = payload && es_pl_map(payload, len, &fields, &at, &index);
    if (map && index) return match_indexed(preds, n, payload, len, index, fields, hints, failed);
    if (n > MAX_PREDS) {
        for (size_t i = 0; i < n; i += MAX_PREDS)
            if (!es_preds_match(preds + i, n - i < MAX_PREDS ? n - i : MAX_PREDS, payload, len))
                return false;
        return true;
    }
    /* One pass over the fields (payload.h: a map of atom-ref keys), each field's value
     * tested by the predicates on it: the first that fails ends it. A malformed (or
     * missing) payload has no fields: only negations hold then. */
    uint64_t seen = 0, all = n == 64 ? UINT64_MAX : (UINT64_C(1) << n) - 1;
    if (map) {
        for (uint32_t f = 0; f < fields && seen != all; f++) {
            size_t key_at = at, vsz;
            /* Most keys are atoms and most values fixed-size scalars: sized by a table. */
            size_t ksz = len - at >= 9 && payload[at] == ES_ATOM_REF
                             ? 9
                             : (at < len ? es_pl_value_size(payload + at, len - at) : 0);
            vsz = ksz && len - at > ksz ? fixed_size[payload[at + ksz]] : 0;
            if (ksz && (!vsz || vsz > len - at - ksz))
                vsz = es_pl_value_size(payload + at + ksz, len - at - ksz);
            if (!vsz) {
                seen = 0, map = false;
                break;
            }
            at += ksz + vsz;
            if (ksz != 9 || payload[key_at] != ES_ATOM_REF) continue; /* no atom */
            uint64_t key;
            memcpy(&key, payload + key_at + 1, 8);
            for (size_t i = 0; i < n; i++) {
                if (preds[i].field != key) continue;
                seen |= UINT64_C(1) << i;
                if (!es_pred_test(&preds[i], (es_pl_span){payload + key_at + 9, vsz})) {
                    *failed = i;
                    return false;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!(seen >> i & 1) && !preds[i].negate) {
            *failed =
                map ? i : n; /* missing field (a payload without fields: none in particular) */
            return false;
        }
    return true;
}

bool es_preds_match(const es_pred *preds, size_t n, const uint8_t *payload, size_t len) {
    return es_preds_match_hinted(preds, n, payload, len, NULL);
}
