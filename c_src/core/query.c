/*
 * query.c — plans a query onto index chains or the time blocks, filters the events it
 * visits (slot fields first, then payload predicates), then merges, sorts and cuts the
 * hits. See query.h for the contract.
 */
#include "query.h"
#include "zone.h"

#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAIRS 64      /* actor x peer combinations walked as pair chains */
#define DENSE_COST 3.0    /* a chain's step against a forward step (walk_forward) */
#define MERGE_MAX_RUNS 64 /* more sorted runs than this: qsort */

void es_filter_init(es_filter *f) {
    memset(f, 0, offsetof(es_filter, types)); /* the key sets: only their counts */
    f->types.n = f->actors.n = f->peers.n = f->modules.n = f->mfs.n = 0;
    f->ts_min = INT64_MIN;
    f->ts_max = INT64_MAX;
}

bool es_keyset_add(es_keyset *set, es_key *key) {
    for (uint32_t i = 0; i < set->n; i++)
        if (set->v[i] == key) return true;
    if (set->n == ES_KEYSET_MAX) return false;
    set->v[set->n++] = key;
    return true;
}

bool es_hits_reserve(es_hits *h, size_t n) {
    if (h->n + n <= h->cap) return true;
    es_hit *v = mi_realloc(h->v, (h->n + n) * sizeof *v);
    if (!v) return false;
    h->v = v;
    h->cap = h->n + n;
    return true;
}

bool es_grow(void **v, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = mi_realloc(*v, c * size);
    if (!p) return false;
    *v = p;
    *cap = c;
    return true;
}

void es_hits_free(es_hits *h) {
    mi_free(h->v);
    memset(h, 0, sizeof *h);
}

static bool hits_push(es_hits *h, int64_t ts, uint64_t id) {
    if (!es_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) return false;
    h->v[h->n++] = (es_hit){ts, id};
    return true;
}

/* ---- payloads --------------------------------------------------------------------- */

static _Thread_local uint8_t *scratch;
static _Thread_local size_t scratch_cap;

const uint8_t *es_query_payload(es_store *s, const es_event_view *v) {
    if ((v->flags & ES_F_TRUNCATED) || v->len == 0) return NULL;
    size_t need = ((size_t)v->len + 7) & ~(size_t)7;
    if (scratch_cap < need) {
        size_t cap = need < 1024 ? 1024 : need;
        uint8_t *p = mi_realloc(scratch, cap);
        if (!p) return NULL;
        scratch = p;
        scratch_cap = cap;
    }
    return es_store_payload_fast(s, v, scratch) ? scratch : NULL;
}

/* ---- sorting ---------------------------------------------------------------------- */

static inline bool hit_lt(const es_hit *a, const es_hit *b) {
    return a->ts != b->ts ? a->ts < b->ts : a->id < b->id;
}

static int cmp_hit(const void *a, const void *b) {
    const es_hit *x = a, *y = b;
    return hit_lt(x, y) ? -1 : hit_lt(y, x) ? 1 : 0;
}

static void reverse(es_hit *v, size_t n) {
    for (size_t i = 0, j = n; i + 1 < j--; i++) {
        es_hit t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

void es_hits_sort(es_hits *h) {
    size_t n = h->n;
    if (n < 2) return;
    /* Chain walks give descending runs (newest first), one per chain or shard: turn
     * each run ascending and merge them; many runs (disorder) go to qsort. */
    size_t starts[MERGE_MAX_RUNS + 1], runs = 0;
    for (size_t i = 0; i < n;) {
        if (runs == MERGE_MAX_RUNS) {
            qsort(h->v, n, sizeof *h->v, cmp_hit);
            return;
        }
        starts[runs++] = i;
        size_t j = i + 1;
        if (j < n && hit_lt(&h->v[j], &h->v[i])) {
            while (j < n && hit_lt(&h->v[j], &h->v[j - 1])) j++;
            reverse(h->v + i, j - i);
        } else {
            while (j < n && !hit_lt(&h->v[j], &h->v[j - 1])) j++;
        }
        i = j;
    }
    if (runs == 1) return;
    starts[runs] = n;
    es_hit *tmp = mi_malloc(n * sizeof *tmp);
    if (!tmp) {
        qsort(h->v, n, sizeof *h->v, cmp_hit);
        return;
    }
    es_hit *src = h->v, *dst = tmp;
    while (runs > 1) {
        size_t k = 0;
        for (size_t r = 0; r < runs; r += 2) {
            size_t a = starts[r], m = starts[r + 1 < runs ? r + 1 : runs],
                   e = starts[r + 2 <= runs ? r + 2 : runs], i = a, j = m, o = a;
            while (i < m && j < e) dst[o++] = hit_lt(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < m) dst[o++] = src[i++];
            while (j < e) dst[o++] = src[j++];
            starts[k++] = a;
        }
        starts[k] = n;
        runs = k;
        es_hit *t = src;
        src = dst;
        dst = t;
    }
    if (src != h->v) memcpy(h->v, src, n * sizeof *src);
    mi_free(tmp);
}

/* ---- matching --------------------------------------------------------------------- */

/* A filter in the form the visitor tests fastest. */
typedef struct compiled {
    uint64_t types[ES_TYPE_WORDS];
    uint32_t actors[ES_KEYSET_MAX], peers[ES_KEYSET_MAX], modules[ES_KEYSET_MAX],
        mfs[ES_KEYSET_MAX];
    uint32_t nactors, npeers, nmodules, nmfs;
    bool by_type;
    uint16_t type_ids[ES_KEYSET_MAX]; /* the types again, for the block summaries */
} compiled;

static void compile(const es_filter *f, compiled *c) {
    c->nactors = c->npeers = c->nmodules = c->nmfs = 0;
    c->by_type = f->types.n > 0;
    if (c->by_type) memset(c->types, 0, sizeof c->types);
    for (uint32_t i = 0; i < f->types.n; i++) {
        uint32_t t = f->types.v[i]->id;
        if (t < ES_TYPE_WORDS * 64) c->types[t / 64] |= UINT64_C(1) << (t % 64);
        c->type_ids[i] = (uint16_t)t;
    }
#define IDS(set, count)                                                                            \
    for (uint32_t i = 0; i < f->set.n; i++) c->set[c->count++] = f->set.v[i]->id
    IDS(actors, nactors);
    IDS(peers, npeers);
    IDS(modules, nmodules);
    IDS(mfs, nmfs);
#undef IDS
}

static inline bool in_ids(const uint32_t *ids, uint32_t n, uint32_t id) {
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

typedef enum { MODE_COLLECT, MODE_COUNT, MODE_EACH } mode;

typedef struct query_ctx {
    es_store *s;
    const es_filter *f;
    compiled c;
    mode mode;
    bool defer_preds; /* predicates tested after sorting (ascending limit over chains) */
    es_hits *out;
    uint64_t count;
    es_match_fn each;
    void *each_ctx;
    bool each_payloads;
    uint64_t visits;
    enum es_query_status status;
    /* The predicates in the order they are tested (adapt_order()), with where each one's
     * field was last (pred.h) and how often it failed lately. */
    const es_pred *preds;
    es_pred ordered[ES_PRED_HINTS];
    uint8_t hints[ES_PRED_HINTS];
    uint32_t fails[ES_PRED_HINTS], tests;
} query_ctx;

/* A context for one walk (not zero-filled whole: `c` is large, compile() sets what it
 * reads). */
static void ctx_init(query_ctx *q, es_store *s, const es_filter *f, mode m) {
    q->s = s, q->f = f, q->mode = m, q->defer_preds = false, q->out = NULL, q->count = 0;
    q->each = NULL, q->each_ctx = NULL, q->each_payloads = false, q->visits = 0;
    q->status = ES_Q_OK;
    memset(q->hints, 0, sizeof q->hints);
    q->preds = f->preds, q->tests = 0;
    if (f->npreds > 1 && f->npreds <= ES_PRED_HINTS) {
        memcpy(q->ordered, f->preds, f->npreds * sizeof *f->preds);
        memset(q->fails, 0, f->npreds * sizeof *q->fails);
        q->preds = q->ordered;
    }
    compile(f, &q->c);
}

#define ADAPT_EVERY 256 /* tests between two looks at the predicates' order */

/* A conjunction holds in any order, and a test that fails ends it: every ADAPT_EVERY
 * tests, the predicates that failed most lately go first (their counts then halve), so
 * that a scan stops at its selective test even when the spec puts it last — a Phoenix
 * listing's own filter comes after the kind and phase every request shares. */
static void adapt_order(query_ctx *q, size_t failed) {
    size_t n = q->f->npreds;
    if (q->preds != q->ordered) return;
    if (failed < n) q->fails[failed]++;
    if (++q->tests % ADAPT_EVERY) return;
    for (size_t i = 1; i < n; i++) /* a stable insertion sort: most failures first */
        for (size_t j = i; j > 0 && q->fails[j] > q->fails[j - 1]; j--) {
            es_pred p = q->ordered[j];
            q->ordered[j] = q->ordered[j - 1], q->ordered[j - 1] = p;
            uint32_t c = q->fails[j];
            q->fails[j] = q->fails[j - 1], q->fails[j - 1] = c;
            uint8_t h = q->hints[j];
            q->hints[j] = q->hints[j - 1], q->hints[j - 1] = h;
        }
    for (size_t i = 0; i < n; i++) q->fails[i] /= 2;
}

/* Whether a payload (NULL: none) passes the predicates, in their current order. */
static bool preds_match(query_ctx *q, const uint8_t *payload, uint32_t len) {
    size_t failed;
    bool holds =
        es_preds_match_at(q->preds, q->f->npreds, payload, payload ? len : 0, q->hints, &failed);
    if (!holds) adapt_order(q, failed);
    return holds;
}

/* Predicates are tested on the payload where it lies (store.h: es_store_payload_at), a
 * copy saved on every event examined; the answer counts once the bytes are known to
 * have held meanwhile. */
static bool preds_hold(query_ctx *q, const es_event_view *v) {
    const uint8_t *at = es_store_payload_at(q->s, v);
    if (at) {
        bool holds = preds_match(q, at, v->len);
        return es_store_payload_held(q->s, v) && holds;
    }
    return preds_match(q, es_query_payload(q->s, v), v->len);
}

/* The slot-level part of the filter. */
static bool slot_matches(query_ctx *q, const es_event_view *v) {
    const es_filter *f = q->f;
    const compiled *c = &q->c;
    if (v->id <= f->after_id || (f->before_id && v->id >= f->before_id)) return false;
    es_pos at = {v->ts, v->id};
    if (f->has_after && es_pos_cmp(at, f->after) <= 0) return false;
    if (f->has_before && es_pos_cmp(at, f->before) >= 0) return false;
    if (c->by_type &&
        !(v->type_id < ES_TYPE_WORDS * 64 && (c->types[v->type_id / 64] >> (v->type_id % 64) & 1)))
        return false;
    if (f->both_directions) {
        bool ab = v->actor == c->actors[0] && v->peer == c->peers[0];
        bool ba = v->actor == c->peers[0] && v->peer == c->actors[0];
        if (!ab && !ba) return false;
    } else {
        if (c->nactors && !in_ids(c->actors, c->nactors, v->actor)) return false;
        if (c->npeers && !in_ids(c->peers, c->npeers, v->peer)) return false;
    }
    if (c->nmfs && !in_ids(c->mfs, c->nmfs, v->mf)) return false;
    if (c->nmodules) {
        es_key *mf = v->mf ? es_intern_by_id(&es_store_tables(q->s)->mf, v->mf) : NULL;
        if (!mf || !in_ids(c->modules, c->nmodules, mf->aux)) return false;
    }
    return true;
}

static int visit(const es_event_view *v, void *p) {
    query_ctx *q = p;
    const es_filter *f = q->f;
    if (f->max_visits && ++q->visits > f->max_visits) {
        q->status = ES_Q_OVER_BUDGET;
        return ES_ABORT;
    }
    if (!slot_matches(q, v)) return ES_REJECT;
    if (q->mode == MODE_EACH) {
        const uint8_t *payload = q->each_payloads || f->npreds ? es_query_payload(q->s, v) : NULL;
        if (f->npreds && !preds_match(q, payload, v->len)) return ES_REJECT;
        if (!q->each_payloads) payload = NULL;
        int r = q->each(v, payload, q->each_ctx);
        return r == ES_ABORT ? ES_ABORT : ES_ACCEPT;
    }
    if (f->npreds && !q->defer_preds && !preds_hold(q, v)) return ES_REJECT;
    if (q->mode == MODE_COUNT) {
        q->count++;
        return ES_ACCEPT;
    }
    if (!hits_push(q->out, v->ts, v->id)) {
        q->status = ES_Q_NO_MEMORY;
        return ES_ABORT;
    }
    return ES_ACCEPT;
}

/* ---- planning --------------------------------------------------------------------- */

/* Whether an ascending limited query over types (and nothing more selective) finds its
 * results sooner walking time forward from the oldest event than along the types'
 * chains, which run newest first and are walked whole: forward, it reads about
 * limit x live / n slots, in order (cheap: the hardware fetches them ahead); along the
 * chains, all n of them, one cache line chasing the next (DENSE_COST times dearer). n
 * counts the events ever appended with the types, so a type pruned away looks denser
 * than it is (the forward walk then reads more, never more than the store once). */
static bool walk_forward(const es_filter *f, uint64_t live, uint64_t n) {
    if (!f->limit || f->descending) return false;
    return n > 0 && (double)f->limit * (double)live < DENSE_COST * (double)n * (double)n;
}

/* Whether the predicates can pass over blocks (zone.h). */
static bool zone_usable(const es_filter *f) {
    for (size_t i = 0; i < f->npreds; i++)
        if (es_zone_usable(&f->preds[i])) return true;
    return false;
}

/* Whether a query over types (and nothing more selective) walks time rather than the
 * types' chains: an ascending limited one by walk_forward(); one with predicates when
 * the types are dense — following n chained slots costs DENSE_COST times more per slot
 * than reading all `live` of them in order (whose payloads the walk asks for ahead),
 * and in order, the blocks that the summaries of the predicates' fields rule out
 * (zone.h) are not read at all. */
static bool types_by_time(es_store *s, const es_filter *f, bool for_results) {
    uint64_t low = es_store_low_id(s), high = es_store_high_id(s);
    if (high < low) return false;
    uint64_t live = high - low + 1, n = 0;
    for (uint32_t i = 0; i < f->types.n; i++) n += es_store_type_count(s, f->types.v[i]->id);
    if (n > live) n = live;
    if (for_results && walk_forward(f, live, n)) return true;
    return f->npreds && DENSE_COST * (double)n >= (double)live;
}

/* The walk's question to the block summaries. */
static bool skip_block(uint64_t block, void *p) {
    query_ctx *q = p;
    if (q->f->max_visits && q->visits > q->f->max_visits) return false; /* visit() stops it */
    return es_zone_skip(q->s, block, q->c.type_ids, q->f->types.n, q->f->preds, q->f->npreds,
                        &q->visits);
}

static void walk_keys(query_ctx *q, const es_keyset *keys, enum es_chain chain, const es_walk *w) {
    for (uint32_t i = 0; i < keys->n && q->status == ES_Q_OK; i++)
        es_store_walk_chain(q->s, keys->v[i], chain, w, visit, q);
}

/* Walks what the filter selects, calling visit(); returns whether it walked chains
 * (hits newest first per chain) rather than time. */
static bool walk(query_ctx *q, bool for_results) {
    es_store *s = q->s;
    const es_filter *f = q->f;
    es_walk w = {.ts_min = f->ts_min,
                 .ts_max = f->ts_max,
                 .descending = f->descending,
                 .payloads =
                     (f->npreds && !q->defer_preds) || (q->mode == MODE_EACH && q->each_payloads),
                 .types = q->c.by_type ? q->c.types : NULL};
    if (f->has_after && f->after.ts > w.ts_min) w.ts_min = f->after.ts;
    if (f->has_before && f->before.ts < w.ts_max) w.ts_max = f->before.ts;
    /* Stopping early at the limit is only right when every visited event that passes
     * is a result in walk order. */
    if (for_results && !q->defer_preds) w.want = f->limit;
    if (w.ts_min > w.ts_max) return false;
    es_intern *pairs = &es_store_tables(s)->pair;
    if (f->actors.n && f->peers.n &&
        (f->both_directions || (uint64_t)f->actors.n * f->peers.n <= MAX_PAIRS)) {
        for (uint32_t a = 0; a < f->actors.n && q->status == ES_Q_OK; a++)
            for (uint32_t p = 0; p < f->peers.n && q->status == ES_Q_OK; p++) {
                es_key *x = f->actors.v[a], *y = f->peers.v[p];
                uint32_t ab[2] = {x->id, y->id}, ba[2] = {y->id, x->id};
                es_key *one = es_intern_get(pairs, ab, sizeof ab, false, 0);
                if (one) es_store_walk_chain(s, one, ES_CHAIN_PAIR, &w, visit, q);
                es_key *other = f->both_directions && x != y
                                    ? es_intern_get(pairs, ba, sizeof ba, false, 0)
                                    : NULL;
                if (other && q->status == ES_Q_OK)
                    es_store_walk_chain(s, other, ES_CHAIN_PAIR, &w, visit, q);
            }
    } else if (f->mfs.n) {
        walk_keys(q, &f->mfs, ES_CHAIN_MF, &w);
    } else if (f->actors.n) {
        walk_keys(q, &f->actors, ES_CHAIN_ACTOR, &w);
    } else if (f->peers.n) {
        walk_keys(q, &f->peers, ES_CHAIN_PEER, &w);
    } else if (f->modules.n) {
        walk_keys(q, &f->modules, ES_CHAIN_MODULE, &w);
    } else if (f->types.n && !types_by_time(s, f, for_results)) {
        walk_keys(q, &f->types, ES_CHAIN_TYPE, &w);
    } else {
        if (f->npreds && !q->defer_preds && zone_usable(f))
            w.skip_block = skip_block, w.skip_ctx = q;
        es_store_walk_time(s, &w, visit, q);
        return false;
    }
    return true;
}

/* Whether walk(for_results) goes along chains (newest first) rather than time. */
static bool uses_chains(es_store *s, const es_filter *f) {
    if (f->actors.n || f->peers.n || f->mfs.n || f->modules.n) return true;
    return f->types.n && !types_by_time(s, f, true);
}

enum es_query_status es_query(es_store *s, const es_filter *f, es_hits *out) {
    query_ctx q;
    ctx_init(&q, s, f, MODE_COLLECT);
    q.out = out;
    /* Chains are walked newest first: an ascending limited query would test the
     * predicates of every event on the way to the oldest ones; test them in result
     * order instead, only as far as the limit. */
    q.defer_preds = f->npreds && f->limit && !f->descending && uses_chains(s, f);
    walk(&q, true);
    if (q.status != ES_Q_OK) return q.status;
    es_hits_sort(out);
    if (q.defer_preds) {
        size_t k = 0;
        for (size_t i = 0; i < out->n && k < f->limit; i++) {
            es_event_view v;
            if (f->max_visits && ++q.visits > f->max_visits) return ES_Q_OVER_BUDGET;
            if (es_store_peek(s, out->v[i].id, &v) && preds_hold(&q, &v)) out->v[k++] = out->v[i];
        }
        out->n = k;
    }
    if (f->descending) reverse(out->v, out->n);
    if (f->limit && out->n > f->limit) out->n = f->limit;
    return ES_Q_OK;
}

enum es_query_status es_query_count(es_store *s, const es_filter *f, uint64_t *count) {
    query_ctx q;
    ctx_init(&q, s, f, MODE_COUNT);
    walk(&q, false);
    *count = q.count;
    return q.status;
}

enum es_query_status es_query_each(es_store *s, const es_filter *f, bool payloads, es_match_fn fn,
                                   void *ctx) {
    query_ctx q;
    ctx_init(&q, s, f, MODE_EACH);
    q.each = fn, q.each_ctx = ctx, q.each_payloads = payloads;
    walk(&q, false);
    return q.status;
}
