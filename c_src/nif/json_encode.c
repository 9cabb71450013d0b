/*
 * json_encode.c — JSON encode, written directly into a growing binary. See json.h for
 * the contract, the mapping and the limits.
 *
 * Thread-safety: no state of its own; see json.h.
 */
#include "json_text.h"
#include "map_order.h"

#include <math.h>
#include <stdlib.h>

/* ---- encode ---------------------------------------------------------------------- */

/* Work a normal scheduler may do, in units of about 50 ns measured: a term is one, a
 * map key too, an atom written as a string two, a float FLOAT_UNITS (formatting and reading it
 * back), a string one per STRING_BYTES_PER_UNIT bytes plus one per ESCAPES_PER_UNIT escaped
 * characters. */
#define ENCODE_NORMAL_BUDGET 4000
#define FLOAT_UNITS 14
#define STRING_BYTES_PER_UNIT 16
#define ESCAPES_PER_UNIT 4

typedef struct path_step {
    ERL_NIF_TERM key; /* 0: an index */
    size_t index;
} path_step;

typedef struct enc {
    ErlNifEnv *env;
    ErlNifBinary out;
    size_t len;
    long budget;
    bool limited; /* on a normal scheduler: stop when the budget is spent */
    bool over;    /* stopped for the budget, not an error */
    bool oom;
    char err[ERR_MAX];
    path_step path[ES_JSON_MAX_DEPTH + 1];
    uint8_t atom[1024]; /* an atom's text, used at once: kept out of the recursion's frames */
} enc;

static bool reserve(enc *e, size_t more) {
    if (e->out.size - e->len >= more) return true;
    size_t cap = e->out.size * 2;
    while (cap - e->len < more) cap *= 2;
    if (!enif_realloc_binary(&e->out, cap)) {
        e->oom = true;
        return false;
    }
    return true;
}

static bool put(enc *e, const void *bytes, size_t n) {
    if (!reserve(e, n)) return false;
    memcpy(e->out.data + e->len, bytes, n);
    e->len += n;
    return true;
}

static bool put_char(enc *e, char ch) {
    return put(e, &ch, 1);
}

static bool spend(enc *e, long units) {
    e->budget -= units;
    if (e->limited && e->budget < 0) {
        e->over = true;
        return false;
    }
    return true;
}

/* A key as it appears in a path: .name, or ["text"] when it is not a plain name; kept
 * ASCII so that error messages can be JSON-encoded themselves. */
static void path_key(char *buf, size_t cap, const uint8_t *s, size_t len) {
    bool plain = len > 0 && len <= 40;
    for (size_t i = 0; plain && i < len; i++) {
        uint8_t b = s[i];
        plain =
            b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (i > 0 && is_digit(b));
    }
    if (plain) {
        snprintf(buf, cap, ".%.*s", (int)len, (const char *)s);
        return;
    }
    char text[64];
    size_t k = 0;
    for (size_t i = 0; i < len && k < 40; i++) {
        uint8_t b = s[i];
        if (b == '"' || b == '\\') text[k++] = '\\';
        text[k++] = b >= 0x20 && b < 0x7f ? (char)b : '?';
    }
    text[k] = 0;
    snprintf(buf, cap, "[\"%s%s\"]", text, len > 40 ? "..." : "");
}

static bool atom_text(ErlNifEnv *env, ERL_NIF_TERM atom, uint8_t *buf, size_t *len);

/* Sets the error: the message, then where the value sits (depth steps of the path). */
static bool enc_fail(enc *e, unsigned depth, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    size_t at = n < 0 ? 0 : (size_t)n < sizeof e->err ? (size_t)n : sizeof e->err - 1;
    if (depth > 0 && at + 5 < sizeof e->err) {
        memcpy(e->err + at, " at $", 6);
        at += 5;
    }
    unsigned from = depth > PATH_STEPS_SHOWN ? depth - PATH_STEPS_SHOWN : 0;
    if (from && at + 3 < sizeof e->err) {
        memcpy(e->err + at, "...", 4);
        at += 3;
    }
    for (unsigned d = from; d < depth && at + 1 < sizeof e->err; d++) {
        char step[96];
        const path_step *p = &e->path[d];
        if (!p->key) {
            snprintf(step, sizeof step, "[%zu]", p->index);
        } else {
            uint8_t text[1024];
            size_t len = 0;
            ErlNifBinary bin;
            ErlNifSInt64 i64;
            if (enif_inspect_binary(e->env, p->key, &bin)) {
                path_key(step, sizeof step, bin.data, bin.size);
            } else if (atom_text(e->env, p->key, text, &len)) {
                path_key(step, sizeof step, text, len);
            } else if (enif_get_int64(e->env, p->key, &i64)) {
                snprintf(step, sizeof step, "[\"%lld\"]", (long long)i64);
            } else {
                snprintf(step, sizeof step, "[?]");
            }
        }
        size_t sl = strlen(step);
        if (at + sl >= sizeof e->err) break;
        memcpy(e->err + at, step, sl + 1);
        at += sl;
    }
    return false;
}

static const char *kind_of(ErlNifEnv *env, ERL_NIF_TERM t) {
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_TUPLE:
        return "a tuple";
    case ERL_NIF_TERM_TYPE_PID:
        return "a pid";
    case ERL_NIF_TERM_TYPE_PORT:
        return "a port";
    case ERL_NIF_TERM_TYPE_REFERENCE:
        return "a reference";
    case ERL_NIF_TERM_TYPE_FUN:
        return "a function";
    case ERL_NIF_TERM_TYPE_FLOAT:
        return "a float";
    case ERL_NIF_TERM_TYPE_LIST:
        return "a list";
    case ERL_NIF_TERM_TYPE_MAP:
        return "a map";
    case ERL_NIF_TERM_TYPE_BITSTRING:
        return "a bitstring";
    case ERL_NIF_TERM_TYPE_ATOM:
        return "an atom";
    case ERL_NIF_TERM_TYPE_INTEGER:
        return "an integer";
    default:
        return "this term";
    }
}

/* The UTF-8 text of an atom (at most 255 characters, so 1020 bytes). OTP 25's
 * enif_get_atom only knows Latin-1; atoms beyond it are read from their external
 * format, which holds their UTF-8 text. */
static bool atom_text(ErlNifEnv *env, ERL_NIF_TERM atom, uint8_t *buf, size_t *len) {
    char l1[256];
    int n = enif_get_atom(env, atom, l1, sizeof l1, ERL_NIF_LATIN1);
    if (n > 0) {
        size_t k = 0;
        for (int i = 0; i < n - 1; i++) {
            uint8_t ch = (uint8_t)l1[i];
            if (ch < 0x80) {
                buf[k++] = ch;
            } else {
                buf[k++] = (uint8_t)(0xC0 | ch >> 6);
                buf[k++] = (uint8_t)(0x80 | (ch & 0x3F));
            }
        }
        *len = k;
        return true;
    }
    if (!enif_is_atom(env, atom)) return false;
    ErlNifBinary etf;
    if (!enif_term_to_binary(env, atom, &etf)) return false;
    bool ok = false;
    const uint8_t *p = etf.data;
    size_t size = 0, hdr = 0;
    if (etf.size >= 3 && p[0] == 131 && p[1] == 119) { /* SMALL_ATOM_UTF8_EXT */
        size = p[2], hdr = 3;
    } else if (etf.size >= 4 && p[0] == 131 && p[1] == 118) { /* ATOM_UTF8_EXT */
        size = (size_t)p[2] << 8 | p[3], hdr = 4;
    }
    if (hdr && hdr + size <= etf.size && size <= 1020) {
        memcpy(buf, p + hdr, size);
        *len = size;
        ok = true;
    }
    enif_release_binary(&etf);
    return ok;
}

static const char hexdigits[] = "0123456789abcdef";

/* Whether any of the 8 bytes of w is a control character, '"', '\\' or not ASCII. */
static bool word_needs_care(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
    uint64_t zero_quote = (quote - ones) & ~quote, zero_slash = (slash - ones) & ~slash;
    uint64_t control = w - ones * 0x20; /* high bit set where a byte < 0x20 (or >= 0x80) */
    return ((zero_quote | zero_slash | control | w) & highs) != 0;
}

/* A JSON string of UTF-8 bytes; false (error set by the caller) at the first byte that
 * is not UTF-8, whose offset goes to *bad. */
static bool put_string(enc *e, const uint8_t *s, size_t len, size_t *bad) {
    if (!spend(e, (long)(len / STRING_BYTES_PER_UNIT))) return false;
    if (!reserve(e, len + 2)) return false;
    e->out.data[e->len++] = '"';
    size_t start = 0, i = 0, escapes = 0;
    while (i < len) {
        uint64_t w;
        while (i + 8 <= len && (memcpy(&w, s + i, 8), !word_needs_care(w))) i += 8;
        if (i >= len) break;
        uint8_t b = s[i];
        if (b >= 0x80) { /* a run of non-ASCII characters, checked one by one */
            do {
                size_t k = utf8_seq(s + i, len - i);
                if (!k) {
                    *bad = i;
                    return false;
                }
                i += k;
            } while (i < len && s[i] >= 0x80);
            continue;
        }
        if (b >= 0x20 && b != '"' && b != '\\') {
            i++;
            continue;
        }
        if (!put(e, s + start, i - start)) return false;
        static const char short_esc[0x20] = {
            ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
        char esc[6] = {'\\', b == '"' || b == '\\' ? (char)b : short_esc[b], '0', '0', 0, 0};
        if (!esc[1]) {
            esc[1] = 'u';
            esc[4] = hexdigits[b >> 4];
            esc[5] = hexdigits[b & 15];
        }
        if (!put(e, esc, esc[1] == 'u' ? 6 : 2)) return false;
        start = ++i;
        escapes++;
    }
    return put(e, s + start, len - start) && put_char(e, '"') &&
           spend(e, (long)(escapes / ESCAPES_PER_UNIT));
}

static bool put_int(enc *e, int64_t v) {
    char buf[24];
    size_t k = sizeof buf;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        buf[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) buf[--k] = '-';
    return put(e, buf + k, sizeof buf - k);
}

/* The shortest of %.15g, %.16g and %.17g that reads back as the same double, with
 * ".0" added when it would read as an integer and the exponent without '+' and
 * leading zeros: 1.0 -> 1.0, 0.1 -> 0.1, 1e21 -> 1e21, 1e-07 -> 1e-7. */
static size_t format_double(double d, char *out) {
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (prec == 17 || strtod(buf, NULL) == d) break;
    }
    size_t k = 0;
    bool dot = false;
    for (const char *s = buf; *s; s++) {
        if (*s == ',' || *s == '.') { /* ',' under a locale that writes it so */
            out[k++] = '.';
            dot = true;
        } else if (*s == 'e') {
            if (!dot) {
                memcpy(out + k, ".0", 2);
                k += 2;
                dot = true;
            }
            out[k++] = 'e';
            s++;
            if (*s == '-') out[k++] = '-';
            if (*s == '-' || *s == '+') s++;
            while (*s == '0' && s[1]) s++;
            while (*s) out[k++] = *s++;
            break;
        } else {
            out[k++] = *s;
        }
    }
    if (!dot) {
        memcpy(out + k, ".0", 2);
        k += 2;
    }
    out[k] = 0;
    return k;
}

static bool enc_value(enc *e, ERL_NIF_TERM t, unsigned depth);

typedef struct key_span {
    size_t off, len; /* where the written key is in the output */
} key_span;

static int span_cmp_r(const void *a, const void *b, void *base) {
    const key_span *x = a, *y = b;
    const uint8_t *p = base;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(p + x->off, p + y->off, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

enum { KEY_ATOM = 1, KEY_BINARY = 2, KEY_INTEGER = 4 };

static bool enc_key(enc *e, ERL_NIF_TERM k, unsigned depth, unsigned *kinds) {
    if (!spend(e, 1)) return false;
    ErlNifBinary bin;
    ErlNifSInt64 i64;
    size_t bad = 0;
    if (enif_inspect_binary(e->env, k, &bin)) {
        *kinds |= KEY_BINARY;
        if (put_string(e, bin.data, bin.size, &bad)) return true;
        if (e->over || e->oom) return false;
        return enc_fail(e, depth, "cannot encode a map key that is not UTF-8 (invalid byte at %zu)",
                        bad);
    }
    if (enif_is_atom(e->env, k)) {
        size_t len;
        *kinds |= KEY_ATOM;
        if (!atom_text(e->env, k, e->atom, &len))
            return enc_fail(e, depth, "cannot read an atom key");
        return put_string(e, e->atom, len, &bad);
    }
    if (enif_term_type(e->env, k) == ERL_NIF_TERM_TYPE_INTEGER) {
        *kinds |= KEY_INTEGER;
        if (!enif_get_int64(e->env, k, &i64))
            return enc_fail(e, depth, "cannot encode a map key that is an integer beyond 64 bits");
        return put_char(e, '"') && put_int(e, i64) && put_char(e, '"');
    }
    return enc_fail(e, depth, "cannot encode a map key that is %s", kind_of(e->env, k));
}

static bool enc_map(enc *e, ERL_NIF_TERM m, unsigned depth) {
    ERL_NIF_TERM v;
    if (enif_get_map_value(e->env, m, es_atom.struct_, &v) && enif_is_atom(e->env, v)) {
        uint8_t *name = e->atom;
        size_t len = 0;
        if (!atom_text(e->env, v, name, &len)) len = 0;
        if (len > 7 && memcmp(name, "Elixir.", 7) == 0) name += 7, len -= 7;
        if (len > 100) len = 100;
        for (size_t i = 0; i < len; i++)
            if (name[i] < 0x20 || name[i] >= 0x7f) name[i] = '?';
        return enc_fail(e, depth, "cannot encode a struct (%.*s); convert it to a map first",
                        (int)len, (const char *)name);
    }
    size_t n;
    if (!enif_get_map_size(e->env, m, &n) || !spend(e, (long)n))
        return e->over ? false : enc_fail(e, depth, "cannot read a map");
    /* Keys in Erlang term order (map_order.h): the same text on every OTP. */
    es_map_entry small_entries[16], *entries;
    key_span small[16], *spans = n <= 16 ? small : enif_alloc(n * sizeof *spans);
    if (!spans || !es_map_entries(e->env, m, small_entries, 16, &entries, &n)) {
        if (spans != small) enif_free(spans);
        e->oom = true;
        return false;
    }
    bool ok = put_char(e, '{');
    unsigned kinds = 0;
    size_t i = 0;
    for (; ok && i < n; i++) {
        if (i > 0) ok = put_char(e, ',');
        spans[i].off = e->len;
        ok = ok && enc_key(e, entries[i].key, depth, &kinds);
        spans[i].len = e->len - spans[i].off;
        e->path[depth] = (path_step){entries[i].key, 0};
        ok = ok && put_char(e, ':') && enc_value(e, entries[i].value, depth + 1);
    }
    es_map_entries_free(entries, small_entries);
    ok = ok && put_char(e, '}');
    /* Keys of different kinds may be written the same (:a and "a", 1 and "1"). */
    if (ok && (kinds & (kinds - 1))) {
        qsort_r(spans, n, sizeof *spans, span_cmp_r, e->out.data);
        for (i = 1; ok && i < n; i++) {
            if (span_cmp_r(&spans[i - 1], &spans[i], e->out.data) != 0) continue;
            const key_span *s = &spans[i];
            size_t show = s->len > 60 ? 60 : s->len;
            char text[64];
            for (size_t j = 0; j < show; j++) {
                uint8_t b = e->out.data[s->off + j];
                text[j] = b >= 0x20 && b < 0x7f ? (char)b : '?';
            }
            ok = enc_fail(e, depth, "cannot encode a map with two keys written as %.*s%s",
                          (int)show, text, s->len > show ? "...\"" : "");
        }
    }
    if (spans != small) enif_free(spans);
    return ok;
}

static bool enc_list(enc *e, ERL_NIF_TERM l, unsigned depth) {
    if (!put_char(e, '[')) return false;
    ERL_NIF_TERM head;
    size_t i = 0;
    for (; enif_get_list_cell(e->env, l, &head, &l); i++) {
        if (i > 0 && !put_char(e, ',')) return false;
        e->path[depth] = (path_step){0, i};
        if (!enc_value(e, head, depth + 1)) return false;
    }
    if (!enif_is_empty_list(e->env, l))
        return enc_fail(e, depth, "cannot encode an improper list (its tail is %s)",
                        kind_of(e->env, l));
    return put_char(e, ']');
}

static bool enc_value(enc *e, ERL_NIF_TERM t, unsigned depth) {
    if (!spend(e, 1)) return false;
    ErlNifEnv *env = e->env;
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_ATOM: {
        if (t == es_atom.true_) return put(e, "true", 4);
        if (t == es_atom.false_) return put(e, "false", 5);
        if (t == es_atom.nil) return put(e, "null", 4);
        size_t len, bad;
        if (!atom_text(env, t, e->atom, &len)) return enc_fail(e, depth, "cannot read an atom");
        return spend(e, 1) && put_string(e, e->atom, len, &bad);
    }
    case ERL_NIF_TERM_TYPE_BITSTRING: {
        ErlNifBinary bin;
        size_t bad = 0;
        if (!enif_inspect_binary(env, t, &bin))
            return enc_fail(e, depth, "cannot encode a bitstring that is not a binary");
        if (put_string(e, bin.data, bin.size, &bad)) return true;
        if (e->over || e->oom) return false;
        return enc_fail(e, depth, "cannot encode a binary that is not UTF-8 (invalid byte at %zu)",
                        bad);
    }
    case ERL_NIF_TERM_TYPE_FLOAT: {
        double d;
        char buf[48];
        if (!enif_get_double(env, t, &d)) return enc_fail(e, depth, "cannot read a float");
        return spend(e, FLOAT_UNITS - 1) && put(e, buf, format_double(d, buf));
    }
    case ERL_NIF_TERM_TYPE_INTEGER: {
        ErlNifSInt64 v;
        if (!enif_get_int64(env, t, &v))
            return enc_fail(e, depth, "cannot encode an integer beyond 64 bits");
        return put_int(e, v);
    }
    case ERL_NIF_TERM_TYPE_LIST:
        if (depth >= ES_JSON_MAX_DEPTH) return enc_fail(e, depth, "nesting deeper than 128 levels");
        return enc_list(e, t, depth);
    case ERL_NIF_TERM_TYPE_MAP:
        if (depth >= ES_JSON_MAX_DEPTH) return enc_fail(e, depth, "nesting deeper than 128 levels");
        return enc_map(e, t, depth);
    default:
        return enc_fail(e, depth, "cannot encode %s", kind_of(env, t));
    }
}

static ERL_NIF_TERM encode_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

static ERL_NIF_TERM encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], bool dirty) {
    enc *e = enif_alloc(sizeof *e);
    if (!e) return make_error(env, "out of memory");
    e->env = env;
    e->len = 0;
    e->budget = ENCODE_NORMAL_BUDGET;
    e->limited = !dirty;
    e->over = e->oom = false;
    e->err[0] = 0;
    if (!enif_alloc_binary(256, &e->out)) {
        enif_free(e);
        return make_error(env, "out of memory");
    }
    ERL_NIF_TERM result;
    if (enc_value(e, argv[0], 0)) {
        bool shrunk = e->out.size == e->len || enif_realloc_binary(&e->out, e->len);
        ERL_NIF_TERM bin = enif_make_binary(env, &e->out);
        if (!shrunk) bin = enif_make_sub_binary(env, bin, 0, e->len);
        result = enif_make_tuple2(env, es_atom.ok, bin);
    } else {
        enif_release_binary(&e->out);
        if (e->over)
            result = enif_schedule_nif(env, "json_encode", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                       encode_dirty, argc, argv);
        else
            result = make_error(env, "%s", e->oom ? "out of memory" : e->err);
    }
    enif_free(e);
    return result;
}

static ERL_NIF_TERM encode_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return encode(env, argc, argv, true);
}

ERL_NIF_TERM es_nif_json_encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return encode(env, argc, argv, false);
}
