/* Unit tests of the query engine without erl_nif: payload readers (payload.c),
 * predicates (pred.c), key lists, cursors and deferred predicates (query.c), sorting
 * runs, group-by with exact percentiles (group.c), call trees (call_tree.c) and history
 * (history.c): state transitions by digest, live processes, snapshots and links. Paging under
 * concurrent appends and pruning is test_paging.c's (also run under TSan). */
#include "call_tree.h"
#include "group.h"
#include "helpers.h"
#include "payload_writer.h"
#include "history.h"
#include "query.h"

#include "harness.h"

#include <stdlib.h>

/* Field words: any 64-bit values serve (the real ones are atom term words). */
enum {
    F_STATUS = 1001,
    F_PATH = 1002,
    F_KIND = 1003,
    F_ARGS = 1004,
    F_CALL_ID = 1005,
    F_STATE = 1006,
    F_DURATION = 1007,
    F_NAME = 1008,
    A_GET = 2001,
    A_POST = 2002
};

/* The bytes of one term written on its own, for a predicate's value. */
static uint32_t term_bytes(void (*write)(pl *, void *), void *arg, uint8_t *out) {
    pl p = {.n = 0};
    write(&p, arg);
    memcpy(out, p.b, p.n);
    return (uint32_t)p.n;
}

static void w_int(pl *p, void *arg) {
    put_int(p, *(int64_t *)arg);
}
static void w_atom(pl *p, void *arg) {
    put_atom(p, *(uint64_t *)arg);
}

static es_store *s;
static es_tables *t;

static void setup(void) {
    s = test_store(100000, 16 << 20);
    t = es_store_tables(s);
}
static void teardown(void) {
    es_store_free(s);
}

TestSuite(payload, .init = setup, .fini = teardown);
TestSuite(query, .init = setup, .fini = teardown);
TestSuite(group, .init = setup, .fini = teardown);
TestSuite(history, .init = setup, .fini = teardown);

/* A request-like event: status, path, kind, args {method, [status, 7]}. */
static void request(pl *p, int64_t status, const char *path, uint64_t kind) {
    pl_begin(p);
    key(p, F_KIND);
    put_atom(p, kind);
    key(p, F_STATUS);
    put_int(p, status);
    key(p, F_PATH);
    put_bin(p, path);
    key(p, F_ARGS);
    p->b[p->n++] = SMALL_TUPLE_EXT;
    p->b[p->n++] = 2;
    put_atom(p, kind);
    p->b[p->n++] = LIST_EXT;
    be32(p->b + p->n, 2);
    p->n += 4;
    put_int(p, status);
    put_int(p, 7);
    p->b[p->n++] = NIL_EXT;
    pl_end(p);
}

Test(payload, fields_elements_numbers_and_binaries) {
    pl p;
    request(&p, 503, "/cart/1", A_GET);
    es_pl_span v, e;
    cr_assert(es_pl_field(p.b, p.n, F_STATUS, &v));
    es_pl_num n;
    cr_assert(es_pl_number(v, &n));
    cr_assert(!n.is_float && n.i == 503);
    cr_assert(es_pl_field(p.b, p.n, F_PATH, &v));
    const uint8_t *data;
    size_t len;
    cr_assert(es_pl_binary(v, &data, &len));
    cr_assert(len == 7 && memcmp(data, "/cart/1", 7) == 0);
    cr_assert_not(es_pl_field(p.b, p.n, 9999, &v), "no such field");
    cr_assert(es_pl_field(p.b, p.n, F_ARGS, &v));
    cr_assert(es_pl_element(v, 0, &e));
    uint64_t w;
    cr_assert(es_pl_atom(e, &w) && w == A_GET);
    cr_assert(es_pl_element(v, 1, &e));
    es_pl_span x;
    cr_assert(es_pl_element(e, 1, &x));
    cr_assert(es_pl_number(x, &n) && n.i == 7);
    cr_assert_not(es_pl_element(e, 2, &x), "past the end of a list");
    cr_assert_not(es_pl_element(v, 2, &x), "past the end of a tuple");
    /* Truncated images are refused, not overread. */
    for (size_t cut = 0; cut < p.n; cut++) es_pl_field(p.b, cut, F_ARGS, &v);
    cr_assert_not(es_pl_field(p.b, p.n - 3, F_ARGS, &v));
}

static es_pred pred_num(uint64_t field, uint8_t op, int64_t a, int64_t b) {
    es_pred p = {.field = field, .op = op};
    p.a = (es_pl_num){false, a, 0};
    p.b = (es_pl_num){false, b, 0};
    return p;
}

/* The same request as an indexed map (payload.h: ES_INDEXED_MAP): the key offsets
 * first, then the pairs; readers find the same fields. */
static void indexed(const pl *plain, pl *out) {
    uint32_t n = plain->fields;
    out->n = 0;
    out->b[out->n++] = ETF_VERSION;
    out->b[out->n++] = ES_INDEXED_MAP;
    be32(out->b + out->n, n);
    out->n += 4;
    size_t table = out->n, shift = 2 * n;
    out->n += shift;
    size_t at = 6;
    for (uint32_t i = 0; i < n; i++) {
        size_t off = at + shift;
        out->b[table + 2 * i] = (uint8_t)(off >> 8), out->b[table + 2 * i + 1] = (uint8_t)off;
        size_t k = es_pl_term_size(plain->b + at, plain->n - at);
        size_t v = es_pl_term_size(plain->b + at + k, plain->n - at - k);
        at += k + v;
    }
    memcpy(out->b + out->n, plain->b + 6, plain->n - 6);
    out->n += plain->n - 6;
}

Test(payload, indexed_maps_read_as_plain_ones) {
    pl p, q;
    request(&p, 503, "/cart/1", A_GET);
    indexed(&p, &q);
    es_pl_span a, b;
    uint64_t keys[] = {F_KIND, F_STATUS, F_PATH, F_ARGS};
    for (int i = 0; i < 4; i++) {
        cr_assert(es_pl_field(p.b, p.n, keys[i], &a));
        cr_assert(es_pl_field(q.b, q.n, keys[i], &b));
        cr_assert(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "field %d", i);
    }
    cr_assert_not(es_pl_field(q.b, q.n, 9999, &b));
    es_pred ge = pred_num(F_STATUS, ES_OP_GE, 500, 0), lt = pred_num(F_STATUS, ES_OP_LT, 500, 0);
    cr_assert(es_preds_match(&ge, 1, q.b, q.n));
    cr_assert_not(es_preds_match(&lt, 1, q.b, q.n));
    es_pred missing = pred_num(9999, ES_OP_GE, 0, 0);
    missing.negate = true;
    cr_assert(es_preds_match(&missing, 1, q.b, q.n));
    /* Hints: a field is looked for first where it was in the event before, and found by
     * its key when another layout has it elsewhere (or the hint is past the fields). */
    pl r, ri;
    pl_begin(&r);
    key(&r, F_PATH);
    put_bin(&r, "/x");
    key(&r, F_KIND);
    put_atom(&r, A_GET);
    key(&r, F_STATUS);
    put_int(&r, 404);
    pl_end(&r);
    indexed(&r, &ri);
    uint8_t hints[ES_PRED_HINTS] = {0};
    es_pred two[2] = {ge, missing};
    cr_assert(es_preds_match_hinted(two, 2, q.b, q.n, hints));
    cr_assert_eq(hints[0], 1, "status is q's second field");
    cr_assert_not(es_preds_match_hinted(two, 2, ri.b, ri.n, hints), "404 < 500");
    cr_assert_eq(hints[0], 2, "and ri's third");
    cr_assert(es_preds_match_hinted(two, 2, q.b, q.n, hints));
    cr_assert_eq(hints[0], 1);
    hints[0] = 200;
    cr_assert(es_preds_match_hinted(two, 2, q.b, q.n, hints));
    es_pred lt404 = pred_num(F_STATUS, ES_OP_LT, 404, 0);
    lt404.negate = true;
    cr_assert(es_preds_match_hinted(&lt404, 1, ri.b, ri.n, hints), "not < 404");
    /* A damaged table is refused, never read past the image. */
    for (size_t cut = 0; cut < q.n; cut++) {
        es_pl_field(q.b, cut, F_ARGS, &b);
        es_preds_match(&ge, 1, q.b, cut);
    }
    q.b[7] = 0xFF; /* the first key's offset points outside */
    cr_assert_not(es_pl_field(q.b, q.n, F_KIND, &b));
    cr_assert_not(es_preds_match(&ge, 1, q.b, q.n));
    cr_assert(es_preds_match(&missing, 1, q.b, q.n), "no fields there: negations hold");
    cr_assert_not(es_preds_match_hinted(two, 2, q.b, q.n, hints));
}

Test(payload, numbers_compare_across_kinds) {
    es_pl_num a = {false, 3, 0}, b = {true, 0, 3.0}, c = {true, 0, 2.5},
              big = {false, INT64_MAX, 0};
    es_pl_num big_f = {true, 0, 9223372036854775808.0};
    cr_assert_eq(es_pl_num_cmp(&a, &b), 0);
    cr_assert_eq(es_pl_num_cmp(&a, &c), 1);
    cr_assert_eq(es_pl_num_cmp(&c, &a), -1);
    cr_assert_eq(es_pl_num_cmp(&big, &big_f), -1, "2^63 - 1 < 2^63 exactly");
    pl p = {.n = 0};
    put_int(&p, -300);
    es_pl_num n;
    cr_assert(es_pl_number((es_pl_span){p.b, p.n}, &n) && n.i == -300);
    p.n = 0;
    put_int(&p, INT64_MIN);
    cr_assert(es_pl_number((es_pl_span){p.b, p.n}, &n) && !n.is_float && n.i == INT64_MIN);
    p.n = 0;
    put_float(&p, -1.5);
    cr_assert(es_pl_number((es_pl_span){p.b, p.n}, &n) && n.is_float && n.d == -1.5);
}

Test(payload, the_failing_predicate_is_named) {
    pl p, q;
    request(&p, 503, "/cart/1", A_GET);
    indexed(&p, &q);
    es_pred ge = pred_num(F_STATUS, ES_OP_GE, 500, 0), lt = pred_num(F_STATUS, ES_OP_LT, 500, 0);
    es_pred missing = pred_num(9999, ES_OP_GE, 0, 0);
    es_pred three[3] = {ge, lt, missing};
    uint8_t hints[ES_PRED_HINTS] = {0};
    for (int form = 0; form < 2; form++) {
        const pl *x = form ? &q : &p;
        size_t failed = 99;
        cr_assert_not(es_preds_match_at(three, 3, x->b, x->n, hints, &failed));
        cr_assert_eq(failed, 1, "%s map: the second fails first", form ? "indexed" : "plain");
        cr_assert_not(es_preds_match_at(three + 2, 1, x->b, x->n, hints, &failed));
        cr_assert_eq(failed, 0, "a missing field fails its predicate");
        cr_assert(es_preds_match_at(three, 1, x->b, x->n, hints, &failed));
    }
    size_t failed = 99;
    cr_assert_not(es_preds_match_at(three, 3, NULL, 0, hints, &failed));
    cr_assert_eq(failed, 3, "no payload: none in particular");
}

Test(payload, predicates) {
    pl p;
    request(&p, 503, "/cart/1", A_GET);
    es_pred ge = pred_num(F_STATUS, ES_OP_GE, 500, 0), lt = pred_num(F_STATUS, ES_OP_LT, 500, 0);
    es_pred range = pred_num(F_STATUS, ES_OP_RANGE, 500, 599);
    cr_assert(es_preds_match(&ge, 1, p.b, p.n));
    cr_assert_not(es_preds_match(&lt, 1, p.b, p.n));
    cr_assert(es_preds_match(&range, 1, p.b, p.n));
    es_pred not_lt = lt;
    not_lt.negate = true;
    cr_assert(es_preds_match(&not_lt, 1, p.b, p.n));

    uint8_t v1[16], v2[16];
    uint64_t get = A_GET, post = A_POST;
    const uint8_t *vals[2] = {v1, v2};
    uint32_t lens[2] = {term_bytes(w_atom, &post, v1), term_bytes(w_atom, &get, v2)};
    es_pred in = {.field = F_KIND, .op = ES_OP_EQ, .vals = vals, .lens = lens, .nvals = 2};
    es_pred eq_post = in;
    eq_post.nvals = 1;
    cr_assert(es_preds_match(&in, 1, p.b, p.n), "membership");
    cr_assert_not(es_preds_match(&eq_post, 1, p.b, p.n), "equality");

    const uint8_t *prefix[1] = {(const uint8_t *)"/cart"};
    uint32_t plen[1] = {5};
    es_pred pre = {.field = F_PATH, .op = ES_OP_PREFIX, .vals = prefix, .lens = plen, .nvals = 1};
    cr_assert(es_preds_match(&pre, 1, p.b, p.n));
    es_pred pre_status = pre;
    pre_status.field = F_STATUS;
    cr_assert_not(es_preds_match(&pre_status, 1, p.b, p.n), "a prefix of a number: false");

    /* A path: args = {kind, [status, 7]}: element 1, then element 0 is the status. */
    es_pred deep = pred_num(F_ARGS, ES_OP_EQ, 0, 0);
    int64_t status = 503;
    uint8_t sv[16];
    const uint8_t *svals[1] = {sv};
    uint32_t slens[1] = {term_bytes(w_int, &status, sv)};
    deep.vals = svals, deep.lens = slens, deep.nvals = 1;
    deep.depth = 2, deep.path[0] = 1, deep.path[1] = 0;
    cr_assert(es_preds_match(&deep, 1, p.b, p.n));
    deep.path[1] = 1;
    cr_assert_not(es_preds_match(&deep, 1, p.b, p.n));

    /* Missing fields: every test fails, its negation holds; all must hold together. */
    es_pred missing = pred_num(9999, ES_OP_GE, 0, 0);
    cr_assert_not(es_preds_match(&missing, 1, p.b, p.n));
    missing.negate = true;
    cr_assert(es_preds_match(&missing, 1, p.b, p.n));
    es_pred both[2] = {ge, lt};
    cr_assert_not(es_preds_match(both, 2, p.b, p.n));
    es_pred both2[2] = {ge, in};
    cr_assert(es_preds_match(both2, 2, p.b, p.n));
    cr_assert_not(es_preds_match(&ge, 1, NULL, 0), "no payload: no field");
    cr_assert(es_preds_match(&missing, 1, NULL, 0));
}

/* ---- queries ----------------------------------------------------------------------- */

static uint64_t append_payload(int64_t ts, es_key *type, es_key *actor, es_key *peer, const pl *p) {
    es_event_in in = {.ts = ts, .type = type, .actor = actor, .peer = peer};
    if (actor) in.flags |= ES_F_ACTOR;
    if (peer) in.flags |= ES_F_PEER;
    if (actor && peer) {
        uint32_t ids[2] = {actor->id, peer->id};
        in.pair = es_intern_get(&t->pair, ids, sizeof ids, true, 0);
    }
    if (p) in.payload = p->b, in.payload_len = (uint32_t)p->n;
    return es_store_append(s, &in);
}

static size_t run(es_filter *f, es_hits *h) {
    *h = (es_hits){0};
    cr_assert_eq(es_query(s, f, h), ES_Q_OK);
    for (size_t i = 1; i < h->n; i++) {
        es_pos a = {h->v[i - 1].ts, h->v[i - 1].id}, b = {h->v[i].ts, h->v[i].id};
        cr_assert(f->descending ? es_pos_cmp(a, b) > 0 : es_pos_cmp(a, b) < 0, "ordered");
    }
    return h->n;
}

Test(query, lists_pairs_and_directions) {
    es_key *send = test_key(&t->type, 1), *recv = test_key(&t->type, 2),
           *other = test_key(&t->type, 3);
    es_key *p[4];
    for (int i = 0; i < 4; i++) p[i] = test_key(&t->pid, (uint64_t)i + 1);
    /* 400 events: every ordered pair of distinct pids, types cycling. */
    uint64_t counts[4][4] = {{0}}, by_type[4] = {0};
    for (int i = 0; i < 400; i++) {
        int a = i % 4, b = (i / 4 + a + 1) % 4;
        if (a == b) b = (b + 1) % 4;
        es_key *type = i % 3 == 0 ? send : i % 3 == 1 ? recv : other;
        append_payload(i, type, p[a], p[b], NULL);
        counts[a][b]++;
        by_type[i % 3]++;
    }
    es_filter f;
    es_hits h;
    es_filter_init(&f);
    es_keyset_add(&f.types, send);
    es_keyset_add(&f.types, recv);
    cr_assert_eq(run(&f, &h), by_type[0] + by_type[1], "a type list: the union");
    es_hits_free(&h);

    es_filter_init(&f);
    es_keyset_add(&f.actors, p[0]);
    es_keyset_add(&f.actors, p[1]);
    es_keyset_add(&f.peers, p[2]);
    es_keyset_add(&f.peers, p[3]);
    uint64_t expect = counts[0][2] + counts[0][3] + counts[1][2] + counts[1][3];
    cr_assert_eq(run(&f, &h), expect, "actors x peers through pair chains");
    es_hits_free(&h);

    es_filter_init(&f);
    es_keyset_add(&f.actors, p[0]);
    es_keyset_add(&f.peers, p[1]);
    f.both_directions = true;
    cr_assert_eq(run(&f, &h), counts[0][1] + counts[1][0], "between, both ways");
    es_hits_free(&h);

    uint64_t total;
    es_filter_init(&f);
    es_keyset_add(&f.actors, p[2]);
    cr_assert_eq(es_query_count(s, &f, &total), ES_Q_OK);
    cr_assert_eq(total, counts[2][0] + counts[2][1] + counts[2][3]);
}

Test(query, cursors_page_through_equal_timestamps_both_ways) {
    es_key *type = test_key(&t->type, 1);
    /* 300 events on 30 timestamps, out of id order (ids and times disagree). */
    for (int i = 0; i < 300; i++) append_payload((i * 7) % 30, type, NULL, NULL, NULL);
    es_filter all;
    es_filter_init(&all);
    es_keyset_add(&all.types, type);
    es_hits full;
    cr_assert_eq(run(&all, &full), 300);
    for (int desc = 0; desc < 2; desc++) {
        size_t seen = 0;
        es_filter f = all;
        f.limit = 7;
        f.descending = desc;
        for (;;) {
            es_hits h;
            size_t n = run(&f, &h);
            for (size_t i = 0; i < n; i++) {
                size_t at = desc ? 299 - seen : seen;
                cr_assert(h.v[i].id == full.v[at].id, "page item %zu is the next in order", seen);
                seen++;
            }
            if (n) {
                es_pos last = {h.v[n - 1].ts, h.v[n - 1].id};
                if (desc)
                    f.has_before = true, f.before = last;
                else
                    f.has_after = true, f.after = last;
            }
            es_hits_free(&h);
            if (n < 7) break;
        }
        cr_assert_eq(seen, 300, "every event once");
    }
    es_hits_free(&full);
}

Test(query, predicates_with_limits_in_both_orders) {
    es_key *req = test_key(&t->type, 1), *a = test_key(&t->pid, 1);
    pl p;
    for (int i = 0; i < 2000; i++) {
        request(&p, i % 100 == 42 ? 500 : 200, "/x", A_GET);
        append_payload(i, req, a, NULL, &p);
    }
    es_pred five = pred_num(F_STATUS, ES_OP_GE, 500, 0);
    es_filter f;
    es_hits h;
    for (int by_actor = 0; by_actor < 2; by_actor++) {
        es_filter_init(&f);
        es_keyset_add(by_actor ? &f.actors : &f.types, by_actor ? a : req);
        f.preds = &five;
        f.npreds = 1;
        cr_assert_eq(run(&f, &h), 20);
        es_hits_free(&h);
        f.limit = 3;
        cr_assert_eq(run(&f, &h), 3, "ascending: predicates tested in result order");
        cr_assert(h.v[0].ts == 42 && h.v[1].ts == 142 && h.v[2].ts == 242);
        es_hits_free(&h);
        f.descending = true;
        cr_assert_eq(run(&f, &h), 3);
        cr_assert(h.v[0].ts == 1942 && h.v[2].ts == 1742, "descending: newest first");
        es_hits_free(&h);
        f.descending = false;
        f.has_after = true;
        f.after = (es_pos){142, 143};
        cr_assert_eq(run(&f, &h), 3);
        cr_assert_eq(h.v[0].ts, 242, "after a cursor");
        es_hits_free(&h);
    }
    uint64_t n;
    es_filter_init(&f);
    f.preds = &five;
    f.npreds = 1;
    cr_assert_eq(es_query_count(s, &f, &n), ES_Q_OK);
    cr_assert_eq(n, 20, "a predicate over the time walk");
    f.max_visits = 100;
    cr_assert_eq(es_query_count(s, &f, &n), ES_Q_OVER_BUDGET);
}

static int cmp_hit_ref(const void *x, const void *y) {
    const es_hit *a = x, *b = y;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

Test(query, sorting_merges_runs_and_falls_back_to_qsort) {
    srand(7);
    for (int round = 0; round < 200; round++) {
        size_t runs = 1 + (size_t)(rand() % 100), n = 0;
        es_hits h = {0};
        es_hits_reserve(&h, 5000);
        for (size_t r = 0; r < runs && n < 4000; r++) {
            size_t len = (size_t)(rand() % 40);
            int64_t ts = rand() % 1000;
            bool down = rand() % 2;
            for (size_t i = 0; i < len; i++, n++) {
                h.v[n] = (es_hit){ts, (uint64_t)rand() << 16 | n};
                ts += down ? -(rand() % 3) : rand() % 3;
            }
        }
        h.n = n;
        es_hit *ref = malloc((n ? n : 1) * sizeof *ref);
        memcpy(ref, h.v, n * sizeof *ref);
        qsort(ref, n, sizeof *ref, cmp_hit_ref);
        es_hits_sort(&h);
        for (size_t i = 0; i < n; i++)
            cr_assert(h.v[i].ts == ref[i].ts && h.v[i].id == ref[i].id, "round %d item %zu", round,
                      i);
        free(ref);
        es_hits_free(&h);
    }
}

/* ---- groups ------------------------------------------------------------------------ */

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static int64_t nearest_rank(const int64_t *sorted, size_t n, double q) {
    double r = q * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r || rank == 0) rank++;
    return sorted[rank - 1];
}

Test(group, exact_percentiles_per_group) {
    es_key *ret = test_key(&t->type, 1), *pids[3];
    for (int i = 0; i < 3; i++) pids[i] = test_key(&t->pid, (uint64_t)i + 1);
    int64_t *vals[3];
    size_t nv[3] = {0};
    for (int i = 0; i < 3; i++) vals[i] = malloc(3000 * sizeof(int64_t));
    srand(11);
    pl p;
    for (int i = 0; i < 6000; i++) {
        int g = rand() % 3;
        int64_t d = rand() % 5 == 0 ? (int64_t)rand() * 1000 : rand() % 1000; /* heavy tail */
        pl_begin(&p);
        if (i % 10) { /* a tenth have no duration */
            key(&p, F_DURATION);
            put_int(&p, d);
            vals[g][nv[g]++] = d;
        }
        pl_end(&p);
        append_payload(i, ret, pids[g], NULL, &p);
    }
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.types, ret);
    es_group_spec g = {.by = ES_BY_PID, .measure = true, .measure_field = F_DURATION};
    es_groups out;
    cr_assert_eq(es_group_run(s, &f, &g, &out), ES_Q_OK);
    cr_assert_eq(out.n, 3);
    uint64_t events = 0;
    for (size_t i = 0; i < out.n; i++) {
        es_group *e = &out.v[i];
        int k = (int)e->key_id - (int)pids[0]->id;
        cr_assert(k >= 0 && k < 3);
        events += e->count;
        cr_assert_eq(e->measured, nv[k]);
        qsort(vals[k], nv[k], sizeof(int64_t), cmp_i64);
        cr_assert(e->all_int);
        cr_assert_eq((int64_t)e->min, vals[k][0]);
        cr_assert_eq((int64_t)e->max, vals[k][nv[k] - 1]);
        cr_assert_eq((int64_t)e->p50, nearest_rank(vals[k], nv[k], 0.50));
        cr_assert_eq((int64_t)e->p90, nearest_rank(vals[k], nv[k], 0.90));
        cr_assert_eq((int64_t)e->p99, nearest_rank(vals[k], nv[k], 0.99));
    }
    cr_assert_eq(events, 6000);
    es_groups_free(&out);
    /* By a payload field's value: the statuses of requests. */
    for (int i = 0; i < 3; i++) free(vals[i]);
    es_key *req = test_key(&t->type, 2);
    for (int i = 0; i < 100; i++) {
        request(&p, i % 4 == 0 ? 500 : 200, "/", A_GET);
        append_payload(10000 + i, req, NULL, NULL, &p);
    }
    es_filter_init(&f);
    es_keyset_add(&f.types, req);
    es_group_spec by_status = {.by = ES_BY_FIELD, .field = F_STATUS};
    cr_assert_eq(es_group_run(s, &f, &by_status, &out), ES_Q_OK);
    cr_assert_eq(out.n, 2);
    for (size_t i = 0; i < out.n; i++) {
        es_pl_num n;
        cr_assert(es_pl_number((es_pl_span){out.v[i].key, out.v[i].key_len}, &n));
        cr_assert_eq(out.v[i].count, n.i == 500 ? 25u : 75u);
    }
    es_groups_free(&out);
}

Test(group, quantiles_of_small_sets) {
    long double v[5] = {5, 1, 4, 2, 3};
    cr_assert_eq(es_quantile(v, 5, 0.5), 3);
    cr_assert_eq(es_quantile(v, 5, 0.99), 5);
    cr_assert_eq(es_quantile(v, 5, 0.2), 1);
    long double same[4] = {7, 7, 7, 7};
    cr_assert_eq(es_quantile(same, 4, 0.9), 7);
    long double one[1] = {-2};
    cr_assert_eq(es_quantile(one, 1, 0.5), -2);
}

/* ---- history ----------------------------------------------------------------------- */

static pl ret_payload(uint64_t call_id) {
    pl p;
    pl_begin(&p);
    key(&p, F_CALL_ID);
    put_int(&p, (int64_t)call_id);
    key(&p, F_DURATION);
    put_int(&p, (int64_t)call_id * 10);
    pl_end(&p);
    return p;
}

Test(history, call_trees_pair_returns_with_their_calls) {
    es_key *call = test_key(&t->type, 1), *ret = test_key(&t->type, 2),
           *exc = test_key(&t->type, 3);
    es_key *a = test_key(&t->pid, 1), *b = test_key(&t->pid, 2);
    int64_t ts = 0;
    /* a: f( g(), h( i() ) ) then j() left open; b's events interleave. */
    uint64_t f = append_payload(ts++, call, a, NULL, NULL);
    append_payload(ts++, call, b, NULL, NULL);
    uint64_t g = append_payload(ts++, call, a, NULL, NULL);
    pl p = ret_payload(g);
    uint64_t g_end = append_payload(ts++, ret, a, NULL, &p);
    uint64_t h = append_payload(ts++, call, a, NULL, NULL);
    uint64_t i = append_payload(ts++, call, a, NULL, NULL);
    p = ret_payload(i);
    append_payload(ts++, exc, a, NULL, &p);
    p = ret_payload(999); /* names no open call: left unmatched */
    append_payload(ts++, ret, a, NULL, &p);
    p = ret_payload(h);
    append_payload(ts++, ret, a, NULL, &p);
    p = ret_payload(f);
    uint64_t f_end = append_payload(ts++, ret, a, NULL, &p);
    uint64_t j = append_payload(ts++, call, a, NULL, NULL);
    es_filter base;
    es_filter_init(&base);
    es_keyset_add(&base.actors, a);
    es_call_keys k = {call, ret, exc, F_CALL_ID, {0}, {[ES_END_DURATION] = F_DURATION}};
    es_call_tree tree;
    cr_assert_eq(es_history_call_tree(s, &base, &k, &tree), ES_Q_OK);
    es_call_node *nodes = tree.nodes;
    cr_assert_eq(tree.n, 5);
    cr_assert(nodes[0].call_id == f && nodes[0].parent == -1 && nodes[0].end_id == f_end);
    cr_assert(nodes[1].call_id == g && nodes[1].parent == 0 && nodes[1].end_id == g_end);
    cr_assert(nodes[2].call_id == h && nodes[2].parent == 0 && nodes[2].end_id != 0);
    cr_assert(nodes[3].call_id == i && nodes[3].parent == 2 && nodes[3].end_id != 0);
    cr_assert(nodes[4].call_id == j && nodes[4].parent == -1 && nodes[4].end_id == 0, "running");
    for (size_t n = 0; n < tree.n; n++) { /* each node's events, as the walk read them */
        cr_assert_eq(tree.events[nodes[n].call].id, nodes[n].call_id);
        if (!nodes[n].end_id) {
            cr_assert_eq(nodes[n].end, UINT32_MAX);
            continue;
        }
        const es_call_event *end = &tree.events[nodes[n].end];
        cr_assert_eq(end->id, nodes[n].end_id);
        cr_assert_eq(end->closes, nodes[n].call_id);
        es_call_span d = end->field[ES_END_DURATION]; /* the value, copied out */
        es_pl_num num;
        cr_assert(d.len && es_pl_number((es_pl_span){tree.bytes + d.off, d.len}, &num));
        cr_assert_eq(num.i, (int64_t)nodes[n].call_id * 10);
        cr_assert_eq(end->field[ES_END_RESULT].len, 0, "not looked for");
    }
    es_call_tree_free(&tree);
    base.after_id = h - 1; /* from h on: h is a root */
    cr_assert_eq(es_history_call_tree(s, &base, &k, &tree), ES_Q_OK);
    cr_assert(tree.n == 3 && tree.nodes[0].call_id == h && tree.nodes[0].parent == -1);
    es_call_tree_free(&tree);
}

Test(history, call_trees_follow_timestamps_out_of_id_order) {
    es_key *call = test_key(&t->type, 1), *ret = test_key(&t->type, 2);
    es_key *a = test_key(&t->pid, 1);
    /* f at 10..11 appended before g at 5..6: g comes first. */
    uint64_t f = append_payload(10, call, a, NULL, NULL);
    pl p = ret_payload(f);
    append_payload(11, ret, a, NULL, &p);
    uint64_t g = append_payload(5, call, a, NULL, NULL);
    p = ret_payload(g);
    append_payload(6, ret, a, NULL, &p);
    es_filter base;
    es_filter_init(&base);
    es_keyset_add(&base.actors, a);
    es_call_keys k = {call, ret, NULL, F_CALL_ID, {0}, {0}};
    es_call_tree tree;
    cr_assert_eq(es_history_call_tree(s, &base, &k, &tree), ES_Q_OK);
    cr_assert_eq(tree.n, 2);
    cr_assert(tree.nodes[0].call_id == g && tree.nodes[0].parent == -1 && tree.nodes[0].end_id);
    cr_assert(tree.nodes[1].call_id == f && tree.nodes[1].parent == -1 && tree.nodes[1].end_id);
    es_call_tree_free(&tree);
}

static pl state_payload(int64_t value, uint64_t *hash) {
    pl p;
    pl_begin(&p);
    key(&p, F_STATE);
    size_t at = p.n;
    put_int(&p, value);
    *hash = es_pl_hash(p.b + at, p.n - at);
    key(&p, F_KIND);
    put_atom(&p, A_GET);
    pl_end(&p);
    return p;
}

Test(history, state_changes_are_found_by_digest) {
    es_key *state = test_key(&t->type, 1), *a = test_key(&t->pid, 1), *b = test_key(&t->pid, 2);
    int64_t values[] = {1, 2, 3, 2, 5, 3, 7};
    uint64_t ids[7];
    for (int i = 0; i < 7; i++) {
        uint64_t h;
        pl p = state_payload(values[i], &h);
        es_event_in in = {.ts = i,
                          .type = state,
                          .actor = a,
                          .flags = ES_F_ACTOR,
                          .payload = p.b,
                          .payload_len = (uint32_t)p.n,
                          .hash = h};
        ids[i] = es_store_append(s, &in);
        es_event_view v;
        cr_assert(es_store_peek(s, ids[i], &v) && v.hash == h && v.peer == 0, "digest kept");
        in.actor = b; /* another process with the same states */
        es_store_append(s, &in);
    }
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.actors, a);
    es_keyset_add(&f.types, state);
    uint8_t two[8], three[8], nine[8];
    int64_t v2 = 2, v3 = 3, v9 = 9;
    uint32_t l2 = term_bytes(w_int, &v2, two), l3 = term_bytes(w_int, &v3, three),
             l9 = term_bytes(w_int, &v9, nine);
    uint64_t before, after;
    cr_assert_eq(es_history_state_change(s, &f, F_STATE, two, l2, three, l3, &before, &after),
                 ES_Q_OK);
    cr_assert(before == ids[1] && after == ids[2], "first 2, then the first 3 after it");
    cr_assert_eq(es_history_state_change(s, &f, F_STATE, three, l3, two, l2, &before, &after),
                 ES_Q_OK);
    cr_assert(before == ids[2] && after == ids[3]);
    cr_assert_eq(es_history_state_change(s, &f, F_STATE, three, l3, nine, l9, &before, &after),
                 ES_Q_OK);
    cr_assert(before == 0 && after == 0, "not found");
}

Test(history, live_processes_snapshots_and_links) {
    es_key *spawn = test_key(&t->type, 1), *exit_ = test_key(&t->type, 2),
           *link = test_key(&t->type, 3), *unlink = test_key(&t->type, 4),
           *state = test_key(&t->type, 5);
    es_key *p[5];
    for (int i = 0; i < 5; i++) p[i] = test_key(&t->pid, (uint64_t)i + 1);
    for (int i = 0; i < 5; i++) append_payload(10 + i, spawn, p[i], NULL, NULL);
    append_payload(20, link, p[0], p[1], NULL);
    append_payload(21, link, p[2], p[0], NULL);
    append_payload(22, link, p[0], p[3], NULL);
    append_payload(23, unlink, p[1], p[0], NULL); /* by the other side */
    uint64_t h;
    pl sp = state_payload(42, &h);
    uint64_t st = append_payload(24, state, p[0], NULL, &sp);
    append_payload(30, exit_, p[3], NULL, NULL); /* p3 dies: no longer a link of p0 */
    append_payload(40, link, p[0], p[4], NULL);
    es_life_keys k = {0};
    es_keyset_add(&k.born, spawn);
    es_keyset_add(&k.died, exit_);
    es_keyset_add(&k.link, link);
    es_keyset_add(&k.unlink, unlink);
    k.state = state;
    uint32_t *links;
    size_t n;
    cr_assert_eq(es_history_links(s, &k, p[0], 25, &links, &n), ES_Q_OK);
    cr_assert(n == 2 && links[0] == p[2]->id && links[1] == p[3]->id, "p3 alive at 25");
    es_history_free(links);
    cr_assert_eq(es_history_links(s, &k, p[0], INT64_MAX, &links, &n), ES_Q_OK);
    cr_assert(n == 2 && links[0] == p[2]->id && links[1] == p[4]->id);
    es_history_free(links);
    es_snapshot snap;
    cr_assert_eq(es_history_snapshot(s, &k, 35, &snap), ES_Q_OK);
    cr_assert_eq(snap.n, 4, "p3 exited at 30");
    cr_assert_eq(snap.v[0].pid, p[0]->id);
    cr_assert_eq(snap.v[0].state_id, st);
    cr_assert(snap.v[0].nlinks == 1 && snap.v[0].links[0] == p[2]->id);
    cr_assert(snap.v[2].pid == p[2]->id && snap.v[2].nlinks == 1 && snap.v[2].links[0] == p[0]->id);
    cr_assert(snap.v[0].born_ids[0] != 0 && snap.v[0].state_id != 0);
    cr_assert_eq(snap.v[1].state_id, 0);
    es_snapshot_free(&snap);
    /* Before any link event: no links to replay (nothing sorted, nothing found). */
    cr_assert_eq(es_history_snapshot(s, &k, 15, &snap), ES_Q_OK);
    cr_assert(snap.n == 5 && snap.v[0].nlinks == 0 && snap.v[4].nlinks == 0);
    es_snapshot_free(&snap);
    cr_assert_eq(es_history_links(s, &k, p[0], 15, &links, &n), ES_Q_OK);
    cr_assert_eq(n, 0);
    es_history_free(links);
}

/* Events of a type whose role comes from a field (vocab.h's variants: :process events
 * with event: :spawn | :exit ...), processes known only from other events (seen), and
 * exits recorded after the moment asked about. */
Test(history, variant_roles_seen_processes_and_later_exits) {
    es_key *spawn = test_key(&t->type, 1), *exit_ = test_key(&t->type, 2),
           *process = test_key(&t->type, 3), *send = test_key(&t->type, 4);
    enum { F_EVENT = 3001, A_SPAWN = 3002, A_EXIT = 3003, A_OTHER = 3004 };
    es_key *p[5];
    for (int i = 0; i < 5; i++) p[i] = test_key(&t->pid, (uint64_t)i + 1);
    uint64_t words[] = {A_SPAWN, A_EXIT, A_OTHER};
    pl events[3];
    for (int i = 0; i < 3; i++) {
        pl_begin(&events[i]);
        key(&events[i], F_EVENT);
        put_atom(&events[i], words[i]);
        pl_end(&events[i]);
    }
    append_payload(10, spawn, p[0], NULL, NULL);
    append_payload(11, process, p[1], NULL, &events[0]); /* born by a variant */
    append_payload(12, process, p[2], NULL, &events[2]); /* a variant of no role: seen */
    append_payload(13, send, p[3], p[0], NULL);          /* seen by a message it sent */
    append_payload(30, process, p[1], NULL, &events[1]); /* dies by a variant */
    append_payload(40, exit_, p[0], NULL, NULL);         /* dies after 35 */
    for (int i = 0; i < 50; i++) append_payload(50 + i, send, p[3], p[0], NULL); /* later */
    append_payload(120, send, p[4], p[0], NULL); /* first seen after 35 */

    uint8_t spawn_v[16], exit_v[16];
    uint64_t a_spawn = A_SPAWN, a_exit = A_EXIT;
    const uint8_t *born_vals[] = {spawn_v}, *died_vals[] = {exit_v};
    uint32_t born_lens[] = {term_bytes(w_atom, &a_spawn, spawn_v)},
             died_lens[] = {term_bytes(w_atom, &a_exit, exit_v)};
    es_life_keys k = {0};
    es_keyset_add(&k.born, spawn);
    es_keyset_add(&k.died, exit_);
    k.born_v[0] = (es_role_variant){
        process,
        {.field = F_EVENT, .op = ES_OP_EQ, .vals = born_vals, .lens = born_lens, .nvals = 1}};
    k.died_v[0] = (es_role_variant){
        process,
        {.field = F_EVENT, .op = ES_OP_EQ, .vals = died_vals, .lens = died_lens, .nvals = 1}};
    k.nborn_v = k.ndied_v = 1;

    uint32_t *ids;
    size_t n;
    cr_assert_eq(es_history_live(s, &k, 20, &ids, &n), ES_Q_OK);
    cr_assert(n == 2 && ids[0] == p[0]->id && ids[1] == p[1]->id, "born: spawn and the variant");
    es_history_free(ids);
    cr_assert_eq(es_history_live(s, &k, 35, &ids, &n), ES_Q_OK);
    cr_assert(n == 1 && ids[0] == p[0]->id, "the variant's exit ends p1");
    es_history_free(ids);

    es_snapshot snap;
    cr_assert_eq(es_history_snapshot(s, &k, 35, &snap), ES_Q_OK);
    cr_assert_eq(snap.n, 3, "p0 (born), p2 and p3 (seen); not p1 (exited), not p4 (later)");
    cr_assert(snap.v[0].pid == p[0]->id && snap.v[0].born && snap.v[0].exited);
    cr_assert(snap.v[1].pid == p[2]->id && !snap.v[1].born && !snap.v[1].exited);
    cr_assert(snap.v[2].pid == p[3]->id && !snap.v[2].born && !snap.v[2].exited);
    cr_assert(snap.v[0].nlinks == 0);
    es_snapshot_free(&snap);
    cr_assert_eq(es_history_snapshot(s, &k, 5, &snap), ES_Q_OK);
    cr_assert_eq(snap.n, 0);
    es_snapshot_free(&snap);
}
