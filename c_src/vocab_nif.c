/*
 * vocab_nif.c — the event vocabulary (vocab.h) on the NIF side: the atoms of its rows,
 * their type keys in a store, and the vocabulary/0 NIF through which Elixir reads the
 * table (ElixirScope.TraceDB.vocabulary/0).
 *
 * Thread-safety: the atoms are made once at load; the rest reads constant data or the
 * store's lock-free key tables.
 */
#include "codec.h"
#include "nif.h"

ERL_NIF_TERM es_vocab_atom[ES_EV_COUNT], es_vocab_hashed_atom[ES_EV_COUNT];

void es_vocab_load(ErlNifEnv *env) {
    for (int i = 0; i < ES_EV_COUNT; i++) {
        es_vocab_atom[i] = enif_make_atom(env, es_vocab[i].name);
        es_vocab_hashed_atom[i] =
            es_vocab[i].hashed_field ? enif_make_atom(env, es_vocab[i].hashed_field) : 0;
    }
}

int es_vocab_row_of(ERL_NIF_TERM type) {
    for (int i = 0; i < ES_EV_COUNT; i++)
        if (es_vocab_atom[i] == type) return i;
    return -1;
}

es_key *es_vocab_key(es_store *s, int row, bool create) {
    return es_codec_atom_key(&es_store_tables(s)->type, es_vocab_atom[row], create);
}

void es_vocab_role_keys(es_store *s, int role, es_keyset *out) {
    out->n = 0;
    for (int i = 0; i < ES_EV_COUNT; i++) {
        es_key *k = es_vocab[i].lifecycle == role ? es_vocab_key(s, i, false) : NULL;
        if (k) es_keyset_add(out, k);
    }
}

static const char *const categories[] = {"lifecycle", "messages", "calls", "states", "crashes"};
static const char *const roles[] = {"none", "born", "died", "link", "unlink", "named", "unnamed"};
static const char *const indexes[] = {"pid", "from_pid", "to_pid", "module", "function", "arity"};

static ERL_NIF_TERM names_of_bits(ErlNifEnv *env, unsigned bits, const char *const names[], int n) {
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (int i = n; i-- > 0;)
        if (bits >> i & 1) list = enif_make_list_cell(env, enif_make_atom(env, names[i]), list);
    return list;
}

/* vocabulary() -> %{types: [row], levels: [%{level, categories, mask}]}, in table order. */
ERL_NIF_TERM es_nif_vocabulary(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    ERL_NIF_TERM types = enif_make_list(env, 0), levels = enif_make_list(env, 0);
    static const char *const row_keys[] = {"type",      "category", "critical",
                                           "lifecycle", "indexes",  "hashed_field"};
    for (int i = ES_EV_COUNT; i-- > 0;) {
        const es_vocab_row *r = &es_vocab[i];
        ERL_NIF_TERM cat = r->category ? enif_make_atom(env, categories[__builtin_ctz(r->category)])
                                       : enif_make_atom(env, "reported");
        ERL_NIF_TERM vals[] = {es_vocab_atom[i],
                               cat,
                               r->critical ? es_atom.true_ : es_atom.false_,
                               enif_make_atom(env, roles[r->lifecycle]),
                               names_of_bits(env, r->indexes, indexes, 6),
                               es_vocab_hashed_atom[i] ? es_vocab_hashed_atom[i] : es_atom.nil};
        types = enif_make_list_cell(env, es_named_map(env, row_keys, vals, 6), types);
    }
    static const char *const level_keys[] = {"level", "categories", "mask"};
    for (int i = ES_LEVEL_COUNT; i-- > 0;) {
        ERL_NIF_TERM vals[] = {enif_make_atom(env, es_levels[i].name),
                               names_of_bits(env, es_levels[i].mask, categories, 5),
                               enif_make_uint(env, es_levels[i].mask)};
        levels = enif_make_list_cell(env, es_named_map(env, level_keys, vals, 3), levels);
    }
    static const char *const top[] = {"types", "levels"};
    ERL_NIF_TERM vals[] = {types, levels};
    return es_named_map(env, top, vals, 2);
}
