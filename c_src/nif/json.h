/*
 * json.h — JSON text to terms and back, for the MCP server and anything else that
 * talks JSON to the outside world (module ElixirScope.JSON).
 *
 * Decode, json_decode(binary, max_bytes) -> {:ok, term} | {:error, message}:
 *   the input is checked whole before anything is built: its size against max_bytes,
 *   UTF-8 (strict: no overlong forms, no encoded surrogates), then one strict RFC 8259
 *   pass that also enforces the limits below and reports the byte offset of the first
 *   problem. Only text that passes is handed to cJSON, whose own parser is lenient
 *   (leading zeros, "1.", control bytes as whitespace, raw control characters in
 *   strings, a BOM, \u0000 cutting a string short): see json.c.
 *   Mapping: object -> map with binary keys (a repeated key: the last one wins),
 *   array -> list, string -> binary, number -> integer when its double value is
 *   integral and |x| <= 2^53, else float; true/false -> true/false, null -> nil.
 *   No atom is ever created from the input.
 *   Limits: nesting 128 levels, number tokens of at most 63 characters (what upstream
 *   cJSON 1.7.15 reads whole; longer ones are no use as doubles anyway), numbers within
 *   a double's range, no \u0000 (encode writes NUL bytes as \u0000, which decode then
 *   refuses) and no unpaired surrogate escapes in strings.
 *
 * Encode, json_encode(term) -> {:ok, binary} | {:error, message}: written directly
 *   into a growing binary. Maps -> objects (keys: atoms, UTF-8 binaries, integers as
 *   decimal strings, written in Erlang term order of the keys — integers, then atoms
 *   by name, then binaries byte by byte — whatever the OTP's map iteration order;
 *   keys that collide once written, like :a and "a", are an error;
 *   structs are an error), lists -> arrays, UTF-8 binaries -> strings (", \ and
 *   control characters escaped, everything else as is), 64-bit integers -> numbers,
 *   floats -> the shortest of %.15g/%.16g/%.17g that reads back the same (always with
 *   a '.' or an exponent), true/false/nil -> true/false/null, other atoms -> strings.
 *   Anything else (tuples, pids, ports, references, funs, improper lists, bitstrings,
 *   integers beyond 64 bits, binaries that are not UTF-8) and nesting deeper than 128
 *   is an error that names the kind of term and where it sits ("at $.result[2]").
 *
 * Scheduling: decode inputs over ES_JSON_NORMAL_BYTES, or whose values (keys included,
 * numbers with a fraction or exponent twice) plus bytes/32 exceed ES_JSON_NORMAL_WORK,
 * and encodes that spend a normal scheduler's budget of
 * work (json.c: about 4000 terms, fewer floats, 64 KB of strings) are rerun on a dirty
 * CPU scheduler, so a call on a normal scheduler stays within about 0.25 ms on an idle machine.
 *
 * Thread-safety: pure functions of their arguments; any scheduler, any number at once.
 * cJSON is used without hooks (its default malloc/free, so nothing process-wide is
 * changed). Its one global, the error position behind cJSON_GetErrorPtr(), is reset
 * by every parse from whatever thread: never read it (nothing here does).
 */
#ifndef ES_JSON_H
#define ES_JSON_H

#include <erl_nif.h>

#define ES_JSON_MAX_DEPTH 128
#define ES_JSON_MAX_NUMBER_CHARS 63
#define ES_JSON_NORMAL_BYTES (64u << 10)
#define ES_JSON_NORMAL_WORK 2000u

ERL_NIF_TERM es_nif_json_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM es_nif_json_encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
