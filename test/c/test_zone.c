/* Unit tests of the block summaries of payload fields (zone.c) without erl_nif: what a
 * summary rules out for each kind of predicate, per type and for every type; that they
 * are built once and serve later queries with other values; that queries over them
 * give what a scan of every event gives; and queries building them on several threads
 * while another appends (also run under TSan: `make test-sanitize`). */
#include "helpers.h"
#include "payload_writer.h"
#include "query.h"
#include "zone.h"

#include "harness.h"

#include <pthread.h>
#include <stdio.h>

enum { F_STATUS = 1001, F_PATH = 1002, F_SCORE = 1003, F_NONE = 1004, F_KIND = 1005 };
enum { A_GET = 2001 };

#define BLOCKS 16
#define EVENTS (BLOCKS * ES_BLOCK) /* every block but the last two is complete */
#define RARE_BLOCK 5               /* the only block with status 500 and path /cart */
#define FLOAT_BLOCK 7              /* the only block with float scores */

typedef struct world {
    es_store *s;
    es_key *req, *other, *actor;
} world;

/* Event i (0-based): requests, and every fourth event something else without a status. */
static void event(pl *p, int i, bool *is_req) {
    int block = i / ES_BLOCK;
    *is_req = i % 4 != 3;
    pl_begin(p);
    key(p, F_KIND);
    put_atom(p, A_GET);
    if (*is_req) {
        key(p, F_STATUS);
        put_int(p, block == RARE_BLOCK && i % 50 == 0 ? 500 : i % 7 ? 200 : 404);
        key(p, F_PATH);
        put_bin(p, block == RARE_BLOCK && i % 60 == 0 ? "/cart/1" : "/shop/1");
    }
    key(p, F_SCORE);
    if (block == FLOAT_BLOCK)
        put_float(p, 0.5 + block);
    else
        put_int(p, block * 10 + i % 3);
    pl_end(p);
}

static world fill(void) {
    world w = {.s = test_store(1 << 16, 16 << 20)};
    es_tables *t = es_store_tables(w.s);
    w.req = test_key(&t->type, 1), w.other = test_key(&t->type, 2), w.actor = test_key(&t->pid, 1);
    for (int i = 0; i < EVENTS; i++) {
        pl p;
        bool is_req;
        event(&p, i, &is_req);
        cr_assert(test_append(w.s, i, is_req ? w.req : w.other, w.actor, p.b, (uint32_t)p.n));
    }
    return w;
}

static es_pred num(uint64_t field, uint8_t op, int64_t a, int64_t b) {
    return (es_pred){.field = field, .op = op, .a = {false, a, 0}, .b = {false, b, 0}};
}

/* An integer's encoding, for equality predicates: into out (16 bytes), returned. */
static const uint8_t *int_bytes(int64_t v, uint8_t *out, uint32_t *len) {
    pl p = {.n = 0};
    put_int(&p, v);
    memcpy(out, p.b, p.n);
    *len = (uint32_t)p.n;
    return out;
}

/* The complete blocks (of the first `n`) the summaries rule out for these predicates. */
static int skipped(world *w, const es_key *type, const es_pred *preds, size_t n, uint64_t *examined,
                   bool *which) {
    uint16_t types[1] = {type ? (uint16_t)type->id : 0};
    int count = 0;
    for (uint64_t b = 0; b < BLOCKS - 2; b++) {
        which[b] = es_zone_skip(w->s, b, types, type ? 1 : 0, preds, n, examined);
        count += which[b];
    }
    return count;
}

Test(zone, equality_membership_and_absent_fields) {
    world w = fill();
    bool which[BLOCKS];
    uint64_t built = 0, again = 0;
    uint32_t len;
    uint8_t b500[16];
    const uint8_t *v500 = int_bytes(500, b500, &len);
    es_pred eq = {.field = F_STATUS, .op = ES_OP_EQ, .vals = &v500, .lens = &len, .nvals = 1};
    cr_assert_eq(skipped(&w, w.req, &eq, 1, &built, which), BLOCKS - 3);
    cr_assert(!which[RARE_BLOCK], "the block with the 500s is read");
    cr_assert_gt(built, 0);

    /* Another value: the summaries built for 500 serve it, nothing is read again. */
    uint32_t lens[2];
    uint8_t b404[16], b503[16];
    const uint8_t *vals[2] = {int_bytes(404, b404, &lens[0]), int_bytes(503, b503, &lens[1])};
    es_pred in = {.field = F_STATUS, .op = ES_OP_EQ, .vals = vals, .lens = lens, .nvals = 2};
    cr_assert_eq(skipped(&w, w.req, &in, 1, &again, which), 0, "404 is in every block");
    in.vals = &vals[1], in.lens = &lens[1], in.nvals = 1;
    cr_assert_eq(skipped(&w, w.req, &in, 1, &again, which), BLOCKS - 2, "503 is nowhere");
    cr_assert_eq(again, 0, "kept summaries are not built again");

    /* The other type has no status at all; nor has any event this field. */
    cr_assert_eq(skipped(&w, w.other, &eq, 1, &again, which), BLOCKS - 2);
    es_pred none = eq;
    none.field = F_NONE;
    cr_assert_eq(skipped(&w, NULL, &none, 1, &again, which), BLOCKS - 2);
    /* Over every type: the 500s' block only. */
    cr_assert_eq(skipped(&w, NULL, &eq, 1, &again, which), BLOCKS - 3);
    cr_assert(!which[RARE_BLOCK]);

    /* Negations and paths rule nothing out. */
    es_pred neg = eq;
    neg.negate = true;
    cr_assert(!es_zone_usable(&neg));
    cr_assert_eq(skipped(&w, w.req, &neg, 1, &again, which), 0);
    es_pred path = eq;
    path.depth = 1;
    cr_assert_eq(skipped(&w, w.req, &path, 1, &again, which), 0);
    es_store_free(w.s);
}

Test(zone, ranges_of_integers_and_floats) {
    world w = fill();
    bool which[BLOCKS];
    uint64_t ex = 0;
    es_pred ge = num(F_STATUS, ES_OP_GE, 450, 0);
    cr_assert_eq(skipped(&w, w.req, &ge, 1, &ex, which), BLOCKS - 3);
    cr_assert(!which[RARE_BLOCK]);
    es_pred lt = num(F_STATUS, ES_OP_LT, 200, 0);
    cr_assert_eq(skipped(&w, w.req, &lt, 1, &ex, which), BLOCKS - 2);
    es_pred le = num(F_STATUS, ES_OP_LE, 200, 0);
    cr_assert_eq(skipped(&w, w.req, &le, 1, &ex, which), 0);

    /* Scores: block b holds b*10 .. b*10+2, the float block 7.5 only. */
    es_pred range = num(F_SCORE, ES_OP_RANGE, 31, 52);
    cr_assert_eq(skipped(&w, NULL, &range, 1, &ex, which), BLOCKS - 2 - 3);
    cr_assert(!which[3] && !which[4] && !which[5] && which[2] && which[6]);
    es_pred gt = {.field = F_SCORE, .op = ES_OP_GT, .a = {true, 0, 7.25}};
    skipped(&w, NULL, &gt, 1, &ex, which);
    cr_assert(which[0] && !which[FLOAT_BLOCK] && !which[8], "7.5 > 7.25, and 80 too");
    es_pred around = {
        .field = F_SCORE, .op = ES_OP_RANGE, .a = {true, 0, 7.4}, .b = {true, 0, 7.6}};
    cr_assert_eq(skipped(&w, NULL, &around, 1, &ex, which), BLOCKS - 3);
    cr_assert(!which[FLOAT_BLOCK], "floats have their own bounds");
    es_store_free(w.s);
}

Test(zone, prefixes_of_binaries) {
    world w = fill();
    bool which[BLOCKS];
    uint64_t ex = 0;
    const uint8_t *cart = (const uint8_t *)"/cart";
    uint32_t five = 5, two = 2;
    es_pred pre = {.field = F_PATH, .op = ES_OP_PREFIX, .vals = &cart, .lens = &five, .nvals = 1};
    cr_assert_eq(skipped(&w, w.req, &pre, 1, &ex, which), BLOCKS - 3);
    cr_assert(!which[RARE_BLOCK]);
    es_pred short_prefix = pre;
    short_prefix.lens = &two;
    cr_assert(!es_zone_usable(&short_prefix), "shorter than ES_ZONE_PREFIX: no filter");
    cr_assert_eq(skipped(&w, w.req, &short_prefix, 1, &ex, which), 0);
    es_store_free(w.s);
}

Test(zone, the_newest_summaries_are_kept) {
    world w = fill();
    uint16_t type = (uint16_t)w.req->id;
    uint64_t built;
    /* ES_ZONE_ENTRIES + 1 fields (none of them stored): the first asked is dropped. */
    for (uint64_t f = 0; f <= ES_ZONE_ENTRIES; f++) {
        es_pred p = num(5000 + f, ES_OP_GE, 0, 0);
        built = 0;
        cr_assert(es_zone_skip(w.s, 0, &type, 1, &p, 1, &built), "no event has field %lu",
                  (unsigned long)f);
        cr_assert_gt(built, 0);
    }
    es_pred newest = num(5000 + ES_ZONE_ENTRIES, ES_OP_GE, 0, 0),
            oldest = num(5000, ES_OP_GE, 0, 0);
    built = 0;
    cr_assert(es_zone_skip(w.s, 0, &type, 1, &newest, 1, &built));
    cr_assert_eq(built, 0, "the newest is kept");
    cr_assert(es_zone_skip(w.s, 0, &type, 1, &oldest, 1, &built));
    cr_assert_gt(built, 0, "the oldest made room for it, and is built again");
    es_store_free(w.s);
}

/* Queries whose walk passes over blocks give what a scan of every event gives. */
Test(zone, queries_over_summaries_match_a_full_scan) {
    world w = fill();
    uint32_t len;
    uint8_t b500[16];
    const uint8_t *v500 = int_bytes(500, b500, &len);
    es_pred cases[][2] = {
        {{.field = F_STATUS, .op = ES_OP_EQ, .vals = &v500, .lens = &len, .nvals = 1}},
        {num(F_STATUS, ES_OP_GE, 300, 0), num(F_SCORE, ES_OP_LE, 52, 0)},
        {num(F_SCORE, ES_OP_RANGE, 31, 52)},
        {{.field = F_SCORE, .op = ES_OP_GT, .a = {true, 0, 7.25}}},
    };
    size_t npreds[] = {1, 2, 1, 1};
    for (size_t c = 0; c < sizeof npreds / sizeof *npreds; c++)
        for (int typed = 0; typed < 2; typed++) {
            /* what every event says, tested one by one */
            uint64_t want = 0;
            for (uint64_t id = 1; id <= EVENTS; id++) {
                es_event_view v;
                cr_assert(es_store_peek(w.s, id, &v));
                uint8_t buf[512];
                cr_assert(es_store_payload(w.s, &v, buf));
                want += (!typed || v.type_id == w.req->id) &&
                        es_preds_match(cases[c], npreds[c], buf, v.len);
            }
            for (int round = 0; round < 2; round++) { /* building, then kept */
                es_filter f;
                es_filter_init(&f);
                if (typed) es_keyset_add(&f.types, w.req);
                f.preds = cases[c], f.npreds = npreds[c];
                es_hits h = {0};
                cr_assert_eq(es_query(w.s, &f, &h), ES_Q_OK);
                cr_assert_eq(h.n, want, "case %zu typed %d round %d", c, typed, round);
                es_hits_free(&h);
                f.descending = true, f.limit = 3;
                cr_assert_eq(es_query(w.s, &f, &h), ES_Q_OK);
                cr_assert_eq(h.n, want < 3 ? want : 3);
                es_hits_free(&h);
            }
        }
    es_store_free(w.s);
}

/* ---- concurrency --------------------------------------------------------------------- */

typedef struct shared {
    world *w;
    _Atomic bool stop;
    uint64_t expected;
} shared;

static void *appender(void *p) {
    shared *sh = p;
    pl pay;
    bool is_req;
    for (int i = EVENTS; !atomic_load(&sh->stop) && i < EVENTS + 40 * ES_BLOCK; i++) {
        event(&pay, i % ES_BLOCK, &is_req); /* block 0's events: never a 500 */
        test_append(sh->w->s, i, sh->w->req, sh->w->actor, pay.b, (uint32_t)pay.n);
    }
    return NULL;
}

static void *querier(void *p) {
    shared *sh = p;
    uint32_t len;
    uint8_t b500[16];
    const uint8_t *v500 = int_bytes(500, b500, &len);
    es_pred eq = {.field = F_STATUS, .op = ES_OP_EQ, .vals = &v500, .lens = &len, .nvals = 1};
    for (int round = 0; round < 40; round++) {
        es_filter f;
        es_filter_init(&f);
        if (round % 2) es_keyset_add(&f.types, sh->w->req);
        f.preds = &eq, f.npreds = 1;
        uint64_t n = 0;
        cr_assert_eq(es_query_count(sh->w->s, &f, &n), ES_Q_OK);
        cr_assert_eq(n, sh->expected, "round %d: %lu", round, (unsigned long)n);
    }
    return NULL;
}

Test(zone, built_by_several_queries_while_appending) {
    world w = fill();
    shared sh = {.w = &w};
    for (int i = 0; i < EVENTS; i++)
        sh.expected += i / ES_BLOCK == RARE_BLOCK && i % 4 != 3 && i % 50 == 0;
    pthread_t a, q[3];
    pthread_create(&a, NULL, appender, &sh);
    for (int i = 0; i < 3; i++) pthread_create(&q[i], NULL, querier, &sh);
    for (int i = 0; i < 3; i++) pthread_join(q[i], NULL);
    atomic_store(&sh.stop, true);
    pthread_join(a, NULL);
    es_store_free(w.s);
}
