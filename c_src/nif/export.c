/*
 * export.c — Chrome trace-event JSON and Mermaid sequence diagrams, written event by
 * event from the store. See export.h for the contract.
 */
#include "export.h"
#include "agg.h"
#include "codec.h"
#include "nif.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEXT_MAX 512 /* a term's text is cut (with "...") past this many bytes */

/* ---- text ------------------------------------------------------------------------ */

static void term_text(ERL_NIF_TERM t, char *buf, size_t cap) {
    int n = enif_snprintf(buf, cap, "%T", t);
    if (n < 0) {
        snprintf(buf, cap, "?");
    } else if ((size_t)n >= cap && cap > 4) {
        memcpy(buf + cap - 4, "...", 4);
    }
}

/* A JSON string; bytes past ASCII are taken as Latin-1, so the output is valid UTF-8. */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_term(FILE *f, ERL_NIF_TERM t) {
    char buf[TEXT_MAX];
    term_text(t, buf, sizeof buf);
    json_string(f, buf);
}

/* The wall-clock time of a timestamp (wallclock.h: native units are nanoseconds here) as
 * ISO 8601 UTC with microseconds, or only its time of day; "" when the store knows no
 * offset. */
static void wall_text(es_store *s, int64_t ts, bool date, char *buf, size_t cap) {
    int64_t offset;
    buf[0] = 0;
    if (!es_wallclock_offset_at(es_store_wallclock(s), ts, &offset)) return;
    int64_t ns = ts + offset, secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) frac += 1000000000, secs--;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return;
    char day[32];
    strftime(day, sizeof day, date ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%06ld%s", day, (long)(frac / 1000), date ? "Z" : "");
}

static bool field(ErlNifEnv *env, ERL_NIF_TERM map, const char *name, ERL_NIF_TERM *out) {
    return enif_get_map_value(env, map, enif_make_atom(env, name), out);
}

/* ---- chrome ---------------------------------------------------------------------- */

typedef struct chrome {
    ErlNifEnv *env;
    es_store *s;
    FILE *f;
    int64_t t0;
    uint8_t *seen; /* pid key ids with a named track already */
    uint32_t nseen;
    es_export_counts *counts;
    bool first;
} chrome;

static void sep(chrome *c) {
    if (!c->first) fputs(",\n", c->f);
    c->first = false;
}

static double us(chrome *c, int64_t ts) {
    return (double)(ts - c->t0) / 1000.0;
}

/* The track of a pid, named on first use; 0 (the store's own track) for no pid. */
static uint32_t track(chrome *c, ERL_NIF_TERM pid) {
    es_key *k = pid ? es_codec_pid_key(c->env, c->s, pid, false) : NULL;
    uint32_t tid = k ? k->id : 0;
    if (tid < c->nseen && !c->seen[tid]) {
        c->seen[tid] = 1;
        c->counts->tracks++;
        sep(c);
        fprintf(
            c->f,
            "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":", tid);
        if (pid)
            json_term(c->f, pid);
        else
            json_string(c->f, "events without a process");
        fputs("}}", c->f);
    }
    return tid;
}

/* "args": the event's wall-clock time, and every field but the ones the event's place
 * already says. */
static void args(chrome *c, ERL_NIF_TERM ev, ERL_NIF_TERM extra_key, ERL_NIF_TERM extra) {
    static const char *const skip[] = {"id", "type", "timestamp", "pid", "from_pid"};
    ErlNifMapIterator it;
    ERL_NIF_TERM k, v;
    bool first = true;
    fputs(",\"args\":{", c->f);
    ERL_NIF_TERM tst;
    ErlNifSInt64 ts;
    char at[48];
    if (field(c->env, ev, "timestamp", &tst) && enif_get_int64(c->env, tst, &ts) &&
        (wall_text(c->s, ts, true, at, sizeof at), at[0])) {
        fputs("\"wall_time\":", c->f);
        json_string(c->f, at);
        first = false;
    }
    if (extra_key) {
        if (!first) fputc(',', c->f);
        json_term(c->f, extra_key);
        fputc(':', c->f);
        json_term(c->f, extra);
        first = false;
    }
    if (enif_map_iterator_create(c->env, ev, &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        for (; enif_map_iterator_get_pair(c->env, &it, &k, &v);
             enif_map_iterator_next(c->env, &it)) {
            char name[256];
            if (enif_get_atom(c->env, k, name, sizeof name, ERL_NIF_LATIN1) <= 0) continue;
            bool skipped = false;
            for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
                skipped |= !strcmp(name, skip[i]);
            if (skipped) continue;
            if (!first) fputc(',', c->f);
            first = false;
            json_string(c->f, name);
            fputc(':', c->f);
            json_term(c->f, v);
        }
        enif_map_iterator_destroy(c->env, &it);
    }
    fputs("}}", c->f);
}

static void call_slice(chrome *c, ERL_NIF_TERM ev, int64_t ts, ERL_NIF_TERM pid) {
    ErlNifEnv *env = c->env;
    ERL_NIF_TERM m, fn, ar, d, cid, call, call_args = 0;
    ErlNifSInt64 dur = 0;
    ErlNifUInt64 call_id;
    if (field(env, ev, "duration", &d)) enif_get_int64(env, d, &dur);
    if (field(env, ev, "call_id", &cid) && enif_get_uint64(env, cid, &call_id) &&
        es_codec_event(env, c->s, call_id, 0, &call))
        field(env, call, "args", &call_args);
    char name[600] = "call", mod[256], fun[256];
    unsigned arity = 0;
    if (field(env, ev, "module", &m) && field(env, ev, "function", &fn) &&
        enif_get_atom(env, m, mod, sizeof mod, ERL_NIF_LATIN1) > 0 &&
        enif_get_atom(env, fn, fun, sizeof fun, ERL_NIF_LATIN1) > 0) {
        if (field(env, ev, "arity", &ar)) enif_get_uint(env, ar, &arity);
        snprintf(name, sizeof name, "%s.%s/%u", strncmp(mod, "Elixir.", 7) ? mod : mod + 7, fun,
                 arity);
    }
    uint32_t tid = track(c, pid);
    sep(c);
    fputs("{\"name\":", c->f);
    json_string(c->f, name);
    fprintf(c->f, ",\"cat\":\"call\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":1,\"tid\":%u",
            us(c, ts - dur), (double)dur / 1000.0, tid);
    args(c, ev, call_args ? enif_make_atom(env, "args") : 0, call_args);
    c->counts->slices++;
}

static void message(chrome *c, ERL_NIF_TERM ev, uint64_t id, int64_t ts, ERL_NIF_TERM from,
                    ERL_NIF_TERM to) {
    uint32_t a = track(c, from), b = track(c, to);
    double t = us(c, ts);
    /* Flow arrows bind to slices: a tiny one where the message leaves, one where it lands. */
    sep(c);
    fprintf(c->f,
            "{\"name\":\"send\",\"cat\":\"message\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":0.001,\"pid\":"
            "1,\"tid\":%u",
            t, a);
    args(c, ev, 0, 0);
    sep(c);
    fprintf(c->f,
            "{\"name\":\"message\",\"cat\":\"message\",\"ph\":\"s\",\"id\":%llu,\"ts\":%.3f,"
            "\"pid\":1,\"tid\":%u}",
            (unsigned long long)id, t, a);
    sep(c);
    fprintf(c->f,
            "{\"name\":\"arrive\",\"cat\":\"message\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":0.001,"
            "\"pid\":1,\"tid\":%u}",
            t + 0.001, b);
    sep(c);
    fprintf(c->f,
            "{\"name\":\"message\",\"cat\":\"message\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%llu,"
            "\"ts\":%.3f,\"pid\":1,\"tid\":%u}",
            (unsigned long long)id, t + 0.001, b);
    c->counts->flows++;
}

bool es_export_chrome(ErlNifEnv *env, es_store *s, const es_hits *events, FILE *out,
                      es_export_counts *counts) {
    memset(counts, 0, sizeof *counts);
    uint32_t npids = es_intern_size(&es_store_tables(s)->pid) + 1;
    chrome c = {env,   s,      out, events->n ? events->v[0].ts : 0, calloc(npids, 1),
                npids, counts, true};
    if (!c.seen) return false;
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", out);
    sep(&c);
    fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"ElixirScope\"}}",
          out);
    for (size_t i = 0; i < events->n; i++) {
        ERL_NIF_TERM ev, type, pid = 0, from, to;
        if (!es_codec_event(env, s, events->v[i].id, 0, &ev) || !field(env, ev, "type", &type))
            continue;
        int64_t ts = events->v[i].ts;
        if (!field(env, ev, "pid", &pid) && !field(env, ev, "from_pid", &pid)) pid = 0;
        char t[64] = "";
        enif_get_atom(env, type, t, sizeof t, ERL_NIF_LATIN1);
        int row = es_vocab_row_of(type);
        if (row == ES_EV_RETURN || row == ES_EV_EXCEPTION) {
            call_slice(&c, ev, ts, pid);
        } else if (row == ES_EV_CALL) {
            continue; /* shown as the slice its return draws */
        } else if (row == ES_EV_SEND && field(env, ev, "from_pid", &from) &&
                   field(env, ev, "to_pid", &to)) {
            message(&c, ev, events->v[i].id, ts, from, to);
        } else {
            uint32_t tid = track(&c, pid);
            sep(&c);
            fprintf(out,
                    "{\"name\":\"%s\",\"cat\":\"event\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
                    "\"pid\":1,\"tid\":%u",
                    t, us(&c, ts), tid);
            args(&c, ev, 0, 0);
            counts->instants++;
        }
    }
    fputs("\n]}\n", out);
    free(c.seen);
    return !ferror(out);
}

/* ---- mermaid --------------------------------------------------------------------- */

/* Message text for an arrow: one line, no characters Mermaid reads as syntax. */
static void mermaid_text(FILE *f, ERL_NIF_TERM t) {
    char buf[64];
    term_text(t, buf, sizeof buf);
    for (char *p = buf; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        fputc(ch == ';' || ch == '#' || ch == ':' || ch < 0x20 || ch >= 0x7f ? ' ' : ch, f);
    }
}

bool es_export_mermaid(ErlNifEnv *env, es_store *s, const es_hits *sends,
                       const uint32_t *participants, size_t n, FILE *out, uint64_t *arrows) {
    *arrows = 0;
    fputs("sequenceDiagram\n", out);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        term_text(es_codec_pid_term(env, s, participants[i]), name, sizeof name);
        fprintf(out, "    participant P%u as %s\n", participants[i], name);
    }
    for (size_t i = 0; i < sends->n; i++) {
        es_event_view v;
        ERL_NIF_TERM ev, msg;
        if (!es_store_peek(s, sends->v[i].id, &v) || !v.actor || !v.peer) continue;
        bool from = false, to = false;
        for (size_t j = 0; j < n; j++)
            from |= participants[j] == v.actor, to |= participants[j] == v.peer;
        if (!from || !to || !es_codec_event(env, s, v.id, 0, &ev)) continue;
        char at[48];
        wall_text(s, v.ts, false, at, sizeof at); /* the time of day: colons are fine here */
        fprintf(out, "    P%u->>P%u: %s%s", v.actor, v.peer, at, at[0] ? " " : "");
        if (field(env, ev, "message", &msg)) mermaid_text(out, msg);
        fputc('\n', out);
        ++*arrows;
    }
    return !ferror(out);
}

/* ---- NIFs ------------------------------------------------------------------------ */

/* Opens `path` (a binary) for writing; NULL with a raised or returned error in *err. */
static FILE *open_path(ErlNifEnv *env, ERL_NIF_TERM path, ERL_NIF_TERM *err) {
    ErlNifBinary bin;
    char p[4096];
    if (!enif_inspect_binary(env, path, &bin) || bin.size == 0 || bin.size >= sizeof p ||
        memchr(bin.data, 0, bin.size)) {
        *err = es_raise_arg(env, "path must be a non-empty string");
        return NULL;
    }
    memcpy(p, bin.data, bin.size);
    p[bin.size] = 0;
    FILE *f = fopen(p, "w");
    if (!f) {
        const char *why = strerror(errno);
        ERL_NIF_TERM text;
        memcpy(enif_make_new_binary(env, strlen(why), &text), why, strlen(why));
        *err = enif_make_tuple2(env, es_atom.error, text);
    }
    return f;
}

static ERL_NIF_TERM counts_map(ErlNifEnv *env, const char *const names[], const uint64_t vals[],
                               size_t n) {
    ERL_NIF_TERM map = enif_make_new_map(env);
    for (size_t i = 0; i < n; i++)
        enif_make_map_put(env, map, enif_make_atom(env, names[i]), enif_make_uint64(env, vals[i]),
                          &map);
    return enif_make_tuple2(env, es_atom.ok, map);
}

/* The events argv[2] selects and the file argv[1] names; NULL (and *err) on failure. */
static FILE *begin_export(ErlNifEnv *env, es_store *s, const ERL_NIF_TERM argv[], es_hits *h,
                          ERL_NIF_TERM *err) {
    if (!es_select_events(env, s, argv[2], h, err)) return NULL;
    FILE *f = open_path(env, argv[1], err);
    if (!f) es_hits_free(h);
    return f;
}

ERL_NIF_TERM es_nif_export_chrome(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    ERL_NIF_TERM err;
    es_hits h = {0};
    FILE *f = begin_export(env, s, argv, &h, &err);
    if (!f) return err;
    es_export_counts c;
    bool ok = es_export_chrome(env, s, &h, f, &c);
    ok = fclose(f) == 0 && ok;
    size_t n = h.n;
    es_hits_free(&h);
    if (!ok) return enif_make_tuple2(env, es_atom.error, enif_make_atom(env, "write_failed"));
    static const char *const names[] = {"events", "slices", "flows", "instants", "tracks"};
    uint64_t vals[] = {n, c.slices, c.flows, c.instants, c.tracks};
    return counts_map(env, names, vals, 5);
}

static int cmp_busy(const void *a, const void *b) {
    const es_traffic *x = a, *y = b;
    uint64_t bx = x->sent + x->inflow, by = y->sent + y->inflow;
    return bx != by ? (bx > by ? -1 : 1) : (x->pid > y->pid) - (x->pid < y->pid);
}

/* export_mermaid(store, path, filters, pids | nil, busiest) */
ERL_NIF_TERM es_nif_export_mermaid(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    STORE_OR_RAISE(s, argv[0]);
    unsigned busiest;
    if (!enif_get_uint(env, argv[4], &busiest) || busiest == 0 || busiest > 1000)
        return es_raise_arg(env, "busiest must be an integer in 1..1000");
    uint32_t ids[1000];
    size_t n = 0;
    if (argv[3] == es_atom.nil) {
        es_traffic *tr;
        size_t ntr;
        if (!es_agg_traffic(s, es_vocab_key(s, ES_EV_SEND, false), NULL, INT64_MIN, INT64_MAX, &tr,
                            &ntr))
            return es_raise_arg(env, "out of memory choosing the busiest processes");
        qsort(tr, ntr, sizeof *tr, cmp_busy);
        for (size_t i = 0; i < ntr && n < busiest; i++) ids[n++] = tr[i].pid;
        es_agg_free(tr);
    } else {
        ERL_NIF_TERM head, tail = argv[3];
        while (enif_get_list_cell(env, tail, &head, &tail)) {
            if (!enif_is_pid(env, head)) return es_raise_arg(env, "pids must be a list of pids");
            es_key *k = es_codec_pid_key(env, s, head, false);
            if (k && n < 1000) ids[n++] = k->id;
        }
        if (!enif_is_empty_list(env, tail)) return es_raise_arg(env, "pids must be a list of pids");
    }
    ERL_NIF_TERM err;
    es_hits h = {0};
    FILE *f = begin_export(env, s, argv, &h, &err);
    if (!f) return err;
    uint64_t arrows;
    bool ok = es_export_mermaid(env, s, &h, ids, n, f, &arrows);
    ok = fclose(f) == 0 && ok;
    es_hits_free(&h);
    if (!ok) return enif_make_tuple2(env, es_atom.error, enif_make_atom(env, "write_failed"));
    static const char *const names[] = {"participants", "arrows"};
    uint64_t vals[] = {n, arrows};
    return counts_map(env, names, vals, 2);
}
