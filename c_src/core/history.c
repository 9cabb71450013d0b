/*
 * history.c — processes alive at a moment, their names, states and links then, and
 * state transitions, on the query engine (call trees: call_tree.c). See history.h for
 * the contract.
 */
#include "history.h"

#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

void es_history_free(void *p) {
    mi_free(p);
}

/* Every event of one set of types at or before ts (all of them when ts is INT64_MAX),
 * optionally of one actor or one peer. */
static enum es_query_status each_of(es_store *s, const es_keyset *types, int64_t ts, es_key *actor,
                                    es_key *peer, bool payloads, es_match_fn fn, void *ctx) {
    if (types->n == 0) return ES_Q_OK;
    es_filter f;
    es_filter_init(&f);
    f.types = *types;
    f.ts_max = ts;
    if (actor) es_keyset_add(&f.actors, actor);
    if (peer) es_keyset_add(&f.peers, peer);
    return es_query_each(s, &f, payloads, fn, ctx);
}

/* The same for the events of variant rows that take a role (vocab.h). */
static enum es_query_status each_variant(es_store *s, const es_role_variant *v, int64_t ts,
                                         es_key *actor, es_match_fn fn, void *ctx) {
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.types, v->type);
    f.ts_max = ts;
    f.preds = &v->pred;
    f.npreds = 1;
    if (actor) es_keyset_add(&f.actors, actor);
    return es_query_each(s, &f, false, fn, ctx);
}

/* Every died event (of the died types and variants) at or before ts, of one actor or all. */
static enum es_query_status each_died(es_store *s, const es_life_keys *k, int64_t ts, es_key *actor,
                                      es_match_fn fn, void *ctx) {
    enum es_query_status st = each_of(s, &k->died, ts, actor, NULL, false, fn, ctx);
    for (uint32_t i = 0; st == ES_Q_OK && i < k->ndied_v; i++)
        st = each_variant(s, &k->died_v[i], ts, actor, fn, ctx);
    return st;
}

static inline bool later(es_pos a, es_pos b) {
    return es_pos_cmp(a, b) > 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* ---- per-process facts ------------------------------------------------------------ */

typedef struct last_event {
    es_pos at;
    uint64_t id; /* 0: none */
} last_event;

typedef struct proc_facts {
    last_event born[ES_BORN_TYPES], name, state;
    bool born_any, dead, exited, seen;
} proc_facts;

typedef struct facts_ctx {
    proc_facts *by_pid;
    uint32_t npids;
    int what; /* which fact a walk updates */
    int born_index;
    int64_t ts; /* the moment asked about */
} facts_ctx;

enum { FACT_BORN, FACT_DIED, FACT_NAME, FACT_STATE };

/* Whether a process is in a snapshot at the moment: born or seen then, not dead. */
static inline bool present(const proc_facts *f) {
    return (f->born_any || f->seen || f->state.id) && !f->dead;
}

static void note(last_event *e, const es_event_view *v) {
    es_pos at = {v->ts, v->id};
    if (!e->id || later(at, e->at)) *e = (last_event){at, v->id};
}

static int facts_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)payload;
    facts_ctx *c = p;
    if (!v->actor || v->actor > c->npids) return ES_REJECT;
    proc_facts *f = &c->by_pid[v->actor];
    switch (c->what) {
    case FACT_BORN:
        f->born_any = true;
        if (c->born_index < ES_BORN_TYPES) note(&f->born[c->born_index], v);
        break;
    case FACT_DIED:
        f->exited = true;
        if (v->ts <= c->ts) f->dead = true;
        break;
    case FACT_NAME:
        note(&f->name, v);
        break;
    case FACT_STATE:
        note(&f->state, v);
        break;
    }
    return ES_ACCEPT;
}

static int seen_visit(const es_event_view *v, void *p) {
    (void)v;
    *(bool *)p = true;
    return ES_ABORT;
}

/* Processes with no born or state event by ts but some other event of theirs then: each
 * one's chain walked back from its newest event to the first at or before ts. */
static void note_seen(es_store *s, int64_t ts, facts_ctx *c) {
    es_intern *pids = &es_store_tables(s)->pid;
    es_walk w = {.ts_min = INT64_MIN, .ts_max = ts, .want = 1, .descending = true};
    for (uint32_t p = 1; p <= c->npids; p++) {
        proc_facts *f = &c->by_pid[p];
        if (f->born_any || f->state.id || f->dead) continue;
        es_key *key = es_intern_by_id(pids, p);
        if (key) es_store_walk_chain(s, key, ES_CHAIN_ACTOR, &w, seen_visit, &f->seen);
    }
}

/* The lifecycle facts of every process at ts; `full` adds names, states, exits recorded
 * after ts, and the processes seen then with no born event. */
static enum es_query_status gather(es_store *s, const es_life_keys *k, int64_t ts, bool full,
                                   facts_ctx *c) {
    c->npids = es_intern_size(&es_store_tables(s)->pid);
    c->by_pid = mi_zalloc(((size_t)c->npids + 1) * sizeof *c->by_pid);
    c->ts = ts;
    if (!c->by_pid) return ES_Q_NO_MEMORY;
    enum es_query_status st = ES_Q_OK;
    c->what = FACT_BORN;
    int born = 0;
    for (uint32_t i = 0; st == ES_Q_OK && i < k->born.n; i++) {
        es_keyset one = {.v = {k->born.v[i]}, .n = 1};
        c->born_index = born++;
        st = each_of(s, &one, ts, NULL, NULL, false, facts_visit, c);
    }
    for (uint32_t i = 0; st == ES_Q_OK && i < k->nborn_v; i++) {
        c->born_index = born++;
        st = each_variant(s, &k->born_v[i], ts, NULL, facts_visit, c);
    }
    c->what = FACT_DIED;
    if (st == ES_Q_OK) st = each_died(s, k, full ? INT64_MAX : ts, NULL, facts_visit, c);
    if (full) {
        es_keyset naming = k->named;
        for (uint32_t i = 0; i < k->unnamed.n; i++) es_keyset_add(&naming, k->unnamed.v[i]);
        for (uint32_t i = 0; i < k->born.n; i++) es_keyset_add(&naming, k->born.v[i]);
        c->what = FACT_NAME;
        if (st == ES_Q_OK) st = each_of(s, &naming, ts, NULL, NULL, false, facts_visit, c);
        for (uint32_t i = 0; st == ES_Q_OK && i < k->nborn_v; i++)
            st = each_variant(s, &k->born_v[i], ts, NULL, facts_visit, c);
        es_keyset states = {.v = {k->state}, .n = k->state ? 1 : 0};
        c->what = FACT_STATE;
        if (st == ES_Q_OK) st = each_of(s, &states, ts, NULL, NULL, false, facts_visit, c);
        if (st == ES_Q_OK) note_seen(s, ts, c);
    }
    if (st != ES_Q_OK) {
        mi_free(c->by_pid);
        c->by_pid = NULL;
    }
    return st;
}

enum es_query_status es_history_live(es_store *s, const es_life_keys *k, int64_t ts,
                                     uint32_t **pids, size_t *n) {
    facts_ctx c = {0};
    enum es_query_status st = gather(s, k, ts, false, &c);
    if (st != ES_Q_OK) return st;
    size_t live = 0;
    for (uint32_t p = 1; p <= c.npids; p++) live += c.by_pid[p].born_any && !c.by_pid[p].dead;
    *pids = mi_malloc((live ? live : 1) * sizeof **pids);
    if (!*pids) {
        mi_free(c.by_pid);
        return ES_Q_NO_MEMORY;
    }
    *n = 0;
    for (uint32_t p = 1; p <= c.npids; p++)
        if (c.by_pid[p].born_any && !c.by_pid[p].dead) (*pids)[(*n)++] = p;
    mi_free(c.by_pid);
    return ES_Q_OK;
}

/* ---- links ------------------------------------------------------------------------ */

typedef struct link_event {
    es_pos at;
    uint32_t a, b;
    bool link;
} link_event;

typedef struct links_ctx {
    link_event *v;
    size_t n, cap;
    const es_life_keys *k;
    bool oom;
} links_ctx;

static int links_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)payload;
    links_ctx *c = p;
    if (!v->actor || !v->peer || v->actor == v->peer) return ES_REJECT;
    if (!es_grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) {
        c->oom = true;
        return ES_ABORT;
    }
    bool is_link = false;
    for (uint32_t i = 0; i < c->k->link.n; i++) is_link |= v->type_id == c->k->link.v[i]->id;
    c->v[c->n++] = (link_event){{v->ts, v->id}, v->actor, v->peer, is_link};
    return ES_ACCEPT;
}

static int cmp_link_event(const void *a, const void *b) {
    const link_event *x = a, *y = b;
    return es_pos_cmp(x->at, y->at);
}

/* A set of directed pairs (p, o) with a linked flag: open addressing on 64-bit keys. */
typedef struct pair_set {
    uint64_t *keys; /* p << 32 | o, 0 = empty */
    uint8_t *linked;
    size_t mask;
} pair_set;

static bool pairs_init(pair_set *ps, size_t events) {
    size_t cap = 64;
    while (cap < events * 4 + 16) cap *= 2;
    ps->keys = mi_zalloc(cap * sizeof *ps->keys);
    ps->linked = mi_zalloc(cap);
    ps->mask = cap - 1;
    return ps->keys && ps->linked;
}

static void pairs_free(pair_set *ps) {
    mi_free(ps->keys);
    mi_free(ps->linked);
}

static void pairs_set(pair_set *ps, uint32_t p, uint32_t o, bool linked) {
    uint64_t key = (uint64_t)p << 32 | o;
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 20) & ps->mask;
    while (ps->keys[i] && ps->keys[i] != key) i = (i + 1) & ps->mask;
    ps->keys[i] = key;
    ps->linked[i] = linked;
}

/* Replays link events (sorted) for every process, or only for `only` (0: all). */
static bool replay(links_ctx *c, uint32_t only, pair_set *ps) {
    if (c->n > 1) qsort(c->v, c->n, sizeof *c->v, cmp_link_event); /* c->v: NULL when none */
    if (!pairs_init(ps, c->n)) return false;
    for (size_t i = 0; i < c->n; i++) {
        link_event *e = &c->v[i];
        if (!only || e->a == only) pairs_set(ps, e->a, e->b, e->link);
        if (!only || e->b == only) pairs_set(ps, e->b, e->a, e->link);
    }
    return true;
}

typedef struct pid_pair {
    uint32_t p, o;
} pid_pair;

static int cmp_pid_pair(const void *a, const void *b) {
    const pid_pair *x = a, *y = b;
    return x->p != y->p ? (x->p > y->p) - (x->p < y->p) : (x->o > y->o) - (x->o < y->o);
}

static enum es_query_status collect_links(es_store *s, const es_life_keys *k, int64_t ts,
                                          es_key *only, links_ctx *c) {
    c->k = k;
    es_keyset types = k->link;
    for (uint32_t i = 0; i < k->unlink.n; i++) es_keyset_add(&types, k->unlink.v[i]);
    enum es_query_status st;
    if (only) {
        st = each_of(s, &types, ts, only, NULL, false, links_visit, c);
        if (st == ES_Q_OK && !c->oom)
            st = each_of(s, &types, ts, NULL, only, false, links_visit, c);
    } else {
        st = each_of(s, &types, ts, NULL, NULL, false, links_visit, c);
    }
    if (c->oom) st = ES_Q_NO_MEMORY;
    return st;
}

static int died_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)v;
    (void)payload;
    *(bool *)p = true;
    return ES_ABORT;
}

enum es_query_status es_history_links(es_store *s, const es_life_keys *k, es_key *pid, int64_t ts,
                                      uint32_t **links, size_t *n) {
    links_ctx c = {0};
    pair_set ps = {0};
    *links = NULL;
    *n = 0;
    enum es_query_status st = collect_links(s, k, ts, pid, &c);
    if (st == ES_Q_OK && !replay(&c, pid->id, &ps)) st = ES_Q_NO_MEMORY;
    mi_free(c.v);
    if (st != ES_Q_OK) {
        pairs_free(&ps);
        return st;
    }
    size_t cap = 0;
    for (size_t i = 0; i <= ps.mask; i++) cap += ps.keys[i] && ps.linked[i];
    uint32_t *out = mi_malloc((cap ? cap : 1) * sizeof *out);
    if (!out) {
        pairs_free(&ps);
        return ES_Q_NO_MEMORY;
    }
    es_intern *pids = &es_store_tables(s)->pid;
    for (size_t i = 0; st == ES_Q_OK && i <= ps.mask; i++) {
        if (!ps.keys[i] || !ps.linked[i] || ps.keys[i] >> 32 != pid->id) continue;
        uint32_t other = (uint32_t)ps.keys[i];
        es_key *ok = es_intern_by_id(pids, other);
        bool dead = false;
        if (ok) st = each_died(s, k, ts, ok, died_visit, &dead);
        if (!dead) out[(*n)++] = other;
    }
    pairs_free(&ps);
    if (st != ES_Q_OK) {
        mi_free(out);
        *n = 0;
        return st;
    }
    if (*n > 1) qsort(out, *n, sizeof *out, cmp_u32);
    *links = out;
    return ES_Q_OK;
}

/* ---- snapshot --------------------------------------------------------------------- */

enum es_query_status es_history_snapshot(es_store *s, const es_life_keys *k, int64_t ts,
                                         es_snapshot *out) {
    memset(out, 0, sizeof *out);
    facts_ctx c = {0};
    enum es_query_status st = gather(s, k, ts, true, &c);
    if (st != ES_Q_OK) return st;
    links_ctx lc = {0};
    pair_set ps = {0};
    st = collect_links(s, k, ts, NULL, &lc);
    if (st == ES_Q_OK && !replay(&lc, 0, &ps)) st = ES_Q_NO_MEMORY;
    mi_free(lc.v);
    size_t live = 0, nlinks = 0;
    for (uint32_t p = 1; p <= c.npids; p++) live += present(&c.by_pid[p]);
    pid_pair *pairs = NULL;
    if (st == ES_Q_OK) {
        for (size_t i = 0; i <= ps.mask; i++) nlinks += ps.keys[i] && ps.linked[i];
        pairs = mi_malloc((nlinks ? nlinks : 1) * sizeof *pairs);
        out->v = mi_zalloc((live ? live : 1) * sizeof *out->v);
        out->link_ids = mi_malloc((nlinks ? nlinks : 1) * sizeof *out->link_ids);
        if (!pairs || !out->v || !out->link_ids) st = ES_Q_NO_MEMORY;
    }
    if (st != ES_Q_OK) {
        pairs_free(&ps);
        mi_free(pairs);
        mi_free(c.by_pid);
        es_snapshot_free(out);
        return st;
    }
    /* Links between live processes and peers not dead by ts, grouped by process. */
    size_t np = 0;
    for (size_t i = 0; i <= ps.mask; i++) {
        if (!ps.keys[i] || !ps.linked[i]) continue;
        uint32_t p = (uint32_t)(ps.keys[i] >> 32), o = (uint32_t)ps.keys[i];
        if (p > c.npids || o > c.npids) continue;
        if (!present(&c.by_pid[p]) || c.by_pid[o].dead) continue;
        pairs[np++] = (pid_pair){p, o};
    }
    pairs_free(&ps);
    if (np > 1) qsort(pairs, np, sizeof *pairs, cmp_pid_pair);
    size_t j = 0;
    for (uint32_t p = 1; p <= c.npids; p++) {
        proc_facts *f = &c.by_pid[p];
        if (!present(f)) continue;
        es_snap_entry *e = &out->v[out->n++];
        e->pid = p;
        e->born = f->born_any;
        e->exited = f->exited;
        for (int b = 0; b < ES_BORN_TYPES; b++) e->born_ids[b] = f->born[b].id;
        e->name_id = f->name.id;
        e->state_id = f->state.id;
        while (j < np && pairs[j].p < p) j++;
        e->links = out->link_ids + j;
        while (j < np && pairs[j].p == p) out->link_ids[j] = pairs[j].o, j++, e->nlinks++;
    }
    mi_free(pairs);
    mi_free(c.by_pid);
    return ES_Q_OK;
}

void es_snapshot_free(es_snapshot *snap) {
    mi_free(snap->v);
    mi_free(snap->link_ids);
    memset(snap, 0, sizeof *snap);
}

/* ---- state transitions ------------------------------------------------------------ */

typedef struct candidate {
    es_pos at;
    bool is_before, is_after;
} candidate;

typedef struct change_ctx {
    es_store *s;
    uint64_t field, hb, ha;
    candidate *v;
    size_t n, cap;
    bool oom;
} change_ctx;

static int change_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)payload;
    change_ctx *c = p;
    uint64_t h = v->hash;
    if (!h) { /* kept without a digest (it had a peer): compute it from the payload */
        const uint8_t *pl = es_query_payload(c->s, v);
        es_pl_span val;
        if (!pl || !es_pl_field(pl, v->len, c->field, &val)) return ES_REJECT;
        h = es_pl_hash(val.p, val.len);
    }
    if (h != c->hb && h != c->ha) return ES_REJECT;
    if (!es_grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) {
        c->oom = true;
        return ES_ABORT;
    }
    c->v[c->n++] = (candidate){{v->ts, v->id}, h == c->hb, h == c->ha};
    return ES_ACCEPT;
}

static int cmp_candidate(const void *a, const void *b) {
    return es_pos_cmp(((const candidate *)a)->at, ((const candidate *)b)->at);
}

/* Whether event id's field holds exactly these bytes (a digest match confirmed). */
static bool field_equals(es_store *s, uint64_t id, uint64_t field, const uint8_t *bytes,
                         size_t len) {
    es_event_view v;
    if (!es_store_peek(s, id, &v)) return false;
    const uint8_t *p = es_query_payload(s, &v);
    es_pl_span val;
    return p && es_pl_field(p, v.len, field, &val) && val.len == len &&
           memcmp(val.p, bytes, len) == 0;
}

enum es_query_status es_history_state_change(es_store *s, const es_filter *f, uint64_t field,
                                             const uint8_t *before, size_t before_len,
                                             const uint8_t *after, size_t after_len,
                                             uint64_t *before_id, uint64_t *after_id) {
    *before_id = *after_id = 0;
    change_ctx c = {.s = s,
                    .field = field,
                    .hb = es_pl_hash(before, before_len),
                    .ha = es_pl_hash(after, after_len)};
    enum es_query_status st = es_query_each(s, f, false, change_visit, &c);
    if (c.oom) st = ES_Q_NO_MEMORY;
    if (st == ES_Q_OK) {
        if (c.n > 1) qsort(c.v, c.n, sizeof *c.v, cmp_candidate);
        size_t i = 0;
        for (; i < c.n; i++)
            if (c.v[i].is_before && field_equals(s, c.v[i].at.id, field, before, before_len)) {
                *before_id = c.v[i].at.id;
                break;
            }
        for (i++; *before_id && i < c.n; i++)
            if (c.v[i].is_after && field_equals(s, c.v[i].at.id, field, after, after_len)) {
                *after_id = c.v[i].at.id;
                break;
            }
        if (!*after_id) *before_id = 0;
    }
    mi_free(c.v);
    return st;
}
