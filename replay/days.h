/* eie-replay --from-day/--to-day: the history of the given days only.
 *
 * One cold sink reads from the first message produced on the first day (less
 * the five minutes a reading may lie in the future) up to the live cold
 * consumers' stored offsets, into day partitions of its own in the schema
 * eie_replay; after a last catch-up under a lock that holds live writes to
 * those days back, the partitions are swapped into the live history in one
 * transaction, and the days' hourly summaries are marked for summarising
 * again. */
#ifndef EIE_REPLAY_DAYS_H
#define EIE_REPLAY_DAYS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "rounds.h"

#define DAYS_SCHEMA "eie_replay"

/* Replays the days [first_day, last_day] (days since the epoch) with job, a
 * cold sink of the live cold group writing to DAYS_SCHEMA; conn holds the
 * replay's lock. Keeps the replaced partitions in a schema
 * eie_retired_<time> when keep_old. Returns the exit status: 0 when swapped
 * in, 1 otherwise (logged). */
int replay_days(PGconn *conn, replay_job *job, int64_t first_day, int64_t last_day,
                bool keep_old);

#endif
