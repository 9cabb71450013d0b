/* Tests of wallclock.c: a recording's time offsets — notes, the offset at a time, the
 * inverse, spans for dumps, the bound — and notes beside readers on other threads. */
#include "wallclock.h"

#include "harness.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

Test(wallclock, offsets_in_effect_and_redundant_notes) {
    es_wallclock *w = es_wallclock_new();
    int64_t off;
    cr_assert_not(es_wallclock_offset_at(w, 0, &off), "nothing known yet");
    cr_assert(es_wallclock_note(w, 100, 5000));
    cr_assert_not(es_wallclock_note(w, 150, 5000), "in effect already");
    cr_assert_not(es_wallclock_note(w, 50, 5000), "before the first: its offset already");
    cr_assert(es_wallclock_note(w, 200, 9000));
    cr_assert(es_wallclock_offset_at(w, 10, &off) && off == 5000, "before the first: the first's");
    cr_assert(es_wallclock_offset_at(w, 199, &off) && off == 5000);
    cr_assert(es_wallclock_offset_at(w, 200, &off) && off == 9000);
    cr_assert(es_wallclock_offset_at(w, 1 << 30, &off) && off == 9000);
    /* a change noted late, between two: entries stay sorted */
    cr_assert(es_wallclock_note(w, 150, 7000));
    cr_assert(es_wallclock_offset_at(w, 160, &off) && off == 7000);
    es_offset v[8];
    cr_assert_eq(es_wallclock_span(w, INT64_MIN, INT64_MAX, v, 8), 3);
    /* the same moment noted again: the later word wins; a neighbour equal to it goes */
    cr_assert(es_wallclock_note(w, 150, 9000));
    cr_assert_eq(es_wallclock_span(w, INT64_MIN, INT64_MAX, v, 8), 2);
    cr_assert(v[0].ts == 100 && v[1].ts == 150 && v[1].offset == 9000);
    es_wallclock_free(w);
}

Test(wallclock, spans_for_segments) {
    es_wallclock *w = es_wallclock_new();
    for (int i = 0; i < 5; i++) es_wallclock_note(w, 100 * (i + 1), 1000 * (i + 1));
    es_offset v[8];
    size_t n = es_wallclock_span(w, 250, 420, v, 8);
    cr_assert_eq(n, 3, "in effect at 250 (200), then 300 and 400");
    cr_assert(v[0].ts == 200 && v[1].ts == 300 && v[2].ts == 400);
    n = es_wallclock_span(w, 10, 20, v, 8);
    cr_assert(n == 1 && v[0].ts == 100, "before everything: the first, whose offset they read");
    cr_assert_eq(es_wallclock_span(w, 900, 1000, v, 8), 1);
    cr_assert_eq(v[0].ts, 500);
    es_wallclock_free(w);
}

Test(wallclock, wall_clock_times_back_to_timestamps) {
    es_wallclock *w = es_wallclock_new();
    int64_t ts;
    cr_assert_not(es_wallclock_mono_of(w, 0, &ts));
    /* spans: mono [..2000) at +10000 (wall ..12000), a forward warp: [2000, 3000) at
     * +20000 (wall 22000..23000), a backward one: [3000..) at +15000 (wall 18000..) */
    es_wallclock_note(w, 1000, 10000);
    es_wallclock_note(w, 2000, 20000);
    es_wallclock_note(w, 3000, 15000);
    cr_assert(es_wallclock_mono_of(w, 11500, &ts) && ts == 1500);
    cr_assert(es_wallclock_mono_of(w, 10500, &ts) && ts == 500, "before the first entry");
    cr_assert(es_wallclock_mono_of(w, 15000, &ts) && ts == 2000, "skipped by the forward warp");
    cr_assert(es_wallclock_mono_of(w, 19000, &ts) && ts == 4000);
    cr_assert(es_wallclock_mono_of(w, 22500, &ts) && ts == 2500, "twice: the first time");
    cr_assert(es_wallclock_mono_of(w, 30000, &ts) && ts == 15000);
    es_wallclock_free(w);
}

Test(wallclock, the_oldest_go_past_the_bound) {
    es_wallclock *w = es_wallclock_new();
    for (int64_t i = 0; i < ES_WALLCLOCK_MAX + 10; i++) es_wallclock_note(w, i * 10, i % 2);
    es_offset *v = malloc(ES_WALLCLOCK_MAX * sizeof *v);
    size_t n = es_wallclock_span(w, INT64_MIN, INT64_MAX, v, ES_WALLCLOCK_MAX);
    cr_assert_eq(n, ES_WALLCLOCK_MAX);
    cr_assert_eq(v[0].ts, 100, "the ten oldest went");
    cr_assert_eq(v[n - 1].ts, (int64_t)(ES_WALLCLOCK_MAX + 9) * 10);
    cr_assert_not(es_wallclock_note(w, 5, 7), "older than everything kept: dropped");
    free(v);
    es_wallclock_free(w);
}

/* A writer noting changes while readers read: every reading is an offset noted. */
static es_wallclock *shared;
static atomic_bool done;

static void *reader(void *arg) {
    (void)arg;
    int64_t off, ts;
    while (!atomic_load(&done)) {
        if (es_wallclock_offset_at(shared, 500, &off)) cr_assert(off >= 0 && off < 1000);
        es_wallclock_mono_of(shared, 100000, &ts);
    }
    return NULL;
}

Test(wallclock, notes_beside_readers) {
    shared = es_wallclock_new();
    atomic_store(&done, false);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, reader, NULL);
    for (int64_t i = 0; i < 20000; i++) es_wallclock_note(shared, i % 1000, i % 1000);
    atomic_store(&done, true);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    es_wallclock_free(shared);
}
