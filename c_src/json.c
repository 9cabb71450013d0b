/*
 * json.c — JSON decode (checked in full here, parsed by cJSON) and encode (written
 * directly). See json.h for the contract, the mapping and the limits.
 *
 * Why the input is checked before cJSON sees it: cJSON 1.7.15 accepts much that is
 * not JSON — any byte <= 0x20 (NUL included) as whitespace, raw control characters in
 * strings, numbers like 01, 1. and -.5, a leading UTF-8 BOM, bytes that are not UTF-8
 * — and turns "\u0000" into a NUL that silently ends the string. It stops at the end
 * of the first value, so trailing data has to be caught by the caller, and with
 * require_null_terminated it only works when the terminating NUL is inside the given
 * length. Numbers past a double's range come out as inf, which is no Erlang float. So
 * one strict pass (check_text()) validates the grammar, the limits and the string escapes,
 * and cJSON then only parses text known to be good, from a NUL-terminated copy.
 *
 * Thread-safety: no state of its own; see json.h.
 */
#include "json.h"
#include "codec.h"
#include "map_order.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MAX 400        /* bytes of an error message */
#define PATH_STEPS_SHOWN 8 /* the last steps of a path in an error message */

static ERL_NIF_TERM make_error(ErlNifEnv *env, const char *fmt, ...) {
    char msg[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    ERL_NIF_TERM bin;
    memcpy(enif_make_new_binary(env, len, &bin), msg, len);
    return enif_make_tuple2(env, es_atom.error, bin);
}

/* ---- UTF-8 ----------------------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence that starts p[0] (n > 0 bytes left), or
 * 0 when there is none: no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

/* The offset of the first byte that is not part of well-formed UTF-8, or n. */
static size_t utf8_invalid_at(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ull))) {
            i += 8; /* eight ASCII bytes */
        } else if (p[i] < 0x80) {
            i++;
        } else {
            size_t k = utf8_seq(p + i, n - i);
            if (!k) return i;
            i += k;
        }
    }
    return n;
}

/* ---- the strict pass ------------------------------------------------------------- */

typedef struct check {
    const uint8_t *p;
    size_t n;
    size_t values; /* values and keys seen, fractions twice: what building will cost */
    size_t at;     /* the error's byte offset */
    const char *why;
    bool grammar;   /* the error is a grammar error ("invalid JSON at ...") */
    bool find_huge; /* also reject numbers beyond a double's range */
} check;

static bool fail(check *c, size_t at, bool grammar, const char *why) {
    c->at = at;
    c->why = why;
    c->grammar = grammar;
    return false;
}

static bool is_ws(uint8_t b) {
    return b == ' ' || b == '\t' || b == '\n' || b == '\r';
}
static bool is_digit(uint8_t b) {
    return b >= '0' && b <= '9';
}

static size_t skip_ws(const check *c, size_t i) {
    while (i < c->n && is_ws(c->p[i])) i++;
    return i;
}

static bool hex4(const check *c, size_t i, uint32_t *out) {
    if (i > c->n || c->n - i < 4) return false;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        uint8_t b = c->p[i + k];
        int d = is_digit(b)                              ? b - '0'
                : (b | 0x20) >= 'a' && (b | 0x20) <= 'f' ? (b | 0x20) - 'a' + 10
                                                         : -1;
        if (d < 0) return false;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

/* A string whose opening quote is at *i; leaves *i after the closing one. The text is
 * known to be UTF-8 already. */
static bool scan_string(check *c, size_t *i) {
    size_t j = *i + 1;
    for (;;) {
        while (j < c->n && c->p[j] >= 0x20 && c->p[j] != '"' && c->p[j] != '\\') j++;
        if (j >= c->n) return fail(c, *i, true, "unterminated string");
        uint8_t b = c->p[j];
        if (b == '"') break;
        if (b < 0x20) return fail(c, j, true, "control character in a string (must be escaped)");
        /* a backslash */
        if (j + 1 >= c->n) return fail(c, *i, true, "unterminated string");
        b = c->p[j + 1];
        if (b == 'u') {
            uint32_t u, lo;
            if (!hex4(c, j + 2, &u)) return fail(c, j, true, "\\u needs four hex digits");
            if (u == 0) return fail(c, j, false, "\\u0000 in a string is not supported");
            if (u >= 0xDC00 && u <= 0xDFFF)
                return fail(c, j, false, "unpaired UTF-16 surrogate in a \\u escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (c->n - j < 12 || c->p[j + 6] != '\\' || c->p[j + 7] != 'u' ||
                    !hex4(c, j + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(c, j, false, "unpaired UTF-16 surrogate in a \\u escape");
                j += 12;
            } else {
                j += 6;
            }
        } else if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' ||
                   b == 'r' || b == 't') {
            j += 2;
        } else {
            return fail(c, j, true, "invalid escape in a string");
        }
    }
    *i = j + 1;
    return true;
}

static bool scan_number(check *c, size_t *i) {
    const uint8_t *p = c->p;
    size_t j = *i, n = c->n;
    if (p[j] == '-') j++;
    if (j >= n || !is_digit(p[j])) return fail(c, j, true, "expected a digit");
    if (p[j] == '0') {
        j++;
        if (j < n && is_digit(p[j])) return fail(c, j, true, "leading zero in a number");
    } else {
        while (j < n && is_digit(p[j])) j++;
    }
    bool fraction = j < n && (p[j] == '.' || p[j] == 'e' || p[j] == 'E');
    if (j < n && p[j] == '.') {
        j++;
        if (j >= n || !is_digit(p[j])) return fail(c, j, true, "expected a digit after '.'");
        while (j < n && is_digit(p[j])) j++;
    }
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        j++;
        if (j < n && (p[j] == '+' || p[j] == '-')) j++;
        if (j >= n || !is_digit(p[j])) return fail(c, j, true, "expected a digit in the exponent");
        while (j < n && is_digit(p[j])) j++;
    }
    if (j - *i > ES_JSON_MAX_NUMBER_CHARS)
        return fail(c, *i, false, "number longer than 63 characters");
    if (fraction) c->values++; /* strtod costs twice as much on these: count them twice */
    if (c->find_huge) {
        char buf[ES_JSON_MAX_NUMBER_CHARS + 1];
        memcpy(buf, p + *i, j - *i);
        buf[j - *i] = 0;
        if (!isfinite(strtod(buf, NULL)))
            return fail(c, *i, false, "number out of range (beyond a double's +/-1.8e308)");
    }
    *i = j;
    return true;
}

static bool scan_literal(check *c, size_t *i, const char *word, size_t len) {
    if (c->n - *i < len || memcmp(c->p + *i, word, len) != 0)
        return fail(c, *i, true, "expected a value");
    *i += len;
    return true;
}

/* Checks the whole text; false with c->why and c->at set at the first problem. No
 * recursion: a stack of the open containers, ES_JSON_MAX_DEPTH deep at most. */
static bool check_text(check *c) {
    uint8_t open[ES_JSON_MAX_DEPTH]; /* '{' or '[' */
    unsigned depth = 0;
    size_t i = skip_ws(c, 0);
    if (i >= c->n) return fail(c, i, true, "no value (empty input)");
value:
    if (i >= c->n) return fail(c, i, true, "unexpected end of input");
    switch (c->p[i]) {
    case '{':
    case '[':
        if (depth == ES_JSON_MAX_DEPTH) return fail(c, i, false, "nesting deeper than 128 levels");
        open[depth++] = c->p[i];
        i = skip_ws(c, i + 1);
        if (i < c->n && c->p[i] == (open[depth - 1] == '{' ? '}' : ']')) {
            depth--;
            i++;
            goto after;
        }
        if (open[depth - 1] == '{') goto key;
        goto value;
    case '"':
        if (!scan_string(c, &i)) return false;
        goto after;
    case 't':
        if (!scan_literal(c, &i, "true", 4)) return false;
        goto after;
    case 'f':
        if (!scan_literal(c, &i, "false", 5)) return false;
        goto after;
    case 'n':
        if (!scan_literal(c, &i, "null", 4)) return false;
        goto after;
    default:
        if (c->p[i] != '-' && !is_digit(c->p[i])) return fail(c, i, true, "expected a value");
        if (!scan_number(c, &i)) return false;
        goto after;
    }
key:
    if (i >= c->n) return fail(c, i, true, "unexpected end of input");
    if (c->p[i] != '"') return fail(c, i, true, "expected a string key");
    if (!scan_string(c, &i)) return false;
    c->values++;
    i = skip_ws(c, i);
    if (i >= c->n || c->p[i] != ':') return fail(c, i, true, "expected ':'");
    i = skip_ws(c, i + 1);
    goto value;
after:
    c->values++;
    i = skip_ws(c, i);
    if (depth == 0) {
        if (i != c->n) return fail(c, i, true, "unexpected data after the value");
        return true;
    }
    if (i >= c->n) return fail(c, i, true, "unexpected end of input");
    if (c->p[i] == ',') {
        i = skip_ws(c, i + 1);
        if (open[depth - 1] == '{') goto key;
        goto value;
    }
    if (c->p[i] == (open[depth - 1] == '{' ? '}' : ']')) {
        depth--;
        i++;
        goto after;
    }
    return fail(c, i, true, open[depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static ERL_NIF_TERM check_error(ErlNifEnv *env, const check *c) {
    if (c->grammar) return make_error(env, "invalid JSON at byte %zu: %s", c->at, c->why);
    return make_error(env, "%s at byte %zu", c->why, c->at);
}

/* ---- cJSON tree to terms --------------------------------------------------------- */

typedef struct build {
    ErlNifEnv *env;
    const char *err;
    bool huge; /* a number beyond a double's range (cJSON made it inf) */
} build;

#define TWO_POW_53 9007199254740992.0

static bool to_term(build *b, const cJSON *item, ERL_NIF_TERM *out);

static bool string_term(build *b, const char *s, ERL_NIF_TERM *out) {
    if (!s) {
        b->err = "cJSON returned a string without text";
        return false;
    }
    size_t len = strlen(s);
    unsigned char *dst = enif_make_new_binary(b->env, len, out);
    if (!dst) {
        b->err = "out of memory";
        return false;
    }
    memcpy(dst, s, len);
    return true;
}

static bool object_term(build *b, const cJSON *obj, ERL_NIF_TERM *out) {
    size_t n = 0;
    for (const cJSON *it = obj->child; it; it = it->next) n++;
    ERL_NIF_TERM small[2 * 16], *kv = n <= 16 ? small : enif_alloc(2 * n * sizeof *kv);
    if (!kv) {
        b->err = "out of memory";
        return false;
    }
    size_t i = 0;
    bool ok = true;
    for (const cJSON *it = obj->child; ok && it; it = it->next, i++)
        ok = string_term(b, it->string, &kv[i]) && to_term(b, it, &kv[n + i]);
    size_t size;
    if (ok && (!enif_make_map_from_arrays(b->env, kv, kv + n, n, out) ||
               !enif_get_map_size(b->env, *out, &size) || size != n)) {
        /* Repeated keys: put them one by one, so the last one wins. (With more than 32
         * keys, OTP releases without the fix of erlang/otp#10975 return a map instead of
         * failing, one that is not well-formed when fewer than 33 keys remain.) */
        *out = enif_make_new_map(b->env);
        for (i = 0; i < n; i++) enif_make_map_put(b->env, *out, kv[i], kv[n + i], out);
    }
    if (kv != small) enif_free(kv);
    return ok;
}

static bool to_term(build *b, const cJSON *item, ERL_NIF_TERM *out) {
    if (cJSON_IsObject(item)) return object_term(b, item, out);
    if (cJSON_IsArray(item)) {
        ERL_NIF_TERM list = enif_make_list(b->env, 0);
        const cJSON *first = item->child;
        /* the first element's prev is the last one: build the list from the back */
        for (const cJSON *it = first ? first->prev : NULL; it; it = it == first ? NULL : it->prev) {
            ERL_NIF_TERM v;
            if (!to_term(b, it, &v)) return false;
            list = enif_make_list_cell(b->env, v, list);
        }
        *out = list;
        return true;
    }
    if (cJSON_IsString(item)) return string_term(b, item->valuestring, out);
    if (cJSON_IsNumber(item)) {
        double d = item->valuedouble;
        if (!isfinite(d)) {
            b->huge = true;
            b->err = "number out of range (beyond a double's +/-1.8e308)";
            return false;
        }
        if (d >= -TWO_POW_53 && d <= TWO_POW_53 && d == (double)(int64_t)d)
            *out = enif_make_int64(b->env, (int64_t)d);
        else
            *out = enif_make_double(b->env, d);
        return true;
    }
    if (cJSON_IsTrue(item)) {
        *out = es_atom.true_;
        return true;
    }
    if (cJSON_IsFalse(item)) {
        *out = es_atom.false_;
        return true;
    }
    if (cJSON_IsNull(item)) {
        *out = es_atom.nil;
        return true;
    }
    b->err = "cJSON returned a value of unknown type";
    return false;
}

/* ---- decode ---------------------------------------------------------------------- */

/* Building costs about 100 ns a value (cJSON's node and strtod, then the term) and
 * 3 ns a byte of strings: a value is one unit of work, and so are 32 bytes of text. */
#define DECODE_BYTES_PER_UNIT 32

static ERL_NIF_TERM decode_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

static ERL_NIF_TERM decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], bool dirty) {
    ErlNifBinary in;
    ErlNifUInt64 max;
    if (!enif_inspect_binary(env, argv[0], &in))
        return es_raise_arg(env, "JSON text must be a binary");
    if (!enif_get_uint64(env, argv[1], &max))
        return es_raise_arg(env, "max_bytes must be a non-negative integer");
    if (in.size > max)
        return make_error(env, "input is %zu bytes, more than the maximum of %llu", in.size,
                          (unsigned long long)max);
    if (!dirty && in.size > ES_JSON_NORMAL_BYTES)
        return enif_schedule_nif(env, "json_decode", ERL_NIF_DIRTY_JOB_CPU_BOUND, decode_dirty,
                                 argc, argv);
    size_t bad = utf8_invalid_at(in.data, in.size);
    if (bad < in.size) return make_error(env, "not UTF-8: invalid byte sequence at byte %zu", bad);
    check c = {.p = in.data, .n = in.size};
    if (!check_text(&c)) return check_error(env, &c);
    if (!dirty && c.values + in.size / DECODE_BYTES_PER_UNIT > ES_JSON_NORMAL_WORK)
        return enif_schedule_nif(env, "json_decode", ERL_NIF_DIRTY_JOB_CPU_BOUND, decode_dirty,
                                 argc, argv);

    /* cJSON gets a NUL-terminated copy: whatever it does, it cannot read past it. */
    char *text = enif_alloc(in.size + 1);
    if (!text) return make_error(env, "out of memory");
    memcpy(text, in.data, in.size);
    text[in.size] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, in.size, &end, 0);
    size_t stop = end ? (size_t)(end - text) : 0;
    enif_free(text);
    if (!root)
        return make_error(env, "cJSON could not parse the input (out of memory?) at byte %zu",
                          stop);
    /* The check above saw one value and whitespace; cJSON must agree. */
    if (skip_ws(&c, stop) != in.size) {
        cJSON_Delete(root);
        return make_error(env, "cJSON stopped at byte %zu of %zu", stop, in.size);
    }
    build b = {env, NULL, false};
    ERL_NIF_TERM term;
    bool ok = to_term(&b, root, &term);
    cJSON_Delete(root);
    if (ok) return enif_make_tuple2(env, es_atom.ok, term);
    if (b.huge) {
        /* Rare: go back over the text to say which number it was. */
        check again = {.p = in.data, .n = in.size, .find_huge = true};
        if (!check_text(&again)) return check_error(env, &again);
    }
    return make_error(env, "%s", b.err);
}

static ERL_NIF_TERM decode_dirty(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return decode(env, argc, argv, true);
}

ERL_NIF_TERM es_nif_json_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    return decode(env, argc, argv, false);
}

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
