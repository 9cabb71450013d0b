/* Unit tests of agg.c: the latency histogram and the aggregations over chains. */
#include "agg.h"
#include "harness.h"
#include "helpers.h"

#include <stdlib.h>

Test(histogram, quantiles_within_a_bucket_of_the_exact_value) {
    es_histogram *h = calloc(1, sizeof *h);
    for (uint64_t v = 1; v <= 10000; v++) es_hist_add(h, v * 1000);
    cr_assert_eq(h->count, 10000);
    double qs[] = {0.5, 0.9, 0.99};
    for (int i = 0; i < 3; i++) {
        double exact = qs[i] * 10000 * 1000, got = (double)es_hist_quantile(h, qs[i]);
        cr_assert(got > exact * 0.93 && got < exact * 1.07, "q%.2f: %f vs %f", qs[i], got, exact);
    }
    es_histogram *empty = calloc(1, sizeof *empty);
    cr_assert_eq(es_hist_quantile(empty, 0.5), 0);
    es_hist_add(empty, 0);
    es_hist_add(empty, 7);
    cr_assert_eq(es_hist_quantile(empty, 0.0), 0);
    cr_assert_eq(es_hist_quantile(empty, 1.0), 7, "small values are exact");
    free(h);
    free(empty);
}

/* A payload as the tracer writes it: a map whose first field is `duration`. */
static uint32_t duration_payload(uint8_t *buf, uint64_t key, int32_t d) {
    uint8_t *p = buf;
    *p++ = 131, *p++ = 116, *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 1;
    *p++ = 200;
    memcpy(p, &key, 8);
    p += 8;
    *p++ = 98;
    *p++ = (uint8_t)(d >> 24), *p++ = (uint8_t)(d >> 16), *p++ = (uint8_t)(d >> 8),
    *p++ = (uint8_t)d;
    *p++ = 97, *p++ = 0; /* a value for the map's only field... then padding */
    return (uint32_t)(p - buf);
}

Test(agg, per_function_stats_and_slowest_calls) {
    es_store *s = test_store(10000, 1 << 20);
    es_tables *t = es_store_tables(s);
    es_key *call = test_key(&t->type, 1), *ret = test_key(&t->type, 2),
           *exc = test_key(&t->type, 3);
    es_key *pid = test_key(&t->pid, 9);
    uint64_t m = 77, f1[2] = {77, 1}, f2[2] = {77, 2};
    es_key *module = es_intern_get(&t->module, &m, 8, true, 0);
    es_key *mf1 = es_intern_get(&t->mf, f1, 16, true, module->id);
    es_key *mf2 = es_intern_get(&t->mf, f2, 16, true, module->id);
    const uint64_t key = 0xABCDEF;
    uint8_t buf[64];
    for (int32_t i = 1; i <= 100; i++) {
        es_key *mf = i % 10 ? mf1 : mf2;
        es_event_in c = {.ts = i,
                         .type = call,
                         .actor = pid,
                         .module = module,
                         .mf = mf,
                         .flags = ES_F_ACTOR | ES_F_MODULE | ES_F_FUNCTION,
                         .arity = 1};
        es_store_append(s, &c);
        es_event_in r = c;
        r.type = i == 51 ? exc : ret;
        r.payload = buf;
        r.payload_len = duration_payload(buf, key, i * 10);
        es_store_append(s, &r);
    }
    es_perf p;
    cr_assert(es_agg_perf(s, module, call, ret, exc, key, &p));
    cr_assert_eq(p.n, 2);
    es_fn_stats *a = p.fns[0].mf == mf1->id ? &p.fns[0] : &p.fns[1];
    es_fn_stats *b = a == &p.fns[0] ? &p.fns[1] : &p.fns[0];
    cr_assert_eq(a->calls, 90);
    cr_assert_eq(a->returns + a->exceptions, 90);
    cr_assert_eq(a->exceptions, 1, "i = 51 raised");
    cr_assert_eq(b->calls, 10);
    cr_assert_eq(b->max, 1000);
    uint64_t total = 0;
    for (int i = 10; i <= 100; i += 10) total += (uint64_t)i * 10;
    cr_assert_eq(b->total, total);
    es_perf_free(&p);

    es_slow top[3];
    cr_assert_eq(es_agg_slowest(s, ret, exc, NULL, key, top, 3), 3);
    cr_assert_eq(top[0].duration, 1000);
    cr_assert_eq(top[1].duration, 990);
    cr_assert_eq(top[2].duration, 980);
    cr_assert_eq(es_agg_slowest(s, ret, exc, module, key, top, 1), 1);
    cr_assert_eq(top[0].duration, 1000);
    es_store_free(s);
}

Test(agg, traffic_and_peers) {
    es_store *s = test_store(10000, 1 << 20);
    es_tables *t = es_store_tables(s);
    es_key *send = test_key(&t->type, 1), *recv = test_key(&t->type, 2);
    es_key *a = test_key(&t->pid, 1), *b = test_key(&t->pid, 2), *c = test_key(&t->pid, 3);
    struct {
        es_key *from, *to;
        int n;
    } sends[] = {{a, b, 5}, {b, a, 2}, {a, c, 1}};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < sends[i].n; k++) {
            uint32_t ids[2] = {sends[i].from->id, sends[i].to->id};
            es_event_in e = {.ts = 100 + k,
                             .type = send,
                             .actor = sends[i].from,
                             .peer = sends[i].to,
                             .pair = es_intern_get(&t->pair, ids, 8, true, 0),
                             .flags = ES_F_ACTOR | ES_F_ACTOR_FROM | ES_F_PEER};
            es_store_append(s, &e);
        }
    es_event_in r = {.ts = 200, .type = recv, .actor = b, .flags = ES_F_ACTOR};
    es_store_append(s, &r);

    es_traffic *tr;
    size_t n;
    cr_assert(es_agg_traffic(s, send, recv, INT64_MIN, INT64_MAX, &tr, &n));
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        if (tr[i].pid == a->id)
            cr_assert(tr[i].sent == 6 && tr[i].inflow == 2 && tr[i].received == 0);
        if (tr[i].pid == b->id)
            cr_assert(tr[i].sent == 2 && tr[i].inflow == 5 && tr[i].received == 1);
        if (tr[i].pid == c->id) cr_assert(tr[i].sent == 0 && tr[i].inflow == 1);
    }
    es_agg_free(tr);
    cr_assert(es_agg_traffic(s, send, recv, 150, 300, &tr, &n));
    cr_assert_eq(n, 1, "only the receive falls in the window");
    es_agg_free(tr);

    es_peer_count *p;
    cr_assert(es_agg_peers(s, a, send, NULL, &p, &n));
    cr_assert_eq(n, 2);
    cr_assert(p[0].pid == b->id && p[0].count == 7, "b: 5 sent to it, 2 from it");
    cr_assert(p[1].pid == c->id && p[1].count == 1);
    es_agg_free(p);
    /* A receive that names its sender counts for both ends (the send was not recorded). */
    es_event_in named = {
        .ts = 210, .type = recv, .actor = c, .peer = a, .flags = ES_F_ACTOR | ES_F_PEER};
    uint32_t ca[2] = {c->id, a->id};
    named.pair = es_intern_get(&t->pair, ca, sizeof ca, true, 0);
    es_store_append(s, &named);
    cr_assert(es_agg_peers(s, a, send, recv, &p, &n));
    cr_assert(n == 2 && p[1].pid == c->id && p[1].count == 2, "c: 1 sent to it, 1 received from a");
    es_agg_free(p);
    cr_assert(es_agg_peers(s, c, send, recv, &p, &n));
    cr_assert(n == 1 && p[0].pid == a->id && p[0].count == 2);
    es_agg_free(p);

    es_actor_summary sum;
    cr_assert(es_agg_actor(s, b, &sum));
    cr_assert_eq(sum.events, 3);
    cr_assert_eq(sum.by_type[send->id], 2);
    cr_assert_eq(sum.by_type[recv->id], 1);
    cr_assert_eq(sum.first, 100);
    cr_assert_eq(sum.last, 200);
    es_agg_free(sum.by_type);
    es_store_free(s);
}
