/*
 * vocab_nif.c — the event vocabulary (vocab.h) on the NIF side: the atoms of its rows,
 * their type keys in a store, and the vocabulary/0 NIF through which Elixir reads the
 * table (ElixirScope.TraceDB.vocabulary/0).
 *
 * Thread-safety: the atoms are made once at load; the rest reads constant data or the
 * store's lock-free key tables.
 */
#include "codec.h"
#include "etf.h"
#include "nif.h"

ERL_NIF_TERM es_vocab_atom[ES_EV_COUNT], es_vocab_hashed_atom[ES_EV_COUNT];

/* Variant rows: the field's atom, each value's atom, and each value as a payload holds
 * it (for the predicates of es_vocab_role_variants). */
static ERL_NIF_TERM variant_field[ES_EV_COUNT], variant_value[ES_EV_COUNT][ES_VARIANTS];
static uint8_t variant_bytes[ES_EV_COUNT][ES_VARIANTS][16];
static uint32_t variant_len[ES_EV_COUNT][ES_VARIANTS];

void es_vocab_load(ErlNifEnv *env) {
    for (int i = 0; i < ES_EV_COUNT; i++) {
        const es_vocab_row *r = &es_vocab[i];
        es_vocab_atom[i] = enif_make_atom(env, r->name);
        es_vocab_hashed_atom[i] = r->hashed_field ? enif_make_atom(env, r->hashed_field) : 0;
        variant_field[i] = r->variant_field ? enif_make_atom(env, r->variant_field) : 0;
        for (int v = 0; variant_field[i] && v < ES_VARIANTS && r->variants[v].value; v++) {
            variant_value[i][v] = enif_make_atom(env, r->variants[v].value);
            etf_buf b = {0};
            if (etf_field_term(env, &b, variant_value[i][v]) && b.len <= 16) {
                memcpy(variant_bytes[i][v], b.data, b.len);
                variant_len[i][v] = (uint32_t)b.len;
            }
            etf_free(&b);
        }
    }
}

const es_vocab_variant *es_vocab_variant_of(ErlNifEnv *env, int row, ERL_NIF_TERM event) {
    ERL_NIF_TERM value;
    if (row < 0 || !variant_field[row] ||
        !enif_get_map_value(env, event, variant_field[row], &value))
        return NULL;
    for (int v = 0; v < ES_VARIANTS && variant_value[row][v]; v++)
        if (variant_value[row][v] == value) return &es_vocab[row].variants[v];
    return NULL;
}

bool es_vocab_peer_is_sender(ERL_NIF_TERM type) {
    for (int i = 0; i < ES_EV_COUNT; i++)
        if (es_vocab[i].peer_is_sender && es_vocab_atom[i] == type) return true;
    return false;
}

/* The payload values of a row's variants of one role, as pointers and lengths. */
static const uint8_t *role_vals[ES_EV_COUNT][ES_LC_UNNAMED + 1][ES_VARIANTS];
static uint32_t role_lens[ES_EV_COUNT][ES_LC_UNNAMED + 1][ES_VARIANTS];

uint32_t es_vocab_role_variants(es_store *s, int role, es_role_variant *out, uint32_t max) {
    uint32_t n = 0;
    for (int i = 0; i < ES_EV_COUNT && n < max; i++) {
        if (!variant_field[i]) continue;
        uint32_t k = 0;
        for (int v = 0; v < ES_VARIANTS && variant_value[i][v]; v++)
            if (es_vocab[es_vocab[i].variants[v].as].lifecycle == role && variant_len[i][v]) {
                role_vals[i][role][k] = variant_bytes[i][v];
                role_lens[i][role][k++] = variant_len[i][v];
            }
        es_key *type = k ? es_vocab_key(s, i, false) : NULL;
        if (!type) continue;
        out[n] = (es_role_variant){.type = type};
        out[n].pred = (es_pred){.field = (uint64_t)variant_field[i],
                                .op = ES_OP_EQ,
                                .vals = role_vals[i][role],
                                .lens = role_lens[i][role],
                                .nvals = k};
        n++;
    }
    return n;
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

/* A variant row's %{field: atom, values: [%{value, as}]}, or nil: `as` the type an
 * event with that value stands for. */
static ERL_NIF_TERM variants_term(ErlNifEnv *env, int row) {
    if (!variant_field[row]) return es_atom.nil;
    static const char *const keys[] = {"value", "as"};
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (int v = ES_VARIANTS; v-- > 0;) {
        if (!variant_value[row][v]) continue;
        ERL_NIF_TERM vals[] = {variant_value[row][v], es_vocab_atom[es_vocab[row].variants[v].as]};
        list = enif_make_list_cell(env, es_named_map(env, keys, vals, 2), list);
    }
    static const char *const top[] = {"field", "values"};
    ERL_NIF_TERM vals[] = {variant_field[row], list};
    return es_named_map(env, top, vals, 2);
}

/* vocabulary() -> %{types: [row], levels: [%{level, categories, mask}]}, in table order. */
ERL_NIF_TERM es_nif_vocabulary(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    ERL_NIF_TERM types = enif_make_list(env, 0), levels = enif_make_list(env, 0);
    static const char *const row_keys[] = {"type",    "category",     "critical", "lifecycle",
                                           "indexes", "hashed_field", "peer",     "variants"};
    for (int i = ES_EV_COUNT; i-- > 0;) {
        const es_vocab_row *r = &es_vocab[i];
        ERL_NIF_TERM cat = r->category ? enif_make_atom(env, categories[__builtin_ctz(r->category)])
                                       : enif_make_atom(env, "reported");
        ERL_NIF_TERM vals[] = {es_vocab_atom[i],
                               cat,
                               r->critical ? es_atom.true_ : es_atom.false_,
                               enif_make_atom(env, roles[r->lifecycle]),
                               names_of_bits(env, r->indexes, indexes, 6),
                               es_vocab_hashed_atom[i] ? es_vocab_hashed_atom[i] : es_atom.nil,
                               r->peer_is_sender ? es_atom.from_pid : es_atom.to_pid,
                               variants_term(env, i)};
        types = enif_make_list_cell(env, es_named_map(env, row_keys, vals, 8), types);
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
