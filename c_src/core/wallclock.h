/*
 * wallclock.h — a recording's wall clock: the runtime's time offset (system time =
 * monotonic time + offset, native units) as it was from each moment on, so that every
 * event's timestamp tells its wall-clock time as it was when the event was recorded,
 * even across a time warp (`+C multi_time_warp` moves the offset; the default mode
 * never does). Each store keeps one (store.h), dumps write it beside the events and
 * loads read it back (persist.h, docs/FORMAT.md).
 *
 * Contract: entries (ts, offset), sorted by ts, one per change: noting the offset that
 * is in effect at ts already adds nothing. The offset at ts is that of the last entry
 * at or before ts, or, before the first, the first's (the best known). At most
 * ES_WALLCLOCK_MAX entries: past that the oldest goes (the events it covered are the
 * oldest of the recording, and read the next entry's offset). The inverse, a
 * monotonic time from a wall-clock time, is exact within an entry's span; a wall time
 * that a forward warp skipped maps to the start of the span after it, one that a
 * backward warp made happen twice to its first occurrence.
 *
 * Thread-safety: any thread; a mutex guards the entries (notes are rare: one per
 * offset change, and the entries a load reads).
 */
#ifndef ES_WALLCLOCK_H
#define ES_WALLCLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ES_WALLCLOCK_MAX 4096

typedef struct es_offset {
    int64_t ts, offset;
} es_offset;

typedef struct es_wallclock es_wallclock;

es_wallclock *es_wallclock_new(void);
void es_wallclock_free(es_wallclock *w);

/* From monotonic time ts on, the offset is `offset`. True when that changed anything. */
bool es_wallclock_note(es_wallclock *w, int64_t ts, int64_t offset);

/* The offset in effect at ts; false when none is known. */
bool es_wallclock_offset_at(es_wallclock *w, int64_t ts, int64_t *offset);

/* The monotonic time that had wall-clock time `wall` (native units since the epoch);
 * false when no offset is known. */
bool es_wallclock_mono_of(es_wallclock *w, int64_t wall, int64_t *ts);

/* The entries that events with timestamps in [from, to] read: the one in effect at
 * `from` and those after it up to `to`, into out (at most max); how many. */
size_t es_wallclock_span(es_wallclock *w, int64_t from, int64_t to, es_offset *out, size_t max);

#endif
