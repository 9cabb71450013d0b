/*
 * clock.h — the timestamp of every event: the runtime's monotonic time
 * (System.monotonic_time/0, nanoseconds on Linux), read cheaply.
 *
 * Contract: es_clock_now() is CLOCK_MONOTONIC plus the runtime's offset from it, as
 * measured by the last es_clock_calibrate() (before any, as in the C tests and benches,
 * CLOCK_MONOTONIC itself); enif_monotonic_time() costs several times a clock_gettime(),
 * and the store stamps every event. Where the kernel itself keeps time with
 * the TSC (its clocksource is "tsc", on x86-64), es_clock_now() reads the TSC and
 * scales it instead of calling clock_gettime(): ~10 ns against ~23 ns on the 2-vCPU
 * EPYC VM we measure on, and the tracer reads the clock twice per traced call. The
 * scale is CLOCK_MONOTONIC's own rate over at least the last second, and every
 * calibration re-anchors the line at the current CLOCK_MONOTONIC time, so a reading
 * strays from CLOCK_MONOTONIC only by that rate's error over the time since the last
 * calibration (the governor calibrates every tick). A reading more than two seconds
 * past the last calibration, or before a rate is known, falls back to clock_gettime();
 * so does one on a CPU whose TSC reads behind the line's. Readings never go back on one
 * thread (by up to a millisecond they are held; a larger step back, which only a moved
 * offset can cause, is taken). A machine paused with its TSC stopped reads behind
 * CLOCK_MONOTONIC until the next calibration re-anchors the line.
 *
 * es_clock_calibrate(runtime_now) re-measures the offset between runtime_now() (which
 * returns the runtime's monotonic time in ns) and CLOCK_MONOTONIC, and the TSC line.
 * es_clock_source() says which source es_clock_now() reads now.
 *
 * Thread-safety: es_clock_now() from any thread, lock-free. es_clock_calibrate() from
 * any thread; a call while another runs returns at once.
 */
#ifndef ES_CLOCK_H
#define ES_CLOCK_H

#include <stdint.h>

typedef enum { ES_CLOCK_MONOTONIC, ES_CLOCK_TSC } es_clock_source_t;

int64_t es_clock_now(void);
void es_clock_calibrate(int64_t (*runtime_now)(void));
int64_t es_clock_offset(void);
es_clock_source_t es_clock_source(void);

#endif
