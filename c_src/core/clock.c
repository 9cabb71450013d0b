/*
 * clock.c — event timestamps from CLOCK_MONOTONIC, or from the TSC where the kernel
 * keeps time with it. See clock.h for the contract.
 */
#include "clock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#define NS_PER_S INT64_C(1000000000)
#define RATE_WINDOW NS_PER_S         /* the TSC's rate is measured over at least this */
#define LINE_LIFETIME (2 * NS_PER_S) /* past this since calibration, clock_gettime() */
#define MAX_HOLD (NS_PER_S / 1000)   /* the furthest a reading is held back */
#define MAX_SAMPLE_TICKS 2000        /* a looser (tsc, CLOCK_MONOTONIC) pair is not used */

static _Atomic int64_t offset; /* the runtime's monotonic time - CLOCK_MONOTONIC */
static _Atomic bool calibrating;
static _Thread_local int64_t last_read;

static int64_t os_monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * NS_PER_S + t.tv_nsec;
}

#if HAVE_TSC
/* The TSC line: now = ns + (tsc_now - tsc) * mult / 2^32, while tsc_now - tsc < limit
 * (limit 0: no line). A sequence lock publishes it: odd while a calibration rewrites
 * it. The fields are atomics so that a reader racing the writer is well defined; the
 * sequence tells that reader to discard what it read. */
static struct {
    _Atomic uint32_t seq;
    _Atomic uint64_t tsc, mult, limit;
    _Atomic int64_t ns;
} line;

/* The state of calibration, touched only by the caller holding `calibrating`. */
typedef struct point {
    uint64_t tsc;
    int64_t mono;
} point;
static point anchor;  /* where the current rate window began */
static uint64_t rate; /* ns per tick << 32 over the last window; 0: not known */
static int tsc_usable = -1;

/* The TSC is worth reading only if the kernel trusts it as its own clocksource: then
 * it runs at a constant rate and agrees across CPUs. */
static bool kernel_uses_tsc(void) {
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return false;
    char name[32] = {0};
    bool tsc = fgets(name, sizeof name, f) && strcmp(name, "tsc\n") == 0;
    fclose(f);
    return tsc;
}

/* A TSC reading and a CLOCK_MONOTONIC reading of one instant: of a few tries, the one
 * whose clock_gettime() took fewest ticks (~60 here). False when every try took over
 * MAX_SAMPLE_TICKS (the thread was preempted each time): the point would be too loose. */
static bool sample(point *best) {
    uint64_t width = UINT64_MAX;
    for (int i = 0; i < 8; i++) {
        uint64_t t0 = __rdtsc();
        int64_t mono = os_monotonic();
        uint64_t t1 = __rdtsc();
        if (t1 - t0 < width) width = t1 - t0, best->tsc = t0 + (t1 - t0) / 2, best->mono = mono;
    }
    return width <= MAX_SAMPLE_TICKS;
}

static void publish(uint64_t tsc, int64_t ns, uint64_t mult, uint64_t limit) {
    uint32_t s = atomic_load_explicit(&line.seq, memory_order_relaxed);
    atomic_store_explicit(&line.seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&line.tsc, tsc, memory_order_relaxed);
    atomic_store_explicit(&line.ns, ns, memory_order_relaxed);
    atomic_store_explicit(&line.mult, mult, memory_order_relaxed);
    atomic_store_explicit(&line.limit, limit, memory_order_relaxed);
    atomic_store_explicit(&line.seq, s + 2, memory_order_release);
}

/* Re-anchors the line at this instant; once a window of a second has passed, measures
 * the rate over it. A rate that moved by more than 0.1% (a VM suspended or migrated)
 * is not trusted: readings go back to clock_gettime() until the next window agrees. */
static void retime(int64_t off) {
    point p;
    if (!sample(&p)) return; /* the line stays as it was, and expires if this goes on */
    if (anchor.tsc == 0 || p.tsc <= anchor.tsc || p.mono <= anchor.mono) {
        anchor = p;
    } else if (p.mono - anchor.mono >= RATE_WINDOW) {
        uint64_t r = (uint64_t)(((unsigned __int128)(uint64_t)(p.mono - anchor.mono) << 32) /
                                (p.tsc - anchor.tsc));
        rate = rate && (r > rate + rate / 1000 || r < rate - rate / 1000) ? 0 : r;
        anchor = p;
    }
    uint64_t limit = rate ? (uint64_t)(((unsigned __int128)LINE_LIFETIME << 32) / rate) : 0;
    publish(p.tsc, p.mono + off, rate, limit);
}
#endif

int64_t es_clock_now(void) {
    int64_t now;
#if HAVE_TSC
    uint32_t s = atomic_load_explicit(&line.seq, memory_order_acquire);
    uint64_t tsc = atomic_load_explicit(&line.tsc, memory_order_relaxed);
    uint64_t mult = atomic_load_explicit(&line.mult, memory_order_relaxed);
    uint64_t limit = atomic_load_explicit(&line.limit, memory_order_relaxed);
    int64_t ns = atomic_load_explicit(&line.ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    /* A TSC behind the line's (another CPU's, read a moment earlier) wraps past limit. */
    uint64_t d = __rdtsc() - tsc;
    if (d < limit && !(s & 1) && atomic_load_explicit(&line.seq, memory_order_relaxed) == s)
        now = ns + (int64_t)(((unsigned __int128)d * mult) >> 32);
    else
#endif
        now = os_monotonic() + atomic_load_explicit(&offset, memory_order_relaxed);
    /* A new line may start a few ns behind where the old one had got to. (A reading
     * far behind the last one means the offset itself moved: take it, rather than
     * hold this thread's clock still until real time catches up.) */
    if (now < last_read && last_read - now < MAX_HOLD) now = last_read;
    last_read = now;
    return now;
}

void es_clock_calibrate(int64_t (*runtime_now)(void)) {
    if (atomic_exchange_explicit(&calibrating, true, memory_order_acquire)) return;
    /* The runtime's monotonic clock is CLOCK_MONOTONIC plus a constant, so every sample
     * bounds that constant: runtime - after <= offset <= runtime - before. The tightest
     * bounds of many samples pin it down to a few ns. */
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    for (int i = 0; i < 64; i++) {
        int64_t before = os_monotonic();
        int64_t runtime = runtime_now();
        int64_t after = os_monotonic();
        if (runtime - after > lo) lo = runtime - after;
        if (runtime - before < hi) hi = runtime - before;
    }
    int64_t off = lo <= hi ? lo + (hi - lo) / 2 : lo;
    atomic_store_explicit(&offset, off, memory_order_relaxed);
#if HAVE_TSC
    if (tsc_usable < 0) tsc_usable = kernel_uses_tsc();
    if (tsc_usable) retime(off);
#endif
    atomic_store_explicit(&calibrating, false, memory_order_release);
}

int64_t es_clock_offset(void) {
    return atomic_load_explicit(&offset, memory_order_relaxed);
}

es_clock_source_t es_clock_source(void) {
#if HAVE_TSC
    uint64_t tsc = atomic_load_explicit(&line.tsc, memory_order_relaxed);
    if (__rdtsc() - tsc < atomic_load_explicit(&line.limit, memory_order_relaxed))
        return ES_CLOCK_TSC;
#endif
    return ES_CLOCK_MONOTONIC;
}
