/*
 * agg.c — aggregations over index chains. See agg.h for the contract.
 */
#include "agg.h"
#include "payload.h"
#include "query.h"

#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

void es_agg_free(void *p) {
    mi_free(p);
}

/* ---- histogram -------------------------------------------------------------------- */

static unsigned bucket_of(uint64_t v) {
    if (v < 16) return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* 4..63 */
    return (e - 3) * 16 + (unsigned)((v >> (e - 4)) & 15);
}

static uint64_t bucket_mid(unsigned b) {
    if (b < 16) return b;
    unsigned e = b / 16 + 3, sub = b % 16;
    uint64_t low = (UINT64_C(16) + sub) << (e - 4);
    return low + (UINT64_C(1) << (e - 4)) / 2;
}

void es_hist_add(es_histogram *h, uint64_t value) {
    h->buckets[bucket_of(value)]++;
    h->count++;
}

uint64_t es_hist_quantile(const es_histogram *h, double q) {
    if (h->count == 0) return 0;
    /* Nearest rank: the smallest value with at least q of all values at or below it. */
    double r = q * (double)h->count;
    uint64_t rank = (uint64_t)r, seen = 0;
    if ((double)rank < r || rank == 0) rank++;
    for (unsigned b = 0; b < ES_HIST_BUCKETS; b++)
        if ((seen += h->buckets[b]) >= rank) return bucket_mid(b);
    return 0;
}

/* ---- payload fields --------------------------------------------------------------- */

/* The `duration` field of an event's payload, or -1 when it has none (or it is no
 * non-negative integer). The tracer writes it first; events stored from Elixir may have
 * it anywhere. */
static int64_t duration_of(es_store *s, const es_event_view *v, uint64_t key) {
    const uint8_t *p = es_query_payload(s, v);
    es_pl_span val;
    es_pl_num n;
    if (!p || !es_pl_field(p, v->len, key, &val) || !es_pl_number(val, &n) || n.is_float || n.i < 0)
        return -1;
    return n.i;
}

/* ---- per-function statistics ------------------------------------------------------ */

typedef struct perf_ctx {
    es_store *s;
    uint32_t call, ret, exc;
    uint64_t key;
    es_perf *out;
    bool oom;
} perf_ctx;

static es_fn_stats *fn_stats(perf_ctx *c, uint32_t mf, uint8_t arity) {
    es_perf *p = c->out;
    for (size_t i = 0; i < p->n; i++)
        if (p->fns[i].mf == mf && p->fns[i].arity == arity) return &p->fns[i];
    if (!es_grow((void **)&p->fns, &p->cap, p->n + 1, sizeof *p->fns)) return NULL;
    es_fn_stats *f = &p->fns[p->n++];
    memset(f, 0, sizeof *f);
    f->mf = mf;
    f->arity = arity;
    return f;
}

static int perf_visit(const es_event_view *v, void *p) {
    perf_ctx *c = p;
    bool call = v->type_id == c->call, ret = v->type_id == c->ret, exc = v->type_id == c->exc;
    if (!(call || ret || exc) || !v->mf) return ES_REJECT;
    es_fn_stats *f = fn_stats(c, v->mf, v->arity);
    if (!f) {
        c->oom = true;
        return ES_ABORT;
    }
    if (call) {
        f->calls++;
        return ES_ACCEPT;
    }
    ret ? f->returns++ : f->exceptions++;
    int64_t d = duration_of(c->s, v, c->key);
    if (d >= 0) {
        f->total += (uint64_t)d;
        if ((uint64_t)d > f->max) f->max = (uint64_t)d;
        es_hist_add(&f->hist, (uint64_t)d);
    }
    return ES_ACCEPT;
}

bool es_agg_perf(es_store *s, es_key *module, const es_key *call, const es_key *ret,
                 const es_key *exc, uint64_t duration_key, es_perf *out) {
    memset(out, 0, sizeof *out);
    perf_ctx c = {s,
                  call ? call->id : UINT32_MAX,
                  ret ? ret->id : UINT32_MAX,
                  exc ? exc->id : UINT32_MAX,
                  duration_key,
                  out,
                  false};
    es_walk w = {.ts_min = INT64_MIN, .ts_max = INT64_MAX};
    es_store_walk_chain(s, module, ES_CHAIN_MODULE, &w, perf_visit, &c);
    return !c.oom;
}

void es_perf_free(es_perf *p) {
    mi_free(p->fns);
    memset(p, 0, sizeof *p);
}

/* ---- slowest calls ---------------------------------------------------------------- */

typedef struct top_ctx {
    es_store *s;
    uint64_t key;
    es_slow *heap; /* min-heap on the value, then newest id first out */
    size_t n, limit;
} top_ctx;

static bool slower(const es_slow *a, const es_slow *b) {
    return a->duration != b->duration ? a->duration > b->duration : a->id < b->id;
}

static void sift_down(es_slow *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && slower(&h[m], &h[l])) m = l;
        if (r < n && slower(&h[m], &h[r])) m = r;
        if (m == i) return;
        es_slow t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(es_slow *h, size_t i) {
    while (i > 0 && slower(&h[(i - 1) / 2], &h[i])) {
        es_slow t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int top_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)payload;
    top_ctx *c = p;
    int64_t d = duration_of(c->s, v, c->key);
    if (d < 0) return ES_REJECT;
    es_slow e = {v->id, d};
    if (c->n < c->limit) {
        c->heap[c->n] = e;
        sift_up(c->heap, c->n++);
    } else if (slower(&e, &c->heap[0])) {
        c->heap[0] = e;
        sift_down(c->heap, c->n, 0);
    }
    return ES_ACCEPT;
}

static int cmp_slow(const void *a, const void *b) {
    return slower(a, b) ? -1 : slower(b, a) ? 1 : 0;
}

bool es_agg_top(es_store *s, const es_filter *f, uint64_t field, es_slow *out, size_t limit,
                size_t *n) {
    *n = 0;
    if (limit == 0) return true;
    top_ctx c = {s, field, out, 0, limit};
    if (es_query_each(s, f, false, top_visit, &c) != ES_Q_OK) return false;
    qsort(out, c.n, sizeof *out, cmp_slow);
    *n = c.n;
    return true;
}

size_t es_agg_slowest(es_store *s, const es_key *ret, const es_key *exc, es_key *module,
                      uint64_t duration_key, es_slow *out, size_t limit) {
    es_filter f;
    es_filter_init(&f);
    if (ret) es_keyset_add(&f.types, (es_key *)ret);
    if (exc) es_keyset_add(&f.types, (es_key *)exc);
    if (module) es_keyset_add(&f.modules, module);
    size_t n = 0;
    if (f.types.n) es_agg_top(s, &f, duration_key, out, limit, &n);
    return n;
}

/* ---- traffic ---------------------------------------------------------------------- */

typedef struct traffic_ctx {
    es_traffic *by_pid; /* indexed by pid key id */
    uint32_t npids;
    bool receive;
} traffic_ctx;

static int traffic_visit(const es_event_view *v, void *p) {
    traffic_ctx *c = p;
    if (v->actor && v->actor <= c->npids) {
        if (c->receive)
            c->by_pid[v->actor].received++;
        else
            c->by_pid[v->actor].sent++;
    }
    if (!c->receive && v->peer && v->peer <= c->npids) c->by_pid[v->peer].inflow++;
    return ES_ACCEPT;
}

bool es_agg_traffic(es_store *s, const es_key *send, const es_key *receive, int64_t ts_min,
                    int64_t ts_max, es_traffic **out, size_t *n) {
    uint32_t npids = es_intern_size(&es_store_tables(s)->pid);
    traffic_ctx c = {mi_zalloc(((size_t)npids + 1) * sizeof(es_traffic)), npids, false};
    if (!c.by_pid) return false;
    es_walk w = {.ts_min = ts_min, .ts_max = ts_max};
    if (send) es_store_walk_chain(s, (es_key *)send, ES_CHAIN_TYPE, &w, traffic_visit, &c);
    c.receive = true;
    if (receive) es_store_walk_chain(s, (es_key *)receive, ES_CHAIN_TYPE, &w, traffic_visit, &c);
    size_t k = 0;
    for (uint32_t id = 1; id <= npids; id++) {
        es_traffic t = c.by_pid[id];
        if (t.sent || t.inflow || t.received) {
            t.pid = id;
            c.by_pid[k++] = t;
        }
    }
    *out = c.by_pid;
    *n = k;
    return true;
}

/* ---- peers ------------------------------------------------------------------------ */

typedef struct peers_ctx {
    uint64_t *counts;
    uint32_t npids, send, receive;
    bool incoming;
} peers_ctx;

static int peers_visit(const es_event_view *v, void *p) {
    peers_ctx *c = p;
    if (v->type_id != c->send && v->type_id != c->receive) return ES_REJECT;
    uint32_t other = c->incoming ? v->actor : v->peer;
    if (other && other <= c->npids) c->counts[other]++;
    return ES_ACCEPT;
}

static int cmp_peer(const void *a, const void *b) {
    const es_peer_count *x = a, *y = b;
    return x->count != y->count ? (x->count > y->count ? -1 : 1)
                                : (x->pid > y->pid) - (x->pid < y->pid);
}

bool es_agg_peers(es_store *s, es_key *pid, const es_key *send, const es_key *receive,
                  es_peer_count **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!send && !receive) return true;
    uint32_t npids = es_intern_size(&es_store_tables(s)->pid);
    peers_ctx c = {mi_zalloc(((size_t)npids + 1) * sizeof(uint64_t)), npids, send ? send->id : 0,
                   receive ? receive->id : 0, false};
    if (!c.counts) return false;
    es_walk w = {.ts_min = INT64_MIN, .ts_max = INT64_MAX};
    es_store_walk_chain(s, pid, ES_CHAIN_ACTOR, &w, peers_visit, &c);
    c.incoming = true;
    es_store_walk_chain(s, pid, ES_CHAIN_PEER, &w, peers_visit, &c);
    size_t k = 0;
    for (uint32_t id = 1; id <= npids; id++) k += c.counts[id] != 0;
    es_peer_count *r = mi_malloc((k ? k : 1) * sizeof *r);
    if (!r) {
        mi_free(c.counts);
        return false;
    }
    k = 0;
    for (uint32_t id = 1; id <= npids; id++)
        if (c.counts[id]) r[k++] = (es_peer_count){id, c.counts[id]};
    mi_free(c.counts);
    qsort(r, k, sizeof *r, cmp_peer);
    *out = r;
    *n = k;
    return true;
}

/* ---- one process's summary -------------------------------------------------------- */

typedef struct actor_ctx {
    es_actor_summary *out;
    uint32_t ntypes;
} actor_ctx;

static int actor_visit(const es_event_view *v, void *p) {
    actor_ctx *c = p;
    es_actor_summary *a = c->out;
    a->events++;
    if (a->first == INT64_MIN || v->ts < a->first) a->first = v->ts;
    if (a->last == INT64_MIN || v->ts > a->last) a->last = v->ts;
    if (v->type_id <= c->ntypes) a->by_type[v->type_id]++;
    return ES_ACCEPT;
}

bool es_agg_actor(es_store *s, es_key *pid, es_actor_summary *out) {
    uint32_t ntypes = es_intern_size(&es_store_tables(s)->type);
    *out = (es_actor_summary){0, INT64_MIN, INT64_MIN, mi_zalloc(((size_t)ntypes + 1) * 8)};
    if (!out->by_type) return false;
    actor_ctx c = {out, ntypes};
    es_walk w = {.ts_min = INT64_MIN, .ts_max = INT64_MAX};
    es_store_walk_chain(s, pid, ES_CHAIN_ACTOR, &w, actor_visit, &c);
    return true;
}
