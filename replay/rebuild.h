/* eie-replay's full rebuild: both stores from the topics, while the live ones
 * keep serving.
 *
 * The cold sinks (each with its share of the partitions) read the readings
 * from the beginning into the schema eie_rebuild (the migrations run there),
 * and the hot sink the assignments beside them, until they reach the end the
 * topics had when they started; short catch-up rounds follow until little is
 * left, the history's primary keys are built, the hot state is taken from the
 * history (hot_state.h: the readings are read once), the hours summarised, the
 * tables vacuumed, a last round brings both sinks to the end, and one
 * transaction switches them in: the live tables move aside and the rebuilt
 * ones into public. Offsets are
 * stored with the rows, exactly as the live consumers' are, so an interrupted
 * rebuild goes on where it stopped when run again (or starts over with
 * restart), and nothing live changes before the switch. */
#ifndef EIE_REPLAY_REBUILD_H
#define EIE_REPLAY_REBUILD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "rounds.h"

#define REBUILD_SCHEMA "eie_rebuild"

/* Runs the rebuild with jobs[0] the hot sink and the others cold sinks (each
 * with its share of the partitions), all writing to REBUILD_SCHEMA; conn holds
 * the replay's lock. Keeps the replaced tables in a schema eie_retired_<time>
 * when keep_old. Returns the exit status: 0 when switched in, 1 otherwise
 * (logged). */
int replay_rebuild(PGconn *conn, replay_job *jobs, size_t n_jobs, bool restart, bool keep_old);

#endif
