/* Unit tests of store.c and query.c: append/read, pruning, truncation, sampling,
 * chains, time walks with out-of-order timestamps, clear and stats. */
#include "helpers.h"
#include "history.h"
#include "query.h"
#include "sample.h"

#include "harness.h"

static es_store *s;
static es_tables *t;

static void setup(void) {
    s = test_store(1000, 1 << 20);
    t = es_store_tables(s);
}
static void teardown(void) {
    es_store_free(s);
}

TestSuite(store, .init = setup, .fini = teardown);

static uint64_t read_u64_payload(uint64_t id) {
    es_event_view v;
    cr_assert(es_store_peek(s, id, &v), "event %lu live", id);
    uint8_t buf[64];
    cr_assert(es_store_payload(s, &v, buf));
    uint64_t x;
    memcpy(&x, buf, sizeof x);
    return x;
}

Test(store, ids_increase_and_payloads_round_trip) {
    es_key *type = test_key(&t->type, 1);
    uint64_t last = 0;
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t id = test_append(s, ES_TS_NOW, type, NULL, &i, sizeof i);
        cr_assert_gt(id, last);
        last = id;
        cr_assert_eq(read_u64_payload(id), i);
    }
    /* Odd lengths, including zero and one byte. */
    for (uint32_t len = 0; len < 40; len++) {
        uint8_t in[40], out[48];
        for (uint32_t k = 0; k < len; k++) in[k] = (uint8_t)(len * 31 + k);
        uint64_t id = test_append(s, 5, type, NULL, in, len);
        es_event_view v;
        cr_assert(es_store_peek(s, id, &v));
        cr_assert_eq(v.len, len);
        cr_assert_eq(v.ts, 5);
        cr_assert(es_store_payload(s, &v, out));
        cr_assert(memcmp(in, out, len) == 0);
    }
}

Test(store, timestamps_taken_at_append_do_not_go_backwards) {
    int64_t prev = INT64_MIN;
    for (int i = 0; i < 100; i++) {
        uint64_t id = test_append(s, ES_TS_NOW, NULL, NULL, NULL, 0);
        es_event_view v;
        cr_assert(es_store_peek(s, id, &v));
        cr_assert_geq(v.ts, prev);
        prev = v.ts;
    }
}

Test(store, prunes_oldest_at_max_events) {
    for (uint64_t i = 0; i < 2500; i++) test_append(s, ES_TS_NOW, NULL, NULL, &i, sizeof i);
    es_store_stats st;
    es_store_get_stats(s, &st);
    cr_assert_eq(st.stored, 1000);
    cr_assert_eq(st.appended, 2500);
    cr_assert_eq(st.pruned, 1500);
    cr_assert_eq(st.oldest_id, 1501);
    es_event_view v;
    cr_assert_not(es_store_peek(s, 1500, &v));
    cr_assert_eq(read_u64_payload(1501), 1500);
    cr_assert_eq(read_u64_payload(2500), 2499);
}

Test(store, prunes_oldest_at_max_bytes) {
    es_store *small = test_store(10000, 4096);
    uint8_t payload[100] = {0};
    for (uint64_t i = 1; i <= 200; i++) {
        memcpy(payload, &i, sizeof i);
        test_append(small, ES_TS_NOW, NULL, NULL, payload, sizeof payload);
    }
    es_store_stats st;
    es_store_get_stats(small, &st);
    cr_assert_leq(st.bytes, 4096);
    cr_assert_leq(st.stored * 104, 4096, "at most max_bytes of payload held");
    cr_assert_geq(st.stored, 4096 / 104 - 1);
    cr_assert_eq(st.newest_id, 200);
    es_event_view v;
    cr_assert_not(es_store_peek(small, 1, &v), "the oldest went first");
    for (uint64_t id = st.oldest_id; id <= 200; id++) {
        cr_assert(es_store_peek(small, id, &v));
        uint8_t out[100];
        cr_assert(es_store_payload(small, &v, out));
        uint64_t x;
        memcpy(&x, out, 8);
        cr_assert_eq(x, id);
    }
    es_store_free(small);
}

Test(store, oversized_payload_becomes_a_truncated_marker) {
    es_store_config cfg = {.max_events = 100,
                           .max_bytes = 8192,
                           .max_payload_bytes = 10,
                           .sample_rate = 1.0,
                           .max_keys = 64};
    es_store *st_ = es_store_new(&cfg);
    uint8_t big[100] = {1};
    uint64_t id = test_append(st_, 1, NULL, NULL, big, sizeof big);
    cr_assert_neq(id, 0);
    es_event_view v;
    cr_assert(es_store_peek(st_, id, &v));
    cr_assert(v.flags & ES_F_TRUNCATED);
    cr_assert_eq(v.len, 100, "the marker records the original size");
    es_store_stats st;
    es_store_get_stats(st_, &st);
    cr_assert_eq(st.truncated, 1);
    es_store_free(st_);
}

Test(store, sampling_keeps_the_configured_share_and_all_critical_events) {
    es_store_set_sample_rate(s, 0.0);
    for (int i = 0; i < 100; i++) test_append(s, 1, NULL, NULL, NULL, 0);
    es_event_in crit = {.ts = 1, .flags = ES_F_CRITICAL};
    for (int i = 0; i < 10; i++) cr_assert_neq(es_store_append(s, &crit), 0);
    es_store_stats st;
    es_store_get_stats(s, &st);
    cr_assert_eq(st.appended, 10);
    cr_assert_eq(st.sampled_out, 100);

    es_store *big = test_store(100000, 1 << 20);
    es_store_set_sample_rate(big, 0.2);
    for (int i = 0; i < 50000; i++) test_append(big, 1, NULL, NULL, NULL, 0);
    es_store_get_stats(big, &st);
    cr_assert(st.appended > 9000 && st.appended < 11000, "kept %lu of 50000 at 0.2", st.appended);
    cr_assert_eq(st.appended + st.sampled_out, 50000);
    es_store_free(big);
}

Test(sample, thresholds) {
    cr_assert_eq(es_sample_threshold(1.0), ES_SAMPLE_ALL);
    cr_assert_eq(es_sample_threshold(0.0), 0);
    cr_assert_eq(es_sample_threshold(-1.0), 0);
    cr_assert(es_sample_keep(ES_SAMPLE_ALL));
    cr_assert_not(es_sample_keep(0));
}

static uint64_t query_ids(es_filter *f, uint64_t *ids, size_t max) {
    es_hits h = {0};
    cr_assert_eq(es_query(s, f, &h), ES_Q_OK);
    cr_assert_leq(h.n, max);
    for (size_t i = 0; i < h.n; i++) ids[i] = h.v[i].id;
    size_t n = h.n;
    es_hits_free(&h);
    return n;
}

Test(store, chains_find_each_key_in_order) {
    es_key *a = test_key(&t->pid, 1), *b = test_key(&t->pid, 2);
    es_key *state = test_key(&t->type, 10), *msg = test_key(&t->type, 11);
    for (int i = 0; i < 300; i++)
        test_append(s, 1000 + i, i % 2 ? state : msg, i % 3 ? a : b, NULL, 0);
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.actors, a);
    es_keyset_add(&f.types, state);
    uint64_t ids[400];
    uint64_t n = query_ids(&f, ids, 400);
    uint64_t expect = 0;
    for (int i = 0; i < 300; i++) expect += (i % 2) && (i % 3);
    cr_assert_eq(n, expect);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = ids[i] - 1;
        cr_assert((k % 2) && (k % 3));
        if (i) cr_assert_gt(ids[i], ids[i - 1], "ascending");
    }
    f.descending = true;
    f.limit = 5;
    n = query_ids(&f, ids, 400);
    cr_assert_eq(n, 5);
    cr_assert_eq(ids[0], 300,
                 "newest first: i = 299 is the last odd i not divisible by 3, id = i + 1");
}

Test(store, time_queries_are_exact_with_out_of_order_timestamps) {
    /* 2000 events with shuffled timestamps (a permutation of 0..1999 scaled by 10). */
    for (uint64_t i = 0; i < 2000; i++) {
        int64_t ts = (int64_t)((i * 7919) % 2000) * 10;
        test_append(s, ts, NULL, NULL, NULL, 0);
    }
    es_filter f;
    es_filter_init(&f);
    f.ts_min = 5000;
    f.ts_max = 5990;
    es_hits h = {0};
    cr_assert_eq(es_query(s, &f, &h), ES_Q_OK);
    /* Only the newest 1000 ids are live: count the matches among them. */
    uint64_t expect = 0;
    for (uint64_t i = 1000; i < 2000; i++) {
        int64_t ts = (int64_t)((i * 7919) % 2000) * 10;
        expect += ts >= 5000 && ts <= 5990;
    }
    cr_assert_eq(h.n, expect);
    for (size_t i = 1; i < h.n; i++) cr_assert_geq(h.v[i].ts, h.v[i - 1].ts, "sorted by time");
    for (size_t i = 0; i < h.n; i++) cr_assert(h.v[i].ts >= 5000 && h.v[i].ts <= 5990);
    es_hits_free(&h);

    es_filter_init(&f);
    f.ts_min = 12345;
    f.limit = 1;
    h = (es_hits){0};
    cr_assert_eq(es_query(s, &f, &h), ES_Q_OK);
    cr_assert_eq(h.n, 1);
    int64_t best = INT64_MAX;
    for (uint64_t i = 1000; i < 2000; i++) {
        int64_t ts = (int64_t)((i * 7919) % 2000) * 10;
        if (ts >= 12345 && ts < best) best = ts;
    }
    cr_assert_eq(h.v[0].ts, best, "next event after a time, despite disorder");
    es_hits_free(&h);
}

/* The visitor of a walk the ring overtakes: on its first event it appends three laps
 * of the ring (1,000 events each), as a writer does while a reader's thread stalls. */
typedef struct lapped_walk {
    uint64_t visited, first_id;
} lapped_walk;

static int lap_the_walk(const es_event_view *v, void *p) {
    lapped_walk *c = p;
    if (c->visited++ == 0) {
        c->first_id = v->id;
        for (int i = 0; i < 3000; i++) test_append(s, ES_TS_NOW, NULL, NULL, NULL, 0);
    }
    return ES_ACCEPT;
}

Test(store, a_forward_walk_the_ring_laps_still_finds_what_it_wants) {
    for (int i = 0; i < 1000; i++) test_append(s, ES_TS_NOW, NULL, NULL, NULL, 0);
    lapped_walk c = {0};
    es_walk w = {.ts_min = INT64_MIN, .ts_max = INT64_MAX, .want = 10};
    es_store_walk_time(s, &w, lap_the_walk, &c);
    /* Every event it read after the first was pruned under it, and so were the 2,000
     * appended next: the 9 others are among the live ones, from the live floor on. */
    cr_assert_eq(c.first_id, 1);
    cr_assert_geq(c.visited, 10, "a walk overtaken by laps of the ring found %lu of 10", c.visited);
}

Test(store, clear_forgets_everything) {
    es_key *a = test_key(&t->pid, 1);
    for (int i = 0; i < 50; i++) test_append(s, ES_TS_NOW, NULL, a, NULL, 0);
    es_store_clear(s);
    es_store_stats st;
    es_store_get_stats(s, &st);
    cr_assert_eq(st.stored, 0);
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.actors, a);
    uint64_t ids[10];
    cr_assert_eq(query_ids(&f, ids, 10), 0);
    uint64_t id = test_append(s, ES_TS_NOW, NULL, a, NULL, 0);
    cr_assert_eq(query_ids(&f, ids, 10), 1);
    cr_assert_eq(ids[0], id);
}

Test(store, live_actors_at_a_time) {
    es_key *spawn = test_key(&t->type, 1), *exit_ = test_key(&t->type, 2);
    es_key *p1 = test_key(&t->pid, 1), *p2 = test_key(&t->pid, 2), *p3 = test_key(&t->pid, 3);
    test_append(s, 10, spawn, p1, NULL, 0);
    test_append(s, 20, spawn, p2, NULL, 0);
    test_append(s, 30, exit_, p1, NULL, 0);
    test_append(s, 40, spawn, p3, NULL, 0);
    uint32_t *ids;
    size_t n;
    es_life_keys k = {0};
    es_keyset_add(&k.born, spawn);
    es_keyset_add(&k.died, exit_);
    cr_assert_eq(es_history_live(s, &k, 25, &ids, &n), ES_Q_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], p1->id);
    cr_assert_eq(ids[1], p2->id);
    es_history_free(ids);
    cr_assert_eq(es_history_live(s, &k, 35, &ids, &n), ES_Q_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], p2->id);
    es_history_free(ids);
}

Test(store, loading_keeps_ids_and_skips_holes) {
    cr_assert(es_store_start_at(s, 1000));
    es_key *a = test_key(&t->pid, 1);
    cr_assert_eq(test_append(s, 10, NULL, a, NULL, 0), 1000);
    es_store_skip_to(s, 1300); /* across a time block boundary */
    cr_assert_eq(test_append(s, 20, NULL, a, NULL, 0), 1300);
    cr_assert_not(es_store_start_at(s, 5), "only an empty store starts elsewhere");
    es_event_view v;
    cr_assert_not(es_store_peek(s, 1001, &v), "a hole holds no event");
    cr_assert_not(es_store_peek(s, 999, &v));
    es_filter f;
    es_filter_init(&f);
    uint64_t ids[10];
    cr_assert_eq(query_ids(&f, ids, 10), 2, "time walk: the two events only");
    cr_assert(ids[0] == 1000 && ids[1] == 1300);
    es_keyset_add(&f.actors, a);
    cr_assert_eq(query_ids(&f, ids, 10), 2, "chain walk across the holes");
    es_store_stats st;
    es_store_get_stats(s, &st);
    cr_assert_eq(st.stored, 2);
    cr_assert_eq(st.newest_id, 1300);
}

Test(store, a_module_is_found_through_its_functions) {
    uint64_t m1 = 1, m2 = 2, k[4][2] = {{1, 10}, {1, 11}, {1, 0}, {2, 10}};
    es_key *mod1 = test_key(&t->module, m1), *mod2 = test_key(&t->module, m2);
    es_key *mfs[4];
    for (int i = 0; i < 4; i++)
        mfs[i] = es_intern_get(&t->mf, k[i], sizeof k[i], true, i < 3 ? mod1->id : mod2->id);
    es_key *call = test_key(&t->type, 1);
    /* 200 events cycling through the four keys; a fifth of them have no module. */
    for (uint32_t i = 0; i < 200; i++) {
        es_event_in in = {.ts = 100 + i, .type = call};
        if (i % 5 != 4) {
            in.mf = mfs[i % 5];
            in.flags = ES_F_MODULE;
        }
        es_store_append(s, &in);
    }
    es_filter f;
    es_filter_init(&f);
    f.modules.n = 0;
    es_keyset_add(&f.modules, mod1);
    uint64_t ids[200];
    uint64_t n = query_ids(&f, ids, 200);
    cr_assert_eq(n, 120, "three of every five events are of module 1");
    for (uint64_t i = 0; i < n; i++) {
        cr_assert_lt((ids[i] - 1) % 5, 3, "id %lu is of module 1", ids[i]);
        if (i) cr_assert_gt(ids[i], ids[i - 1], "ascending");
    }
    f.modules.n = 0;
    es_keyset_add(&f.modules, mod2);
    cr_assert_eq(query_ids(&f, ids, 200), 40);
    f.modules.n = 0;
    es_keyset_add(&f.modules, mod1);
    f.descending = true;
    f.limit = 3;
    cr_assert_eq(query_ids(&f, ids, 200), 3);
    cr_assert(ids[0] == 198 && ids[1] == 197 && ids[2] == 196, "newest three of module 1");
}

/* Slots stamp the lap they hold in 30 bits: a ring that has gone round 2^30 times
 * (reached here by starting the ids there) reads, prunes and links as before. */
Test(store, stamps_wrap_after_2_to_the_30_laps) {
    uint64_t start = ((1ull << 30) - 2) * 1000 + 501; /* ring of 1000: lap 2^30 - 2 */
    cr_assert(es_store_start_at(s, start));
    es_key *a = test_key(&t->pid, 1);
    for (uint64_t i = 0; i < 3000; i++) {
        uint64_t id = test_append(s, (int64_t)i, NULL, a, &i, sizeof i);
        cr_assert_eq(id, start + i);
    }
    es_store_stats st;
    es_store_get_stats(s, &st);
    cr_assert_eq(st.stored, 1000);
    cr_assert_eq(st.oldest_id, start + 2000);
    es_event_view v;
    cr_assert_not(es_store_peek(s, start + 1999, &v), "pruned by the ring");
    for (uint64_t id = start + 2000; id < start + 3000; id++)
        cr_assert_eq(read_u64_payload(id), id - start);
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.actors, a);
    uint64_t ids[1000];
    cr_assert_eq(query_ids(&f, ids, 1000), 1000, "the chain reaches every live event");
    cr_assert_eq(ids[0], start + 2000);
    es_filter_init(&f);
    f.ts_min = 2500;
    cr_assert_eq(query_ids(&f, ids, 1000), 500, "time walk");
}
