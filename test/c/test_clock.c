/* Tests of clock.c: the offset, the TSC line and its fallbacks, monotonic readings
 * while another thread recalibrates. The clock is process-wide state; every test
 * calibrates for itself and checks only what holds whatever ran before it. */
#include "clock.h"

#include "harness.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OFFSET INT64_C(123456789)
/* How far a reading may stray from CLOCK_MONOTONIC + OFFSET: a line is anchored by a
 * pair read within 2000 ticks (clock.c), and a wrong offset or rate is off by far more. */
#define TOLERANCE 2000

static int64_t mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* A runtime whose monotonic clock is CLOCK_MONOTONIC + OFFSET, as the BEAM's is. */
static int64_t runtime_now(void) {
    return mono() + OFFSET;
}

static bool kernel_uses_tsc(void) {
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    char name[32] = {0};
    bool tsc = f && fgets(name, sizeof name, f) && strcmp(name, "tsc\n") == 0;
    if (f) fclose(f);
#if !defined(__x86_64__)
    tsc = false;
#endif
    return tsc;
}

/* The largest distance of a reading from [before, after] (CLOCK_MONOTONIC + OFFSET
 * read just before and just after it), over n readings. */
static int64_t worst_error(int n) {
    int64_t worst = 0;
    for (int i = 0; i < n; i++) {
        int64_t before = mono() + OFFSET, now = es_clock_now(), after = mono() + OFFSET;
        int64_t e = now < before ? before - now : now > after ? now - after : 0;
        if (e > worst) worst = e;
    }
    return worst;
}

Test(clock, reads_the_runtime_offset_at_once) {
    es_clock_calibrate(runtime_now);
    cr_assert_leq(es_clock_offset() - OFFSET, 100, "offset %ld", (long)es_clock_offset());
    cr_assert_geq(es_clock_offset() - OFFSET, -100, "offset %ld", (long)es_clock_offset());
    int64_t worst = worst_error(100000);
    cr_log_info("worst distance from CLOCK_MONOTONIC + offset: %ld ns", (long)worst);
    cr_assert_leq(worst, TOLERANCE);
}

Test(clock, reads_the_tsc_once_a_second_of_rate_is_measured) {
    es_clock_calibrate(runtime_now);
    usleep(1050 * 1000);
    es_clock_calibrate(runtime_now);
    cr_assert_eq(es_clock_source(), kernel_uses_tsc() ? ES_CLOCK_TSC : ES_CLOCK_MONOTONIC);
    int64_t worst = worst_error(1000000);
    cr_log_info("source %d, worst distance from CLOCK_MONOTONIC + offset: %ld ns",
                (int)es_clock_source(), (long)worst);
    cr_assert_leq(worst, TOLERANCE);
}

Test(clock, a_line_not_recalibrated_for_two_seconds_is_left_for_clock_gettime) {
    es_clock_calibrate(runtime_now);
    usleep(1050 * 1000);
    es_clock_calibrate(runtime_now);
    usleep(2050 * 1000);
    cr_assert_eq(es_clock_source(), ES_CLOCK_MONOTONIC);
    cr_assert_leq(worst_error(100000), TOLERANCE);
    es_clock_calibrate(runtime_now); /* the rate is kept: the line is back at once */
    cr_assert_eq(es_clock_source(), kernel_uses_tsc() ? ES_CLOCK_TSC : ES_CLOCK_MONOTONIC);
    cr_assert_leq(worst_error(100000), TOLERANCE);
}

static atomic_bool calibrating_done;

typedef struct reader_result {
    long backwards;
    int64_t worst;
} reader_result;

/* Reads until told to stop: how often a reading was below the one before, and the
 * largest distance of a reading from CLOCK_MONOTONIC + OFFSET around it (a reading torn
 * by a racing recalibration would be far off). */
static void *reader(void *arg) {
    reader_result *r = arg;
    int64_t prev = es_clock_now();
    while (!atomic_load(&calibrating_done)) {
        int64_t before = mono() + OFFSET, now = es_clock_now(), after = mono() + OFFSET;
        int64_t e = now < before ? before - now : now > after ? now - after : 0;
        if (e > r->worst) r->worst = e;
        r->backwards += now < prev;
        prev = now;
    }
    return NULL;
}

/* Readers never see time go back or a reading torn, while a calibrator re-anchors the
 * line every millisecond and the source switches from clock_gettime() to the TSC. */
Test(clock, readings_stay_whole_and_ordered_while_another_thread_recalibrates) {
    pthread_t threads[3];
    reader_result results[3] = {{0, 0}};
    atomic_store(&calibrating_done, false);
    es_clock_calibrate(runtime_now); /* the offset first: readers compare with it */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, reader, &results[i]), 0);
    for (int i = 0; i < 1200; i++) {
        es_clock_calibrate(runtime_now);
        usleep(1000);
    }
    atomic_store(&calibrating_done, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        cr_log_info("reader %d: worst distance %ld ns, %ld readings went back", i,
                    (long)results[i].worst, results[i].backwards);
        cr_assert_eq(results[i].backwards, 0);
        cr_assert_leq(results[i].worst, TOLERANCE);
    }
    cr_assert_eq(es_clock_source(), kernel_uses_tsc() ? ES_CLOCK_TSC : ES_CLOCK_MONOTONIC);
}
