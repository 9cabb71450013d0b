/*
 * json_decode.c — JSON decode: checked in full here, parsed by cJSON. See json.h for
 * the contract, the mapping and the limits.
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
#include "json_text.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

/* ---- UTF-8 ----------------------------------------------------------------------- */

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
