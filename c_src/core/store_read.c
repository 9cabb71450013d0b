/*
 * store_read.c — the reader side of the store: consistent slot reads, the time-block
 * summaries, and walks along index chains and through time. The contract, the
 * reclamation scheme and the thread-safety rules are in store.h; the layout in
 * store_internal.h.
 */
#include "store_internal.h"

/* ---- slots ----------------------------------------------------------------------- */

/* Reads slot `id` consistently. With li >= 0 also returns the slot's link li, which
 * is valid for pending (still being written) slots too once it is non-zero. */
enum slot_state slot_read(es_store *s, uint64_t id, es_event_view *v, int li, int32_t *link) {
    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    for (unsigned spins = 0;;) {
        uint32_t s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if ((s1 & ~STAMP_BUSY) != stamp) return SLOT_GONE;
        v->id = id;
        v->ts = atomic_load_explicit(&sl->ts, memory_order_relaxed);
        v->off = atomic_load_explicit(&sl->off, memory_order_relaxed);
        v->len = atomic_load_explicit(&sl->len, memory_order_relaxed);
        v->csum = atomic_load_explicit(&sl->csum, memory_order_relaxed);
        uint32_t meta = atomic_load_explicit(&sl->meta, memory_order_relaxed);
        v->type_id = (uint16_t)((meta >> 16) & META_TYPE_MASK);
        v->flags = (uint8_t)(meta >> 8);
        v->arity = (uint8_t)meta;
        v->actor = atomic_load_explicit(&sl->actor, memory_order_relaxed);
        v->peer = atomic_load_explicit(&sl->peer, memory_order_relaxed);
        v->mf = atomic_load_explicit(&sl->mf, memory_order_relaxed);
        v->hash = 0;
        if (meta & META_HASHED) {
            uint32_t high =
                (uint32_t)atomic_load_explicit(&sl->link[PAIR_LINK], memory_order_relaxed);
            v->hash = (uint64_t)high << 32 | v->peer;
            v->peer = 0;
        }
        int32_t l = li >= 0 ? atomic_load_explicit(&sl->link[li], memory_order_acquire) : 0;
        atomic_thread_fence(memory_order_acquire);
        uint32_t s2 = atomic_load_explicit(&sl->seq, memory_order_relaxed);
        if (s2 != s1) {
            if (s2 == stamp) continue; /* it was just committed: read it again */
            return SLOT_GONE;
        }
        if (li >= 0 && l == LINK_UNSET) { /* linked but the link is not stored yet */
            spin_wait(&spins);
            continue;
        }
        if (link) *link = l;
        if (s1 & STAMP_BUSY) return SLOT_PENDING;
        if (meta == HOLE_META) return SLOT_GONE;
        /* Truncated markers hold no bytes but sit at an arena position too, so byte
         * pruning takes them in order with everything else. */
        if (!arena_intact(s, v->off)) return SLOT_NO_PAYLOAD;
        return SLOT_LIVE;
    }
}

#define INVERSION_WINDOW 64

/* The lowest id that is live: above clears and the ring's lap, and above every event
 * whose payload the arena has lapped. Payload offsets follow ids except where two
 * appends raced between taking an id and reserving bytes, so after a binary search
 * a short window is checked: ids below a lapped event count as pruned too, keeping
 * the live ids one contiguous run (oldest first, as the contract says). */
uint64_t live_floor(es_store *s) {
    uint64_t low = es_store_low_id(s), high = es_store_high_id(s);
    uint64_t cursor = atomic_load_explicit(&s->arena_cursor, memory_order_relaxed);
    if (cursor <= s->arena_words * 8 || low > high) return low;
    uint64_t lo = low, hi = high + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        es_event_view v;
        if (slot_read(s, mid, &v, -1, NULL) == SLOT_NO_PAYLOAD)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t floor = lo;
    for (uint64_t id = lo; id <= high && id < lo + INVERSION_WINDOW; id++) {
        es_event_view v;
        if (slot_read(s, id, &v, -1, NULL) == SLOT_NO_PAYLOAD) floor = id + 1;
    }
    return floor;
}

bool es_store_peek(es_store *s, uint64_t id, es_event_view *out) {
    if (id == 0 || id < es_store_low_id(s) || id > es_store_high_id(s)) return false;
    return slot_read(s, id, out, -1, NULL) == SLOT_LIVE;
}

/* ---- time blocks ----------------------------------------------------------------- */

bool block_summary(es_store *s, uint64_t b, int64_t *min, int64_t *max, int64_t *pmax) {
    es_block *bl = &s->blocks[b % s->nblocks];
    uint64_t s1 = atomic_load_explicit(&bl->summarized, memory_order_acquire);
    if (s1 != b + 1) return false;
    *min = atomic_load_explicit(&bl->min, memory_order_relaxed);
    *max = atomic_load_explicit(&bl->max, memory_order_relaxed);
    *pmax = atomic_load_explicit(&bl->pmax, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&bl->summarized, memory_order_relaxed) == s1;
}

enum { TS_PENDING, TS_NONE, TS_SOME };

/* The timestamp of `id` for its block's summary: TS_PENDING while its append is in
 * flight or not started yet (the block is not complete), TS_NONE when the slot holds no
 * event of it (a hole, or lapped by the ring), else TS_SOME and *ts. */
static int summary_ts(es_store *s, uint64_t id, int64_t *ts) {
    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if (s1 == 0 || lap_diff(s1, stamp) < 0 || s1 == (stamp | STAMP_BUSY)) return TS_PENDING;
        if (s1 != stamp) return TS_NONE;
        *ts = atomic_load_explicit(&sl->ts, memory_order_relaxed);
        uint32_t meta = atomic_load_explicit(&sl->meta, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != s1) continue;
        return meta == HOLE_META ? TS_NONE : TS_SOME;
    }
}

/* Summarizes complete blocks in order, up to (not including) block `upto`. One thread
 * at a time (try-lock, never waits). A block whose appends are not all committed stops
 * the summary until a later call. Appends call this for the block before the one they
 * complete: its appends on other threads are long over, so the summarizer rarely reads
 * a block in vain. */
void summarize(es_store *s, uint64_t upto) {
    if (atomic_exchange_explicit(&s->summarizing, true, memory_order_acquire)) return;
    uint64_t c = atomic_load_explicit(&s->sum_cursor, memory_order_relaxed);
    while (c < upto) {
        uint64_t low = es_store_low_id(s);
        if ((c + 1) * ES_BLOCK < low) { /* wholly pruned: nothing to describe */
            c = block_of(low);
            continue;
        }
        /* Ids below this were cleared (or precede a loaded store's first id): an
         * append of one still in flight does not hold the block up. */
        uint64_t cleared = atomic_load_explicit(&s->low_water, memory_order_acquire);
        int64_t mn = INT64_MAX, mx = INT64_MIN, late = 0, pm = s->pm_running, ts = 0;
        bool complete = true;
        for (uint64_t id = c * ES_BLOCK + 1; id <= (c + 1) * ES_BLOCK; id++) {
            int r = summary_ts(s, id, &ts);
            if (r == TS_PENDING && id >= cleared) {
                complete = false;
                break;
            }
            if (r != TS_SOME) continue;
            if (ts < mn) mn = ts;
            if (ts > mx) mx = ts;
            if (pm != INT64_MIN && sat_sub(pm, ts) > late) late = sat_sub(pm, ts);
            if (ts > pm) pm = ts;
        }
        if (!complete) break;
        s->pm_running = pm;
        es_block *bl = &s->blocks[c % s->nblocks];
        if (late > atomic_load_explicit(&s->lateness, memory_order_relaxed))
            atomic_store_explicit(&s->lateness, late, memory_order_release);
        atomic_store_explicit(&bl->summarized, 0, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&bl->min, mn, memory_order_relaxed);
        atomic_store_explicit(&bl->max, mx, memory_order_relaxed);
        atomic_store_explicit(&bl->pmax, pm, memory_order_relaxed);
        atomic_store_explicit(&bl->summarized, c + 1, memory_order_release);
        c++;
    }
    atomic_store_explicit(&s->sum_cursor, c, memory_order_release);
    atomic_store_explicit(&s->summarizing, false, memory_order_release);
}

/* Asks for the lines of an event's payload (at most the first 256 bytes). */

static inline void prefetch_payload(es_store *s, const es_event_view *v) {
    if (v->flags & ES_F_TRUNCATED) return;
    uint64_t w = arena_word(s, v->off);
    uint32_t words = (v->len + 7) / 8;
    if (words > 32) words = 32;
    for (uint32_t i = 0; i < words; i += 8) {
        uint64_t at = w + i < s->arena_words ? w + i : w + i - s->arena_words;
        __builtin_prefetch(&s->arena[at]);
    }
}

/* ---- walks ----------------------------------------------------------------------- */

/* Walks one chain (one shard's, for sharded keys) from `id` towards older events.
 * Returns false when the visitor aborted. */
/* One event of a chain walk: its slot as read, and its link. */
typedef struct chain_step {
    uint64_t id; /* 0: past the end of the chain */
    es_event_view v;
    int32_t link;
    enum slot_state st;
} chain_step;

/* Reads the event after `prev` in its chain (or nothing), and asks for the slot after
 * that one and, with `payloads`, for this one's payload lines. */
/* The id of the event after `prev` in its chain, 0 when there is none (live). */
static inline uint64_t id_after(const chain_step *prev, uint64_t low) {
    uint64_t id = prev->id && prev->st != SLOT_GONE && prev->link != LINK_NONE
                      ? (uint64_t)((int64_t)prev->id - prev->link)
                      : 0;
    return id >= low ? id : 0;
}

static inline void chain_read(es_store *s, uint64_t low, int li, bool payloads,
                              const chain_step *prev, chain_step *out) {
    out->id = id_after(prev, low);
    out->link = LINK_NONE;
    out->st = SLOT_GONE;
    if (!out->id) return;
    out->st = slot_read(s, out->id, &out->v, li, &out->link);
    if (out->st == SLOT_GONE) return;
    uint32_t stamp;
    if (out->link != LINK_NONE)
        __builtin_prefetch(slot_of(s, (uint64_t)((int64_t)out->id - out->link), &stamp));
    if (payloads) prefetch_payload(s, &out->v);
}

/* A chain is walked three events at a time: while one is visited, the next one's slot
 * has been read and its payload asked for, the one after it is being read, and the
 * slot after that is on its way — so a chain's cache misses overlap the work instead of
 * following it (a chain links events far apart in the ring and the arena). The first
 * event is visited before anything is read ahead (only the next slot is asked for): a
 * query that stops there pays for one event. */
static bool walk_one(es_store *s, uint64_t low, uint64_t id, int chain, const es_walk *w,
                     es_visit_fn fn, void *ctx) {
    uint64_t cursor_id = atomic_load_explicit(&s->sum_cursor, memory_order_acquire) * ES_BLOCK;
    uint64_t accepted = 0, checked_block = UINT64_MAX;
    int64_t worst = INT64_MAX; /* descending: smallest accepted timestamp */
    int li = link_index[chain];
    if (id < low || id == 0) return true;
    chain_step step[3], start = {.id = id + 1, .link = 1, .st = SLOT_LIVE};
    chain_read(s, low, li, w->payloads, &start, &step[0]);
    for (unsigned k = 0, have = 0;; k++) { /* step[i % 3] holds event i once have >= i */
        /* Event k's id is known from event k-1's link: whether the walk goes on is
         * decided before anything more is read. */
        uint64_t at = k == 0 ? step[0].id : id_after(&step[(k - 1) % 3], low);
        if (!at) return true;
        if (at <= cursor_id && block_of(at) != checked_block) {
            /* Every event at or before this block has a timestamp <= its pmax. */
            int64_t mn, mx, pmax;
            checked_block = block_of(at);
            if (block_summary(s, checked_block, &mn, &mx, &pmax) &&
                (pmax < w->ts_min ||
                 (w->descending && w->want && accepted >= w->want && pmax < worst)))
                return true;
        }
        for (; k > 0 && have < k + 2; have++)
            chain_read(s, low, li, w->payloads, &step[have % 3], &step[(have + 1) % 3]);
        chain_step *cur = &step[k % 3];
        if (!cur->id || cur->st == SLOT_GONE) return true;
        if (cur->st == SLOT_LIVE && cur->v.ts >= w->ts_min && cur->v.ts <= w->ts_max) {
            int r = fn(&cur->v, ctx);
            if (r == ES_ABORT) return false;
            if (r == ES_ACCEPT) {
                accepted++;
                if (cur->v.ts < worst) worst = cur->v.ts;
                /* the early stop above looks at a block once: look again after a result */
                checked_block = UINT64_MAX;
            }
        }
    }
}

/* Walks every shard's chain c of key. Returns false when the visitor aborted. */
static bool walk_key(es_store *s, uint64_t low, es_key *key, int c, const es_walk *w,
                     es_visit_fn fn, void *ctx) {
    for (int sh = 0; sh < shards_of(c); sh++) {
        uint64_t head =
            atomic_load_explicit(head_of(s, key, c, (unsigned)sh), memory_order_acquire);
        if (!walk_one(s, low, head, c, w, fn, ctx)) return false;
    }
    return true;
}

void es_store_walk_chain(es_store *s, es_key *key, enum es_chain chain, const es_walk *w,
                         es_visit_fn fn, void *ctx) {
    uint64_t low = live_floor(s);
    if (chain != ES_CHAIN_MODULE) {
        walk_key(s, low, key, chain, w, fn, ctx);
        return;
    }
    /* A module's events are those of its {module, function} keys, which the mf table
     * lists under the module's entry; a key joins that list before any event can
     * carry it. Costs O(results + the module's functions x shards). */
    es_intern *mfs = &s->tables.mf;
    for (uint32_t m = es_intern_first(key); m; m = es_intern_next(&mfs->entries[m]))
        if (!walk_key(s, low, &mfs->entries[m], ES_CHAIN_MF, w, fn, ctx)) return;
}

/* How far ahead of the slot it reads a time walk asks for payloads. */
#define SCAN_AHEAD 8

static inline bool wanted_type(const uint64_t *types, uint32_t type_id) {
    return !types || (type_id < ES_TYPE_WORDS * 64 && (types[type_id / 64] >> (type_id % 64) & 1));
}

/* Asks for the payload of the event in id's slot, whatever that is now, when `types` (a
 * bitmap of type ids, NULL: any) has its type. A hint: the slot is read without
 * checking, and any position is inside the arena. */
static inline void prefetch_slot_payload(es_store *s, uint64_t id, const uint64_t *types) {
    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    uint32_t meta = atomic_load_explicit(&sl->meta, memory_order_relaxed);
    if (!wanted_type(types, (meta >> 16) & META_TYPE_MASK)) return;
    es_event_view v = {.off = atomic_load_explicit(&sl->off, memory_order_relaxed),
                       .len = atomic_load_explicit(&sl->len, memory_order_relaxed),
                       .flags = (uint8_t)(meta >> 8)};
    prefetch_payload(s, &v);
}

void es_store_prefetch(es_store *s, uint64_t id, bool payload) {
    if (id == 0) return;
    uint32_t stamp;
    if (payload)
        prefetch_slot_payload(s, id, NULL);
    else
        __builtin_prefetch(slot_of(s, id, &stamp));
}

/* Visits ids [from, to] of one block in the given direction. */
static int scan_ids(es_store *s, uint64_t from, uint64_t to, bool forward, const es_walk *w,
                    es_visit_fn fn, void *ctx, uint64_t *accepted, int64_t *best) {
    for (uint64_t i = 0; i <= to - from; i++) {
        uint64_t id = forward ? from + i : to - i;
        /* Slots in order are fetched ahead by the hardware; the payloads they point to
         * are asked for here. */
        if (w->payloads && id > SCAN_AHEAD)
            prefetch_slot_payload(s, forward ? id + SCAN_AHEAD : id - SCAN_AHEAD, w->types);
        es_event_view v;
        if (slot_read(s, id, &v, -1, NULL) != SLOT_LIVE) continue;
        if (v.ts < w->ts_min || v.ts > w->ts_max) continue;
        int r = fn(&v, ctx);
        if (r == ES_ABORT) return r;
        if (r == ES_ACCEPT) {
            ++*accepted;
            if (forward ? v.ts > *best : v.ts < *best) *best = v.ts;
        }
    }
    return ES_REJECT;
}

void es_store_walk_time(es_store *s, const es_walk *w, es_visit_fn fn, void *ctx) {
    uint64_t low = live_floor(s), high = es_store_high_id(s);
    if (low > high) return;
    uint64_t b_lo = block_of(low), b_hi = block_of(high);
    uint64_t cursor = atomic_load_explicit(&s->sum_cursor, memory_order_acquire);
    if (cursor > b_hi + 1) cursor = b_hi + 1;
    int64_t late = atomic_load_explicit(&s->lateness, memory_order_acquire);
    uint64_t accepted = 0;
    int64_t mn, mx, pmax;
    /* Ascending results walk forward, descending ones backward, so `want` can stop
     * the walk as soon as the rest cannot sort before what was found. */
    bool forward = !w->descending;
    if (forward) {
        int64_t best = INT64_MIN; /* greatest accepted timestamp */
        /* First summarized block whose running max reaches ts_min. */
        uint64_t lo = b_lo, hi = cursor > b_lo ? cursor : b_lo;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (block_summary(s, mid, &mn, &mx, &pmax) && pmax >= w->ts_min)
                hi = mid;
            else
                lo = mid + 1;
        }
        int64_t prev_pmax = INT64_MIN;
        if (lo > b_lo && block_summary(s, lo - 1, &mn, &mx, &pmax)) prev_pmax = pmax;
        for (uint64_t b = lo; b <= b_hi; b++) {
            bool summarized = b < cursor && block_summary(s, b, &mn, &mx, &pmax);
            if (summarized) {
                /* Later events have ts >= prev_pmax - lateness: past ts_max, or past
                 * every result we already need? Then only the unsummarized tail is left. */
                /* A saturated lateness means "unbounded": no floor. */
                int64_t floor = prev_pmax == INT64_MIN || late == INT64_MAX
                                    ? INT64_MIN
                                    : sat_sub(prev_pmax, late);
                if (floor > w->ts_max || (w->want && accepted >= w->want && floor > best)) {
                    b = cursor - 1;
                    prev_pmax = INT64_MIN;
                    continue;
                }
                prev_pmax = pmax;
                if (mn > w->ts_max || mx < w->ts_min) continue;
                if (w->skip_block && w->skip_block(b, w->skip_ctx)) continue;
            }
            uint64_t from = b * ES_BLOCK + 1, to = (b + 1) * ES_BLOCK;
            if (from < low) from = low;
            if (to > high) to = high;
            if (scan_ids(s, from, to, true, w, fn, ctx, &accepted, &best) == ES_ABORT) return;
        }
        /* Short of `want`: the events appended since the walk began follow, so that a
         * walk the ring overtook — its events pruned while it read them — still finds
         * the ones that replaced them. What the ring pruned meanwhile is passed over
         * (a walk stalled for laps of the ring starts again at the live floor), and at
         * most a ring's worth of ids is read this way: a writer faster than the walk
         * cannot keep it going. */
        for (uint64_t first = high + 1, left = s->cap; w->want && accepted < w->want && left;) {
            uint64_t now = es_store_high_id(s), floor = live_floor(s);
            if (first < floor) first = floor;
            if (now < first) return;
            if (now - first >= left) now = first + left - 1;
            for (uint64_t b = block_of(first); b <= block_of(now); b++) {
                uint64_t from = b * ES_BLOCK + 1 > first ? b * ES_BLOCK + 1 : first;
                uint64_t to = (b + 1) * ES_BLOCK < now ? (b + 1) * ES_BLOCK : now;
                if (scan_ids(s, from, to, true, w, fn, ctx, &accepted, &best) == ES_ABORT) return;
            }
            left -= now - first + 1;
            first = now + 1;
        }
    } else {
        int64_t best = INT64_MAX; /* smallest accepted timestamp */
        for (uint64_t b = b_hi + 1; b-- > b_lo;) {
            if (b < cursor && block_summary(s, b, &mn, &mx, &pmax)) {
                /* Every event up to this block has ts <= pmax. */
                if (pmax < w->ts_min || (w->want && accepted >= w->want && pmax < best)) return;
                if (mn > w->ts_max || mx < w->ts_min) continue;
                if (w->skip_block && w->skip_block(b, w->skip_ctx)) continue;
            }
            uint64_t from = b * ES_BLOCK + 1, to = (b + 1) * ES_BLOCK;
            if (from < low) from = low;
            if (to > high) to = high;
            if (scan_ids(s, from, to, false, w, fn, ctx, &accepted, &best) == ES_ABORT) return;
        }
    }
}
