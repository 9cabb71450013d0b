/*
 * group.c — group-by aggregates with exact percentiles. See group.h for the contract.
 */
#include "group.h"

#include <math.h>
#include <mimalloc.h>
#include <string.h>

typedef struct measured {
    uint32_t group;
    long double value;
} measured;

typedef struct group_ctx {
    es_store *s;
    const es_group_spec *g;
    es_group *groups;
    size_t n, cap;
    /* slot keys: group index + 1 by key id; field values: open addressing on a hash */
    uint32_t *by_id;
    size_t by_id_len;
    uint32_t *table; /* group index + 1 */
    uint64_t *table_hash;
    size_t table_mask;
    uint8_t *bytes; /* key bytes, back to back */
    size_t bytes_len, bytes_cap;
    measured *values;
    size_t nvalues, values_cap;
    bool oom;
} group_ctx;

static es_group *new_group(group_ctx *c, uint32_t *index) {
    if (!es_grow((void **)&c->groups, &c->cap, c->n + 1, sizeof *c->groups)) return NULL;
    es_group *g = &c->groups[c->n];
    memset(g, 0, sizeof *g);
    g->all_int = true;
    *index = (uint32_t)c->n++;
    return g;
}

static es_group *group_by_id(group_ctx *c, uint32_t id) {
    if (id >= c->by_id_len) {
        size_t len = c->by_id_len ? c->by_id_len : 64;
        while (len <= id) len *= 2;
        uint32_t *v = mi_realloc(c->by_id, len * sizeof *v);
        if (!v) return NULL;
        memset(v + c->by_id_len, 0, (len - c->by_id_len) * sizeof *v);
        c->by_id = v;
        c->by_id_len = len;
    }
    if (c->by_id[id]) return &c->groups[c->by_id[id] - 1];
    uint32_t index;
    es_group *g = new_group(c, &index);
    if (!g) return NULL;
    g->key_id = id;
    c->by_id[id] = index + 1;
    return g;
}

static bool rehash(group_ctx *c) {
    size_t cap = c->table_mask ? (c->table_mask + 1) * 2 : 256;
    uint32_t *t = mi_zalloc(cap * sizeof *t);
    uint64_t *h = mi_zalloc(cap * sizeof *h);
    if (!t || !h) {
        mi_free(t);
        mi_free(h);
        return false;
    }
    for (size_t i = 0; c->table && i <= c->table_mask; i++) {
        if (!c->table[i]) continue;
        size_t j = (size_t)c->table_hash[i] & (cap - 1);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = c->table[i];
        h[j] = c->table_hash[i];
    }
    mi_free(c->table);
    mi_free(c->table_hash);
    c->table = t;
    c->table_hash = h;
    c->table_mask = cap - 1;
    return true;
}

/* The group of a field value (bytes NULL: the event lacks the field). Key bytes are
 * kept as offsets into c->bytes until the end (it moves as it grows). */
static es_group *group_by_bytes(group_ctx *c, const uint8_t *bytes, size_t len) {
    if ((c->n + 1) * 2 > c->table_mask && !rehash(c)) return NULL;
    uint64_t h = bytes ? es_hash_bytes(bytes, len, 7) : 0;
    size_t i = (size_t)h & c->table_mask;
    for (; c->table[i]; i = (i + 1) & c->table_mask) {
        if (c->table_hash[i] != h) continue;
        es_group *g = &c->groups[c->table[i] - 1];
        bool missing = g->key_len == UINT32_MAX;
        if (!bytes ? missing
                   : !missing && g->key_len == len &&
                         memcmp(c->bytes + (uintptr_t)g->key, bytes, len) == 0)
            return g;
    }
    uint32_t index;
    es_group *g = new_group(c, &index);
    if (!g) return NULL;
    if (bytes) {
        if (!es_grow((void **)&c->bytes, &c->bytes_cap, c->bytes_len + len, 1)) return NULL;
        memcpy(c->bytes + c->bytes_len, bytes, len);
        g->key = (const uint8_t *)(uintptr_t)c->bytes_len;
        g->key_len = (uint32_t)len;
        c->bytes_len += len;
    } else {
        g->key_len = UINT32_MAX;
    }
    c->table[i] = index + 1;
    c->table_hash[i] = h;
    return g;
}

static es_group *group_of(group_ctx *c, const es_event_view *v, const uint8_t *payload) {
    const es_group_spec *g = c->g;
    switch (g->by) {
    case ES_BY_NONE:
        return c->n ? &c->groups[0] : group_by_id(c, 0);
    case ES_BY_TYPE:
        return group_by_id(c, v->type_id);
    case ES_BY_PID:
        return group_by_id(c, v->actor);
    case ES_BY_MF:
        return group_by_id(c, (v->flags & ES_F_MODULE) ? v->mf : 0);
    case ES_BY_MODULE: {
        es_key *mf = (v->flags & ES_F_MODULE) && v->mf
                         ? es_intern_by_id(&es_store_tables(c->s)->mf, v->mf)
                         : NULL;
        return group_by_id(c, mf ? mf->aux : 0);
    }
    case ES_BY_FIELD: {
        es_pl_span val;
        bool found = payload && es_pl_field(payload, v->len, g->field, &val);
        for (uint8_t d = 0; found && d < g->depth; d++)
            found = es_pl_element(val, g->path[d], &val);
        return group_by_bytes(c, found ? val.p : NULL, found ? val.len : 0);
    }
    }
    return NULL;
}

static int group_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    group_ctx *c = p;
    es_group *g = group_of(c, v, payload);
    if (!g) {
        c->oom = true;
        return ES_ABORT;
    }
    g->count++;
    es_pl_span val;
    es_pl_num num;
    if (!c->g->measure || !payload || !es_pl_field(payload, v->len, c->g->measure_field, &val) ||
        !es_pl_number(val, &num))
        return ES_ACCEPT;
    long double x = num.is_float ? (long double)num.d : (long double)num.i;
    if (num.is_float && isnan((double)num.d)) return ES_ACCEPT;
    if (!es_grow((void **)&c->values, &c->values_cap, c->nvalues + 1, sizeof *c->values)) {
        c->oom = true;
        return ES_ABORT;
    }
    c->values[c->nvalues++] = (measured){(uint32_t)(g - c->groups), x};
    if (g->measured == 0 || x < g->min) g->min = x;
    if (g->measured == 0 || x > g->max) g->max = x;
    g->sum += x;
    g->all_int &= !num.is_float;
    g->measured++;
    return ES_ACCEPT;
}

/* ---- selection -------------------------------------------------------------------- */

/* The k-th smallest (0-based) of v[0..n), reordering v (Hoare's selection with a
 * median-of-three pivot). */
static long double select_kth(long double *v, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        long double a = v[lo], b = v[mid], c = v[hi];
        long double pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                long double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

long double es_quantile(long double *v, size_t n, double q) {
    if (n == 0) return 0;
    double r = q * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r || rank == 0) rank++;
    if (rank > n) rank = n;
    return select_kth(v, n, rank - 1);
}

static bool percentiles(group_ctx *c) {
    if (!c->nvalues) return true;
    /* Each group's values together (a counting sort by group), then selected in place. */
    size_t *start = mi_zalloc((c->n + 1) * sizeof *start);
    long double *vals = mi_malloc(c->nvalues * sizeof *vals);
    if (!start || !vals) {
        mi_free(start);
        mi_free(vals);
        return false;
    }
    for (size_t i = 0; i < c->n; i++) start[i + 1] = start[i] + c->groups[i].measured;
    for (size_t i = 0; i < c->nvalues; i++) vals[start[c->values[i].group]++] = c->values[i].value;
    for (size_t i = 0, at = 0; i < c->n; i++) {
        es_group *g = &c->groups[i];
        long double *gv = vals + at;
        at += g->measured;
        if (!g->measured) continue;
        g->p50 = es_quantile(gv, g->measured, 0.50);
        g->p90 = es_quantile(gv, g->measured, 0.90);
        g->p99 = es_quantile(gv, g->measured, 0.99);
    }
    mi_free(start);
    mi_free(vals);
    return true;
}

enum es_query_status es_group_run(es_store *s, const es_filter *f, const es_group_spec *g,
                                  es_groups *out) {
    memset(out, 0, sizeof *out);
    group_ctx c = {.s = s, .g = g};
    bool payloads = g->by == ES_BY_FIELD || g->measure;
    enum es_query_status st = es_query_each(s, f, payloads, group_visit, &c);
    if (c.oom) st = ES_Q_NO_MEMORY;
    if (st == ES_Q_OK && !percentiles(&c)) st = ES_Q_NO_MEMORY;
    mi_free(c.values);
    mi_free(c.by_id);
    mi_free(c.table);
    mi_free(c.table_hash);
    if (st != ES_Q_OK) {
        mi_free(c.groups);
        mi_free(c.bytes);
        return st;
    }
    for (size_t i = 0; i < c.n; i++) {
        es_group *e = &c.groups[i];
        if (g->by != ES_BY_FIELD) continue;
        if (e->key_len == UINT32_MAX) {
            e->key = NULL;
            e->key_len = 0;
        } else {
            e->key = c.bytes + (uintptr_t)e->key;
        }
    }
    out->v = c.groups;
    out->n = c.n;
    out->mem = c.bytes;
    return ES_Q_OK;
}

void es_groups_free(es_groups *g) {
    mi_free(g->v);
    mi_free(g->mem);
    memset(g, 0, sizeof *g);
}
