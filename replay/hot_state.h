/* The rebuild's hot state, taken from the rebuilt history instead of read
 * from the topics a second time.
 *
 * The hot sink's state is the latest reading of each device by event time,
 * the first of equal times kept; the history, once its keys are built, holds
 * every reading with the first of equal times kept. So the state follows from
 * the history: the newest row of each device. While the history is read, the
 * hot sink reads the assignments alone (which the cold one does not store),
 * and the reading of the meter and vehicle topics, the largest share of the
 * rebuild's CPU, is done once. */
#ifndef EIE_REPLAY_HOT_STATE_H
#define EIE_REPLAY_HOT_STATE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "err.h"

/* Whether the hot state was taken already (by an interrupted run): then
 * hot_group holds offsets of the topics cold_group reads. */
int hot_state_taken(PGconn *conn, const char *hot_group, const char *cold_group, bool *taken,
                    eie_err *err);

/* In one transaction: each device's newest row of the rebuilt history into
 * its state (never over a newer one), and cold_group's offsets given to
 * hot_group, whose sink reads on from there. The history's keys must be built
 * (repeated readings settled), and no sink running. */
int hot_state_take(PGconn *conn, const char *hot_group, const char *cold_group, eie_err *err);

#endif
