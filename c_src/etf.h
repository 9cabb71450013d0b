/*
 * etf.h — external term format encoding into a caller-owned growable buffer.
 *
 * Contract: etf_term() appends the encoding of one term (without the 131 version
 * byte). Small terms — integers, floats, atoms, short binaries, and lists, tuples
 * and maps of those — are encoded directly, which costs a fraction of
 * enif_term_to_binary() and allocates nothing; anything else (pids, refs, funs,
 * big terms) is delegated to enif_term_to_binary() and copied in. The result decodes
 * with binary_to_term/1 to an identical term.
 *
 * etf_map_*() build a map payload from named fields: the payload format every
 * event in the store uses, written without building the map as a term first.
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

bool etf_term(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* A whole term_to_binary/1 image: version byte + term. */
bool etf_encode(ErlNifEnv *env, etf_buf *b, ERL_NIF_TERM t);

/* Starts a map payload (version byte included); add fields; then etf_map_end(). */
bool etf_map_begin(etf_buf *b);
bool etf_map_term(ErlNifEnv *env, etf_buf *b, const char *key, ERL_NIF_TERM value);
bool etf_map_int(etf_buf *b, const char *key, int64_t value);
bool etf_map_atom(etf_buf *b, const char *key, const char *atom);
/* A field whose value is already encoded (a term_to_binary image, version byte included). */
bool etf_map_encoded(etf_buf *b, const char *key, const uint8_t *image, size_t len);
void etf_map_end(etf_buf *b);

#endif
