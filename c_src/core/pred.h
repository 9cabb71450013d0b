/*
 * pred.h — predicates on the fields of a stored event, evaluated on its encoded payload
 * (payload.h) without building any Erlang term.
 *
 * Contract: a predicate names a field (an atom's term word), optionally a path of
 * element indexes into tuples and lists under it, and a test:
 *   ES_OP_EQ     the value is one of `vals` (one value: equality; more: membership),
 *                compared as bytes: equal terms have equal encodings (payload.h);
 *   ES_OP_LT, ES_OP_LE, ES_OP_GT, ES_OP_GE  the value is a number compared with `a`;
 *   ES_OP_RANGE  a number with a <= value <= b;
 *   ES_OP_PREFIX the value is a binary starting with the bytes of vals[0].
 * A field (or path) the event does not have, a value of the wrong kind (a comparison
 * with something that is no number, a prefix of something that is no binary) and a
 * payload-less (truncated) event make the test false. `negate` turns the result of the
 * test round, missing fields included.
 *
 * es_preds_match() is true when every predicate of a list holds (an empty list: true).
 * It walks the payload's fields once for the whole list, or, in a map with a table of
 * key offsets (payload.h: ES_INDEXED_MAP), finds each predicate's field through it.
 *
 * Thread-safety: predicates are read-only once built; evaluation touches only the
 * caller's bytes.
 */
#ifndef ES_PRED_H
#define ES_PRED_H

#include "payload.h"

#define ES_PRED_PATH 4 /* element indexes a predicate may follow under its field */

enum es_pred_op { ES_OP_EQ, ES_OP_LT, ES_OP_LE, ES_OP_GT, ES_OP_GE, ES_OP_RANGE, ES_OP_PREFIX };

typedef struct es_pred {
    uint64_t field; /* the field's atom word */
    uint32_t path[ES_PRED_PATH];
    uint8_t depth; /* path entries used */
    uint8_t op;    /* enum es_pred_op */
    bool negate;
    es_pl_num a, b;             /* comparisons and ranges */
    const uint8_t *const *vals; /* EQ: encoded terms (no version byte); PREFIX: the prefix */
    const uint32_t *lens;
    uint32_t nvals;
} es_pred;

bool es_preds_match(const es_pred *preds, size_t n, const uint8_t *payload, size_t len);

/* The same, remembering in hints[i] (for the first ES_PRED_HINTS predicates; any
 * value to begin with) where the field of predicate i was in an indexed payload map, to
 * look there first next time: a scan passes the same hints for every event it tests. */
#define ES_PRED_HINTS 64
bool es_preds_match_hinted(const es_pred *preds, size_t n, const uint8_t *payload, size_t len,
                           uint8_t *hints);

/* The same, saying in *failed which predicate (an index) made the answer false — n when
 * none in particular did (no payload, a malformed one) — for a scan that orders its
 * predicates by how often each fails. */
bool es_preds_match_at(const es_pred *preds, size_t n, const uint8_t *payload, size_t len,
                       uint8_t *hints, size_t *failed);

/* One predicate against a value already found (the field, path not yet followed). */
bool es_pred_test(const es_pred *p, es_pl_span value);

#endif
