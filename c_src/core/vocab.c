/*
 * vocab.c — the event vocabulary table and the tracing levels. See vocab.h.
 */
#include "vocab.h"

#define PID ES_IX_PID
#define MFA (ES_IX_PID | ES_IX_MODULE | ES_IX_FUNCTION | ES_IX_ARITY)

/* A row: name, category, critical, lifecycle, indexes, hashed field; then, named, what
 * only some rows have (peer_is_sender, variant_field and variants). */
#define ROW(...)                                                                                   \
    { __VA_ARGS__, .variant_field = 0 }

const es_vocab_row es_vocab[ES_EV_COUNT] = {
    [ES_EV_SEND] =
        ROW("send", ES_CAT_MESSAGES, false, ES_LC_NONE, ES_IX_FROM_PID | ES_IX_TO_PID, 0),
    /* A received message names its sender when the message itself does (a gen call, and
     * the reply to one) and the sender's own :send was not recorded: tracer.h. */
    [ES_EV_RECEIVE] = ROW("receive", ES_CAT_MESSAGES, false, ES_LC_NONE, PID | ES_IX_FROM_PID, 0,
                          .peer_is_sender = true),
    [ES_EV_SEND_TO_DEAD] =
        ROW("send_to_dead", ES_CAT_MESSAGES, false, ES_LC_NONE, ES_IX_FROM_PID | ES_IX_TO_PID, 0),
    [ES_EV_CALL] = ROW("call", ES_CAT_CALLS, false, ES_LC_NONE, MFA, 0),
    [ES_EV_RETURN] = ROW("return", ES_CAT_CALLS, false, ES_LC_NONE, MFA, 0),
    [ES_EV_EXCEPTION] = ROW("exception", ES_CAT_CALLS, false, ES_LC_NONE, MFA, 0),
    [ES_EV_STATE] = ROW("state", ES_CAT_STATES, false, ES_LC_NONE, PID | ES_IX_MODULE, "state"),
    [ES_EV_SPAWN] = ROW("spawn", ES_CAT_LIFECYCLE, true, ES_LC_BORN, PID, 0),
    [ES_EV_EXIT] = ROW("exit", ES_CAT_LIFECYCLE, true, ES_LC_DIED, PID, 0),
    [ES_EV_CRASH] = ROW("crash", ES_CAT_CRASHES, true, ES_LC_DIED, PID, 0),
    [ES_EV_LINK] = ROW("link", ES_CAT_LIFECYCLE, false, ES_LC_LINK, PID | ES_IX_TO_PID, 0),
    [ES_EV_UNLINK] = ROW("unlink", ES_CAT_LIFECYCLE, false, ES_LC_UNLINK, PID | ES_IX_TO_PID, 0),
    [ES_EV_REGISTER] = ROW("register", ES_CAT_LIFECYCLE, false, ES_LC_NAMED, PID, 0),
    [ES_EV_UNREGISTER] = ROW("unregister", ES_CAT_LIFECYCLE, false, ES_LC_UNNAMED, PID, 0),
    /* Stored by ElixirScope itself: */
    [ES_EV_ALIVE] = ROW("alive", ES_CAT_REPORTED, true, ES_LC_BORN, PID, 0),
    [ES_EV_GOVERNOR] = ROW("governor", ES_CAT_REPORTED, true, ES_LC_NONE, 0, 0),
    [ES_EV_PHOENIX] = ROW("phoenix", ES_CAT_REPORTED, false, ES_LC_NONE, PID | ES_IX_MODULE, 0),
    [ES_EV_ERROR] = ROW("error", ES_CAT_REPORTED, true, ES_LC_NONE, 0, 0),
    [ES_EV_PERSIST_ERROR] = ROW("persist_error", ES_CAT_REPORTED, true, ES_LC_NONE, 0, 0),
    /* The runtime's system monitor (long_gc, long_schedule, large_heap, busy_port,
     * busy_dist_port), when setup/1 is given system_monitor: [...]. */
    [ES_EV_SYSTEM_MONITOR] = ROW("system_monitor", ES_CAT_REPORTED, false, ES_LC_NONE, PID, 0),
    /* The original ElixirScope's vocabulary: TraceDB.store_event(:process, %{pid: p,
     * event: :spawn}) and so on. */
    [ES_EV_PROCESS] = {"process", ES_CAT_REPORTED, false, ES_LC_NONE, PID, 0,
                       .variant_field = "event",
                       .variants = {{"spawn", ES_EV_SPAWN},
                                    {"existing", ES_EV_ALIVE},
                                    {"exit", ES_EV_EXIT},
                                    {"crash", ES_EV_CRASH}}},
};

const es_level es_levels[ES_LEVEL_COUNT] = {
    {"full", ES_CAT_ALL},
    {"messages_only", ES_CAT_MESSAGES | ES_CAT_CRASHES},
    {"states_only", ES_CAT_STATES | ES_CAT_CRASHES},
    {"minimal", ES_CAT_LIFECYCLE | ES_CAT_STATES | ES_CAT_CRASHES},
    {"off", 0},
};
