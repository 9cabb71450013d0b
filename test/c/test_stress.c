/* Concurrency stress tests: producer threads append while reader threads peek, walk
 * chains and scan time ranges, and the ring prunes underneath them. Readers check
 * that nothing they see is torn; at the end every live event is checked to be present
 * exactly once. Run under ASan/UBSan and TSan by `make test-sanitize`. */
#include "clock.h"
#include "helpers.h"
#include "query.h"

#include "harness.h"
#include <pthread.h>
#include <stdatomic.h>

#define PRODUCERS 4
#define READERS 2
#define PER_PRODUCER 100000

typedef struct record {
    uint32_t producer, seq;
    uint8_t fill[56]; /* byte k = (seq + k) & 0xff, up to a length that varies with seq */
} record;

static es_store *s;
static es_key *actors[PRODUCERS], *type, *module, *funs[PRODUCERS];
static atomic_bool producing;
static atomic_ulong torn_reads, checked_reads;

static uint32_t record_len(uint32_t seq) {
    return 8 + seq % 57;
}

static void *producer(void *arg) {
    uint32_t me = (uint32_t)(uintptr_t)arg;
    record r = {.producer = me};
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        r.seq = seq;
        for (int k = 0; k < 56; k++) r.fill[k] = (uint8_t)(seq + k);
        es_event_in in = {.ts = ES_TS_NOW,
                          .type = type,
                          .actor = actors[me],
                          .mf = funs[me], /* one module, a function per producer */
                          .flags = ES_F_ACTOR | ES_F_MODULE,
                          .payload = (const uint8_t *)&r,
                          .payload_len = record_len(seq)};
        es_store_append(s, &in);
    }
    return NULL;
}

/* True when a payload read back is exactly what its producer wrote. */
static bool record_ok(const es_event_view *v, const uint8_t *buf) {
    record r = {0};
    memcpy(&r, buf, v->len < sizeof r ? v->len : sizeof r);
    if (r.producer >= PRODUCERS || r.seq >= PER_PRODUCER || v->len != record_len(r.seq))
        return false;
    if (v->actor != actors[r.producer]->id) return false;
    for (uint32_t k = 0; k + 8 < v->len; k++)
        if (r.fill[k] != (uint8_t)(r.seq + k)) return false;
    return true;
}

static void check_event(const es_event_view *v) {
    uint8_t buf[sizeof(record)];
    if (!es_store_payload(s, v, buf)) return; /* pruned while we read: fine */
    atomic_fetch_add(&checked_reads, 1);
    if (!record_ok(v, buf)) atomic_fetch_add(&torn_reads, 1);
}

static int check_visit(const es_event_view *v, void *ctx) {
    (void)ctx;
    check_event(v);
    return ES_ACCEPT;
}

static void *reader(void *arg) {
    uint64_t x = (uintptr_t)arg * 2654435761u + 1;
    while (atomic_load(&producing)) {
        uint64_t low = es_store_low_id(s), high = es_store_high_id(s);
        for (int i = 0; i < 200 && high >= low; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            es_event_view v;
            if (es_store_peek(s, low + x % (high - low + 1), &v)) check_event(&v);
        }
        es_walk w = {.ts_min = INT64_MIN, .ts_max = INT64_MAX, .want = 50, .descending = true};
        es_store_walk_chain(s, actors[x % PRODUCERS], ES_CHAIN_ACTOR, &w, check_visit, NULL);
        es_store_walk_chain(s, module, ES_CHAIN_MODULE, &w, check_visit, NULL);
        int64_t now = es_clock_now();
        es_walk tw = {.ts_min = now - 200000, .ts_max = now};
        es_store_walk_time(s, &tw, check_visit, NULL);
    }
    return NULL;
}

static void run(uint64_t max_events, uint64_t max_bytes) {
    s = test_store(max_events, max_bytes);
    es_tables *t = es_store_tables(s);
    type = test_key(&t->type, 1);
    module = test_key(&t->module, 1);
    for (int i = 0; i < PRODUCERS; i++) {
        actors[i] = test_key(&t->pid, (uint64_t)i + 100);
        uint64_t mf[2] = {1, (uint64_t)i};
        funs[i] = es_intern_get(&t->mf, mf, sizeof mf, true, module->id);
    }
    atomic_store(&producing, true);
    atomic_store(&torn_reads, 0);
    atomic_store(&checked_reads, 0);
    pthread_t p[PRODUCERS], r[READERS];
    for (uintptr_t i = 0; i < READERS; i++) pthread_create(&r[i], NULL, reader, (void *)(i + 1));
    for (uintptr_t i = 0; i < PRODUCERS; i++) pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(p[i], NULL);
    atomic_store(&producing, false);
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    cr_log_info("%lu concurrent reads checked", atomic_load(&checked_reads));
    cr_assert_gt(atomic_load(&checked_reads), 0, "readers ran while producers appended");
    cr_assert_eq(atomic_load(&torn_reads), 0, "%lu torn reads of %lu", atomic_load(&torn_reads),
                 atomic_load(&checked_reads));
}

/* After the run: each live event exactly once, and all ids from the oldest live one
 * to the newest are live (nothing lost in the middle). */
static void check_final(uint64_t expect_stored) {
    static uint8_t seen[PRODUCERS][PER_PRODUCER];
    memset(seen, 0, sizeof seen);
    es_store_stats st;
    es_store_get_stats(s, &st);
    cr_assert_eq(st.appended + st.dropped, (uint64_t)PRODUCERS * PER_PRODUCER);
    cr_assert_leq(st.dropped, st.pruned, "only events already pruned may be dropped");
    if (expect_stored) cr_assert_eq(st.stored, expect_stored);
    uint64_t live = 0;
    for (uint64_t id = st.oldest_id; id <= st.newest_id; id++) {
        es_event_view v;
        cr_assert(es_store_peek(s, id, &v), "id %lu live", id);
        uint8_t buf[sizeof(record)];
        cr_assert(es_store_payload(s, &v, buf));
        cr_assert(record_ok(&v, buf), "id %lu intact", id);
        record r;
        memcpy(&r, buf, 8);
        cr_assert_eq(seen[r.producer][r.seq]++, 0, "producer %u seq %u stored twice", r.producer,
                     r.seq);
        live++;
    }
    cr_assert_eq(live, st.stored);
    /* Each producer's chain holds exactly its live events, newest first. */
    for (int p = 0; p < PRODUCERS; p++) {
        es_filter f;
        es_filter_init(&f);
        es_keyset_add(&f.actors, actors[p]);
        es_hits h = {0};
        cr_assert_eq(es_query(s, &f, &h), ES_Q_OK);
        uint64_t expect = 0;
        for (int q = 0; q < PER_PRODUCER; q++) expect += seen[p][q];
        cr_assert_eq(h.n, expect, "producer %d: chain has %zu, live %lu", p, h.n, expect);
        es_hits_free(&h);
    }
    /* The module's walk (its functions' chains) holds every live event. */
    es_filter f;
    es_filter_init(&f);
    f.modules.n = 0;
    es_keyset_add(&f.modules, module);
    es_hits h = {0};
    cr_assert_eq(es_query(s, &f, &h), ES_Q_OK);
    cr_assert_eq(h.n, live, "module: %zu of %lu live events", h.n, live);
    es_hits_free(&h);
    es_store_free(s);
}

Test(stress, no_pruning_keeps_every_event_once, .timeout = 120) {
    run(PRODUCERS * PER_PRODUCER, 64u << 20);
    check_final(PRODUCERS * PER_PRODUCER);
}

Test(stress, pruning_by_events_under_concurrent_reads, .timeout = 120) {
    run(5000, 64u << 20);
    check_final(5000);
}

Test(stress, pruning_by_bytes_under_concurrent_reads, .timeout = 120) {
    run(PRODUCERS * PER_PRODUCER, 64 * 1024);
    check_final(0);
}
