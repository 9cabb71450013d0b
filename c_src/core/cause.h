/*
 * cause.h — what one process caused in a window of time, one hop deep, on the query
 * engine: the request timeline of ElixirScope.Phoenix.request_timeline/2, whose serving
 * process is usually not traced itself.
 *
 * Contract: es_cause_of() returns the (timestamp, id) of the live events of a window
 * (its ts_min/ts_max and after/before positions) that are
 *   - the process's own (it is their actor), or recorded by another process with it as
 *     their peer (messages sent to it, links with it);
 *   - receives, by any traced process Q, of a gen call it made:
 *     {'$gen_call', {Pid, Tag}, Request} with Pid the process (such a receive has the
 *     process as its peer too: the tracer names a gen call's sender, tracer.h);
 *   - and, for each such call, the events of Q that belong to it, told apart from
 *     other calls by Tag:
 *       * with a reply in the window (Q's send of {Tag, Reply}): the reply, and Q's
 *         events before it back to where the call's handling began — the :call of
 *         handle_call whose From is {Pid, Tag} (when its module is traced), or else the
 *         last event that ended the handling of another message: the :state of another
 *         callback (a :state names its callback and cause: the call's own is a
 *         handle_call whose cause is Request), the reply to another call (a send of
 *         {[alias | _], _}), or the :call of another callback. Receives of other gen
 *         calls and casts on the way are other clients' messages and left out;
 *       * without one (Q died, or answers later): the :call of handle_call with that
 *         From and Q's events up to its :return or :exception, else the first :state
 *         of handle_call caused by Request; and Q's :exit or :crash in the window.
 * It walks the window's events by time twice (the second time from the first gen call
 * on, for the callees' events): its cost follows the events of the window, not the
 * store's size or age. Results are those `page` selects among these: its types (none:
 * all), its after/before positions (a page of the listing: the window itself is never
 * narrowed by them, since a call received before a page began may cause events in it),
 * sorted by (timestamp, id), ascending or descending, cut to its `limit`.
 *
 * Requests are compared as the bytes of their encodings (payload.h): a request nested
 * deeper than ES_PL_DIRECT_DEPTH - 1 levels is encoded differently as a :state's cause
 * and inside the received message, so its :state is then not recognised as the call's
 * (its reply, receive and the events between still are).
 *
 * Thread-safety: as query.h.
 */
#ifndef ES_CAUSE_H
#define ES_CAUSE_H

#include "query.h"

#define ES_CAUSE_MAX_CALLS 256 /* gen calls of one window followed into their callees */

typedef struct es_cause_keys {
    /* type keys; NULL for a type the store has never seen */
    es_key *receive, *send, *call, *ret, *exc, *state, *exit, *crash;
    /* atom words of the payload fields read */
    uint64_t message, args, callback, cause, call_id;
    /* atom words: '$gen_call', '$gen_cast', alias, and the gen_server callbacks
     * (handle_call first) */
    uint64_t gen_call, gen_cast, alias;
    uint64_t callbacks[4];
} es_cause_keys;

/* `window`: its ts_min/ts_max and after/before; `pid_term`: the process's encoding
 * (payload.h) as it is stored inside messages. */
enum es_query_status es_cause_of(es_store *s, const es_filter *window, const es_filter *page,
                                 es_key *pid, const uint8_t *pid_term, size_t pid_len,
                                 const es_cause_keys *k, es_hits *out);

#endif
