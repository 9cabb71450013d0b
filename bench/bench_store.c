/*
 * bench_store.c — C-level throughput of the store: appends of 64-byte payloads from 1
 * and 2 producer threads (with the actor and type chains linked, as the tracer does,
 * and with no index at all), and the cost of an indexed query with ~100 hits as the
 * store grows. Prints a table with ratios; run by `make bench`.
 */
#include "query.h"
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PAYLOAD 64

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static es_store *new_store(uint64_t events) {
    es_store_config cfg = {.max_events = events,
                           .max_bytes = events * (PAYLOAD + 8),
                           .max_payload_bytes = 1 << 16,
                           .sample_rate = 1.0,
                           .max_keys = 1 << 16};
    return es_store_new(&cfg);
}

typedef struct job {
    es_store *s;
    es_key *type, *actor;
    uint64_t n;
} job;

static void *produce(void *arg) {
    job *j = arg;
    uint8_t payload[PAYLOAD];
    memset(payload, 7, sizeof payload);
    es_event_in in = {.ts = ES_TS_NOW,
                      .type = j->type,
                      .actor = j->actor,
                      .payload = payload,
                      .payload_len = PAYLOAD,
                      .flags = j->actor ? ES_F_ACTOR : 0};
    for (uint64_t i = 0; i < j->n; i++) {
        memcpy(payload, &i, sizeof i);
        es_store_append(j->s, &in);
    }
    return NULL;
}

/* Appends per second with `threads` producers, each appending `per_thread` events. */
static double append_rate(int threads, uint64_t per_thread, bool indexed) {
    es_store *s = new_store(per_thread * (uint64_t)threads);
    es_tables *t = es_store_tables(s);
    uint64_t k = 1;
    es_key *type = indexed ? es_intern_get(&t->type, &k, 8, true, 0) : NULL;
    job jobs[8];
    pthread_t th[8];
    for (int i = 0; i < threads; i++) {
        uint64_t a = (uint64_t)i + 100;
        jobs[i] =
            (job){s, type, indexed ? es_intern_get(&t->pid, &a, 8, true, 0) : NULL, per_thread};
    }
    /* Touch the memory once so page faults are not what we measure. */
    produce(&(job){s, NULL, NULL, per_thread * (uint64_t)threads});
    es_store_clear(s);
    double t0 = now_s();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, produce, &jobs[i]);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double rate = (double)per_thread * threads / (now_s() - t0);
    es_store_free(s);
    return rate;
}

/* The machine's own ceiling: independent arithmetic on 1 and 2 threads. */
static void *spin(void *arg) {
    volatile uint64_t x = (uintptr_t)arg;
    for (long i = 0; i < 100000000; i++) x = x * 6364136223846793005ULL + 1;
    return NULL;
}

static double compute_scaling(void) {
    pthread_t th[2];
    double t0 = now_s();
    spin((void *)1);
    double one = now_s() - t0;
    t0 = now_s();
    for (uintptr_t i = 0; i < 2; i++) pthread_create(&th[i], NULL, spin, (void *)(i + 1));
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    return 2 * one / (now_s() - t0);
}

static double best_of(int reps, int threads, uint64_t n, bool indexed) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double x = append_rate(threads, n, indexed);
        if (x > best) best = x;
    }
    return best;
}

/* Median µs of a query for one pid's :state events (~100 hits) at a store size. */
static double query_us(es_store *s, es_key *actor, es_key *type, uint64_t *hits) {
    double times[51];
    for (int r = 0; r < 51; r++) {
        es_filter f;
        es_filter_init(&f);
        f.actor = actor;
        f.type = type;
        es_hits h = {0};
        double t0 = now_s();
        es_query(s, &f, &h);
        times[r] = (now_s() - t0) * 1e6;
        *hits = h.n;
        es_hits_free(&h);
    }
    for (int i = 0; i < 51; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double x = times[j];
            times[j] = times[j - 1];
            times[j - 1] = x;
        }
    return times[25];
}

int main(void) {
    const uint64_t n = 4000000;
    double one = best_of(3, 1, n, true), two = best_of(3, 2, n / 2, true);
    double one_plain = best_of(3, 1, n, false), two_plain = best_of(3, 2, n / 2, false);
    printf("\nC store: appends of %d-byte payloads (best of 3, %lu events per run)\n", PAYLOAD,
           (unsigned long)n);
    printf("%-34s %14s %14s %10s\n", "", "1 producer", "2 producers", "2p / 1p");
    printf("%-34s %12.1f M/s %12.1f M/s %9.2fx\n", "indexed (actor + type chains)", one / 1e6,
           two / 1e6, two / one);
    printf("%-34s %12.1f M/s %12.1f M/s %9.2fx\n", "no index keys", one_plain / 1e6,
           two_plain / 1e6, two_plain / one_plain);
    printf("%-34s %12.1f ns   %12.1f ns\n", "ns per append (indexed)", 1e9 / one, 1e9 / two);
    printf("%-34s %14s %14s %9.2fx\n", "machine ceiling: independent math", "", "",
           compute_scaling());

    printf(
        "\nC store: one pid's :state events (100 hits) among N events, query without decoding\n");
    printf("%-12s %12s %8s\n", "N", "median µs", "hits");
    es_store *s = new_store(1000000);
    es_tables *t = es_store_tables(s);
    uint64_t one_k = 1, two_k = 2, target = 7;
    es_key *state = es_intern_get(&t->type, &one_k, 8, true, 0);
    es_key *other = es_intern_get(&t->type, &two_k, 8, true, 0);
    es_key *pid = es_intern_get(&t->pid, &target, 8, true, 0);
    uint8_t payload[PAYLOAD] = {0};
    uint64_t filled = 0;
    uint64_t sizes[] = {10000, 100000, 1000000};
    for (int i = 0; i < 3; i++) {
        /* Keep the target's 100 events spread over the whole store. */
        uint64_t every = sizes[i] / 100;
        es_store_clear(s);
        filled = 0;
        for (; filled < sizes[i]; filled++) {
            uint64_t p = filled % 1000 + 100;
            bool hit = filled % every == every / 2;
            es_event_in in = {.ts = ES_TS_NOW,
                              .type = hit ? state : other,
                              .flags = ES_F_ACTOR,
                              .actor = hit ? pid : es_intern_get(&t->pid, &p, 8, true, 0),
                              .payload = payload,
                              .payload_len = PAYLOAD};
            es_store_append(s, &in);
        }
        uint64_t hits;
        double us = query_us(s, pid, state, &hits);
        printf("%-12lu %12.2f %8lu\n", (unsigned long)sizes[i], us, (unsigned long)hits);
    }
    es_store_free(s);
    return 0;
}
