/*
 * zone.c — per-block summaries of payload fields: built on demand by the queries that
 * need them, kept for the block's life, and used to pass over blocks. See zone.h for
 * the contract and the thread-safety.
 */
#include "zone.h"

#include "vmem.h"

#include <mimalloc.h>
#include <string.h>

enum { F_PRESENT = 1, F_INTS = 2, F_FLOATS = 4 };

/* One summary, as a query uses it. */
typedef struct zsum {
    uint64_t field;
    uint16_t type;
    uint8_t flags;
    uint64_t bloom[2], prefix[2];
    int64_t imin, imax;
    double fmin, fmax;
} zsum;

/* As a block keeps it: words of relaxed atomics under the block's seqlock. */
enum {
    W_FIELD,
    W_META,
    W_BLOOM,
    W_PREFIX = W_BLOOM + 2,
    W_IMIN = W_PREFIX + 2,
    W_IMAX,
    W_FMIN,
    W_FMAX,
    WORDS
};

typedef struct zone_block {
    _Atomic uint64_t version; /* even: stable; odd: being written */
    _Atomic uint64_t block;   /* block number + 1 that the entries describe; 0: none */
    _Atomic uint64_t n;       /* summaries ever added: the newest ES_ZONE_ENTRIES are kept */
    _Atomic uint64_t e[ES_ZONE_ENTRIES][WORDS];
} zone_block;

struct es_zones {
    uint64_t blocks;
    zone_block *v;
};

es_zones *es_zones_new(uint64_t blocks) {
    es_zones *z = mi_zalloc(sizeof *z);
    if (!z) return NULL;
    z->blocks = blocks;
    /* Zero pages cost nothing until a block's summaries are first written. */
    z->v = es_vm_zalloc(blocks * sizeof *z->v);
    if (!z->v) {
        mi_free(z);
        return NULL;
    }
    return z;
}

void es_zones_free(es_zones *z) {
    if (!z) return;
    es_vm_free(z->v, z->blocks * sizeof *z->v);
    mi_free(z);
}

size_t es_zones_bytes(const es_zones *z) {
    return z ? sizeof *z + z->blocks * sizeof *z->v : 0;
}

bool es_zone_usable(const es_pred *p) {
    if (p->negate || p->depth) return false;
    return p->op != ES_OP_PREFIX || (p->nvals == 1 && p->lens[0] >= ES_ZONE_PREFIX);
}

/* ---- Bloom filters ---------------------------------------------------------------- */

/* Two bits of 128 per value: with the few distinct values of a field such as a status
 * or a method in a block, a value that is not there passes about 1% of the time. */
static inline void bloom_add(uint64_t bloom[2], uint64_t h) {
    unsigned a = h & 127, b = (h >> 7) & 127;
    bloom[a >> 6] |= UINT64_C(1) << (a & 63);
    bloom[b >> 6] |= UINT64_C(1) << (b & 63);
}

static inline bool bloom_may(const uint64_t bloom[2], uint64_t h) {
    unsigned a = h & 127, b = (h >> 7) & 127;
    return (bloom[a >> 6] >> (a & 63) & 1) && (bloom[b >> 6] >> (b & 63) & 1);
}

/* ---- what a summary rules out ------------------------------------------------------ */

static bool num_range_may(const es_pred *p, es_pl_num lo, es_pl_num hi) {
    switch (p->op) {
    case ES_OP_LT:
        return es_pl_num_cmp(&lo, &p->a) < 0;
    case ES_OP_LE:
        return es_pl_num_cmp(&lo, &p->a) <= 0;
    case ES_OP_GT:
        return es_pl_num_cmp(&hi, &p->a) > 0;
    case ES_OP_GE:
        return es_pl_num_cmp(&hi, &p->a) >= 0;
    case ES_OP_RANGE:
        return es_pl_num_cmp(&hi, &p->a) >= 0 && es_pl_num_cmp(&lo, &p->b) <= 0;
    default:
        return true;
    }
}

/* Whether some event the summary describes may pass the (usable) predicate. */
static bool may_pass(const es_pred *p, const zsum *z) {
    if (!(z->flags & F_PRESENT)) return false; /* nobody has the field */
    switch (p->op) {
    case ES_OP_EQ:
        for (uint32_t i = 0; i < p->nvals; i++)
            if (bloom_may(z->bloom, es_pl_hash(p->vals[i], p->lens[i]))) return true;
        return false;
    case ES_OP_PREFIX:
        return bloom_may(z->prefix, es_pl_hash(p->vals[0], ES_ZONE_PREFIX));
    default:
        return ((z->flags & F_INTS) &&
                num_range_may(p, (es_pl_num){.i = z->imin}, (es_pl_num){.i = z->imax})) ||
               ((z->flags & F_FLOATS) &&
                num_range_may(p, (es_pl_num){.is_float = true, .d = z->fmin},
                              (es_pl_num){.is_float = true, .d = z->fmax}));
    }
}

/* ---- building ---------------------------------------------------------------------- */

static void add_value(zsum *z, es_pl_span v) {
    z->flags |= F_PRESENT;
    bloom_add(z->bloom, es_pl_hash(v.p, v.len));
    const uint8_t *data;
    size_t len;
    es_pl_num x;
    if (es_pl_binary(v, &data, &len)) {
        if (len >= ES_ZONE_PREFIX) bloom_add(z->prefix, es_pl_hash(data, ES_ZONE_PREFIX));
    } else if (es_pl_number(v, &x)) {
        if (x.is_float) {
            if (!(z->flags & F_FLOATS) || x.d < z->fmin) z->fmin = x.d;
            if (!(z->flags & F_FLOATS) || x.d > z->fmax) z->fmax = x.d;
            z->flags |= F_FLOATS;
        } else {
            if (!(z->flags & F_INTS) || x.i < z->imin) z->imin = x.i;
            if (!(z->flags & F_INTS) || x.i > z->imax) z->imax = x.i;
            z->flags |= F_INTS;
        }
    }
}

#define BUILD_AHEAD 8 /* ids ahead of the one read whose payload is asked for */

/* Fills sums[0..n) (field and type set, the rest zero) from block b's live events, in one
 * pass. Payloads are read where they lie (a racing overwrite can only add values that
 * were never there: the summary stays an over-approximation) or copied when they wrap
 * round the arena. False without memory. */
static bool build(es_store *s, uint64_t b, zsum *sums, size_t n, uint64_t *examined) {
    uint8_t *buf = NULL, hints[2 * ES_ZONE_ENTRIES] = {0};
    size_t cap = 0;
    uint64_t lo = b * ES_BLOCK + 1;
    bool ok = true;
    for (uint64_t id = lo; id < lo + ES_BLOCK && ok; id++) {
        /* Slots in order come ahead by themselves; their payloads are asked for. */
        es_store_prefetch(s, id + BUILD_AHEAD, true);
        es_event_view v;
        if (!es_store_peek(s, id, &v)) continue;
        ++*examined;
        bool wanted = false;
        for (size_t i = 0; i < n && !wanted; i++)
            wanted = sums[i].type == v.type_id || sums[i].type == ES_ZONE_ANY_TYPE;
        if (!wanted || (v.flags & ES_F_TRUNCATED) || v.len == 0) continue;
        const uint8_t *p = es_store_payload_at(s, &v);
        if (!p) {
            size_t need = ((size_t)v.len + 7) & ~(size_t)7;
            if (cap < need) {
                uint8_t *nb = mi_realloc(buf, need);
                if (!nb) {
                    ok = false;
                    break;
                }
                buf = nb, cap = need;
            }
            if (!es_store_payload_fast(s, &v, buf)) continue; /* pruned meanwhile */
            p = buf;
        }
        uint32_t fields;
        size_t at;
        const uint8_t *index;
        if (!es_pl_map(p, v.len, &fields, &at, &index)) continue;
        for (size_t i = 0; i < n; i++) {
            es_pl_span value;
            if (sums[i].type != v.type_id && sums[i].type != ES_ZONE_ANY_TYPE) continue;
            bool found = index ? es_pl_table_field(p, v.len, index, fields, sums[i].field,
                                                   &hints[i], &value) == ES_PL_FOUND
                               : es_pl_field(p, v.len, sums[i].field, &value);
            if (found) add_value(&sums[i], value);
        }
    }
    mi_free(buf);
    return ok;
}

/* ---- a block's stored summaries ------------------------------------------------------ */

static void load_sum(_Atomic uint64_t *w, zsum *z) {
    uint64_t x[WORDS];
    for (int i = 0; i < WORDS; i++) x[i] = atomic_load_explicit(&w[i], memory_order_relaxed);
    z->field = x[W_FIELD];
    z->type = (uint16_t)x[W_META];
    z->flags = (uint8_t)(x[W_META] >> 16);
    memcpy(z->bloom, &x[W_BLOOM], sizeof z->bloom);
    memcpy(z->prefix, &x[W_PREFIX], sizeof z->prefix);
    z->imin = (int64_t)x[W_IMIN], z->imax = (int64_t)x[W_IMAX];
    memcpy(&z->fmin, &x[W_FMIN], 8), memcpy(&z->fmax, &x[W_FMAX], 8);
}

static void store_sum(_Atomic uint64_t *w, const zsum *z) {
    uint64_t x[WORDS];
    x[W_FIELD] = z->field;
    x[W_META] = z->type | (uint64_t)z->flags << 16;
    memcpy(&x[W_BLOOM], z->bloom, sizeof z->bloom);
    memcpy(&x[W_PREFIX], z->prefix, sizeof z->prefix);
    x[W_IMIN] = (uint64_t)z->imin, x[W_IMAX] = (uint64_t)z->imax;
    memcpy(&x[W_FMIN], &z->fmin, 8), memcpy(&x[W_FMAX], &z->fmax, 8);
    for (int i = 0; i < WORDS; i++) atomic_store_explicit(&w[i], x[i], memory_order_relaxed);
}

/* Copies block b's summaries; 0 when it has none (or they changed meanwhile). */
static size_t load_block(zone_block *zb, uint64_t b, zsum *out) {
    uint64_t v1 = atomic_load_explicit(&zb->version, memory_order_acquire);
    if ((v1 & 1) || atomic_load_explicit(&zb->block, memory_order_relaxed) != b + 1) return 0;
    size_t n = atomic_load_explicit(&zb->n, memory_order_relaxed);
    if (n > ES_ZONE_ENTRIES) n = ES_ZONE_ENTRIES;
    for (size_t i = 0; i < n; i++) load_sum(zb->e[i], &out[i]);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&zb->version, memory_order_relaxed) == v1 ? n : 0;
}

/* Adds summaries to block b's — once its ES_ZONE_ENTRIES places are taken, in place of
 * the oldest — unless another thread is at it (then gives up). */
static void keep(zone_block *zb, uint64_t b, const zsum *add, size_t n) {
    uint64_t v = atomic_load_explicit(&zb->version, memory_order_relaxed);
    if ((v & 1) || !atomic_compare_exchange_strong_explicit(
                       &zb->version, &v, v + 1, memory_order_acq_rel, memory_order_relaxed))
        return;
    size_t have = atomic_load_explicit(&zb->n, memory_order_relaxed);
    if (atomic_load_explicit(&zb->block, memory_order_relaxed) != b + 1) {
        atomic_store_explicit(&zb->block, b + 1, memory_order_relaxed);
        have = 0; /* the place held an older block's */
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < have && j < ES_ZONE_ENTRIES && !dup; j++) {
            uint64_t meta = atomic_load_explicit(&zb->e[j][W_META], memory_order_relaxed);
            dup = atomic_load_explicit(&zb->e[j][W_FIELD], memory_order_relaxed) == add[i].field &&
                  (uint16_t)meta == add[i].type;
        }
        if (!dup) store_sum(zb->e[have++ % ES_ZONE_ENTRIES], &add[i]);
    }
    atomic_store_explicit(&zb->n, have, memory_order_relaxed);
    atomic_store_explicit(&zb->version, v + 2, memory_order_release);
}

/* ---- the question ---------------------------------------------------------------------- */

static const zsum *find(const zsum *v, size_t n, uint64_t field, uint16_t type) {
    for (size_t i = 0; i < n; i++)
        if (v[i].field == field && v[i].type == type) return &v[i];
    return NULL;
}

bool es_zone_skip(es_store *s, uint64_t block, const uint16_t *types, uint32_t ntypes,
                  const es_pred *preds, size_t npreds, uint64_t *examined) {
    static const uint16_t any = ES_ZONE_ANY_TYPE;
    if (ntypes == 0) types = &any, ntypes = 1;
    /* The pairs of field and type the decision reads. */
    uint64_t fields[ES_ZONE_ENTRIES];
    size_t nfields = 0;
    for (size_t i = 0; i < npreds; i++) {
        if (!es_zone_usable(&preds[i])) continue;
        bool seen = false;
        for (size_t j = 0; j < nfields && !seen; j++) seen = fields[j] == preds[i].field;
        if (seen) continue;
        if (nfields == ES_ZONE_ENTRIES) return false;
        fields[nfields++] = preds[i].field;
    }
    if (nfields == 0 || nfields * ntypes > ES_ZONE_ENTRIES) return false;
    es_zones *z = es_store_zones(s);
    if (!z) return false;
    zone_block *zb = &z->v[block % z->blocks];

    zsum have[2 * ES_ZONE_ENTRIES], *fresh;
    size_t n = load_block(zb, block, have), nfresh = 0;
    fresh = have + n;
    for (size_t f = 0; f < nfields; f++)
        for (uint32_t t = 0; t < ntypes; t++)
            if (!find(have, n, fields[f], types[t]))
                fresh[nfresh++] = (zsum){.field = fields[f], .type = types[t]};
    if (nfresh) {
        if (!build(s, block, fresh, nfresh, examined)) return false;
        keep(zb, block, fresh, nfresh);
        n += nfresh;
    }

    /* Skipped when, for every type, some predicate rules the block out. */
    for (uint32_t t = 0; t < ntypes; t++) {
        bool ruled_out = false;
        for (size_t i = 0; i < npreds && !ruled_out; i++)
            if (es_zone_usable(&preds[i])) {
                const zsum *zs = find(have, n, preds[i].field, types[t]);
                ruled_out = zs && !may_pass(&preds[i], zs);
            }
        if (!ruled_out) return false;
    }
    return true;
}
