/* Unit and concurrency tests of intern.c. */
#include "intern.h"

#include "harness.h"
#include <pthread.h>
#include <string.h>

Test(intern, same_key_same_entry_distinct_ids) {
    es_intern t;
    cr_assert(es_intern_init(&t, 100));
    es_key *a = es_intern_get(&t, "alpha", 5, true, 7);
    es_key *b = es_intern_get(&t, "beta", 4, true, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a->id, b->id);
    cr_assert_eq(es_intern_get(&t, "alpha", 5, true, 0), a);
    cr_assert_eq(es_intern_get(&t, "alpha", 5, false, 0), a);
    cr_assert_eq(a->aux, 7, "aux is fixed at first insert");
    cr_assert_null(es_intern_get(&t, "gamma", 5, false, 0));
    cr_assert_eq(es_intern_by_id(&t, a->id), a);
    cr_assert_null(es_intern_by_id(&t, 0));
    cr_assert_null(es_intern_by_id(&t, 101));
    es_intern_destroy(&t);
}

Test(intern, long_keys_are_stored_outside_the_entry) {
    es_intern t;
    cr_assert(es_intern_init(&t, 16));
    char big[300], other[300];
    memset(big, 'x', sizeof big);
    memcpy(other, big, sizeof other);
    other[299] = 'y';
    es_key *a = es_intern_get(&t, big, sizeof big, true, 0);
    es_key *b = es_intern_get(&t, other, sizeof other, true, 0);
    cr_assert_neq(a, b);
    cr_assert_eq(es_intern_get(&t, big, sizeof big, false, 0), a);
    cr_assert(memcmp(es_key_bytes(a), big, sizeof big) == 0);
    es_intern_destroy(&t);
}

Test(intern, full_table_refuses_new_keys_and_says_so) {
    es_intern t;
    cr_assert(es_intern_init(&t, 16));
    for (uint64_t i = 0; i < 16; i++) cr_assert_not_null(es_intern_get(&t, &i, 8, true, 0));
    uint64_t extra = 99;
    cr_assert_null(es_intern_get(&t, &extra, 8, true, 0));
    cr_assert(t.overflowed);
    uint64_t old = 3;
    cr_assert_not_null(es_intern_get(&t, &old, 8, false, 0), "existing keys still resolve");
    es_intern_destroy(&t);
}

/* 150,000 keys go through all three index levels of a 200,000-key table (4096 and
 * 65536 slots take half their size each; the last level the rest); every one is found,
 * absent keys are not, and the first keys still touch only the first level. */
Test(intern, keys_beyond_a_level_go_on_to_the_next) {
    static es_intern t;
    cr_assert(es_intern_init(&t, 200000));
    cr_assert_eq(t.levels, 3);
    static es_key *k[150000];
    for (uint64_t i = 0; i < 150000; i++) {
        k[i] = es_intern_get(&t, &i, 8, true, 0);
        cr_assert_not_null(k[i]);
        cr_assert_eq(k[i]->id, i + 1);
    }
    uint64_t held[3] = {0};
    for (int l = 0; l < 3; l++)
        for (uint64_t i = 0; i <= t.level[l].mask; i++) {
            uint32_t id = atomic_load(&t.level[l].slots[i]);
            held[l] += id != 0 && id != UINT32_MAX;
        }
    cr_assert(held[0] == 2048 && held[1] == 32768 && held[2] == 150000 - 2048 - 32768,
              "levels hold %lu, %lu, %lu keys", held[0], held[1], held[2]);
    for (uint64_t i = 0; i < 150000; i++) {
        cr_assert_eq(es_intern_get(&t, &i, 8, false, 0), k[i], "key %lu", i);
        cr_assert_eq(es_intern_get(&t, &i, 8, true, 0), k[i]);
    }
    for (uint64_t i = 150000; i < 160000; i++) cr_assert_null(es_intern_get(&t, &i, 8, false, 0));
    es_intern_destroy(&t);
}

static void count_visit(es_key *k, void *arg) {
    uint32_t *visits = arg;
    visits[k->id]++;
}

/* Every key inserted is visited once, through all three index levels, long keys
 * included, and nothing else. */
Test(intern, each_visits_every_published_key_once) {
    static es_intern t;
    cr_assert(es_intern_init(&t, 200000));
    static uint32_t visits[200001];
    memset(visits, 0, sizeof visits);
    es_intern_each(&t, count_visit, visits);
    for (uint32_t i = 0; i <= 200000; i++) cr_assert_eq(visits[i], 0, "an empty table");
    char big[40];
    memset(big, 'z', sizeof big);
    es_key *long_key = es_intern_get(&t, big, sizeof big, true, 0);
    for (uint64_t i = 0; i < 100000; i++) cr_assert_not_null(es_intern_get(&t, &i, 8, true, 0));
    es_intern_each(&t, count_visit, visits);
    cr_assert_eq(visits[long_key->id], 1);
    uint64_t total = 0;
    for (uint32_t i = 0; i <= 200000; i++) {
        cr_assert_leq(visits[i], 1, "entry %u once", i);
        total += visits[i];
    }
    cr_assert_eq(total, 100001);
    es_intern_destroy(&t);
}

#define THREADS 4
#define KEYS 5000

static es_intern shared;
static es_key *seen[THREADS][KEYS];

static void *insert_all(void *arg) {
    long me = (long)arg;
    for (uint64_t i = 0; i < KEYS; i++) {
        uint64_t k = (i * 7919 + (uint64_t)me * 13) % KEYS; /* same keys, different orders */
        seen[me][k] = es_intern_get(&shared, &k, sizeof k, true, 0);
    }
    return NULL;
}

Test(intern, concurrent_inserts_agree_on_one_entry_per_key) {
    cr_assert(es_intern_init(&shared, KEYS * 2));
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, insert_all, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (uint64_t k = 0; k < KEYS; k++) {
        cr_assert_not_null(seen[0][k]);
        for (int i = 1; i < THREADS; i++) cr_assert_eq(seen[i][k], seen[0][k], "key %lu", k);
        cr_assert_eq(es_intern_by_id(&shared, seen[0][k]->id), seen[0][k]);
    }
    es_intern_destroy(&shared);
}

static es_intern walked;

static void *insert_walked(void *arg) {
    long me = (long)arg;
    for (uint64_t i = 0; i < KEYS; i++) {
        /* 32 bytes: kept outside the entry, behind a pointer written while it is filled */
        uint64_t k[4] = {(i * 7919 + (uint64_t)me * 13) % KEYS, 0, 0, 0};
        k[1] = k[2] = k[3] = ~k[0];
        es_intern_get(&walked, k, sizeof k, true, 0);
    }
    return NULL;
}

static void check_filled(es_key *k, void *arg) {
    (void)arg;
    const uint64_t *b = (const uint64_t *)es_key_bytes(k);
    cr_assert_eq(k->len, 32, "a visited entry is filled");
    cr_assert(b[1] == ~b[0] && b[2] == ~b[0] && b[3] == ~b[0], "with its whole key");
}

/* Walks running beside inserts see only complete entries. */
Test(intern, each_beside_inserts_sees_only_filled_entries) {
    cr_assert(es_intern_init(&walked, KEYS * 2));
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, insert_walked, (void *)i);
    for (int n = 0; n < 50; n++) es_intern_each(&walked, check_filled, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    es_intern_each(&walked, check_filled, NULL);
    es_intern_destroy(&walked);
}

#define GROUPS 7

static es_intern groups, grouped;
static es_key *grouped_seen[THREADS][KEYS];

static void *insert_grouped(void *arg) {
    long me = (long)arg;
    for (uint64_t i = 0; i < KEYS; i++) {
        uint64_t k = (i * 7919 + (uint64_t)me * 13) % KEYS;
        grouped_seen[me][k] =
            es_intern_get(&grouped, &k, sizeof k, true, (uint32_t)(k % GROUPS) + 1);
    }
    return NULL;
}

/* Every entry that inserts return is on its group's list, and lists hold only their
 * group's entries (plus, possibly, entries that lost a race and are never used). */
Test(intern, groups_list_every_entry_under_its_aux) {
    cr_assert(es_intern_init(&groups, 16));
    for (uint64_t g = 0; g < GROUPS; g++)
        cr_assert_not_null(es_intern_get(&groups, &g, 8, true, 0));
    cr_assert(es_intern_init(&grouped, KEYS * 2));
    es_intern_group_by_aux(&grouped, &groups);
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, insert_grouped, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    static bool listed[KEYS * 2 + 1];
    memset(listed, 0, sizeof listed);
    size_t members = 0;
    for (uint32_t g = 1; g <= GROUPS; g++)
        for (uint32_t m = es_intern_first(&groups.entries[g]); m;
             m = es_intern_next(&grouped.entries[m])) {
            cr_assert_eq(grouped.entries[m].aux, g);
            cr_assert_not(listed[m], "listed once");
            listed[m] = true;
            members++;
        }
    cr_assert_geq(members, KEYS);
    for (uint64_t k = 0; k < KEYS; k++) {
        for (int i = 1; i < THREADS; i++) cr_assert_eq(grouped_seen[i][k], grouped_seen[0][k]);
        cr_assert(listed[grouped_seen[0][k]->id], "key %lu listed", k);
    }
    es_intern_destroy(&grouped);
    es_intern_destroy(&groups);
}
