/*
 * json_text.h — what the JSON decoder (json_decode.c) and encoder (json_encode.c)
 * share: error results, UTF-8 sequences and digits. See json.h for the contract.
 *
 * Thread-safety: pure functions.
 */
#ifndef ES_JSON_TEXT_H
#define ES_JSON_TEXT_H

#include "codec.h"
#include "json.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ERR_MAX 400        /* bytes of an error message */
#define PATH_STEPS_SHOWN 8 /* the last steps of a path in an error message */

static inline ERL_NIF_TERM make_error(ErlNifEnv *env, const char *fmt, ...) {
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

/* The length of the well-formed UTF-8 sequence that starts p[0] (n > 0 bytes left), or
 * 0 when there is none: no overlong forms, no surrogates, nothing past U+10FFFF. */
static inline size_t utf8_seq(const uint8_t *p, size_t n) {
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

static inline bool is_digit(uint8_t b) {
    return b >= '0' && b <= '9';
}

#endif
