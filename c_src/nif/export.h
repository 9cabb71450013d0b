/*
 * export.h — timelines written to files, streamed from the store: Chrome trace-event
 * JSON (opens in Perfetto, ui.perfetto.dev, and chrome://tracing) and Mermaid
 * sequence diagrams.
 *
 * Contract: each writer takes the ids of the events to export, oldest first (a
 * query's hits), and writes them one at a time, so memory stays flat however many
 * there are. Chrome: one track (thread) per process named after its pid; completed
 * calls (:return/:exception events) as duration slices with their arguments and
 * result; messages (:send) as flow arrows from the sender's track to the receiver's;
 * everything else (state changes, crashes, spawns...) as instant events with their
 * fields in `args`. Terms are written as their Erlang text (enif_snprintf %T),
 * JSON-escaped. Mermaid: `participant` lines for the given pids, then one arrow per
 * :send between two of them.
 *
 * Thread-safety: reads the store like any query; runs on dirty I/O schedulers.
 */
#ifndef ES_EXPORT_H
#define ES_EXPORT_H

#include "query.h"

#include <erl_nif.h>
#include <stdio.h>

typedef struct es_export_counts {
    uint64_t slices, flows, instants, tracks;
} es_export_counts;

bool es_export_chrome(ErlNifEnv *env, es_store *s, const es_hits *events, FILE *out,
                      es_export_counts *counts);

/* participants: pid key ids, n of them. */
bool es_export_mermaid(ErlNifEnv *env, es_store *s, const es_hits *sends,
                       const uint32_t *participants, size_t n, FILE *out, uint64_t *arrows);

#endif
