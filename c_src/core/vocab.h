/*
 * vocab.h — the event vocabulary: every event type ElixirScope records or knows, in one
 * table, and the tracing levels as sets of event categories.
 *
 * Contract: es_vocab[] has one row per type (ES_EV_* is its index): the type's name
 * (the atom's text), its category — which tracing levels record it, see es_levels[] —,
 * whether it is critical (never sampled out), its lifecycle role (processes appearing,
 * disappearing, linking, naming: what "alive at t" and the recorded relationships are
 * computed from), the fields it indexes when present, and whether its peer (the
 * event's second pid) is the process the message came from (:from_pid, a :receive)
 * rather than the one it went to (:to_pid). A row may also take its role and
 * criticality from one field of the event (`variant_field`): the original ElixirScope's
 * :process events, whose `event:` says what happened (:spawn, :existing, :exit,
 * :crash), stand for the native :spawn, :alive, :exit and :crash (lifecycle events,
 * critical); other values of the field make ordinary events. Readers: the tracer (type
 * keys, the level mask its callbacks test), sampling (critical events), the level
 * masks, export, the aggregations and history queries, and, through
 * ElixirScope.TraceDB.vocabulary/0, the Elixir side (the levels, the tracer's flags,
 * the MCP type list, event summaries).
 *
 * Adding an event type: a row here (and an ES_EV_ index), its capture branch in
 * tracer.c if the tracer captures it, and its one-line summary in
 * ElixirScope.Event.summary/2. Types not in the table can still be stored with
 * TraceDB.store_event/2: they are neither critical nor lifecycle events.
 *
 * Thread-safety: constant data.
 */
#ifndef ES_VOCAB_H
#define ES_VOCAB_H

#include <stdbool.h>
#include <stdint.h>

/* Categories: the tracer's level mask is a set of these. */
enum {
    ES_CAT_LIFECYCLE = 1 << 0, /* spawn, normal exit, link, register */
    ES_CAT_MESSAGES = 1 << 1,  /* send, receive */
    ES_CAT_CALLS = 1 << 2,     /* calls of traced modules and functions */
    ES_CAT_STATES = 1 << 3,    /* GenServer state changes */
    ES_CAT_CRASHES = 1 << 4,   /* abnormal exits: every level but :off */
    ES_CAT_ALL = 31,
    ES_CAT_REPORTED = 0, /* not captured by the tracer: stored by ElixirScope's own code */
};

/* Lifecycle roles. */
enum {
    ES_LC_NONE,
    ES_LC_BORN,    /* the actor exists from here on (spawned, or running when tracing began) */
    ES_LC_DIED,    /* the actor is gone */
    ES_LC_LINK,    /* actor and to_pid linked */
    ES_LC_UNLINK,  /* actor and to_pid unlinked */
    ES_LC_NAMED,   /* the actor took the name in its :name field */
    ES_LC_UNNAMED, /* the actor gave up its name */
};

/* Indexed fields (codec.h): which a type's events usually carry. */
enum {
    ES_IX_PID = 1 << 0,
    ES_IX_FROM_PID = 1 << 1,
    ES_IX_TO_PID = 1 << 2,
    ES_IX_MODULE = 1 << 3,
    ES_IX_FUNCTION = 1 << 4,
    ES_IX_ARITY = 1 << 5,
};

enum es_event_kind {
    ES_EV_SEND,
    ES_EV_RECEIVE,
    ES_EV_SEND_TO_DEAD,
    ES_EV_CALL,
    ES_EV_RETURN,
    ES_EV_EXCEPTION,
    ES_EV_STATE,
    ES_EV_SPAWN,
    ES_EV_EXIT,
    ES_EV_CRASH,
    ES_EV_LINK,
    ES_EV_UNLINK,
    ES_EV_REGISTER,
    ES_EV_UNREGISTER,
    ES_EV_ALIVE,
    ES_EV_GOVERNOR,
    ES_EV_PHOENIX,
    ES_EV_ERROR,
    ES_EV_PERSIST_ERROR,
    ES_EV_SYSTEM_MONITOR,
    ES_EV_PROCESS,
    ES_EV_COUNT
};

/* One value of a row's variant field: an event with it stands for an event of another
 * row (ES_EV_*), whose lifecycle role and criticality it takes. */
typedef struct es_vocab_variant {
    const char *value; /* an atom's text; NULL ends the list */
    int as;            /* the row it stands for */
} es_vocab_variant;

#define ES_VARIANTS 4

typedef struct es_vocab_row {
    const char *name;
    uint8_t category; /* ES_CAT_* (one bit), or ES_CAT_REPORTED */
    bool critical;
    uint8_t lifecycle; /* ES_LC_* */
    uint8_t indexes;   /* ES_IX_* */
    /* The field whose encoded value's digest (payload.h) the store keeps with the
     * event, or NULL: what state history is searched by without decoding it. */
    const char *hashed_field;
    /* Its peer is the process the message came from, stored and shown as :from_pid (the
     * actor is then :pid); otherwise the peer is :to_pid. */
    bool peer_is_sender;
    /* The field whose value gives the event its role and criticality, or NULL. */
    const char *variant_field;
    es_vocab_variant variants[ES_VARIANTS];
} es_vocab_row;

extern const es_vocab_row es_vocab[ES_EV_COUNT];

typedef struct es_level {
    const char *name;
    uint8_t mask; /* ES_CAT_* recorded at this level */
} es_level;

#define ES_LEVEL_COUNT 5
extern const es_level es_levels[ES_LEVEL_COUNT];

#endif
