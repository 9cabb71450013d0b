/*
 * redact.h — secrets out of a term before it is stored: the value of every key whose
 * name contains one of a list of patterns, whatever its case, becomes "[REDACTED]", at
 * any depth. The rule of ElixirScope.Phoenix.Capture's redaction (which the Phoenix
 * handler applies to params, session and assigns), for what the tracer records of a
 * GenServer watched through a redacting view (a LiveView's assigns, and the messages
 * that changed them).
 *
 * Contract: es_redact() returns `term` with, in every map (structs included, their
 * __struct__ key aside), every keyword list and every {key, value} tuple, the value of
 * each atom or binary key that contains a pattern replaced by the binary "[REDACTED]";
 * the rest of the term is walked (lists, improper ones too, tuples, map values) down to
 * ES_REDACT_DEPTH levels, below which terms are kept as they are. Keys are compared in
 * ASCII lowercase (patterns are given lowercase). A term with nothing to redact comes
 * back as the same term: nothing is built for it.
 *
 * LiveView sends a form's fields url-encoded in one binary: the "value" of a map whose
 * "type" is "form" (the payload of a form event's Phoenix.Socket.Message). Its fields
 * are redacted by their decoded names too: "user%5Bpassword%5D=x" becomes
 * "user%5Bpassword%5D=%5BREDACTED%5D".
 *
 * Thread-safety: patterns are read-only once set; any number of callers at once.
 */
#ifndef ES_REDACT_H
#define ES_REDACT_H

#include <erl_nif.h>
#include <stdbool.h>
#include <stddef.h>

#define ES_REDACT_PATTERNS 32 /* patterns a list holds */
#define ES_REDACT_LEN 64      /* bytes of one pattern */
#define ES_REDACT_DEPTH 64

typedef struct es_patterns {
    char p[ES_REDACT_PATTERNS][ES_REDACT_LEN];
    size_t len[ES_REDACT_PATTERNS];
    unsigned n;
} es_patterns;

/* Reads a list of binaries (lowercased here) into p; false when it is not one, or
 * holds too many, empty or too long ones. */
bool es_patterns_get(ErlNifEnv *env, ERL_NIF_TERM list, es_patterns *p);

ERL_NIF_TERM es_redact(ErlNifEnv *env, ERL_NIF_TERM term, const es_patterns *p);

#endif
