/*
 * pred.c — field predicates over encoded payloads. See pred.h for the contract.
 */
#include "pred.h"

#include <string.h>

#define MAX_PREDS 64 /* a list longer than this is checked field by field */

/* The test itself, on the value at the end of the path (before negation). */
static bool test_value(const es_pred *p, es_pl_span v) {
    es_pl_num x;
    const uint8_t *data;
    size_t len;
    int c;
    switch (p->op) {
    case ES_OP_EQ:
        for (uint32_t i = 0; i < p->nvals; i++)
            if (p->lens[i] == v.len && memcmp(p->vals[i], v.p, v.len) == 0) return true;
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

typedef struct match_ctx {
    const es_pred *preds;
    size_t n;
    uint64_t seen; /* predicates whose field was met */
    bool failed;
} match_ctx;

static bool visit_field(uint64_t key, es_pl_span value, void *p) {
    match_ctx *c = p;
    for (size_t i = 0; i < c->n; i++) {
        if (c->preds[i].field != key) continue;
        c->seen |= UINT64_C(1) << i;
        if (!es_pred_test(&c->preds[i], value)) {
            c->failed = true;
            return false;
        }
    }
    return true;
}

bool es_preds_match(const es_pred *preds, size_t n, const uint8_t *payload, size_t len) {
    if (n == 0) return true;
    if (n > MAX_PREDS) {
        for (size_t i = 0; i < n; i += MAX_PREDS)
            if (!es_preds_match(preds + i, n - i < MAX_PREDS ? n - i : MAX_PREDS, payload, len))
                return false;
        return true;
    }
    match_ctx c = {preds, n, 0, false};
    /* A malformed (or truncated, empty) payload has no fields: only negations hold. */
    if (!es_pl_fields(payload, len, visit_field, &c)) c.seen = 0, c.failed = false;
    if (c.failed) return false;
    for (size_t i = 0; i < n; i++)
        if (!(c.seen >> i & 1) && !preds[i].negate) return false; /* missing field */
    return true;
}
