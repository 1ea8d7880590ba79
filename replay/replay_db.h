/* What both modes of eie-replay (rebuild.h, days.h) share in the database:
 * the lock that lets one replay at a time work on it, and the name of the
 * schema that tables replaced by a replay move to when they are kept. */
#ifndef EIE_REPLAY_DB_H
#define EIE_REPLAY_DB_H

#include <libpq-fe.h>

#include "err.h"

/* One replay at a time per database: a session-level advisory lock, held by
 * conn until it closes (a killed replay's lock goes with its connection).
 * Returns -1 with err set when another replay holds it. */
int replay_lock(PGconn *conn, eie_err *err);

/* replay_exec's answer when the statement was chosen as a deadlock's victim:
 * a replay takes its locks in its own order, and a reader still finishing a
 * statement (an API request, a consumer's batch) may take them in another, so
 * the caller rolls back and tries again. */
#define REPLAY_VICTIM (-2)
#define REPLAY_VICTIM_ATTEMPTS 5

/* Runs sql: 0, -1 with err set, or REPLAY_VICTIM (err set too). */
int replay_exec(PGconn *conn, const char *sql, eie_err *err);

/* A pause before trying again after being a deadlock's victim. */
void replay_victim_pause(void);

/* "eie_retired_20261127t181500", from the current time: where replaced
 * tables go. */
void replay_retired_name(char out[64]);

#endif
