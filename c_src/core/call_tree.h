/*
 * call_tree.h — one process's calls as a tree, answered on the query engine (query.h):
 * which call enclosed which, and the :return or :exception that closed each, with the
 * values of the fields a node shows (args; result, duration, class, reason).
 *
 * Contract: the caller gives the :call, :return and :exception types and the atom words
 * of the fields (es_call_keys; from the vocabulary, vocab.h) and a filter naming the
 * actor; only that actor's chain is walked: the cost follows its events in the filter's
 * range, not the store.
 *   es_history_call_tree() one actor's :call events in order, each with the event that
 *                          closed it — the next :return/:exception of the actor whose
 *                          call_id field names it while it is the innermost open call —
 *                          and its parent: the call open around it (a return that names
 *                          another call is left unmatched). Each event is read once, in
 *                          one walk of the actor's chain that fetches payloads ahead: its
 *                          slot, and the values of the fields a node shows, copied out
 *                          of the walk's copy of its payload once checked
 *                          (es_store_payload_verify), so that the caller makes the nodes
 *                          without reading the store again (a second pass over scattered
 *                          events would pay their cache and TLB misses twice). Linear in
 *                          those events, plus a sort when their timestamps run out of
 *                          id order. On an error the tree is left empty.
 *   es_call_tree_free()    frees a tree's arrays (an empty tree's too).
 *
 * Thread-safety: as query.h; the tree describes the events live during the walk, and
 * belongs to the caller (no reference into the store is kept).
 */
#ifndef ES_CALL_TREE_H
#define ES_CALL_TREE_H

#include "query.h"

/* A field's value, copied into es_call_tree.bytes; len 0: absent
 * (no encoded term is empty). */
typedef struct es_call_span {
    uint32_t off, len;
} es_call_span;

/* The fields whose values a node shows, found in each event's payload: of a :call, its
 * args; of a :return or :exception, its result, duration, class and reason. */
enum { ES_CALL_ARGS = 0, ES_CALL_FIELDS = 1 };
enum { ES_END_RESULT, ES_END_DURATION, ES_END_CLASS, ES_END_REASON, ES_END_FIELDS };

/* One :call, :return or :exception event as the walk read it. */
typedef struct es_call_event {
    uint64_t id;
    int64_t ts;
    uint64_t closes; /* an end's call_id field (0: none, or not a positive integer) */
    uint32_t actor, mf;
    uint16_t type_id;
    uint8_t flags, arity;
    es_call_span field[ES_END_FIELDS]; /* ES_CALL_* for a call, ES_END_* for an end */
} es_call_event;

typedef struct es_call_node {
    uint64_t call_id;   /* the :call event */
    uint64_t end_id;    /* the :return or :exception that closed it, 0: still open */
    int32_t parent;     /* index of the enclosing call's node, -1 for a top-level call */
    uint32_t call, end; /* indexes in es_call_tree.events (end: UINT32_MAX when open) */
} es_call_node;

typedef struct es_call_tree {
    es_call_node *nodes; /* in call order */
    size_t n;
    es_call_event *events; /* in walk order */
    size_t nevents;
    uint8_t *bytes; /* the values of the events' fields (es_call_span), back to back */
    size_t nbytes, cap;
} es_call_tree;

typedef struct es_call_keys {
    es_key *call, *ret, *exc;
    uint64_t call_id_field; /* atom word of the `call_id` payload field */
    /* atom words of the fields nodes show (0: not looked for) */
    uint64_t call_fields[ES_CALL_FIELDS], end_fields[ES_END_FIELDS];
} es_call_keys;

/* `f` narrows the walk (the actor, a time range, after_id): its types and predicates
 * are set here. Events pruned before the walk reads them are left out. */
enum es_query_status es_history_call_tree(es_store *s, const es_filter *f, const es_call_keys *k,
                                          es_call_tree *out);
void es_call_tree_free(es_call_tree *t);

#endif
