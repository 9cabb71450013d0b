/*
 * codec.c — event maps to slots + payloads and back. See codec.h for the contract.
 *
 * Key bytes: an atom is its term word (atoms are global and never move); a local pid
 * is 'L' + its ErlNifPid word; a remote pid is 'E' + its external term format; a
 * {module, function} is two atom words; a pair is two pid key ids.
 */
#include "codec.h"
#include "etf.h"
#include "nif.h"

#include <string.h>

es_atoms es_atom;

#define ATOM(field, name) es_atom.field = enif_make_atom(env, name)

void es_codec_init_atoms(ErlNifEnv *env) {
    ATOM(ok, "ok");
    ATOM(error, "error");
    ATOM(nil, "nil");
    ATOM(true_, "true");
    ATOM(false_, "false");
    ATOM(asc, "asc");
    ATOM(desc, "desc");
    ATOM(id, "id");
    ATOM(type, "type");
    ATOM(timestamp, "timestamp");
    ATOM(pid, "pid");
    ATOM(from_pid, "from_pid");
    ATOM(to_pid, "to_pid");
    ATOM(module, "module");
    ATOM(function, "function");
    ATOM(arity, "arity");
    ATOM(critical, "critical");
    ATOM(truncated, "truncated");
    ATOM(payload_size, "payload_size");
    ATOM(max_events, "max_events");
    ATOM(max_bytes, "max_bytes");
    ATOM(max_payload_bytes, "max_payload_bytes");
    ATOM(sample_rate, "sample_rate");
    ATOM(max_keys, "max_keys");
    ATOM(timestamp_start, "timestamp_start");
    ATOM(timestamp_end, "timestamp_end");
    ATOM(limit, "limit");
    ATOM(order, "order");
    ATOM(after_id, "after_id");
    ATOM(before_id, "before_id");
    ATOM(between, "between");
    ATOM(after, "after");
    ATOM(before, "before");
    ATOM(where, "where");
    ATOM(eq, "eq");
    ATOM(lt, "lt");
    ATOM(le, "le");
    ATOM(gt, "gt");
    ATOM(ge, "ge");
    ATOM(range, "range");
    ATOM(prefix, "prefix");
    ATOM(select, "select");
    ATOM(events, "events");
    ATOM(ids, "ids");
    ATOM(count, "count");
    ATOM(struct_key, "struct");
    ATOM(diff, "diff");
    ATOM(page, "page");
    ATOM(state, "state");
    ATOM(group_by, "group_by");
    ATOM(measure, "measure");
    ATOM(field, "field");
    ATOM(name, "name");
    ATOM(parent, "parent");
    ATOM(args, "args");
    ATOM(result, "result");
    ATOM(class_, "class");
    ATOM(reason, "reason");
    ATOM(duration, "duration");
    ATOM(call_id, "call_id");
    ATOM(running, "running");
    ATOM(exception_kind, "exception");
    ATOM(children, "children");
    ATOM(links, "links");
    ATOM(exited, "exited");
    ATOM(clock, "clock");
    ATOM(stored, "stored");
    ATOM(appended, "appended");
    ATOM(sampled_out, "sampled_out");
    ATOM(pruned, "pruned");
    ATOM(bytes, "bytes");
    ATOM(memory, "memory");
    ATOM(oldest_id, "oldest_id");
    ATOM(newest_id, "newest_id");
    ATOM(max_lateness, "max_lateness");
    ATOM(by_type, "by_type");
    ATOM(unindexed, "unindexed");
    ATOM(struct_, "__struct__");
    ATOM(exception, "__exception__");
    ATOM(message, "message");
    ATOM(argument_error, "Elixir.ArgumentError");
}

ERL_NIF_TERM es_raise_arg(ErlNifEnv *env, const char *message) {
    ERL_NIF_TERM keys[3] = {es_atom.struct_, es_atom.exception, es_atom.message};
    ERL_NIF_TERM msg;
    size_t len = strlen(message);
    memcpy(enif_make_new_binary(env, len, &msg), message, len);
    ERL_NIF_TERM vals[3] = {es_atom.argument_error, es_atom.true_, msg};
    ERL_NIF_TERM err;
    if (!enif_make_map_from_arrays(env, keys, vals, 3, &err)) return enif_make_badarg(env);
    return enif_raise_exception(env, err);
}

/* ---- keys ------------------------------------------------------------------------ */

es_key *es_codec_atom_key(es_intern *t, ERL_NIF_TERM atom, bool create) {
    return es_intern_get(t, &atom, sizeof atom, create, 0);
}

/* The last local pids this thread interned: a traced process's events come from
 * the scheduler running it, so most lookups hit. */
#define PID_CACHE 4
static _Thread_local struct {
    uint64_t serial;
    ERL_NIF_TERM pid;
    es_key *key;
} pid_cache[PID_CACHE];
static _Thread_local unsigned pid_cache_next;

es_key *es_codec_pid_key(ErlNifEnv *env, es_store *s, ERL_NIF_TERM pid, bool create) {
    /* The cache holds only local pids whose ErlNifPid is the term word itself (an
     * immediate): a term equal to a cached word is that pid, so a hit needs no enif_*
     * call. */
    uint64_t serial = es_store_serial(s);
    for (unsigned i = 0; i < PID_CACHE; i++)
        if (pid_cache[i].pid == pid && pid_cache[i].serial == serial) return pid_cache[i].key;
    if (!enif_is_pid(env, pid)) return NULL;
    es_intern *t = &es_store_tables(s)->pid;
    ErlNifPid local;
    if (enif_get_local_pid(env, pid, &local)) {
        uint8_t key[1 + sizeof(ERL_NIF_TERM)] = {'L'};
        memcpy(key + 1, &local.pid, sizeof(ERL_NIF_TERM));
        es_key *k = es_intern_get(t, key, sizeof key, create, 0);
        if (k && local.pid == pid) {
            unsigned i = pid_cache_next++ % PID_CACHE;
            pid_cache[i].serial = serial;
            pid_cache[i].pid = local.pid;
            pid_cache[i].key = k;
        }
        return k;
    }
    ErlNifBinary bin;
    if (!enif_term_to_binary(env, pid, &bin)) return NULL;
    uint8_t key[256];
    es_key *k = NULL;
    if (bin.size + 1 <= sizeof key) {
        key[0] = 'E';
        memcpy(key + 1, bin.data, bin.size);
        k = es_intern_get(t, key, bin.size + 1, create, 0);
    }
    enif_release_binary(&bin);
    return k;
}

es_key *es_codec_mf_key(es_store *s, ERL_NIF_TERM module, ERL_NIF_TERM function, bool create) {
    es_tables *t = es_store_tables(s);
    es_key *m = es_codec_atom_key(&t->module, module, create);
    if (!m) return NULL;
    ERL_NIF_TERM key[2] = {module, function};
    return es_intern_get(&t->mf, key, sizeof key, create, m->id);
}

ERL_NIF_TERM es_codec_pid_term(ErlNifEnv *env, es_store *s, uint32_t id) {
    es_key *k = es_intern_by_id(&es_store_tables(s)->pid, id);
    if (!k) return es_atom.nil;
    const uint8_t *b = es_key_bytes(k);
    if (b[0] == 'L') {
        ErlNifPid p;
        memcpy(&p.pid, b + 1, sizeof(ERL_NIF_TERM));
        return enif_make_pid(env, &p);
    }
    ERL_NIF_TERM t;
    if (!enif_binary_to_term(env, b + 1, k->len - 1, &t, 0)) return es_atom.nil;
    return t;
}

ERL_NIF_TERM es_codec_atom_term(const es_key *k) {
    ERL_NIF_TERM t;
    memcpy(&t, es_key_bytes(k), sizeof t);
    return t;
}

/* ---- encode ---------------------------------------------------------------------- */

/* Each scheduler thread encodes into its own buffer, reused from event to event. */
static _Thread_local etf_buf tl_payload;

const char *es_codec_encode(ErlNifEnv *env, es_store *s, ERL_NIF_TERM type, ERL_NIF_TERM map,
                            es_encoded *out) {
    memset(out, 0, sizeof *out);
    if (!enif_is_atom(env, type)) return "event type must be an atom";
    if (!enif_is_map(env, map)) return "event must be a map";
    es_tables *t = es_store_tables(s);
    es_event_in *in = &out->in;
    /* The fields that go into the slot rather than the payload: left out of the
     * payload as it is encoded (removing them from the map would copy it each time). */
    ERL_NIF_TERM rest = map, v, skip[9];
    unsigned nskip = 0;
    in->ts = ES_TS_NOW;
    if (enif_get_map_value(env, rest, es_atom.timestamp, &v)) {
        ErlNifSInt64 ts;
        if (!enif_get_int64(env, v, &ts) || ts == INT64_MIN)
            return "event :timestamp must be an integer in System.monotonic_time/0 units";
        in->ts = ts;
        skip[nskip++] = es_atom.timestamp;
    }
    in->type = es_codec_atom_key(&t->type, type, true);
    if (!in->type) return "too many distinct event types (the store indexes at most 4096)";
    if (enif_get_map_value(env, rest, es_atom.id, &v)) skip[nskip++] = es_atom.id;
    if (enif_get_map_value(env, rest, es_atom.type, &v)) skip[nskip++] = es_atom.type;

    if (enif_get_map_value(env, rest, es_atom.pid, &v) &&
        (in->actor = es_codec_pid_key(env, s, v, true))) {
        in->flags |= ES_F_ACTOR;
        skip[nskip++] = es_atom.pid;
    } else if (enif_get_map_value(env, rest, es_atom.from_pid, &v) &&
               (in->actor = es_codec_pid_key(env, s, v, true))) {
        in->flags |= ES_F_ACTOR | ES_F_ACTOR_FROM;
        skip[nskip++] = es_atom.from_pid;
    }
    /* The peer: the receiver (:to_pid), or for the vocabulary's rows whose peer is the
     * sender (a :receive), :from_pid beside an actor given as :pid. */
    int row = es_vocab_row_of(type);
    ERL_NIF_TERM peer_field =
        row >= 0 && es_vocab[row].peer_is_sender && !(in->flags & ES_F_ACTOR_FROM)
            ? es_atom.from_pid
            : es_atom.to_pid;
    if (enif_get_map_value(env, rest, peer_field, &v) &&
        (in->peer = es_codec_pid_key(env, s, v, true))) {
        in->flags |= ES_F_PEER;
        skip[nskip++] = peer_field;
    }
    if (in->actor && in->peer) {
        uint32_t ids[2] = {in->actor->id, in->peer->id};
        in->pair = es_intern_get(&t->pair, ids, sizeof ids, true, 0);
    }
    ERL_NIF_TERM module, function = 0;
    if (enif_get_map_value(env, rest, es_atom.module, &module) && enif_is_atom(env, module)) {
        bool has_fun = enif_get_map_value(env, rest, es_atom.function, &function) &&
                       enif_is_atom(env, function);
        if (!has_fun) function = 0;
        in->mf = es_codec_mf_key(s, module, function, true);
        in->module = in->mf ? es_intern_by_id(&t->module, in->mf->aux) : NULL;
        if (in->mf && in->module) {
            in->flags |= ES_F_MODULE;
            skip[nskip++] = es_atom.module;
            if (has_fun) {
                in->flags |= ES_F_FUNCTION;
                skip[nskip++] = es_atom.function;
            }
            int arity;
            if (enif_get_map_value(env, rest, es_atom.arity, &v) && enif_get_int(env, v, &arity) &&
                arity >= 0 && arity <= 255) {
                in->flags |= ES_F_ARITY;
                in->arity = (uint8_t)arity;
                skip[nskip++] = es_atom.arity;
            }
        } else {
            in->mf = in->module = NULL;
        }
    }
    const es_vocab_variant *variant = es_vocab_variant_of(env, row, rest);
    if ((row >= 0 && es_vocab[row].critical) || (variant && es_vocab[variant->as].critical) ||
        (enif_get_map_value(env, rest, es_atom.critical, &v) && v == es_atom.true_))
        in->flags |= ES_F_CRITICAL;

    etf_buf *b = &tl_payload;
    etf_reset(b);
    size_t n = 0;
    if (!etf_encode_without(env, b, rest, skip, nskip, &n)) return "event could not be encoded";
    if (n > 0) {
        if (b->len > UINT32_MAX) return "event payload is larger than 4 GiB";
        in->payload = b->data;
        in->payload_len = (uint32_t)b->len;
        /* The digest the store keeps of the vocabulary's hashed field (a :state event's
         * state), over the bytes the payload holds: what the tracer computes too. */
        es_pl_span val;
        if (row >= 0 && es_vocab_hashed_atom[row] &&
            es_pl_field(b->data, b->len, (uint64_t)es_vocab_hashed_atom[row], &val))
            in->hash = es_pl_hash(val.p, val.len);
    }
    return NULL;
}

/* ---- decode ---------------------------------------------------------------------- */

/* The name an event's peer comes back under: :from_pid for a type whose peer is the
 * sender (vocab.h) when the actor is :pid, else :to_pid. */
static ERL_NIF_TERM peer_field(const es_key *type, uint8_t flags) {
    return type && !(flags & ES_F_ACTOR_FROM) && es_vocab_peer_is_sender(es_codec_atom_term(type))
               ? es_atom.from_pid
               : es_atom.to_pid;
}

#define MAX_FIELDS 10

bool es_codec_event(ErlNifEnv *env, es_store *s, uint64_t id, ERL_NIF_TERM struct_tag,
                    ERL_NIF_TERM *out) {
    es_event_view v;
    if (!es_store_peek(s, id, &v)) return false;
    es_tables *t = es_store_tables(s);
    ERL_NIF_TERM payload = 0;
    if (!(v.flags & ES_F_TRUNCATED) && v.len > 0) {
        uint8_t stack[1024];
        uint8_t *buf = v.len <= sizeof stack ? stack : enif_alloc(v.len);
        if (!buf) return false;
        bool ok = es_store_payload(s, &v, buf) && etf_decode(env, buf, v.len, &payload) &&
                  enif_is_map(env, payload);
        if (buf != stack) enif_free(buf);
        if (!ok) return false;
    }
    ERL_NIF_TERM keys[MAX_FIELDS], vals[MAX_FIELDS];
    size_t n = 0;
#define FIELD(k, val) (keys[n] = (k), vals[n] = (val), n++)
    es_key *type = es_intern_by_id(&t->type, v.type_id);
    FIELD(es_atom.id, enif_make_uint64(env, v.id));
    FIELD(es_atom.type, type ? es_codec_atom_term(type) : es_atom.nil);
    FIELD(es_atom.timestamp, enif_make_int64(env, v.ts));
    if (v.flags & ES_F_ACTOR)
        FIELD(v.flags & ES_F_ACTOR_FROM ? es_atom.from_pid : es_atom.pid,
              es_codec_pid_term(env, s, v.actor));
    if (v.flags & ES_F_PEER) FIELD(peer_field(type, v.flags), es_codec_pid_term(env, s, v.peer));
    es_key *mf = (v.flags & ES_F_MODULE) ? es_intern_by_id(&t->mf, v.mf) : NULL;
    if (mf) {
        ERL_NIF_TERM words[2];
        memcpy(words, es_key_bytes(mf), sizeof words);
        FIELD(es_atom.module, words[0]);
        if (v.flags & ES_F_FUNCTION) FIELD(es_atom.function, words[1]);
        if (v.flags & ES_F_ARITY) FIELD(es_atom.arity, enif_make_uint(env, v.arity));
    }
    if (v.flags & ES_F_TRUNCATED) {
        FIELD(es_atom.truncated, es_atom.true_);
        FIELD(es_atom.payload_size, enif_make_uint(env, v.len));
    }
    if (struct_tag) FIELD(es_atom.struct_, struct_tag);
#undef FIELD
    if (!payload) return enif_make_map_from_arrays(env, keys, vals, n, out);
    /* One map built from arrays costs one allocation; putting each field into the
     * payload map would copy it once per field. */
    size_t m = 0;
    enif_get_map_size(env, payload, &m);
    ERL_NIF_TERM kstack[32], vstack[32];
    ERL_NIF_TERM *ks = kstack, *vs = vstack;
    if (m + n > 32) {
        ks = enif_alloc((m + n) * sizeof *ks);
        vs = enif_alloc((m + n) * sizeof *vs);
    }
    bool ok = ks && vs;
    size_t i = 0;
    ErlNifMapIterator it;
    if (ok && enif_map_iterator_create(env, payload, &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        while (i < m && enif_map_iterator_get_pair(env, &it, &ks[i], &vs[i])) {
            i++;
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
        memcpy(ks + i, keys, n * sizeof *ks);
        memcpy(vs + i, vals, n * sizeof *vs);
        ok = enif_make_map_from_arrays(env, ks, vs, i + n, out);
    } else {
        ok = false;
    }
    if (ks != kstack) enif_free(ks);
    if (vs != vstack) enif_free(vs);
    if (ok) return true;
    /* A payload that repeats a field name (never written by ElixirScope itself). */
    ERL_NIF_TERM map = payload;
    for (size_t f = 0; f < n; f++) enif_make_map_put(env, map, keys[f], vals[f], &map);
    *out = map;
    return true;
}

bool es_codec_values(ErlNifEnv *env, es_store *s, uint64_t id, const ERL_NIF_TERM *fields,
                     unsigned nfields, ERL_NIF_TERM *values, es_event_view *view) {
    es_event_view v;
    if (!es_store_peek(s, id, &v)) return false;
    if (view) *view = v;
    es_tables *t = es_store_tables(s);
    uint8_t stack[1024];
    uint8_t *buf = NULL;
    bool have_payload = false, ok = true;
    es_key *mf = (v.flags & ES_F_MODULE) ? es_intern_by_id(&t->mf, v.mf) : NULL;
    ERL_NIF_TERM words[2] = {0, 0};
    if (mf) memcpy(words, es_key_bytes(mf), sizeof words);
    bool actor_from = (v.flags & ES_F_ACTOR_FROM) != 0;
    ERL_NIF_TERM peer_name =
        v.flags & ES_F_PEER ? peer_field(es_intern_by_id(&t->type, v.type_id), v.flags) : 0;
    for (unsigned i = 0; ok && i < nfields; i++) {
        ERL_NIF_TERM k = fields[i], val = 0;
        es_key *type;
        if (k == es_atom.id)
            val = enif_make_uint64(env, v.id);
        else if (k == es_atom.type)
            val = (type = es_intern_by_id(&t->type, v.type_id)) ? es_codec_atom_term(type)
                                                                : es_atom.nil;
        else if (k == es_atom.timestamp)
            val = enif_make_int64(env, v.ts);
        else if ((k == es_atom.pid && (v.flags & ES_F_ACTOR) && !actor_from) ||
                 (k == es_atom.from_pid && (v.flags & ES_F_ACTOR) && actor_from))
            val = es_codec_pid_term(env, s, v.actor);
        else if (k == peer_name)
            val = es_codec_pid_term(env, s, v.peer);
        else if (k == es_atom.module && mf)
            val = words[0];
        else if (k == es_atom.function && mf && (v.flags & ES_F_FUNCTION))
            val = words[1];
        else if (k == es_atom.arity && (v.flags & ES_F_ARITY))
            val = enif_make_uint(env, v.arity);
        else if (!(v.flags & ES_F_TRUNCATED) && v.len > 0) {
            if (!have_payload) {
                buf = v.len <= sizeof stack ? stack : enif_alloc(v.len);
                ok = buf && es_store_payload(s, &v, buf);
                have_payload = true;
            }
            es_pl_span span;
            if (ok && es_pl_field(buf, v.len, (uint64_t)k, &span) &&
                !etf_decode_value(env, span.p, span.len, &val))
                ok = false;
        }
        values[i] = val;
    }
    if (buf && buf != stack) enif_free(buf);
    return ok;
}

bool es_codec_fields(ErlNifEnv *env, es_store *s, uint64_t id, const ERL_NIF_TERM *fields,
                     unsigned nfields, ERL_NIF_TERM struct_tag, ERL_NIF_TERM *out) {
    ERL_NIF_TERM keys[MAX_FIELDS + 68], vals[MAX_FIELDS + 68], got[64];
    ERL_NIF_TERM base[3] = {es_atom.id, es_atom.type, es_atom.timestamp};
    es_event_view v;
    if (nfields > 64) nfields = 64;
    if (!es_codec_values(env, s, id, base, 3, vals, &v) ||
        !es_codec_values(env, s, id, fields, nfields, got, NULL))
        return false;
    size_t n = 3;
    memcpy(keys, base, sizeof base);
    if (struct_tag) keys[n] = es_atom.struct_, vals[n++] = struct_tag;
    for (unsigned i = 0; i < nfields; i++) {
        ERL_NIF_TERM k = fields[i];
        if (!got[i] || k == es_atom.id || k == es_atom.type || k == es_atom.timestamp) continue;
        keys[n] = k, vals[n++] = got[i];
    }
    if (v.flags & ES_F_TRUNCATED) {
        keys[n] = es_atom.truncated, vals[n++] = es_atom.true_;
        keys[n] = es_atom.payload_size, vals[n++] = enif_make_uint(env, v.len);
    }
    /* A field named twice in `fields` would make the map fail: keep the first. */
    return enif_make_map_from_arrays(env, keys, vals, n, out);
}
