/* The replay's lock and retired schema names; see replay_db.h. */
#include "replay_db.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pg.h"
#include "timefmt.h"

/* Any constant nothing else in the database uses (pg.c's migration lock is
 * 7420170001). */
#define REPLAY_LOCK_KEY "7420170002"

int replay_lock(PGconn *conn, eie_err *err)
{
    char got[8];
    if (pg_query_value(conn, "SELECT pg_try_advisory_lock(" REPLAY_LOCK_KEY ")", 0, NULL, got,
                       sizeof got, err) < 0)
        return -1;
    if (strcmp(got, "t") != 0) {
        eie_err_set(err, "another eie-replay is running against this database");
        return -1;
    }
    return 0;
}

#define SQLSTATE_DEADLOCK "40P01"

int replay_exec(PGconn *conn, const char *sql, eie_err *err)
{
    PGresult *res = PQexec(conn, sql);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    bool victim = state && strcmp(state, SQLSTATE_DEADLOCK) == 0;
    int rc = pg_check(res, PGRES_COMMAND_OK, sql, err);
    PQclear(res);
    return rc < 0 && victim ? REPLAY_VICTIM : rc;
}

void replay_victim_pause(void)
{
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
}

void replay_retired_name(char out[64])
{
    char now[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(timefmt_now_ms(), now);
    snprintf(out, 64, "eie_retired_%.4s%.2s%.2st%.2s%.2s%.2s", now, now + 5, now + 8, now + 11,
             now + 14, now + 17);
}
