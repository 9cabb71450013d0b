/*
 * persist.c — dump and load of stores, format in docs/FORMAT.md. See persist.h.
 */
#include "persist.h"
#include "codec.h"
#include "nif.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

static const uint8_t FILE_MAGIC[8] = {'E', 'S', 'C', 'O', 'P', 'E', 0, 1};
/* 2: each segment also holds its clock record (the time offsets its events read). Files
 * of version 1 load too. */
#define VERSION 2
#define OLDEST_VERSION 1
#define HEADER_LEN 64        /* segment header, its own hash included */
#define SEGMENTS_PER_CALL 16 /* a load call's share, so long loads can show progress */

typedef struct buf {
    uint8_t *data;
    size_t len, cap;
} buf;

static bool put(buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 16;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t rd32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static ERL_NIF_TERM error_text(ErlNifEnv *env, const char *why) {
    ERL_NIF_TERM text;
    memcpy(enif_make_new_binary(env, strlen(why), &text), why, strlen(why));
    return enif_make_tuple2(env, es_atom.error, text);
}

static bool path_of(ErlNifEnv *env, ERL_NIF_TERM term, char *out, size_t cap) {
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, term, &bin) || bin.size == 0 || bin.size >= cap ||
        memchr(bin.data, 0, bin.size))
        return false;
    memcpy(out, bin.data, bin.size);
    out[bin.size] = 0;
    return true;
}

/* A segment size (uncompressed bytes) within the bounds of persist.h. */
#define SEGMENT_BYTES_ERROR "segment_bytes must be an integer from 4096 to 268435456"

static bool segment_bytes_of(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifUInt64 *out) {
    return enif_get_uint64(env, term, out) && *out >= ES_SEGMENT_MIN && *out <= ES_SEGMENT_MAX;
}

/* ---- dump ------------------------------------------------------------------------ */

typedef struct segment {
    buf raw;
    uint32_t count;
    uint64_t first, last;
    int64_t min_ts, max_ts;
} segment;

/* Appends the segment's clock record — {:clock, [{timestamp, offset}]}: the time offsets
 * its events' timestamps read (wallclock.h) — when the store knows any. */
static bool put_clock(ErlNifEnv *env, es_store *s, segment *sg) {
    ERL_NIF_TERM list;
    if (!es_wall_offsets_term(env, s, sg->min_ts, sg->max_ts, &list)) return false;
    if (enif_is_empty_list(env, list)) return true;
    ErlNifBinary bin;
    if (!enif_term_to_binary(env, enif_make_tuple2(env, es_atom.clock, list), &bin)) return false;
    uint8_t len[4];
    le32(len, (uint32_t)bin.size);
    bool ok = put(&sg->raw, len, 4) && put(&sg->raw, bin.data, bin.size);
    enif_release_binary(&bin);
    return ok;
}

static bool flush(ErlNifEnv *env, es_store *s, FILE *f, segment *sg, uint64_t *bytes_out) {
    if (sg->count == 0) return true;
    if (!put_clock(env, s, sg)) return false;
    size_t bound = ZSTD_compressBound(sg->raw.len);
    uint8_t *z = malloc(bound);
    if (!z) return false;
    ZSTD_CCtx *cx = ZSTD_createCCtx();
    size_t n = cx ? ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 3) : 1;
    if (cx && !ZSTD_isError(n)) ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
    n = cx ? ZSTD_compress2(cx, z, bound, sg->raw.data, sg->raw.len) : 0;
    ZSTD_freeCCtx(cx);
    if (!cx || ZSTD_isError(n)) {
        free(z);
        return false;
    }
    uint8_t h[HEADER_LEN];
    memcpy(h, "SEG1", 4);
    le32(h + 4, sg->count);
    le64(h + 8, sg->first);
    le64(h + 16, sg->last);
    le64(h + 24, (uint64_t)sg->min_ts);
    le64(h + 32, (uint64_t)sg->max_ts);
    le32(h + 40, (uint32_t)sg->raw.len);
    le32(h + 44, (uint32_t)n);
    le64(h + 48, es_hash_bytes(z, n, 0));
    le64(h + 56, es_hash_bytes(h, 56, 0));
    bool ok = fwrite(h, 1, HEADER_LEN, f) == HEADER_LEN && fwrite(z, 1, n, f) == n;
    free(z);
    *bytes_out += HEADER_LEN + n;
    sg->raw.len = 0;
    sg->count = 0;
    return ok;
}

static int cmp_id(const void *a, const void *b) {
    const es_hit *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* What a dump wrote. */
typedef struct dump_result {
    uint64_t events, written, raw, last_id;
} dump_result;

/* Writes the events of `h` (sorted here) to `path`, truncating it or appending segments
 * to it; false with *why when the file could not be written. */
static bool dump_hits(es_store *s, const char *path, es_hits *h, uint64_t after_id, bool append,
                      uint64_t segment_raw, dump_result *r, const char **why) {
    if (h->n) qsort(h->v, h->n, sizeof *h->v, cmp_id); /* h->v is NULL when nothing matched */
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "ab") : NULL;
    if (!out) {
        *why = strerror(errno);
        if (fd >= 0) close(fd);
        return false;
    }
    /* Appending to a file that has its header already: segments only. */
    bool fresh = lseek(fd, 0, SEEK_END) == 0;
    uint8_t fh[16] = {0};
    memcpy(fh, FILE_MAGIC, 8);
    le32(fh + 8, VERSION);
    bool ok = !fresh || fwrite(fh, 1, 16, out) == 16;
    segment sg = {0};
    *r = (dump_result){.written = fresh ? 16 : 0, .last_id = after_id};
    /* Events are built in a scratch environment cleared as we go: the dump's memory
     * stays that of a few events, not of the whole store. */
    ErlNifEnv *scratch = enif_alloc_env();
    ok = ok && scratch;
    for (size_t i = 0; ok && i < h->n; i++) {
        ERL_NIF_TERM ev;
        ErlNifBinary bin;
        if (i % 256 == 0) enif_clear_env(scratch);
        if (!es_codec_event(scratch, s, h->v[i].id, 0, &ev)) continue; /* pruned meanwhile */
        if (!enif_term_to_binary(scratch, ev, &bin)) continue;
        uint8_t len[4];
        le32(len, (uint32_t)bin.size);
        ok = put(&sg.raw, len, 4) && put(&sg.raw, bin.data, bin.size);
        r->raw += 4 + bin.size;
        enif_release_binary(&bin);
        if (sg.count == 0) sg.first = h->v[i].id, sg.min_ts = sg.max_ts = h->v[i].ts;
        sg.last = r->last_id = h->v[i].id;
        if (h->v[i].ts < sg.min_ts) sg.min_ts = h->v[i].ts;
        if (h->v[i].ts > sg.max_ts) sg.max_ts = h->v[i].ts;
        sg.count++;
        r->events++;
        if (ok && sg.raw.len >= segment_raw) ok = flush(scratch, s, out, &sg, &r->written);
    }
    ok = ok && flush(scratch, s, out, &sg, &r->written);
    if (scratch) enif_free_env(scratch);
    ok = fclose(out) == 0 && ok;
    free(sg.raw.data);
    if (!ok) *why = "the dump could not be written";
    return ok;
}

/* The live events after an id. */
static bool hits_after(es_store *s, uint64_t after_id, es_hits *h) {
    es_filter f;
    es_filter_init(&f);
    f.after_id = after_id;
    return es_query(s, &f, h) == ES_Q_OK;
}

/* ---- the last write on halt ------------------------------------------------------ */

/* Where each persisted store goes, so that erlang:halt/0,1 (which runs no terminate
 * callback) still writes its last events: the on-halt callback appends what came after
 * the last id written. `lock` guards the table (held briefly); a target's `write` lock
 * is held by an append dump to its file and by the halt write, so the callback waits
 * for a dump in flight and then writes only what came after it. A store's registration
 * goes when the store does (es_persist_forget from its destructor). */
#define HALT_TARGETS 16

static struct {
    es_store *store;
    char path[4096];
    uint64_t last_id, segment_raw;
    ErlNifMutex *write;
} halt_targets[HALT_TARGETS];
static ErlNifMutex *halt_lock;

bool es_persist_load(void) {
    if (!halt_lock) halt_lock = enif_mutex_create("elixir_scope_persist_halt");
    for (int i = 0; i < HALT_TARGETS; i++)
        if (!halt_targets[i].write)
            halt_targets[i].write = enif_mutex_create("elixir_scope_persist_write");
    for (int i = 0; i < HALT_TARGETS; i++)
        if (!halt_targets[i].write) return false;
    return halt_lock != NULL;
}

void es_persist_forget(es_store *s) {
    enif_mutex_lock(halt_lock);
    for (int i = 0; i < HALT_TARGETS; i++)
        if (halt_targets[i].store == s) halt_targets[i].store = NULL;
    enif_mutex_unlock(halt_lock);
}

/* The slot registered for (s, path), or -1. */
static int target_of(es_store *s, const char *path) {
    int slot = -1;
    enif_mutex_lock(halt_lock);
    for (int i = 0; i < HALT_TARGETS && slot < 0; i++)
        if (halt_targets[i].store == s && strcmp(halt_targets[i].path, path) == 0) slot = i;
    enif_mutex_unlock(halt_lock);
    return slot;
}

/* After an append of events up to last_id to slot's file. */
static void target_wrote(int slot, es_store *s, const char *path, uint64_t last_id) {
    enif_mutex_lock(halt_lock);
    if (halt_targets[slot].store == s && strcmp(halt_targets[slot].path, path) == 0 &&
        last_id > halt_targets[slot].last_id)
        halt_targets[slot].last_id = last_id;
    enif_mutex_unlock(halt_lock);
}

void es_persist_on_halt(void *priv) {
    (void)priv;
    for (int i = 0; i < HALT_TARGETS; i++) {
        enif_mutex_lock(halt_targets[i].write); /* a dump in flight finishes first */
        enif_mutex_lock(halt_lock);
        es_store *s = halt_targets[i].store;
        char path[sizeof halt_targets[i].path];
        memcpy(path, halt_targets[i].path, sizeof path);
        uint64_t last_id = halt_targets[i].last_id, segment_raw = halt_targets[i].segment_raw;
        enif_mutex_unlock(halt_lock);
        es_hits h = {0};
        dump_result r;
        const char *why;
        if (s && hits_after(s, last_id, &h) && h.n &&
            dump_hits(s, path, &h, last_id, true, segment_raw, &r, &why))
            target_wrote(i, s, path, r.last_id);
        es_hits_free(&h);
        enif_mutex_unlock(halt_targets[i].write);
    }
}

ERL_NIF_TERM es_nif_persist_on_halt(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    if (argv[1] == es_atom.nil) {
        es_persist_forget(s);
        return es_atom.ok;
    }
    char path[sizeof halt_targets[0].path];
    ErlNifUInt64 last_id, segment_raw;
    if (!path_of(env, argv[1], path, sizeof path))
        return es_raise_arg(env, "path must be a non-empty string or nil");
    if (!enif_get_uint64(env, argv[2], &last_id))
        return es_raise_arg(env, "last_id must be a non-negative integer");
    if (!segment_bytes_of(env, argv[3], &segment_raw))
        return es_raise_arg(env, SEGMENT_BYTES_ERROR);
    enif_mutex_lock(halt_lock);
    int slot = -1;
    for (int i = 0; i < HALT_TARGETS; i++) {
        if (halt_targets[i].store == s) {
            slot = i;
            break;
        }
        if (slot < 0 && !halt_targets[i].store) slot = i;
    }
    if (slot >= 0) {
        halt_targets[slot].store = s;
        memcpy(halt_targets[slot].path, path, sizeof path);
        halt_targets[slot].last_id = last_id;
        halt_targets[slot].segment_raw = segment_raw;
    }
    enif_mutex_unlock(halt_lock);
    return slot >= 0 ? es_atom.ok : error_text(env, "too many persisted stores (16)");
}

/* ---- the dump NIF ---------------------------------------------------------------- */

ERL_NIF_TERM es_nif_dump(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    char path[4096];
    if (!path_of(env, argv[1], path, sizeof path))
        return es_raise_arg(env, "path must be a non-empty string");
    /* The selection: every event after an id, or the events a selection names (a list of
     * ids, or a query spec: es_select_events). */
    ErlNifUInt64 after_id = 0;
    bool append = argv[3] == enif_make_atom(env, "append");
    /* Records per segment, by their uncompressed size: a damaged segment costs at most
     * this much, and a bigger one compresses a little better. */
    ErlNifUInt64 segment_raw;
    if (!segment_bytes_of(env, argv[4], &segment_raw))
        return es_raise_arg(env, SEGMENT_BYTES_ERROR);
    es_hits h = {0};
    if (enif_get_uint64(env, argv[2], &after_id)) {
        if (!hits_after(s, after_id, &h))
            return es_raise_arg(env, "out of memory reading the store");
    } else {
        ERL_NIF_TERM err;
        if (!es_select_events(env, s, argv[2], &h, &err)) return err;
    }
    /* An append to a file registered for the halt: under its write lock, and the
     * registration moves on to what it wrote. */
    int slot = append ? target_of(s, path) : -1;
    if (slot >= 0) enif_mutex_lock(halt_targets[slot].write);
    dump_result r;
    const char *why = NULL;
    bool ok = dump_hits(s, path, &h, after_id, append, segment_raw, &r, &why);
    if (slot >= 0) {
        if (ok) target_wrote(slot, s, path, r.last_id);
        enif_mutex_unlock(halt_targets[slot].write);
    }
    es_hits_free(&h);
    if (!ok) return error_text(env, why);
    ERL_NIF_TERM keys[] = {enif_make_atom(env, "events"), enif_make_atom(env, "bytes"),
                           enif_make_atom(env, "raw_bytes"), enif_make_atom(env, "last_id")};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, r.events), enif_make_uint64(env, r.written),
                           enif_make_uint64(env, r.raw), enif_make_uint64(env, r.last_id)};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, 4, &map);
    return enif_make_tuple2(env, es_atom.ok, map);
}

/* ---- load ------------------------------------------------------------------------ */

typedef struct load_state {
    ErlNifEnv *env;
    es_store *s;
    uint64_t events;
    int64_t min_ts, max_ts;
    bool started;
    ERL_NIF_TERM skipped; /* [{segment index, reason}] */
} load_state;

static void skip(load_state *ls, unsigned index, const char *why) {
    ERL_NIF_TERM entry =
        enif_make_tuple2(ls->env, enif_make_uint(ls->env, index), enif_make_atom(ls->env, why));
    ls->skipped = enif_make_list_cell(ls->env, entry, ls->skipped);
}

/* Notes the offsets of a clock record {:clock, [{timestamp, offset}]} in the store;
 * false when it is not one. */
static bool note_clock(ErlNifEnv *env, es_store *s, ERL_NIF_TERM t) {
    const ERL_NIF_TERM *el, *entry;
    int n;
    ERL_NIF_TERM head, list;
    if (!enif_get_tuple(env, t, &n, &el) || n != 2 || el[0] != es_atom.clock) return false;
    for (list = el[1]; enif_get_list_cell(env, list, &head, &list);) {
        ErlNifSInt64 ts, offset;
        if (!enif_get_tuple(env, head, &n, &entry) || n != 2 ||
            !enif_get_int64(env, entry[0], &ts) || !enif_get_int64(env, entry[1], &offset))
            return false;
        es_wallclock_note(es_store_wallclock(s), ts, offset);
    }
    return enif_is_empty_list(env, list);
}

/* Appends the records of one decompressed segment; false when a record is damaged. */
static bool load_records(load_state *ls, const uint8_t *p, size_t len) {
    ErlNifEnv *env = ls->env;
    for (size_t at = 0; at < len;) {
        if (len - at < 4) return false;
        uint32_t n = rd32(p + at);
        at += 4;
        if (n > len - at) return false;
        ERL_NIF_TERM ev, type, idt, rest;
        ErlNifUInt64 id;
        if (enif_binary_to_term(env, p + at, n, &ev, 0) != n) return false;
        if (!enif_is_map(env, ev)) { /* the segment's clock record (version 2) */
            at += n;
            if (!note_clock(env, ls->s, ev)) return false;
            continue;
        }
        if (!enif_get_map_value(env, ev, es_atom.type, &type) ||
            !enif_get_map_value(env, ev, es_atom.id, &idt) || !enif_get_uint64(env, idt, &id))
            return false;
        at += n;
        if (id <= es_store_high_id(ls->s)) continue; /* out of order: ids only grow */
        if (!ls->started) { /* an empty store takes the file's ids from its first one */
            es_store_start_at(ls->s, id);
            ls->started = true;
        }
        es_store_skip_to(ls->s, id);
        enif_make_map_remove(env, ev, es_atom.id, &rest);
        es_encoded e;
        if (es_codec_encode(env, ls->s, type, rest, &e)) return false;
        e.in.sampled = true;
        e.in.flags |= ES_F_CRITICAL; /* a dump is kept whole: no sampling on load */
        es_store_append(ls->s, &e.in);
        ls->events++;
        if (e.in.ts < ls->min_ts) ls->min_ts = e.in.ts;
        if (e.in.ts > ls->max_ts) ls->max_ts = e.in.ts;
    }
    return true;
}

ERL_NIF_TERM es_nif_load(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    char path[4096];
    if (!path_of(env, argv[1], path, sizeof path))
        return es_raise_arg(env, "path must be a non-empty string");
    /* Resumable: (offset, segment index) where the previous call stopped; 0 = start. */
    ErlNifUInt64 offset;
    unsigned index;
    if (!enif_get_uint64(env, argv[2], &offset) || !enif_get_uint(env, argv[3], &index))
        return es_raise_arg(env, "offset and index must be integers");
    FILE *in = fopen(path, "rb");
    if (!in) return error_text(env, strerror(errno));
    if (offset == 0) {
        uint8_t fh[16];
        if (fread(fh, 1, 16, in) != 16 || memcmp(fh, FILE_MAGIC, 8) != 0) {
            fclose(in);
            return error_text(env, "not an ElixirScope dump (bad magic)");
        }
        if (rd32(fh + 8) < OLDEST_VERSION || rd32(fh + 8) > VERSION) {
            fclose(in);
            return error_text(env, "unsupported dump format version");
        }
    } else if (fseeko(in, (off_t)offset, SEEK_SET) != 0) {
        fclose(in);
        return error_text(env, strerror(errno));
    }
    load_state ls = {env, s, 0, INT64_MAX, INT64_MIN, false, enif_make_list(env, 0)};
    unsigned loaded = 0, this_call = 0;
    bool eof = false;
    uint8_t h[HEADER_LEN];
    for (;; index++) {
        if (this_call++ == SEGMENTS_PER_CALL) break; /* let the caller report progress */
        size_t got = fread(h, 1, HEADER_LEN, in);
        if (got == 0) {
            eof = true;
            break;
        }
        if (got < HEADER_LEN) {
            skip(&ls, index, "truncated_header");
            eof = true;
            break;
        }
        if (memcmp(h, "SEG1", 4) != 0 || rd64(h + 56) != es_hash_bytes(h, 56, 0)) {
            skip(&ls, index, "bad_header"); /* lengths cannot be trusted: stop here */
            eof = true;
            break;
        }
        uint32_t raw_len = rd32(h + 40), zlen = rd32(h + 44);
        uint8_t *z = malloc(zlen ? zlen : 1), *raw = malloc(raw_len ? raw_len : 1);
        if (!z || !raw) {
            free(z);
            free(raw);
            skip(&ls, index, "out_of_memory");
            eof = true;
            break;
        }
        bool whole = fread(z, 1, zlen, in) == zlen;
        const char *why = !whole                                      ? "truncated_data"
                          : rd64(h + 48) != es_hash_bytes(z, zlen, 0) ? "bad_checksum"
                                                                      : NULL;
        if (!why) {
            size_t n = ZSTD_decompress(raw, raw_len, z, zlen);
            if (ZSTD_isError(n) || n != raw_len)
                why = "bad_compression";
            else if (!load_records(&ls, raw, raw_len))
                why = "bad_record";
        }
        free(z);
        free(raw);
        if (why) {
            skip(&ls, index, why);
            if (!whole) {
                eof = true;
                break;
            }
        } else {
            loaded++;
        }
    }
    off_t next = ftello(in);
    fclose(in);
    ERL_NIF_TERM skipped;
    enif_make_reverse_list(env, ls.skipped, &skipped);
    ERL_NIF_TERM keys[] = {enif_make_atom(env, "events"), enif_make_atom(env, "segments"),
                           enif_make_atom(env, "skipped"), enif_make_atom(env, "first_timestamp"),
                           enif_make_atom(env, "last_timestamp")};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, ls.events), enif_make_uint(env, loaded), skipped,
                           ls.events ? enif_make_int64(env, ls.min_ts) : es_atom.nil,
                           ls.events ? enif_make_int64(env, ls.max_ts) : es_atom.nil};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, 5, &map);
    ERL_NIF_TERM more = eof ? enif_make_atom(env, "eof")
                            : enif_make_tuple2(env, enif_make_uint64(env, (uint64_t)next),
                                               enif_make_uint(env, index));
    return enif_make_tuple3(env, es_atom.ok, map, more);
}
