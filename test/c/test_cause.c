/* Unit tests of cause.c without erl_nif: what a process did and caused in a window,
 * one hop deep — its own events, those recorded with it as peer, and for each gen call
 * it made the callee's events of that call, told apart from other clients' calls by the
 * call's tag. Payloads are written as the tracer writes them (payload.h), with blobs
 * standing for pids and references. */
#include "cause.h"
#include "helpers.h"
#include "payload_writer.h"

#include "harness.h"

/* Atom words: any 64-bit values serve (the real ones are atom term words). */
enum {
    F_MESSAGE = 11,
    F_ARGS,
    F_CALLBACK,
    F_CAUSE,
    F_CALL_ID,
    A_GEN_CALL = 31,
    A_GEN_CAST,
    A_ALIAS,
    A_HANDLE_CALL,
    A_HANDLE_CAST,
    A_HANDLE_INFO,
    A_HANDLE_CONTINUE,
    A_ADD,
    A_OK,
    A_MODULE,
    A_BROADCAST
};

/* Pids and tags as blobs of their numbers; the request process is pid 1. */
enum { P = 1, R = 3, TAG_P = 101, TAG_R = 103 };

static es_store *s;
static es_tables *t;
static es_key *receive, *send, *call, *ret, *state, *crash, *phoenix, *pids[8];
static es_key *handle_call_mf, *broadcast_mf;
static es_cause_keys k;

static void setup(void) {
    s = test_store(10000, 4 << 20);
    t = es_store_tables(s);
    receive = test_key(&t->type, 1), send = test_key(&t->type, 2), call = test_key(&t->type, 3);
    ret = test_key(&t->type, 4), state = test_key(&t->type, 5), crash = test_key(&t->type, 6);
    phoenix = test_key(&t->type, 7);
    for (uint64_t i = 1; i < 8; i++) pids[i] = test_key(&t->pid, i);
    uint64_t m = A_MODULE, hc[2] = {A_MODULE, A_HANDLE_CALL}, b[2] = {A_MODULE, A_BROADCAST};
    es_key *module = es_intern_get(&t->module, &m, 8, true, 0);
    handle_call_mf = es_intern_get(&t->mf, hc, 16, true, module->id);
    broadcast_mf = es_intern_get(&t->mf, b, 16, true, module->id);
    k = (es_cause_keys){
        .receive = receive,
        .send = send,
        .call = call,
        .ret = ret,
        .state = state,
        .crash = crash,
        .message = F_MESSAGE,
        .args = F_ARGS,
        .callback = F_CALLBACK,
        .cause = F_CAUSE,
        .call_id = F_CALL_ID,
        .gen_call = A_GEN_CALL,
        .gen_cast = A_GEN_CAST,
        .alias = A_ALIAS,
        .callbacks = {A_HANDLE_CALL, A_HANDLE_CAST, A_HANDLE_INFO, A_HANDLE_CONTINUE}};
}

static void teardown(void) {
    es_store_free(s);
}

TestSuite(cause, .init = setup, .fini = teardown);

/* [alias | Ref] */
static void put_tag(pl *p, uint64_t tag) {
    put_list(p, 1);
    put_atom(p, A_ALIAS);
    put_blob(p, tag);
}

/* {add, n}: a request */
static void put_request(pl *p, int64_t n) {
    put_tuple(p, 2);
    put_atom(p, A_ADD);
    put_int(p, n);
}

/* {From, Tag} */
static void put_from(pl *p, uint64_t from, uint64_t tag) {
    put_tuple(p, 2);
    put_blob(p, from);
    put_tag(p, tag);
}

static uint64_t append(int64_t ts, es_key *type, es_key *actor, es_key *peer, es_key *mf,
                       const pl *p) {
    es_event_in in = {.ts = ts, .type = type, .actor = actor, .peer = peer, .mf = mf};
    in.flags = ES_F_ACTOR | (peer ? ES_F_PEER : 0) | (mf ? ES_F_MODULE | ES_F_FUNCTION : 0);
    if (peer) {
        uint32_t ids[2] = {actor->id, peer->id};
        in.pair = es_intern_get(&t->pair, ids, sizeof ids, true, 0);
    }
    if (p) in.payload = p->b, in.payload_len = (uint32_t)p->n;
    return es_store_append(s, &in);
}

/* Q's receive of {'$gen_call', {From, Tag}, {add, n}}, with From as its peer, as the
 * tracer records it (tracer.h) */
static uint64_t gen_call(int64_t ts, int q, uint64_t from, uint64_t tag, int64_t n) {
    pl p;
    pl_begin(&p);
    key(&p, F_MESSAGE);
    put_tuple(&p, 3);
    put_atom(&p, A_GEN_CALL);
    put_from(&p, from, tag);
    put_request(&p, n);
    pl_end(&p);
    return append(ts, receive, pids[q], pids[from], NULL, &p);
}

static uint64_t gen_cast(int64_t ts, int q) {
    pl p;
    pl_begin(&p);
    key(&p, F_MESSAGE);
    put_tuple(&p, 2);
    put_atom(&p, A_GEN_CAST);
    put_int(&p, 9);
    pl_end(&p);
    return append(ts, receive, pids[q], NULL, NULL, &p);
}

/* Q's reply {Tag, ok} to `to` */
static uint64_t reply(int64_t ts, int q, int to, uint64_t tag) {
    pl p;
    pl_begin(&p);
    key(&p, F_MESSAGE);
    put_tuple(&p, 2);
    put_tag(&p, tag);
    put_atom(&p, A_OK);
    pl_end(&p);
    return append(ts, send, pids[q], pids[to], NULL, &p);
}

/* a plain message from Q to `to` */
static uint64_t message(int64_t ts, int q, int to) {
    pl p;
    pl_begin(&p);
    key(&p, F_MESSAGE);
    put_int(&p, 42);
    pl_end(&p);
    return append(ts, send, pids[q], pids[to], NULL, &p);
}

static uint64_t state_of(int64_t ts, int q, uint64_t callback, int64_t n) {
    pl p;
    pl_begin(&p);
    key(&p, F_CALLBACK);
    put_atom(&p, callback);
    key(&p, F_CAUSE);
    put_request(&p, n);
    pl_end(&p);
    return append(ts, state, pids[q], NULL, NULL, &p);
}

/* Q's :call of handle_call({add, n}, {From, Tag}, State) */
static uint64_t handle_call(int64_t ts, int q, uint64_t from, uint64_t tag, int64_t n) {
    pl p;
    pl_begin(&p);
    key(&p, F_ARGS);
    put_list(&p, 3);
    put_request(&p, n);
    put_from(&p, from, tag);
    put_int(&p, 0);
    put_nil(&p);
    pl_end(&p);
    return append(ts, call, pids[q], NULL, handle_call_mf, &p);
}

static uint64_t returned(int64_t ts, int q, es_key *mf, uint64_t call_id) {
    pl p;
    pl_begin(&p);
    key(&p, F_CALL_ID);
    put_int(&p, (int64_t)call_id);
    pl_end(&p);
    return append(ts, ret, pids[q], NULL, mf, &p);
}

static uint64_t plain(int64_t ts, es_key *type, int actor, es_key *mf) {
    return append(ts, type, pids[actor], NULL, mf, NULL);
}

/* es_cause_of() over [lo, hi] for pid P, as ids; `page` (or all of it) */
static size_t cause_ids(int64_t lo, int64_t hi, const es_filter *page, uint64_t *ids) {
    es_filter window, all;
    es_filter_init(&window);
    es_filter_init(&all);
    window.ts_min = lo, window.ts_max = hi;
    pl pid;
    pid.n = 0;
    put_blob(&pid, P);
    es_hits h;
    cr_assert_eq(es_cause_of(s, &window, page ? page : &all, pids[P], pid.b, pid.n, &k, &h),
                 ES_Q_OK);
    for (size_t i = 0; i < h.n; i++) ids[i] = h.v[i].id;
    size_t n = h.n;
    es_hits_free(&h);
    return n;
}

static void assert_ids(const uint64_t *got, size_t n, const uint64_t *want, size_t m) {
    cr_assert_eq(n, m, "%zu events, expected %zu", n, m);
    for (size_t i = 0; i < m; i++)
        cr_assert_eq(got[i], want[i], "event %zu is #%llu, expected #%llu", i,
                     (unsigned long long)got[i], (unsigned long long)want[i]);
}

Test(cause, a_call_is_told_apart_from_another_clients_call_by_its_tag) {
    uint64_t start = plain(10, phoenix, P, NULL);
    gen_call(11, 2, R, TAG_R, 1);                  /* R's call, handled first */
    uint64_t mine = gen_call(12, 2, P, TAG_P, 2);  /* P's, waiting in the mailbox */
    state_of(13, 2, A_HANDLE_CALL, 1);             /* R's state */
    reply(14, 2, R, TAG_R);                        /* and reply */
    uint64_t b = plain(15, call, 2, broadcast_mf); /* P's handling: a broadcast */
    gen_call(15, 2, 4, 104, 3);                    /* another client's call arrives meanwhile */
    uint64_t br = returned(16, 2, broadcast_mf, b);
    uint64_t st = state_of(17, 2, A_HANDLE_CALL, 2);
    uint64_t rep = reply(18, 2, P, TAG_P);
    gen_cast(19, 2); /* another client's cast, meanwhile */
    uint64_t stop = plain(20, phoenix, P, NULL);
    state_of(21, 2, A_HANDLE_CAST, 9); /* after the window */
    uint64_t got[32], want[] = {start, mine, b, br, st, rep, stop};
    assert_ids(got, cause_ids(10, 20, NULL, got), want, 7);
}

Test(cause, the_handle_call_of_the_call_marks_where_its_handling_began) {
    uint64_t start = plain(10, phoenix, P, NULL);
    uint64_t mine = gen_call(11, 2, P, TAG_P, 2);
    gen_call(12, 2, R, TAG_R, 1);
    /* R's call came first: its handling ends with a message, no state, no reply yet */
    uint64_t r_call = handle_call(13, 2, R, TAG_R, 1);
    message(14, 2, 4);
    returned(15, 2, handle_call_mf, r_call);
    uint64_t hc = handle_call(16, 2, P, TAG_P, 2);
    uint64_t msg = message(17, 2, 5);
    uint64_t hr = returned(18, 2, handle_call_mf, hc);
    uint64_t rep = reply(19, 2, P, TAG_P);
    uint64_t stop = plain(20, phoenix, P, NULL);
    uint64_t got[32], want[] = {start, mine, hc, msg, hr, rep, stop};
    assert_ids(got, cause_ids(10, 20, NULL, got), want, 7);
}

Test(cause, a_callee_that_dies_before_replying_shows_how_far_it_got) {
    uint64_t start = plain(10, phoenix, P, NULL);
    uint64_t mine = gen_call(11, 2, P, TAG_P, 2);
    message(12, 2, 4); /* before its handling began: not the call's */
    uint64_t hc = handle_call(13, 2, P, TAG_P, 2);
    uint64_t inner = plain(14, call, 2, broadcast_mf);
    uint64_t died = plain(15, crash, 2, NULL);
    uint64_t stop = plain(16, phoenix, P, NULL);
    uint64_t got[32], want[] = {start, mine, hc, inner, died, stop};
    assert_ids(got, cause_ids(10, 16, NULL, got), want, 6);
}

Test(cause, events_with_the_process_as_peer_types_order_and_limit) {
    uint64_t start = plain(10, phoenix, P, NULL);
    uint64_t to_p = message(11, 6, P); /* another process's message to it */
    message(12, 6, 5);                 /* not to it */
    uint64_t stop = plain(13, phoenix, P, NULL);
    plain(14, phoenix, P, NULL); /* the next request */
    uint64_t got[32];
    uint64_t all[] = {start, to_p, stop};
    assert_ids(got, cause_ids(10, 13, NULL, got), all, 3);
    es_filter f;
    es_filter_init(&f);
    es_keyset_add(&f.types, phoenix);
    f.descending = true;
    f.limit = 1;
    uint64_t last[] = {stop};
    assert_ids(got, cause_ids(10, 13, &f, got), last, 1);
    /* a window with nothing of it */
    cr_assert_eq(cause_ids(100, 200, NULL, got), 0);
}

Test(cause, the_state_change_of_another_message_ends_the_search_back) {
    uint64_t start = plain(10, phoenix, P, NULL);
    uint64_t mine = gen_call(11, 2, P, TAG_P, 2);
    gen_cast(12, 2);
    message(13, 2, 4);                 /* the cast's handling */
    state_of(14, 2, A_HANDLE_CAST, 9); /* ends here */
    uint64_t msg = message(15, 2, 5);  /* P's call's handling */
    uint64_t st = state_of(16, 2, A_HANDLE_CALL, 2);
    uint64_t rep = reply(17, 2, P, TAG_P);
    uint64_t stop = plain(18, phoenix, P, NULL);
    uint64_t got[32], want[] = {start, mine, msg, st, rep, stop};
    assert_ids(got, cause_ids(10, 18, NULL, got), want, 6);
}

Test(cause, a_page_after_the_calls_receive_still_has_what_the_call_caused) {
    uint64_t start = plain(10, phoenix, P, NULL);
    uint64_t mine = gen_call(11, 2, P, TAG_P, 2);
    uint64_t st = state_of(12, 2, A_HANDLE_CALL, 2);
    uint64_t rep = reply(13, 2, P, TAG_P);
    uint64_t stop = plain(14, phoenix, P, NULL);
    uint64_t got[32], all[] = {start, mine, st, rep, stop};
    assert_ids(got, cause_ids(10, 14, NULL, got), all, 5);
    /* the page after the receive: the callee's state and reply are still found */
    es_filter page;
    es_filter_init(&page);
    page.has_after = true;
    page.after = (es_pos){11, mine};
    page.limit = 2;
    uint64_t next[] = {st, rep};
    assert_ids(got, cause_ids(10, 14, &page, got), next, 2);
}
