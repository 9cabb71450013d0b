/*
 * etf.h — the store's payload term format: encoding into a caller-owned buffer, and
 * decoding back to terms.
 *
 * Format: Erlang's external term format (version byte 131 first) with two private
 * tags that keep a round trip cheap inside one running VM:
 *   ES_ATOM_REF  (200) + 8 bytes: an atom as its term word. Atoms are global and never
 *                move, so decoding needs no atom-table lookup (with standard ETF those
 *                lookups are a quarter of decoding time, under a read lock).
 *   ES_ETF_BLOB  (201) + u32 length + a term_to_binary image: any term the direct
 *                encoder leaves to enif_term_to_binary (pids, refs, funs, ports,
 *                big integers, bitstrings, large or deep terms).
 * Everything else — small/big integers up to 64 bits, floats, binaries, lists
 * (improper too), tuples and maps — is standard ETF. Payloads in this format are
 * only valid in the VM that wrote them; persisting them means converting atom
 * references to text.
 *
 * etf_map_*() build a map payload from fields, the format of every stored event,
 * without building the map as a term first.
 *
 * Thread-safety: a buffer belongs to one thread at a time; no shared state.
 */
#ifndef ES_ETF_H
#define ES_ETF_H

#include <erl_nif.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etf_buf {
    uint8_t *data;
    size_t len, cap;
    size_t map_at;       /* where the open map's arity goes */
    uint32_t map_fields; /* fields written so far */
} etf_buf;

void etf_reset(etf_buf *b);
void etf_free(etf_buf *b);

/* Appends one term (no version byte). */
bool etf_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* A whole payload image: version byte + term. */
bool etf_encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* Decodes a whole image written by this module; false when it is malformed. */
bool etf_decode(ErlNifEnv *env, const uint8_t *data, size_t len, ERL_NIF_TERM *out);

/* Starts a map payload (version byte included); add fields; then etf_map_end(). */
bool etf_map_begin(etf_buf *b);
bool etf_map_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM key, ERL_NIF_TERM value);
bool etf_map_int(etf_buf *b, ERL_NIF_TERM key, int64_t value);
/* A field whose value is already encoded (an etf_encode() image, version included). */
bool etf_map_encoded(etf_buf *b, ERL_NIF_TERM key, const uint8_t *image, size_t len);
void etf_map_end(etf_buf *b);

#endif
