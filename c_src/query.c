/*
 * query.c — plans a query onto one index chain or the time blocks, filters the
 * events it visits, then sorts and cuts the hits. See query.h for the contract.
 */
#include "query.h"

#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

void es_filter_init(es_filter *f) {
    memset(f, 0, sizeof *f);
    f->ts_min = INT64_MIN;
    f->ts_max = INT64_MAX;
}

bool es_hits_reserve(es_hits *h, size_t n) {
    if (h->n + n <= h->cap) return true;
    es_hit *v = mi_realloc(h->v, (h->n + n) * sizeof *v);
    if (!v) return false;
    h->v = v;
    h->cap = h->n + n;
    return true;
}

void es_hits_free(es_hits *h) {
    mi_free(h->v);
    memset(h, 0, sizeof *h);
}

static bool hits_push(es_hits *h, int64_t ts, uint64_t id) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        es_hit *v = mi_realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = (es_hit){ts, id};
    return true;
}

typedef struct query_ctx {
    es_store *s;
    const es_filter *f;
    es_hits *out;
    uint64_t visits;
    enum es_query_status status;
} query_ctx;

static int visit(const es_event_view *v, void *p) {
    query_ctx *q = p;
    const es_filter *f = q->f;
    if (f->max_visits && ++q->visits > f->max_visits) {
        q->status = ES_Q_OVER_BUDGET;
        return ES_ABORT;
    }
    if (v->id <= f->after_id || (f->before_id && v->id >= f->before_id)) return ES_REJECT;
    if (f->type && v->type_id != f->type->id) return ES_REJECT;
    if (f->both_directions) {
        bool ab = v->actor == f->actor->id && v->peer == f->peer->id;
        bool ba = v->actor == f->peer->id && v->peer == f->actor->id;
        if (!ab && !ba) return ES_REJECT;
    } else {
        if (f->actor && v->actor != f->actor->id) return ES_REJECT;
        if (f->peer && v->peer != f->peer->id) return ES_REJECT;
    }
    if (f->mf && v->mf != f->mf->id) return ES_REJECT;
    if (f->module) {
        es_key *mf = v->mf ? es_intern_by_id(&es_store_tables(q->s)->mf, v->mf) : NULL;
        if (!mf || mf->aux != f->module->id) return ES_REJECT;
    }
    if (!hits_push(q->out, v->ts, v->id)) {
        q->status = ES_Q_NO_MEMORY;
        return ES_ABORT;
    }
    return ES_ACCEPT;
}

static int cmp_hit(const void *a, const void *b) {
    const es_hit *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

enum es_query_status es_query(es_store *s, const es_filter *f, es_hits *out) {
    query_ctx q = {.s = s, .f = f, .out = out, .status = ES_Q_OK};
    es_walk w = {
        .ts_min = f->ts_min, .ts_max = f->ts_max, .want = f->limit, .descending = f->descending};
    if (f->actor && f->peer) {
        es_intern *pairs = &es_store_tables(s)->pair;
        uint32_t ab[2] = {f->actor->id, f->peer->id}, ba[2] = {f->peer->id, f->actor->id};
        es_key *one = es_intern_get(pairs, ab, sizeof ab, false, 0);
        es_key *other = f->both_directions && f->actor != f->peer
                            ? es_intern_get(pairs, ba, sizeof ba, false, 0)
                            : NULL;
        if (one) es_store_walk_chain(s, one, ES_CHAIN_PAIR, &w, visit, &q);
        if (other && q.status == ES_Q_OK)
            es_store_walk_chain(s, other, ES_CHAIN_PAIR, &w, visit, &q);
    } else if (f->mf)
        es_store_walk_chain(s, f->mf, ES_CHAIN_MF, &w, visit, &q);
    else if (f->actor)
        es_store_walk_chain(s, f->actor, ES_CHAIN_ACTOR, &w, visit, &q);
    else if (f->peer)
        es_store_walk_chain(s, f->peer, ES_CHAIN_PEER, &w, visit, &q);
    else if (f->module)
        es_store_walk_chain(s, f->module, ES_CHAIN_MODULE, &w, visit, &q);
    else if (f->type)
        es_store_walk_chain(s, f->type, ES_CHAIN_TYPE, &w, visit, &q);
    else
        es_store_walk_time(s, &w, visit, &q);
    if (q.status != ES_Q_OK) return q.status;

    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_hit);
    if (f->descending)
        for (size_t i = 0, j = out->n; i + 1 < j--; i++) {
            es_hit t = out->v[i];
            out->v[i] = out->v[j];
            out->v[j] = t;
        }
    if (f->limit && out->n > f->limit) out->n = f->limit;
    return ES_Q_OK;
}

typedef struct actors_ctx {
    uint32_t *ids;
    size_t n, cap;
    bool oom;
} actors_ctx;

static int collect_actor(const es_event_view *v, void *p) {
    actors_ctx *a = p;
    if (!v->actor) return ES_REJECT;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        uint32_t *ids = mi_realloc(a->ids, cap * sizeof *ids);
        if (!ids) {
            a->oom = true;
            return ES_ABORT;
        }
        a->ids = ids;
        a->cap = cap;
    }
    a->ids[a->n++] = v->actor;
    return ES_ACCEPT;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(uint32_t *v, size_t n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_u32);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1]) v[k++] = v[i];
    return k;
}

enum es_query_status es_query_live_actors(es_store *s, es_key *const born[], size_t nborn,
                                          es_key *const died[], size_t ndied, int64_t ts,
                                          uint32_t **out, size_t *n) {
    actors_ctx b = {0}, d = {0};
    es_walk w = {.ts_min = INT64_MIN, .ts_max = ts};
    for (size_t i = 0; i < nborn && !b.oom; i++)
        if (born[i]) es_store_walk_chain(s, born[i], ES_CHAIN_TYPE, &w, collect_actor, &b);
    for (size_t i = 0; i < ndied && !b.oom && !d.oom; i++)
        if (died[i]) es_store_walk_chain(s, died[i], ES_CHAIN_TYPE, &w, collect_actor, &d);
    if (b.oom || d.oom) {
        mi_free(b.ids);
        mi_free(d.ids);
        return ES_Q_NO_MEMORY;
    }
    b.n = sort_unique(b.ids, b.n);
    d.n = sort_unique(d.ids, d.n);
    size_t k = 0, j = 0;
    for (size_t i = 0; i < b.n; i++) {
        while (j < d.n && d.ids[j] < b.ids[i]) j++;
        if (j < d.n && d.ids[j] == b.ids[i]) continue;
        b.ids[k++] = b.ids[i];
    }
    mi_free(d.ids);
    *out = b.ids;
    *n = k;
    return ES_Q_OK;
}

void es_ids_free(uint32_t *ids) {
    mi_free(ids);
}
