/*
 * call_tree.c — one process's calls as a tree (which call enclosed which, what closed
 * each), read in one walk of its chain on the query engine. See call_tree.h for the
 * contract.
 */
#include "call_tree.h"

#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

typedef struct tree_ctx {
    es_store *s;
    const es_call_keys *k;
    es_call_tree *t;
    size_t cap; /* events t has room for */
    bool oom;
} tree_ctx;

typedef struct pick_ctx {
    const uint64_t *keys;
    unsigned nkeys;
    uint64_t call_id_field;
    const uint8_t *base; /* the tree's bytes: spans are offsets from here */
    es_call_event *e;
} pick_ctx;

/* One payload field: where the values a node shows lie, and an end's call_id (the
 * first of each key counts, as es_pl_field() finds it). */
static bool pick_field(uint64_t key, es_pl_span value, void *p) {
    pick_ctx *c = p;
    for (unsigned i = 0; i < c->nkeys; i++)
        if (key == c->keys[i] && key && !c->e->field[i].len)
            c->e->field[i] = (es_call_span){(uint32_t)(value.p - c->base), (uint32_t)value.len};
    es_pl_num num;
    if (c->call_id_field && key == c->call_id_field && !c->e->closes && es_pl_number(value, &num) &&
        !num.is_float && num.i > 0)
        c->e->closes = (uint64_t)num.i;
    return true;
}

/* Keeps one event of the walk: its slot, and the values of the fields a node shows,
 * copied to the end of the tree's bytes from a checked copy of its payload. */
static int tree_visit(const es_event_view *v, const uint8_t *unchecked, void *p) {
    tree_ctx *c = p;
    es_call_tree *t = c->t;
    if (!es_grow((void **)&t->events, &c->cap, t->nevents + 1, sizeof *t->events)) {
        c->oom = true;
        return ES_ABORT;
    }
    es_call_event *e = &t->events[t->nevents];
    *e = (es_call_event){.id = v->id,
                         .ts = v->ts,
                         .actor = v->actor,
                         .mf = v->mf,
                         .type_id = v->type_id,
                         .flags = v->flags,
                         .arity = v->arity};
    size_t len = (v->flags & ES_F_TRUNCATED) ? 0 : v->len;
    if (len) {
        /* The walk's copy, checked as every event a query returns is read. */
        const uint8_t *copy = unchecked;
        if (!copy || !es_store_payload_verify(c->s, v, copy))
            return ES_REJECT; /* pruned meanwhile: left out */
        bool call = v->type_id == c->k->call->id;
        pick_ctx pc = {call ? c->k->call_fields : c->k->end_fields,
                       call ? ES_CALL_FIELDS : ES_END_FIELDS, call ? 0 : c->k->call_id_field, copy,
                       e};
        es_pl_fields(copy, len, pick_field, &pc); /* a malformed one keeps what was found */
        /* the values found, moved from the copy to the tree's bytes */
        size_t need = 0;
        for (unsigned i = 0; i < pc.nkeys; i++) need += e->field[i].len;
        if (!es_grow((void **)&t->bytes, &t->cap, t->nbytes + need, 1) ||
            t->nbytes + need > UINT32_MAX) {
            c->oom = true;
        } else {
            for (unsigned i = 0; i < pc.nkeys; i++) {
                if (!e->field[i].len) continue;
                memcpy(t->bytes + t->nbytes, copy + e->field[i].off, e->field[i].len);
                e->field[i].off = (uint32_t)t->nbytes;
                t->nbytes += e->field[i].len;
            }
        }
        if (c->oom) return ES_ABORT;
    }
    t->nevents++;
    return ES_ACCEPT;
}

typedef struct event_order {
    int64_t ts;
    uint64_t id;
    uint32_t at;
} event_order;

static int cmp_event_order(const void *a, const void *b) {
    const event_order *x = a, *y = b;
    return es_pos_cmp((es_pos){x->ts, x->id}, (es_pos){y->ts, y->id});
}

/* The events' indexes in (timestamp, id) order. The actor's chain gives them newest
 * first: that order backwards, unless timestamps ran out of id order (then sorted). */
static uint32_t *events_in_order(const es_call_tree *t) {
    size_t n = t->nevents;
    uint32_t *order = mi_malloc((n ? n : 1) * sizeof *order);
    if (!order) return NULL;
    bool descending = true;
    for (size_t i = 1; i < n && descending; i++)
        descending = es_pos_cmp((es_pos){t->events[i].ts, t->events[i].id},
                                (es_pos){t->events[i - 1].ts, t->events[i - 1].id}) < 0;
    if (descending) {
        for (size_t i = 0; i < n; i++) order[i] = (uint32_t)(n - 1 - i);
        return order;
    }
    event_order *v = mi_malloc(n * sizeof *v);
    if (!v) {
        mi_free(order);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (event_order){t->events[i].ts, t->events[i].id, (uint32_t)i};
    qsort(v, n, sizeof *v, cmp_event_order);
    for (size_t i = 0; i < n; i++) order[i] = v[i].at;
    mi_free(v);
    return order;
}

enum es_query_status es_history_call_tree(es_store *s, const es_filter *base, const es_call_keys *k,
                                          es_call_tree *out) {
    memset(out, 0, sizeof *out);
    if (!k->call) return ES_Q_OK;
    es_filter f = *base;
    memset(&f.types, 0, sizeof f.types);
    es_key *types[3] = {k->call, k->ret, k->exc};
    for (int i = 0; i < 3; i++)
        if (types[i]) es_keyset_add(&f.types, types[i]);
    f.preds = NULL;
    f.npreds = 0;
    f.limit = 0;
    f.descending = false;
    /* One walk reads every event once, its payload fetched ahead (the walk's payloads):
     * a second pass over the store would pay its scattered reads again. */
    tree_ctx c = {.s = s, .k = k, .t = out};
    enum es_query_status st = es_query_each(s, &f, true, tree_visit, &c);
    if (c.oom) st = ES_Q_NO_MEMORY;
    uint32_t *order = st == ES_Q_OK ? events_in_order(out) : NULL;
    size_t n = out->nevents ? out->nevents : 1;
    int32_t *stack = order ? mi_malloc(n * sizeof *stack) : NULL;
    out->nodes = stack ? mi_malloc(n * sizeof *out->nodes) : NULL;
    if (!out->nodes) {
        mi_free(order);
        mi_free(stack);
        es_call_tree_free(out);
        return st == ES_Q_OK ? ES_Q_NO_MEMORY : st;
    }
    /* Pairs ends with calls, in (timestamp, id) order. */
    size_t depth = 0, calls = 0;
    for (size_t i = 0; i < out->nevents; i++) {
        const es_call_event *e = &out->events[order[i]];
        if (e->type_id == k->call->id) {
            out->nodes[calls] =
                (es_call_node){e->id, 0, depth ? stack[depth - 1] : -1, order[i], UINT32_MAX};
            stack[depth++] = (int32_t)calls++;
            continue;
        }
        es_call_node *open = depth ? &out->nodes[stack[depth - 1]] : NULL;
        if (open && e->closes && open->call_id == e->closes) {
            open->end_id = e->id;
            open->end = order[i];
            depth--;
        }
    }
    out->n = calls;
    mi_free(stack);
    mi_free(order);
    return ES_Q_OK;
}

void es_call_tree_free(es_call_tree *t) {
    mi_free(t->nodes);
    mi_free(t->events);
    mi_free(t->bytes);
    memset(t, 0, sizeof *t);
}
