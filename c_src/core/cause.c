/*
 * cause.c — a process's events in a window, and what its gen calls caused in the
 * processes it called, one hop deep, on the query engine. See cause.h for the contract.
 */
#include "cause.h"

#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

/* A gen call the process made, as the callee received it. */
typedef struct gen_call {
    uint32_t callee; /* the receiver's pid key id */
    es_pos at;       /* the receive */
    uint8_t *bytes;  /* From ({Pid, Tag}) then Request, copied out of the payload */
    uint32_t from_len, tag_at, tag_len, request_len;
} gen_call;

typedef struct cause_ctx {
    es_store *s;
    const es_cause_keys *k;
    uint32_t pid;
    const uint8_t *pid_term;
    size_t pid_len;
    es_hits *out;
    gen_call *calls;
    size_t ncalls;
    bool oom;
    enum es_query_status status;
    /* the second walk: the callees' events */
    uint32_t *callees; /* sorted pid key ids */
    size_t ncallees;
    struct theirs *theirs;
    size_t ntheirs, cap;
} cause_ctx;

/* An event of a callee, found by the second walk. */
typedef struct theirs {
    uint32_t actor;
    es_pos at;
} theirs;

static bool push(es_hits *h, int64_t ts, uint64_t id) {
    if (!es_hits_reserve(h, h->n < 64 ? 64 : h->n)) return false;
    h->v[h->n++] = (es_hit){ts, id};
    return true;
}

static inline bool is_type(const es_event_view *v, const es_key *type) {
    return type && v->type_id == type->id;
}

static inline bool same_bytes(es_pl_span a, const uint8_t *b, size_t len) {
    return a.len == len && memcmp(a.p, b, len) == 0;
}

static inline bool atom_is(es_pl_span t, uint64_t word) {
    uint64_t w;
    return es_pl_atom(t, &w) && w == word;
}

/* A field of an event's payload (read into the calling thread's buffer). */
static bool field_of(es_store *s, const es_event_view *v, uint64_t field, es_pl_span *out) {
    const uint8_t *p = es_query_payload(s, v);
    return p && es_pl_field(p, v->len, field, out);
}

/* ---- the first walk: the process's events and its gen calls ------------------------ */

/* Notes a receive that is a gen call of the process, and takes it (true); false for any
 * other receive, or a call beyond ES_CAUSE_MAX_CALLS. */
static bool note_call(cause_ctx *c, const es_event_view *v) {
    es_pl_span msg, tag, from, who, tagv, req;
    if (c->ncalls == ES_CAUSE_MAX_CALLS || !field_of(c->s, v, c->k->message, &msg) ||
        msg.p[0] != SMALL_TUPLE_EXT || msg.len < 2 || msg.p[1] != 3 ||
        !es_pl_element(msg, 0, &tag) || !atom_is(tag, c->k->gen_call) ||
        !es_pl_element(msg, 1, &from) || !es_pl_element(from, 0, &who) ||
        !same_bytes(who, c->pid_term, c->pid_len) || !es_pl_element(from, 1, &tagv) ||
        !es_pl_element(msg, 2, &req))
        return false;
    uint8_t *bytes = mi_malloc(from.len + req.len);
    if (!bytes) {
        c->oom = true;
        return true;
    }
    memcpy(bytes, from.p, from.len);
    memcpy(bytes + from.len, req.p, req.len);
    c->calls[c->ncalls++] = (gen_call){.callee = v->actor,
                                       .at = {v->ts, v->id},
                                       .bytes = bytes,
                                       .from_len = (uint32_t)from.len,
                                       .tag_at = (uint32_t)(tagv.p - from.p),
                                       .tag_len = (uint32_t)tagv.len,
                                       .request_len = (uint32_t)req.len};
    if (!push(c->out, v->ts, v->id)) c->oom = true;
    return true;
}

static int first_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)payload;
    cause_ctx *c = p;
    /* A receive of its gen call by another process has it as peer too (the tracer names
     * a gen call's sender: tracer.h), and is followed into that callee. */
    bool followed = v->actor && v->actor != c->pid && is_type(v, c->k->receive) && note_call(c, v);
    if (!followed && (v->actor == c->pid || ((v->flags & ES_F_PEER) && v->peer == c->pid)))
        if (!push(c->out, v->ts, v->id)) c->oom = true;
    return c->oom ? ES_ABORT : ES_ACCEPT;
}

/* ---- the second walk: the callees' events ------------------------------------------ */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int second_visit(const es_event_view *v, const uint8_t *payload, void *p) {
    (void)payload;
    cause_ctx *c = p;
    if (!bsearch(&v->actor, c->callees, c->ncallees, sizeof *c->callees, cmp_u32)) return ES_REJECT;
    if (!es_grow((void **)&c->theirs, &c->cap, c->ntheirs + 1, sizeof *c->theirs)) {
        c->oom = true;
        return ES_ABORT;
    }
    c->theirs[c->ntheirs++] = (theirs){v->actor, {v->ts, v->id}};
    return ES_ACCEPT;
}

/* By callee, then position. */
static int cmp_theirs(const void *a, const void *b) {
    const theirs *x = a, *y = b;
    if (x->actor != y->actor) return x->actor < y->actor ? -1 : 1;
    return es_pos_cmp(x->at, y->at);
}

/* ---- one call's events in its callee ----------------------------------------------- */

/* Whether a send is the reply to another gen call: {[alias | _], _}. */
static bool other_reply(es_pl_span msg, uint64_t alias) {
    es_pl_span tag;
    if (msg.p[0] != SMALL_TUPLE_EXT || msg.len < 2 || msg.p[1] != 2 || !es_pl_element(msg, 0, &tag))
        return false;
    if (tag.p[0] != LIST_EXT || tag.len < 6) return false;
    es_pl_span head = {tag.p + 5, es_pl_value_size(tag.p + 5, tag.len - 5)};
    return head.len && atom_is(head, alias);
}

static bool is_reply(cause_ctx *c, const es_event_view *v, const gen_call *g) {
    es_pl_span msg, tag;
    return is_type(v, c->k->send) && field_of(c->s, v, c->k->message, &msg) &&
           msg.p[0] == SMALL_TUPLE_EXT && msg.len >= 2 && msg.p[1] == 2 &&
           es_pl_element(msg, 0, &tag) && same_bytes(tag, g->bytes + g->tag_at, g->tag_len);
}

/* The function a :call event called, as its atom word (0: none). */
static uint64_t function_of(es_store *s, const es_event_view *v) {
    es_key *mf = v->mf ? es_intern_by_id(&es_store_tables(s)->mf, v->mf) : NULL;
    uint64_t words[2];
    if (!mf) return 0;
    memcpy(words, es_key_bytes(mf), sizeof words);
    return words[1];
}

static bool is_callback(const es_cause_keys *k, uint64_t f) {
    for (int i = 0; i < 4; i++)
        if (k->callbacks[i] && k->callbacks[i] == f) return true;
    return false;
}

/* Whether a :call is handle_call with this call's From. */
static bool starts_call(cause_ctx *c, const es_event_view *v, const gen_call *g) {
    es_pl_span args, from;
    return function_of(c->s, v) == c->k->callbacks[0] && field_of(c->s, v, c->k->args, &args) &&
           es_pl_element(args, 1, &from) && same_bytes(from, g->bytes, g->from_len);
}

/* Whether a :state is this call's: handle_call, caused by its request. */
static bool own_state(cause_ctx *c, const es_event_view *v, const gen_call *g) {
    const uint8_t *p = es_query_payload(c->s, v);
    es_pl_span cb, cause;
    return p && es_pl_field(p, v->len, c->k->callback, &cb) && atom_is(cb, c->k->callbacks[0]) &&
           es_pl_field(p, v->len, c->k->cause, &cause) &&
           same_bytes(cause, g->bytes + g->from_len, g->request_len);
}

/* Whether a receive is another client's gen call or cast. */
static bool other_request(cause_ctx *c, const es_event_view *v) {
    es_pl_span msg, tag;
    return field_of(c->s, v, c->k->message, &msg) && msg.p[0] == SMALL_TUPLE_EXT &&
           es_pl_element(msg, 0, &tag) &&
           (atom_is(tag, c->k->gen_call) || atom_is(tag, c->k->gen_cast));
}

/* The call_id field of a :return or :exception (0: none). */
static uint64_t call_id_of(cause_ctx *c, const es_event_view *v) {
    es_pl_span val;
    es_pl_num n;
    if (!field_of(c->s, v, c->k->call_id, &val) || !es_pl_number(val, &n) || n.is_float || n.i < 0)
        return 0;
    return (uint64_t)n.i;
}

/* Adds the events of call g among its callee's events ev[0..n), which follow the call's
 * receive in (timestamp, id) order. */
static bool follow(cause_ctx *c, const gen_call *g, const theirs *ev, size_t n) {
    const es_cause_keys *k = c->k;
    es_event_view v;
    size_t reply = n;
    for (size_t i = 0; i < n && reply == n; i++)
        if (es_store_peek(c->s, ev[i].at.id, &v) && is_reply(c, &v, g)) reply = i;
    if (reply < n) {
        if (!push(c->out, ev[reply].at.ts, ev[reply].at.id)) return false;
        /* back from the reply to where the call's handling began */
        for (size_t i = reply; i-- > 0;) {
            if (!es_store_peek(c->s, ev[i].at.id, &v)) continue;
            if (is_type(&v, k->receive)) {
                if (other_request(c, &v)) continue;
            } else if (is_type(&v, k->state)) {
                if (!own_state(c, &v, g)) break;
            } else if (is_type(&v, k->call)) {
                if (starts_call(c, &v, g)) {
                    if (!push(c->out, ev[i].at.ts, ev[i].at.id)) return false;
                    break;
                }
                if (is_callback(k, function_of(c->s, &v))) break;
            } else if (is_type(&v, k->send)) {
                es_pl_span msg;
                if (field_of(c->s, &v, k->message, &msg) && other_reply(msg, k->alias)) break;
            }
            if (!push(c->out, ev[i].at.ts, ev[i].at.id)) return false;
        }
        return true;
    }
    /* No reply in the window: the handling, as far as it is told by its :call or
     * :state, and the callee's end. */
    uint64_t open = 0; /* the :call of handle_call, until its return */
    bool state_seen = false;
    for (size_t i = 0; i < n; i++) {
        if (!es_store_peek(c->s, ev[i].at.id, &v)) continue;
        bool take = false;
        if (open) {
            take = !(is_type(&v, k->receive) && other_request(c, &v));
            if ((is_type(&v, k->ret) || is_type(&v, k->exc)) && call_id_of(c, &v) == open) open = 0;
        } else if (is_type(&v, k->call) && starts_call(c, &v, g)) {
            take = true;
            open = v.id;
        } else if (is_type(&v, k->state) && !state_seen && own_state(c, &v, g)) {
            take = state_seen = true;
        } else if (is_type(&v, k->exit) || is_type(&v, k->crash)) {
            take = true;
        }
        if (take && !push(c->out, ev[i].at.ts, ev[i].at.id)) return false;
    }
    return true;
}

/* ---- assembly --------------------------------------------------------------------- */

static bool follow_calls(cause_ctx *c, const es_filter *window) {
    c->callees = mi_malloc(c->ncalls * sizeof *c->callees);
    if (!c->callees) return false;
    es_pos first = c->calls[0].at;
    for (size_t i = 0; i < c->ncalls; i++) {
        c->callees[i] = c->calls[i].callee;
        if (es_pos_cmp(c->calls[i].at, first) < 0) first = c->calls[i].at;
    }
    qsort(c->callees, c->ncalls, sizeof *c->callees, cmp_u32);
    size_t n = 0;
    for (size_t i = 0; i < c->ncalls; i++)
        if (n == 0 || c->callees[i] != c->callees[n - 1]) c->callees[n++] = c->callees[i];
    c->ncallees = n;
    /* the window from the first call on */
    es_filter f = *window;
    if (first.ts > f.ts_min) f.ts_min = first.ts;
    f.has_after = true;
    f.after = first;
    c->status = es_query_each(c->s, &f, false, second_visit, c);
    if (c->status != ES_Q_OK || c->oom) return false;
    qsort(c->theirs, c->ntheirs, sizeof *c->theirs, cmp_theirs);
    for (size_t j = 0; j < c->ncalls; j++) {
        const gen_call *g = &c->calls[j];
        /* the callee's events after the call's receive: one run of the sorted array */
        size_t lo = 0, hi = c->ntheirs;
        theirs key = {g->callee, g->at};
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cmp_theirs(&c->theirs[mid], &key) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t end = lo;
        while (end < c->ntheirs && c->theirs[end].actor == g->callee) end++;
        if (!follow(c, g, c->theirs + lo, end - lo)) return false;
    }
    return true;
}

/* Whether a hit is one the page asks for: of its types, within its positions. */
static bool wanted(const es_filter *page, es_store *s, const es_hit *h) {
    es_pos at = {h->ts, h->id};
    if (page->has_after && es_pos_cmp(at, page->after) <= 0) return false;
    if (page->has_before && es_pos_cmp(at, page->before) >= 0) return false;
    if (h->ts < page->ts_min || h->ts > page->ts_max) return false;
    if (page->types.n == 0) return true;
    es_event_view v;
    if (!es_store_peek(s, h->id, &v)) return false;
    for (uint32_t i = 0; i < page->types.n; i++)
        if (page->types.v[i]->id == v.type_id) return true;
    return false;
}

enum es_query_status es_cause_of(es_store *s, const es_filter *window, const es_filter *page,
                                 es_key *pid, const uint8_t *pid_term, size_t pid_len,
                                 const es_cause_keys *k, es_hits *out) {
    memset(out, 0, sizeof *out);
    cause_ctx c = {
        .s = s, .k = k, .pid = pid->id, .pid_term = pid_term, .pid_len = pid_len, .out = out};
    c.calls = mi_malloc(ES_CAUSE_MAX_CALLS * sizeof *c.calls);
    if (!c.calls) return ES_Q_NO_MEMORY;
    /* the window only (no keys): walked by time, every event in it visited */
    es_filter w;
    es_filter_init(&w);
    w.ts_min = window->ts_min, w.ts_max = window->ts_max;
    w.has_after = window->has_after, w.after = window->after;
    w.has_before = window->has_before, w.before = window->before;
    w.max_visits = window->max_visits;
    c.status = es_query_each(s, &w, false, first_visit, &c);
    bool ok = c.status == ES_Q_OK && !c.oom && (c.ncalls == 0 || follow_calls(&c, &w));
    for (size_t i = 0; i < c.ncalls; i++) mi_free(c.calls[i].bytes);
    mi_free(c.calls);
    mi_free(c.callees);
    mi_free(c.theirs);
    if (!ok) {
        es_hits_free(out);
        return c.status != ES_Q_OK ? c.status : ES_Q_NO_MEMORY;
    }
    /* one hit per event, of those the page asks for, in order */
    es_hits_sort(out);
    size_t kept = 0;
    for (size_t i = 0; i < out->n; i++)
        if ((kept == 0 || out->v[i].id != out->v[kept - 1].id) && wanted(page, s, &out->v[i]))
            out->v[kept++] = out->v[i];
    out->n = kept;
    if (page->descending)
        for (size_t i = 0, j = kept; i + 1 < j--; i++) {
            es_hit t = out->v[i];
            out->v[i] = out->v[j];
            out->v[j] = t;
        }
    if (page->limit && out->n > page->limit) out->n = page->limit;
    return ES_Q_OK;
}
