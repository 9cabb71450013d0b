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
#include <unistd.h>

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

/* Resident bytes of this process (/proc/self/statm). */
static uint64_t rss_bytes(void) {
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The event mix of bench/support/event_gen.exs (what store_bench.exs measures with VmRSS
 * from Elixir), appended from C: 2,000 pids, each sending to 4 partners (8,000 pairs),
 * 100 modules x 8 functions, sends 35%, calls 25%, returns 20%, state 15%, spawns 5%,
 * payload sizes as term_to_binary gives them there (78, 69, 67, 84, 96 bytes). Keys are
 * interned per event, as the NIF does. Returns resident bytes per event; *payload gets
 * the mean payload size and *floor the design floor (slot + arena + time block). */
static double memory_per_event(uint64_t n, double *payload, double *floor) {
    uint64_t r0 = rss_bytes();
    es_store_config cfg = {.max_events = 1100000,
                           .max_bytes = 256u << 20,
                           .max_payload_bytes = 64u << 10,
                           .sample_rate = 1.0,
                           .max_keys = 262144};
    es_store *s = es_store_new(&cfg);
    es_tables *t = es_store_tables(s);
    const char *types[] = {"send", "call", "return", "state", "spawn"};
    const uint32_t sizes[] = {78, 69, 67, 84, 96};
    uint8_t buf[128];
    memset(buf, 0xAB, sizeof buf);
    uint64_t bytes = 0;
    for (uint64_t i = 1; i <= n; i++) {
        uint32_t h = (uint32_t)(i * 2654435761u);
        h ^= h >> 15;
        h *= 0x2C1B3C6Du;
        h ^= h >> 13;
        uint32_t a = h % 2000, r = (h >> 21) % 100;
        int kind = r < 35 ? 0 : r < 60 ? 1 : r < 80 ? 2 : r < 95 ? 3 : 4;
        uint64_t pid = 100000 + a, mod = (h >> 11) % 100, fun = kind == 3 ? 0 : (h >> 18) % 8 + 1;
        es_event_in in = {.ts = ES_TS_NOW, .payload = buf, .payload_len = sizes[kind]};
        in.type = es_intern_get(&t->type, types[kind], strlen(types[kind]), true, 0);
        in.actor = es_intern_get(&t->pid, &pid, 8, true, 0);
        in.flags = ES_F_ACTOR;
        if (kind == 0) {
            uint64_t to = 100000 + (a + 7 * (1 + (h >> 28) % 4)) % 2000;
            in.peer = es_intern_get(&t->pid, &to, 8, true, 0);
            uint32_t ids[2] = {in.actor->id, in.peer->id};
            in.pair = es_intern_get(&t->pair, ids, sizeof ids, true, 0);
            in.flags |= ES_F_PEER;
        } else if (kind <= 3) {
            in.module = es_intern_get(&t->module, &mod, 8, true, 0);
            uint64_t mf[2] = {mod, fun};
            in.mf = es_intern_get(&t->mf, mf, sizeof mf, true, in.module->id);
            in.flags |= ES_F_MODULE | (fun ? ES_F_FUNCTION | ES_F_ARITY : 0);
            in.arity = fun ? 2 : 0;
        }
        memcpy(buf, &i, sizeof i);
        es_store_append(s, &in);
        bytes += sizes[kind];
    }
    uint64_t r1 = rss_bytes();
    es_store_stats st;
    es_store_get_stats(s, &st);
    *payload = (double)bytes / (double)n;
    *floor = ES_SLOT_BYTES + 32.0 / ES_BLOCK + (double)st.bytes / (double)n;
    es_store_free(s);
    return (double)(r1 - r0) / (double)n;
}

static void bench_appends(void) {
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
}

static void bench_queries(void) {
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
}

static void bench_memory(void) {
    double mean, floor, per = memory_per_event(1000000, &mean, &floor);
    printf("\nC store: memory at 1,000,000 events of the Elixir bench's mix (RSS growth)\n");
    printf("%-34s %10.1f B/event (payload %.1f B; target <= 1.3 x payload + 64 = %.1f)\n",
           "store (slots, arena, keys, blocks)", per, mean, 1.3 * mean + 64);
    printf("%-34s %10.1f B/event (%d B slot + arena bytes + time blocks)\n", "design floor", floor,
           ES_SLOT_BYTES);
}

/* No argument: every part. Otherwise the parts named: appends, queries, memory. */
int main(int argc, char **argv) {
    void (*parts[])(void) = {bench_appends, bench_queries, bench_memory};
    const char *names[] = {"appends", "queries", "memory"};
    for (int p = 0; p < 3; p++) {
        bool run = argc == 1;
        for (int a = 1; a < argc; a++) run = run || strcmp(argv[a], names[p]) == 0;
        if (run) parts[p]();
    }
    return 0;
}
