/* Cursor paging while producers append and the ring prunes (run under ASan/UBSan and
 * TSan by `make test-sanitize`): each page of a query with a payload predicate
 * continues strictly after the last event of the page before — never an event twice,
 * never one behind the cursor — and every result satisfies the predicate. */
#include "helpers.h"
#include "query.h"

#include "harness.h"
#include <pthread.h>
#include <stdatomic.h>

#define F_STATUS 1001

typedef struct writer_arg {
    es_store *s;
    es_key *type, *actor;
    _Atomic bool stop;
    _Atomic uint64_t written;
} writer_arg;

/* A payload map of one field: status => a small integer (payload.h). */
static uint32_t status_payload(uint8_t *b, uint8_t status) {
    uint64_t key = F_STATUS;
    b[0] = ETF_VERSION, b[1] = MAP_EXT, b[2] = b[3] = b[4] = 0, b[5] = 1;
    b[6] = ES_ATOM_REF;
    memcpy(b + 7, &key, 8);
    b[15] = SMALL_INTEGER_EXT, b[16] = status;
    return 17;
}

static void *writer(void *p) {
    writer_arg *w = p;
    uint8_t pay[32];
    for (uint64_t n = 0; !atomic_load(&w->stop); n++) {
        es_event_in in = {.ts = ES_TS_NOW,
                          .type = w->type,
                          .actor = w->actor,
                          .flags = ES_F_ACTOR,
                          .payload = pay,
                          .payload_len = status_payload(pay, (uint8_t)(n % 7))};
        es_store_append(w->s, &in);
        atomic_store(&w->written, n + 1);
    }
    return NULL;
}

static bool status_at_least_3(es_store *s, uint64_t id) {
    es_event_view v;
    uint8_t b[40];
    es_pl_span val;
    es_pl_num n;
    return !es_store_peek(s, id, &v) || !es_store_payload(s, &v, b) || /* pruned meanwhile */
           (es_pl_field(b, v.len, F_STATUS, &val) && es_pl_number(val, &n) && n.i >= 3);
}

static void page_through(bool by_actor) {
    es_store *s = test_store(4096, 1 << 20);
    es_tables *t = es_store_tables(s);
    es_key *type = test_key(&t->type, 1);
    writer_arg w[2] = {{.s = s, .type = type, .actor = test_key(&t->pid, 1)},
                       {.s = s, .type = type, .actor = test_key(&t->pid, 2)}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, writer, &w[i]);
    es_pred p = {.field = F_STATUS, .op = ES_OP_GE, .a = {false, 3, 0}};
    es_pos last = {INT64_MIN, 0};
    uint64_t pages = 0, seen = 0;
    /* Until the writers have gone round the ring (4096 events) many times. */
    while (atomic_load(&w[0].written) + atomic_load(&w[1].written) < 400000 || seen < 1000) {
        es_filter f;
        es_filter_init(&f);
        if (by_actor) {
            es_keyset_add(&f.actors, w[0].actor);
            es_keyset_add(&f.actors, w[1].actor);
        } else {
            es_keyset_add(&f.types, type);
        }
        f.preds = &p;
        f.npreds = 1;
        f.limit = 50;
        if (pages) f.has_after = true, f.after = last;
        es_hits h = {0};
        cr_assert_eq(es_query(s, &f, &h), ES_Q_OK);
        for (size_t i = 0; i < h.n; i++) {
            es_pos at = {h.v[i].ts, h.v[i].id};
            cr_assert(es_pos_cmp(at, last) > 0, "beyond the cursor, never twice");
            cr_assert(status_at_least_3(s, h.v[i].id), "the predicate holds");
            last = at;
            seen++;
        }
        es_hits_free(&h);
        pages++;
    }
    for (int i = 0; i < 2; i++) {
        atomic_store(&w[i].stop, true);
        pthread_join(th[i], NULL);
    }
    es_store_free(s);
}

Test(paging, over_a_type_while_appends_prune, .timeout = 120) {
    page_through(false);
}

Test(paging, over_a_list_of_actors_while_appends_prune, .timeout = 120) {
    page_through(true);
}
