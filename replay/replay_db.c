/* The replay's lock and retired schema names; see replay_db.h. */
#include "replay_db.h"

#include <stdio.h>
#include <string.h>

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

void replay_retired_name(char out[64])
{
    char now[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(timefmt_now_ms(), now);
    snprintf(out, 64, "eie_retired_%.4s%.2s%.2st%.2s%.2s%.2s", now, now + 5, now + 8, now + 11,
             now + 14, now + 17);
}
