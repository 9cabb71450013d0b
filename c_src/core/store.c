/*
 * store.c — the writer side of the store: creation, the payload arena, appends (slots,
 * index chains, the time blocks' summaries), maintenance and statistics. The reader
 * side is store_read.c. The contract, the reclamation scheme and the thread-safety
 * rules are in store.h; the layout in store_internal.h.
 */
#include "store_internal.h"
#include "clock.h"
#include "sample.h"
#include "vmem.h"
#include "zone.h"

#include <mimalloc.h>

static _Atomic unsigned thread_ordinals;
static _Thread_local int my_shard = -1;

/* The shard of the calling thread: threads are dealt round-robin. */
static inline unsigned shard_of_thread(void) {
    if (my_shard < 0) my_shard = (int)(atomic_fetch_add(&thread_ordinals, 1) % SHARDS);
    return (unsigned)my_shard;
}

unsigned es_thread_shard(void) {
    return shard_of_thread();
}

const es_store_option es_store_options[ES_OPTS] = {
    [ES_OPT_MAX_EVENTS] = {"max_events", 1000000, 16, UINT64_C(1) << 31},
    [ES_OPT_MAX_BYTES] = {"max_bytes", 256u << 20, 4096, UINT64_C(1) << 40},
    [ES_OPT_MAX_PAYLOAD_BYTES] = {"max_payload_bytes", 64u << 10, 0, UINT32_MAX},
    [ES_OPT_MAX_KEYS] = {"max_keys", 262144, 16, 1u << 26},
};

es_store_config es_store_defaults(void) {
    return (es_store_config){.max_events = es_store_options[ES_OPT_MAX_EVENTS].def,
                             .max_bytes = es_store_options[ES_OPT_MAX_BYTES].def,
                             .max_payload_bytes =
                                 (uint32_t)es_store_options[ES_OPT_MAX_PAYLOAD_BYTES].def,
                             .sample_rate = ES_DEFAULT_SAMPLE_RATE,
                             .max_keys = (uint32_t)es_store_options[ES_OPT_MAX_KEYS].def};
}

static bool in_range(int opt, uint64_t v) {
    return v >= es_store_options[opt].min && v <= es_store_options[opt].max;
}

es_store *es_store_new(const es_store_config *cfg) {
    if (!in_range(ES_OPT_MAX_EVENTS, cfg->max_events) ||
        !in_range(ES_OPT_MAX_BYTES, cfg->max_bytes) || !in_range(ES_OPT_MAX_KEYS, cfg->max_keys) ||
        cfg->max_payload_bytes > cfg->max_bytes / 4 ||
        !(cfg->sample_rate >= 0.0 && cfg->sample_rate <= 1.0))
        return NULL;
    es_store *s = mi_zalloc_aligned(sizeof *s, 64);
    if (!s) return NULL;
    s->cfg = *cfg;
    s->cap = cfg->max_events;
    s->arena_words = (cfg->max_bytes + 7) / 8;
    s->nblocks = s->cap / ES_BLOCK + 3;
    s->by_cap = divisor_of(s->cap);
    s->by_arena_words = divisor_of(s->arena_words);
    /* Large zeroed allocations come straight from the OS: pages are committed only
     * when first written, so a store costs memory in proportion to what it holds. */
    s->slots = es_vm_zalloc(s->cap * sizeof(es_slot));
    s->arena = es_vm_zalloc(s->arena_words * 8);
    s->blocks = es_vm_zalloc(s->nblocks * sizeof(es_block));
    s->clock = es_wallclock_new();
    bool ok = s->slots && s->arena && s->blocks && s->clock;
    uint32_t k = cfg->max_keys;
    ok = ok && es_intern_init(&s->tables.type, 4096) && es_intern_init(&s->tables.pid, k) &&
         es_intern_init(&s->tables.pair, k) && es_intern_init(&s->tables.module, k) &&
         es_intern_init(&s->tables.mf, k);
    if (ok) es_intern_group_by_aux(&s->tables.mf, &s->tables.module);
    es_intern *sharded[SHARDED_CHAINS] = {&s->tables.mf, &s->tables.type};
    for (int c = 0; ok && c < SHARDED_CHAINS; c++)
        for (int sh = 0; ok && sh < SHARDS; sh++)
            ok = (s->heads[c][sh] = es_vm_zalloc(heads_bytes(sharded[c])));
    for (int sh = 0; ok && sh < SHARDS; sh++)
        ok = (s->type_counts[sh] = es_vm_zalloc(heads_bytes(&s->tables.type)));

    if (!ok) {
        es_store_free(s);
        return NULL;
    }
    static _Atomic uint64_t serials = 1;
    s->serial = atomic_fetch_add(&serials, 1);
    atomic_init(&s->next_id, 1);
    atomic_init(&s->low_water, 1);
    atomic_init(&s->byte_floor, 0);
    atomic_init(&s->sample_threshold, es_sample_threshold(cfg->sample_rate));
    s->pm_running = INT64_MIN;
    return s;
}

void es_store_free(es_store *s) {
    if (!s) return;
    es_intern *sharded[SHARDED_CHAINS] = {&s->tables.mf, &s->tables.type};
    for (int c = 0; c < SHARDED_CHAINS; c++)
        for (int sh = 0; sh < SHARDS; sh++) es_vm_free(s->heads[c][sh], heads_bytes(sharded[c]));
    for (int sh = 0; sh < SHARDS; sh++)
        es_vm_free(s->type_counts[sh], heads_bytes(&s->tables.type));
    es_vm_free(s->slots, s->cap * sizeof(es_slot));
    es_vm_free(s->arena, s->arena_words * 8);
    es_vm_free(s->blocks, s->nblocks * sizeof(es_block));
    es_intern_destroy(&s->tables.type);
    es_intern_destroy(&s->tables.pid);
    es_intern_destroy(&s->tables.pair);
    es_intern_destroy(&s->tables.module);
    es_intern_destroy(&s->tables.mf);
    es_wallclock_free(s->clock);
    es_zones_free(atomic_load_explicit(&s->zones, memory_order_relaxed));
    mi_free(s);
}

es_zones *es_store_zones(es_store *s) {
    es_zones *z = atomic_load_explicit(&s->zones, memory_order_acquire);
    if (z) return z;
    es_zones *fresh = es_zones_new(s->nblocks);
    if (!fresh) return NULL;
    if (atomic_compare_exchange_strong_explicit(&s->zones, &z, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    es_zones_free(fresh); /* another query made them first */
    return z;
}

uint64_t es_store_serial(const es_store *s) {
    return s->serial;
}

const es_store_config *es_store_config_of(const es_store *s) {
    return &s->cfg;
}
es_tables *es_store_tables(es_store *s) {
    return &s->tables;
}

void es_store_set_sample_rate(es_store *s, double rate) {
    s->cfg.sample_rate = rate;
    atomic_store_explicit(&s->sample_threshold, es_sample_threshold(rate), memory_order_relaxed);
}

uint64_t es_store_high_id(es_store *s) {
    return atomic_load_explicit(&s->next_id, memory_order_acquire) - 1;
}

uint64_t es_store_low_id(es_store *s) {
    uint64_t next = atomic_load_explicit(&s->next_id, memory_order_acquire);
    uint64_t low = atomic_load_explicit(&s->low_water, memory_order_acquire);
    if (next > s->cap && next - s->cap > low) low = next - s->cap;
    return low;
}

/* ---- payload arena --------------------------------------------------------------- */

static inline uint64_t mix_word(uint64_t h, uint64_t w) {
    h ^= w * 0x87c37b91114253d5ULL;
    h = (h << 31) | (h >> 33);
    return h * 0x4cf5ad432745937fULL;
}

static inline uint32_t finish_csum(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
    return (uint32_t)h;
}

/* The checksum of (id, bytes) runs in two lanes, words 0, 2, 4, ... and 1, 3, 5, ...,
 * so that the two multiply chains overlap instead of one chain as long as the payload. */
typedef struct csum_lanes {
    uint64_t h[2];
} csum_lanes;

static inline csum_lanes csum_start(uint64_t id, uint32_t len) {
    return (csum_lanes){{mix_word(id, len), id ^ len}};
}

static inline uint32_t csum_end(csum_lanes c) {
    return finish_csum(mix_word(c.h[0], c.h[1]));
}

/* The first n (< 8) bytes of p in a zero-padded word; fixed-size copies only, so the
 * compiler inlines them (a variable-length memcpy is a libc call per word). */
static inline uint64_t tail_word(const uint8_t *p, uint32_t n) {
    uint8_t b[8] = {0};
    for (uint32_t i = 0; i < n; i++) b[i] = p[i];
    uint64_t w;
    memcpy(&w, b, 8);
    return w;
}

/* Copies len bytes into the arena at logical offset off; returns their checksum. */
static uint32_t arena_write(es_store *s, uint64_t off, uint64_t id, const uint8_t *src,
                            uint32_t len) {
    csum_lanes c = csum_start(id, len);
    uint64_t w = arena_word(s, off), word;
    uint32_t i = 0, words = len / 8;
    for (; i < words; i++) {
        memcpy(&word, src + (size_t)i * 8, 8);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        atomic_store_explicit(&s->arena[w], word, memory_order_relaxed);
        if (++w == s->arena_words) w = 0;
    }
    if (len % 8) {
        word = tail_word(src + (size_t)i * 8, len % 8);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        atomic_store_explicit(&s->arena[w], word, memory_order_relaxed);
    }
    return csum_end(c);
}

bool es_store_payload(es_store *s, const es_event_view *v, uint8_t *buf) {
    if (v->flags & ES_F_TRUNCATED) return true;
    csum_lanes c = csum_start(v->id, v->len);
    uint64_t w = arena_word(s, v->off), word;
    uint32_t i = 0, words = v->len / 8;
    for (; i < words; i++) {
        word = atomic_load_explicit(&s->arena[w], memory_order_relaxed);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        memcpy(buf + (size_t)i * 8, &word, 8);
        if (++w == s->arena_words) w = 0;
    }
    if (v->len % 8) {
        word = atomic_load_explicit(&s->arena[w], memory_order_relaxed);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
        uint8_t b[8];
        memcpy(b, &word, 8);
        for (uint32_t k = 0; k < v->len % 8; k++) buf[(size_t)i * 8 + k] = b[k];
    }
    atomic_thread_fence(memory_order_acquire);
    return arena_intact(s, v->off) && csum_end(c) == v->csum;
}

bool es_store_payload_verify(es_store *s, const es_event_view *v, const uint8_t *copy) {
    if (v->flags & ES_F_TRUNCATED) return true;
    csum_lanes c = csum_start(v->id, v->len);
    uint32_t words = (v->len + 7) / 8;
    for (uint32_t i = 0; i < words; i++) {
        uint64_t word;
        memcpy(&word, copy + (size_t)i * 8, 8);
        c.h[i & 1] = mix_word(c.h[i & 1], word);
    }
    atomic_thread_fence(memory_order_acquire);
    return arena_intact(s, v->off) && csum_end(c) == v->csum;
}

bool es_store_payload_fast(es_store *s, const es_event_view *v, uint8_t *buf) {
    if (v->flags & ES_F_TRUNCATED) return true;
    uint64_t w = arena_word(s, v->off), word;
    uint32_t i = 0, words = (v->len + 7) / 8;
    /* Whole words, the last one too: buf has room for them (callers size it so). */
    if (w + words <= s->arena_words) {
        const _Atomic uint64_t *src = s->arena + w; /* loaded once, not per word */
        for (; i < words; i++) {
            word = atomic_load_explicit(&src[i], memory_order_relaxed);
            memcpy(buf + (size_t)i * 8, &word, 8);
        }
    } else {
        for (; i < words; i++) {
            word = atomic_load_explicit(&s->arena[w], memory_order_relaxed);
            memcpy(buf + (size_t)i * 8, &word, 8);
            if (++w == s->arena_words) w = 0;
        }
    }
    atomic_thread_fence(memory_order_acquire);
    return arena_intact(s, v->off);
}

/* Builds under ThreadSanitizer copy instead of reading in place (store.h). */
#if defined(__SANITIZE_THREAD__)
#define READ_IN_PLACE 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define READ_IN_PLACE 0
#endif
#endif
#ifndef READ_IN_PLACE
#define READ_IN_PLACE 1
#endif

const uint8_t *es_store_payload_at(es_store *s, const es_event_view *v) {
    if (!READ_IN_PLACE || (v->flags & ES_F_TRUNCATED) || v->len == 0) return NULL;
    uint64_t w = arena_word(s, v->off);
    if (w + (v->len + 7) / 8 > s->arena_words) return NULL;
    return (const uint8_t *)(s->arena + w);
}

bool es_store_payload_held(es_store *s, const es_event_view *v) {
    atomic_thread_fence(memory_order_acquire);
    return arena_intact(s, v->off);
}

/* ---- append ---------------------------------------------------------------------- */

static inline int32_t link_to(uint64_t id, uint64_t prev) {
    if (prev == 0) return LINK_NONE;
    int64_t d = (int64_t)(id - prev);
    if (d == 0 || d >= INT32_MAX || d <= -INT32_MAX) return LINK_NONE;
    return (int32_t)d;
}

bool es_store_keep(es_store *s, uint64_t threshold) {
    uint64_t own = atomic_load_explicit(&s->sample_threshold, memory_order_relaxed);
    if (es_sample_keep(own < threshold ? own : threshold)) return true;
    atomic_fetch_add_explicit(&s->shard_stats[shard_of_thread()].sampled_out, 1,
                              memory_order_relaxed);
    return false;
}

/* After a writer's bytes are in the arena: if the arena lapped them before they were
 * (the writer stalled for a whole lap between reserving and writing), they may have
 * overwritten newer events' bytes, reserved up to a lap after them. Those events, and
 * every older one, count as pruned from then on (byte_floor), so readers and statistics
 * agree on which events are live; the checksum already kept readers from the spoiled
 * bytes themselves. The arena's stores must be visible before the cursor is read: on
 * x86-64 the slot's CAS before the call (`ordered`) is a locked instruction, which
 * orders them; otherwise a full fence does. */
static void late_bytes(es_store *s, uint64_t off, uint32_t len, bool ordered) {
#if defined(__x86_64__) || defined(__i386__)
    if (!ordered)
#endif
        atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->arena_cursor, memory_order_relaxed) <= off + s->arena_words * 8)
        return;
    uint64_t floor = off + (((uint64_t)len + 7) & ~7ull) + s->arena_words * 8;
    uint64_t seen = atomic_load_explicit(&s->byte_floor, memory_order_relaxed);
    while (seen < floor &&
           !atomic_compare_exchange_weak_explicit(&s->byte_floor, &seen, floor,
                                                  memory_order_release, memory_order_relaxed)) {
    }
}

uint64_t es_store_append(es_store *s, const es_event_in *ev) {
    uint8_t flags = ev->flags;
    unsigned shard = shard_of_thread();
    es_shard_stats *stats = &s->shard_stats[shard];
    if (!(flags & ES_F_CRITICAL) && !ev->sampled && !es_store_keep(s, ES_SAMPLE_ALL)) return 0;
    /* The counters' line is most likely in another producer's cache: ask for it now,
     * so that its trip overlaps the clock read below rather than stalling the add. */
    __builtin_prefetch(&s->next_id, 1, 3);
    int64_t ts = ev->ts == ES_TS_NOW ? es_clock_now() : ev->ts;
    uint32_t len = ev->payload_len;
    if (len > s->cfg.max_payload_bytes) {
        flags |= ES_F_TRUNCATED;
        atomic_fetch_add_explicit(&stats->truncated, 1, memory_order_relaxed);
    }
    uint32_t stored_len = (flags & ES_F_TRUNCATED) ? 0 : len;

    /* The id, then the payload's bytes, back to back from two counters on one line: an
     * append moves that line once, and payload offsets follow ids almost exactly (byte
     * pruning stays oldest-first). The bytes are written at once: the longer a writer
     * holds bytes it has not written, the likelier the arena comes round while it waits
     * (preempted, or waiting for its slot) and its late write spoils newer events'
     * bytes. (Writing them last, after the locked instructions below, measured ~8 ns
     * less per append with two producers, and failed the byte-pruning stress test under
     * load.) An append dropped below leaves its bytes to nobody. Release: the cursor's
     * bump is visible before any byte we write (readers check it after copying). */
    uint64_t id = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_acq_rel);
    uint64_t off = atomic_fetch_add_explicit(&s->arena_cursor, ((uint64_t)stored_len + 7) & ~7ull,
                                             memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    uint32_t csum = arena_write(s, off, id, ev->payload, stored_len);

    uint32_t stamp;
    es_slot *sl = slot_of(s, id, &stamp);
    for (unsigned spins = 0;;) {
        uint32_t seen = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if (seen != 0 && lap_diff(seen, stamp) > 0) {
            /* a whole lap passed us by: the event is already pruned */
            if (stored_len) late_bytes(s, off, stored_len, false);
            atomic_fetch_add_explicit(&stats->dropped, 1, memory_order_relaxed);
            return 0;
        }
        if (seen & STAMP_BUSY) { /* the previous lap's writer is still here */
            spin_wait(&spins);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&sl->seq, &seen, stamp | STAMP_BUSY,
                                                  memory_order_acquire, memory_order_relaxed))
            break;
    }
    if (stored_len) late_bytes(s, off, stored_len, true);
    atomic_thread_fence(memory_order_release);
    for (int l = 0; l < SLOT_LINKS; l++)
        atomic_store_explicit(&sl->link[l], LINK_UNSET, memory_order_relaxed);

    atomic_store_explicit(&sl->ts, ts, memory_order_relaxed);
    atomic_store_explicit(&sl->off, off, memory_order_relaxed);
    atomic_store_explicit(&sl->len, flags & ES_F_TRUNCATED ? len : stored_len,
                          memory_order_relaxed);
    atomic_store_explicit(&sl->csum, csum, memory_order_relaxed);
    uint32_t type_id = ev->type ? ev->type->id : 0;
    bool hashed = ev->hash && !ev->peer;
    atomic_store_explicit(
        &sl->meta, (hashed ? META_HASHED : 0) | type_id << 16 | (uint32_t)flags << 8 | ev->arity,
        memory_order_relaxed);
    atomic_store_explicit(&sl->actor, ev->actor ? ev->actor->id : 0, memory_order_relaxed);
    atomic_store_explicit(&sl->peer,
                          hashed     ? (uint32_t)ev->hash
                          : ev->peer ? ev->peer->id
                                     : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&sl->mf, ev->mf ? ev->mf->id : 0, memory_order_relaxed);

    /* ev->module is implied by ev->mf: the module chain is its mf chains. */
    es_key *const keys[SLOT_LINKS] = {ev->actor, ev->peer, ev->pair, ev->mf, ev->type};
    static const int chain_of_link[SLOT_LINKS] = {ES_CHAIN_ACTOR, ES_CHAIN_PEER, ES_CHAIN_PAIR,
                                                  ES_CHAIN_MF, ES_CHAIN_TYPE};
    for (int l = 0; l < SLOT_LINKS; l++) {
        int32_t link = LINK_NONE;
        if (keys[l])
            link =
                link_to(id, atomic_exchange_explicit(head_of(s, keys[l], chain_of_link[l], shard),
                                                     id, memory_order_acq_rel));
        else if (l == PAIR_LINK && hashed)
            link = (int32_t)(uint32_t)(ev->hash >> 32);
        atomic_store_explicit(&sl->link[l], link, memory_order_release);
    }
    if (ev->type)
        atomic_fetch_add_explicit(&s->type_counts[shard][type_id], 1, memory_order_relaxed);
    atomic_store_explicit(&sl->seq, stamp, memory_order_release);
    if (id % ES_BLOCK == 0) summarize(s, block_of(id));
    return id;
}

/* ---- maintenance ------------------------------------------------------------------ */

bool es_store_start_at(es_store *s, uint64_t id) {
    if (id == 0 || es_store_high_id(s) != 0) return false;
    atomic_store_explicit(&s->low_water, id, memory_order_release);
    atomic_store_explicit(&s->next_id, id, memory_order_release);
    atomic_store_explicit(&s->sum_cursor, block_of(id), memory_order_release);
    s->base = id - 1;
    return true;
}

void es_store_skip_to(es_store *s, uint64_t id) {
    for (uint64_t next = es_store_high_id(s) + 1; next < id; next = es_store_high_id(s) + 1) {
        /* An id that will never hold an event: committed as a hole, so the time block
         * it belongs to still completes. */
        uint64_t hole = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_acq_rel);
        uint32_t stamp;
        es_slot *sl = slot_of(s, hole, &stamp);
        atomic_store_explicit(&sl->meta, HOLE_META, memory_order_relaxed);
        atomic_store_explicit(&sl->off, atomic_load(&s->arena_cursor), memory_order_relaxed);
        atomic_store_explicit(&sl->seq, stamp, memory_order_release);
        atomic_fetch_add_explicit(&s->shard_stats[shard_of_thread()].dropped, 1,
                                  memory_order_relaxed);
        if (hole % ES_BLOCK == 0) summarize(s, block_of(hole));
    }
}

es_wallclock *es_store_wallclock(es_store *s) {
    return s->clock;
}

void es_store_clear(es_store *s) {
    uint64_t next = atomic_load_explicit(&s->next_id, memory_order_acquire);
    atomic_store_explicit(&s->low_water, next, memory_order_release);
}

void es_store_get_stats(es_store *s, es_store_stats *out) {
    memset(out, 0, sizeof *out);
    uint64_t low = es_store_low_id(s), high = es_store_high_id(s);
    uint64_t cursor = atomic_load_explicit(&s->arena_cursor, memory_order_relaxed);
    uint64_t arena_bytes = s->arena_words * 8;
    uint64_t first = live_floor(s);
    (void)low;
    for (int sh = 0; sh < SHARDS; sh++) {
        out->dropped += atomic_load_explicit(&s->shard_stats[sh].dropped, memory_order_relaxed);
        out->sampled_out +=
            atomic_load_explicit(&s->shard_stats[sh].sampled_out, memory_order_relaxed);
        out->truncated += atomic_load_explicit(&s->shard_stats[sh].truncated, memory_order_relaxed);
    }
    out->appended = high - s->base - s->holes - out->dropped;
    out->stored = first <= high ? high - first + 1 : 0;
    if (s->holes && first <= s->last_hole) /* holes in the live range: at most this many */
        out->stored -= s->holes < out->stored ? s->holes : out->stored;
    if (out->stored > out->appended) out->stored = out->appended;
    out->pruned = out->appended - out->stored;
    es_event_view v;
    if (out->stored && slot_read(s, first, &v, -1, NULL) != SLOT_GONE)
        out->bytes = cursor - v.off < arena_bytes ? cursor - v.off : arena_bytes;
    out->oldest_id = out->stored ? first : 0;
    out->newest_id = out->stored ? high : 0;
    out->max_lateness = atomic_load_explicit(&s->lateness, memory_order_relaxed);
    const es_intern *tables[] = {&s->tables.type, &s->tables.pid, &s->tables.pair,
                                 &s->tables.module, &s->tables.mf};
    out->memory = s->cap * sizeof(es_slot) + arena_bytes + s->nblocks * sizeof(es_block);
    for (int i = 0; i < 5; i++) out->memory += es_intern_reserved(tables[i]);
    out->memory += SHARDS * (heads_bytes(&s->tables.mf) + 2 * heads_bytes(&s->tables.type));
    out->memory += es_zones_bytes(atomic_load_explicit(&s->zones, memory_order_acquire));
}

uint64_t es_store_type_count(es_store *s, uint32_t type_id) {
    uint64_t n = 0;
    if (type_id > s->tables.type.capacity) return 0;
    for (int sh = 0; sh < SHARDS; sh++)
        n += atomic_load_explicit(&s->type_counts[sh][type_id], memory_order_relaxed);
    return n;
}
