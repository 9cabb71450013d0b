/*
 * bench_store.c — C-level throughput of the store: appends of 64-byte payloads from 1
 * and 2 producer threads (each under its own pid, with the actor and type chains linked
 * as the tracer does, and with no index at all) with wall-clock rates and CPU time per
 * append, the machine's own limits (independent work on 2 threads; one cache line
 * moving between the cores), the cost of an indexed query with ~100 hits as the store
 * grows, and memory per event at 1M events of the Elixir bench's event mix. Prints
 * tables with ratios; run by `make bench` (or `bench_store appends|queries|memory`).
 */
#include "query.h"
#include "store.h"

#include <pthread.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct job {
    es_store *s;
    es_key *type, *actor;
    uint64_t n;
    double cpu; /* seconds of this thread's CPU time */
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
    double c0 = cpu_s();
    for (uint64_t i = 0; i < j->n; i++) {
        memcpy(payload, &i, sizeof i);
        es_store_append(j->s, &in);
    }
    j->cpu = cpu_s() - c0;
    return NULL;
}

typedef struct run {
    double rate;   /* appends per second of wall-clock time, all producers together */
    double cpu_ns; /* CPU time per append, summed over producers */
    double busy;   /* CPUs the producers kept busy on average (2 = both ran throughout) */
} run;

/* `threads` producers, each appending `per_thread` events under its own pid (as tracer
 * threads append events of different processes); all share the type key. */
static run append_run(int threads, uint64_t per_thread, bool indexed) {
    uint64_t n = per_thread * (uint64_t)threads;
    es_store *s = new_store(n);
    es_tables *t = es_store_tables(s);
    uint64_t k = 1;
    es_key *type = indexed ? es_intern_get(&t->type, &k, 8, true, 0) : NULL;
    job jobs[8];
    pthread_t th[8];
    for (int i = 0; i < threads; i++) {
        uint64_t a = (uint64_t)i + 100;
        jobs[i] =
            (job){s, type, indexed ? es_intern_get(&t->pid, &a, 8, true, 0) : NULL, per_thread, 0};
    }
    /* Touch all the memory once (the arena holds 9/8 of the events' payloads: go round
     * it and the ring) so that page faults are not what we measure. */
    produce(&(job){s, NULL, NULL, 2 * n, 0});
    es_store_clear(s);
    double t0 = now_s();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, produce, &jobs[i]);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double wall = now_s() - t0, cpu = 0;
    for (int i = 0; i < threads; i++) cpu += jobs[i].cpu;
    es_store_free(s);
    return (run){(double)n / wall, cpu / (double)n * 1e9, cpu / wall};
}

/* The machine's price of a first write to a fresh page (the page fault that commits
 * it): what every event costs, per page of slots and payload it fills, while a new
 * store fills for the first time. */
static double first_touch_ns(void) {
    const size_t bytes = 64u << 20, page = 4096;
    uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 0;
    double t0 = now_s();
    for (size_t i = 0; i < bytes; i += page) p[i] = 1;
    double ns = (now_s() - t0) / (double)(bytes / page) * 1e9;
    munmap(p, bytes);
    return ns;
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

/* The machine's price of one cache line moving between the two cores: two threads
 * pass a counter back and forth; half a round trip. Every append of two producers
 * at once moves the id counter's line at least once: this is the floor of what a
 * globally ordered id costs. */
#define PINGS 2000000
static _Alignas(64) _Atomic uint64_t ball;

static void *pong(void *arg) {
    (void)arg;
    for (uint64_t i = 0; i < PINGS; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 1) {
        }
        atomic_store_explicit(&ball, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static double line_transfer_ns(void) {
    atomic_store(&ball, 0);
    pthread_t th;
    pthread_create(&th, NULL, pong, NULL);
    double t0 = now_s();
    for (uint64_t i = 0; i < PINGS; i++) {
        atomic_store_explicit(&ball, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 2) {
        }
    }
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    return dt / PINGS / 2 * 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define ROUNDS 5

/* ROUNDS rounds of 1 then 2 producers (interleaved, so that machine noise hits both
 * alike); prints medians of wall-clock rates and of CPU time per append. */
static void append_rows(const char *name, uint64_t n, bool indexed) {
    double r1[ROUNDS], r2[ROUNDS], ratio[ROUNDS], c1[ROUNDS], c2[ROUNDS], cratio[ROUNDS],
        busy[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        run one = append_run(1, n, indexed), two = append_run(2, n / 2, indexed);
        r1[r] = one.rate;
        r2[r] = two.rate;
        ratio[r] = two.rate / one.rate;
        c1[r] = one.cpu_ns;
        c2[r] = two.cpu_ns;
        cratio[r] = 2 * one.cpu_ns / two.cpu_ns;
        busy[r] = two.busy;
    }
    printf("%-34s %12.1f M/s %12.1f M/s %9.2fx\n", name, median(r1, ROUNDS) / 1e6,
           median(r2, ROUNDS) / 1e6, median(ratio, ROUNDS));
    printf("%-34s %12.1f ns  %12.1f ns  %9.2fx  (2p kept %.2f CPUs busy)\n",
           "  CPU time per append", median(c1, ROUNDS), median(c2, ROUNDS), median(cratio, ROUNDS),
           median(busy, ROUNDS));
}

/* Median µs of a query for one pid's :state events (~100 hits) at a store size. */
static double query_us(es_store *s, es_key *actor, es_key *type, uint64_t *hits) {
    double times[51];
    for (int r = 0; r < 51; r++) {
        es_filter f;
        es_filter_init(&f);
        es_keyset_add(&f.actors, actor);
        es_keyset_add(&f.types, type);
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
    printf("\nC store: appends of %d-byte payloads, %lu events per run; medians of %d rounds of\n"
           "1 and 2 producers, interleaved; each producer appends under its own pid\n",
           PAYLOAD, (unsigned long)n, ROUNDS);
    printf("%-34s %14s %14s %10s\n", "", "1 producer", "2 producers", "2p / 1p");
    append_rows("indexed (actor + type chains)", n, true);
    append_rows("no index keys", n, false);
    printf("%-34s %14s %14s %9.2fx\n", "machine ceiling: independent math", "", "",
           compute_scaling());
    printf("%-34s %12.1f ns (one way; the floor of a shared id's cost)\n",
           "machine: a line between 2 cores", line_transfer_ns());
    printf("%-34s %12.1f ns per 4 KiB page (a store's first fill pays it; not measured above)\n",
           "machine: first write to a fresh page", first_touch_ns());
    printf(
        "  CPU time per append counts each producer's own time: 2p / 1p = 2 x (1p CPU) / (2p CPU)\n"
        "  is the scaling the store allows when both producers have a CPU each; the wall-clock\n"
        "  ratio is lower whenever other processes take CPU time (see \"CPUs busy\").\n");
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
