/*
 * group.h — aggregates over the events a query selects: how many, grouped by a key,
 * with count / min / max / mean and exact percentiles of a numeric field.
 *
 * Contract: es_group_run() streams every event the filter (query.h) selects — limit and
 * order do not apply — into groups by `by`: the event type, its actor pid, its module,
 * its {module, function}, or the value of a payload field (optionally an element under
 * it, as pred.h paths go); events without the key fall into one group with no key
 * (key_id 0 / key_len 0, key NULL). With `measure` each group also gets, over the events
 * whose measured field is a number (`measured` of them), its min, max, mean and the
 * nearest-rank p50, p90 and p99: the smallest value with at least that share of the
 * group's values at or below it — exact, from all values, for integers within 64 bits
 * and floats alike. Without `by` there is one group.
 *
 * Memory: one entry per group, and, when measuring, about 48 bytes per measured event
 * until the percentiles are taken (each group's values are selected in place, in linear
 * expected time).
 *
 * Thread-safety: as query.h. Callers run it on dirty schedulers.
 */
#ifndef ES_GROUP_H
#define ES_GROUP_H

#include "query.h"

enum es_group_by { ES_BY_NONE, ES_BY_TYPE, ES_BY_PID, ES_BY_MODULE, ES_BY_MF, ES_BY_FIELD };

typedef struct es_group_spec {
    enum es_group_by by;
    uint64_t field; /* ES_BY_FIELD: the field's atom word, and a path under it */
    uint32_t path[ES_PRED_PATH];
    uint8_t depth;
    bool measure;
    uint64_t measure_field;
} es_group_spec;

typedef struct es_group {
    uint32_t key_id;    /* type, pid, module or mf key id; 0: none */
    const uint8_t *key; /* ES_BY_FIELD: the value's encoding; NULL: missing */
    uint32_t key_len;
    uint64_t count, measured; /* events, and those with a numeric measured value */
    bool all_int;             /* every measured value an integer: results are exact integers */
    long double min, max, sum, p50, p90, p99;
} es_group;

typedef struct es_groups {
    es_group *v;
    size_t n;
    void *mem; /* key bytes */
} es_groups;

enum es_query_status es_group_run(es_store *s, const es_filter *f, const es_group_spec *g,
                                  es_groups *out);
void es_groups_free(es_groups *g);

/* The nearest-rank quantile of n values (0 < q <= 1), reordering them. */
long double es_quantile(long double *v, size_t n, double q);

#endif
