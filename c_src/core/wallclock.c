/*
 * wallclock.c — a recording's time offsets over time. See wallclock.h.
 */
#include "wallclock.h"

#include <mimalloc.h>
#include <pthread.h>
#include <string.h>

struct es_wallclock {
    pthread_mutex_t lock;
    es_offset v[ES_WALLCLOCK_MAX];
    size_t n;
};

es_wallclock *es_wallclock_new(void) {
    es_wallclock *w = mi_zalloc(sizeof *w);
    if (w && pthread_mutex_init(&w->lock, NULL) != 0) {
        mi_free(w);
        return NULL;
    }
    return w;
}

void es_wallclock_free(es_wallclock *w) {
    if (!w) return;
    pthread_mutex_destroy(&w->lock);
    mi_free(w);
}

/* Index of the last entry at or before ts, or -1. */
static long last_at_or_before(const es_wallclock *w, int64_t ts) {
    long lo = 0, hi = (long)w->n - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (w->v[mid].ts <= ts) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static void remove_at(es_wallclock *w, size_t i) {
    memmove(w->v + i, w->v + i + 1, (w->n - i - 1) * sizeof *w->v);
    w->n--;
}

/* Entry i and its neighbours saying the same offset: the later one is redundant. */
static void merge_around(es_wallclock *w, size_t i) {
    if (i + 1 < w->n && w->v[i + 1].offset == w->v[i].offset) remove_at(w, i + 1);
    if (i > 0 && i < w->n && w->v[i - 1].offset == w->v[i].offset) remove_at(w, i);
}

static bool insert(es_wallclock *w, int64_t ts, int64_t offset) {
    long at = last_at_or_before(w, ts);
    /* In effect there already (before the first entry, the first's is). */
    if (at >= 0 ? w->v[at].offset == offset : w->n > 0 && w->v[0].offset == offset) return false;
    if (at >= 0 && w->v[at].ts == ts) { /* the same moment: the later word wins */
        w->v[at].offset = offset;
        merge_around(w, (size_t)at);
        return true;
    }
    size_t pos = (size_t)(at + 1);
    if (w->n == ES_WALLCLOCK_MAX) { /* the oldest goes */
        if (pos == 0) return false; /* older than everything kept */
        remove_at(w, 0);
        pos--;
    }
    memmove(w->v + pos + 1, w->v + pos, (w->n - pos) * sizeof *w->v);
    w->v[pos] = (es_offset){ts, offset};
    w->n++;
    merge_around(w, pos);
    return true;
}

bool es_wallclock_note(es_wallclock *w, int64_t ts, int64_t offset) {
    pthread_mutex_lock(&w->lock);
    bool changed = insert(w, ts, offset);
    pthread_mutex_unlock(&w->lock);
    return changed;
}

bool es_wallclock_offset_at(es_wallclock *w, int64_t ts, int64_t *offset) {
    pthread_mutex_lock(&w->lock);
    bool known = w->n > 0;
    if (known) {
        long at = last_at_or_before(w, ts);
        *offset = w->v[at < 0 ? 0 : at].offset;
    }
    pthread_mutex_unlock(&w->lock);
    return known;
}

bool es_wallclock_mono_of(es_wallclock *w, int64_t wall, int64_t *ts) {
    pthread_mutex_lock(&w->lock);
    bool known = w->n > 0, found = false;
    /* The first span that had `wall`: entry i's runs over monotonic [ts_i, ts_i+1) (the
     * first from the beginning of time, the last to its end), at wall time + off_i. */
    for (size_t i = 0; known && !found && i < w->n; i++) {
        int64_t mono = wall - w->v[i].offset;
        if ((i == 0 || mono >= w->v[i].ts) && (i + 1 == w->n || mono < w->v[i + 1].ts))
            *ts = mono, found = true;
    }
    /* None: a forward warp skipped it; the span that starts after it. */
    for (size_t i = 1; known && !found && i < w->n; i++)
        if (w->v[i].ts + w->v[i].offset > wall) *ts = w->v[i].ts, found = true;
    if (known && !found) *ts = wall - w->v[w->n - 1].offset;
    pthread_mutex_unlock(&w->lock);
    return known;
}

size_t es_wallclock_span(es_wallclock *w, int64_t from, int64_t to, es_offset *out, size_t max) {
    pthread_mutex_lock(&w->lock);
    long at = last_at_or_before(w, from);
    size_t n = 0;
    for (size_t i = at < 0 ? 0 : (size_t)at; i < w->n && n < max && w->v[i].ts <= to; i++)
        out[n++] = w->v[i];
    if (n == 0 && w->n > 0 && at < 0 && max > 0) out[n++] = w->v[0]; /* all after `to` */
    pthread_mutex_unlock(&w->lock);
    return n;
}
