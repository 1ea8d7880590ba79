/* The PostgreSQL side of a replay: the schemas it builds in, and the
 * transactions that put what it built in place of the live tables.
 *
 * A full rebuild builds every table of the store in the schema eie_rebuild
 * (the migrations run there), so nothing live is touched until the switch:
 * one transaction that moves the live tables aside and the rebuilt ones into
 * public. A day replay builds the chosen day partitions of the history in the
 * schema eie_replay and swaps just those partitions in, in one transaction. */
#ifndef EIE_REPLAY_STORE_H
#define EIE_REPLAY_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "kafka.h"
#include "sink.h"

#define REBUILD_SCHEMA "eie_rebuild"
#define DAYS_SCHEMA "eie_replay"

/* One replay at a time per database: a session-level advisory lock, held by
 * conn until it closes (a killed replay's lock goes with its connection).
 * Returns -1 with err set when another replay holds it. */
int replay_lock(PGconn *conn, eie_err *err);

/* Prepares eie_rebuild: kept as it is when an interrupted build is there
 * (its offsets say where to go on), dropped first when restart; then migrated.
 * *resumed tells whether rows of an earlier run are there. */
int rebuild_prepare(PGconn *conn, bool restart, bool *resumed, eie_err *err);

/* Builds the history's primary keys, which the build goes without (see
 * replay_store.c), removing readings repeated across batches first. */
int rebuild_restore_keys(PGconn *conn, eie_err *err);

/* Summarises every closed hour of the rebuilt history (006_hourly_rollups.sql). */
int rebuild_summarise(const char *database_url, eie_err *err);

/* VACUUM (so that pages are all-visible and the analytics read indexes alone)
 * and ANALYZE the rebuilt tables, before they go live. */
int rebuild_vacuum(PGconn *conn, eie_err *err);

/* The switch: in one transaction, every table, view and function of the store
 * in public moves to a schema eie_retired_<time> and those of eie_rebuild
 * take their place; the retired schema is dropped after the commit unless
 * keep_old. Consumers that wrote the old tables find their offsets changed
 * and read on from the rebuilt tables' offsets. *retired receives the name of
 * the schema that holds the old tables, or "" once they are dropped. */
int rebuild_switch(PGconn *conn, bool keep_old, char retired[64], eie_err *err);

/* Prepares eie_replay (always anew) for the history days [first_day,
 * last_day] (days since the epoch): partitioned tables shaped like the live
 * history, with empty partitions for those days, and an offsets table. */
int days_prepare(PGconn *conn, int64_t first_day, int64_t last_day, eie_err *err);

/* VACUUM and ANALYZE the replayed days. */
int days_vacuum(PGconn *conn, eie_err *err);

/* The cold group's stored offsets in the live store: where a day replay
 * stops. *ends is malloc'd. */
int days_live_ends(PGconn *conn, const char *group, const kafka_topics *topics,
                   replay_end **ends, size_t *n_ends, eie_err *err);

/* Inside a transaction: locks the live history so that its days cannot change
 * (live partitions of the days exclusively, the parents against new
 * partitions); call days_live_ends after it. */
int days_lock(PGconn *conn, int64_t first_day, int64_t last_day, eie_err *err);

/* Inside the transaction of days_lock: replaces the live partitions of the
 * days with the rebuilt ones (the old ones are dropped, or kept in a schema
 * eie_retired_<time> when keep_old), and drops eie_replay. */
int days_swap(PGconn *conn, int64_t first_day, int64_t last_day, bool keep_old,
              char retired[64], eie_err *err);

#endif
