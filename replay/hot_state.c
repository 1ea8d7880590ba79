/* The rebuild's hot state from its history; see hot_state.h. */
#include "hot_state.h"

#include <string.h>

#include "log.h"
#include "pg.h"
#include "reading_sql.h"
#include "rebuild.h"
#include "strbuf.h"
#include "timefmt.h"

int hot_state_taken(PGconn *conn, const char *hot_group, const char *cold_group, bool *taken,
                    eie_err *err)
{
    char got[8];
    const char *params[] = {hot_group, cold_group};
    if (pg_query_value(conn,
                       "SELECT EXISTS (SELECT 1 FROM " REBUILD_SCHEMA ".sink_offsets h JOIN " REBUILD_SCHEMA
                       ".sink_offsets c USING (topic) WHERE h.consumer_group = $1 "
                       "AND c.consumer_group = $2)",
                       2, params, got, sizeof got, err) < 0)
        return -1;
    *taken = strcmp(got, "t") == 0;
    return 0;
}

/* The newest reading of each device: the devices found by a walk of the
 * history's key (one probe per device and day partition, not a pass over the
 * rows), then each one's newest row (the newest day partition first). */
static void build_take_sql(strbuf *sql, reading_kind kind, const char *history,
                           const char *state)
{
    size_t n_fields;
    const char *device = reading_fields(kind, &n_fields)[0].column;
    const char *time = reading_sql_time_column(kind);
    strbuf_printf(sql,
                  "WITH RECURSIVE devices(id) AS ("
                  "(SELECT %s FROM " REBUILD_SCHEMA ".%s ORDER BY 1 LIMIT 1) UNION ALL "
                  "SELECT (SELECT h.%s FROM " REBUILD_SCHEMA ".%s h WHERE h.%s > d.id "
                  "ORDER BY 1 LIMIT 1) FROM devices d WHERE d.id IS NOT NULL) "
                  "INSERT INTO " REBUILD_SCHEMA ".%s (",
                  device, history, device, history, device, state);
    reading_sql_columns(sql, kind, "{}", ", ", 0);
    strbuf_printf(sql, ") SELECT ");
    reading_sql_columns(sql, kind, "newest.{}", ", ", 0);
    strbuf_printf(sql, " FROM devices d CROSS JOIN LATERAL (SELECT ");
    reading_sql_columns(sql, kind, "h.{}", ", ", 0);
    strbuf_printf(sql,
                  " FROM " REBUILD_SCHEMA ".%s h WHERE h.%s = d.id ORDER BY h.%s DESC LIMIT 1) "
                  "newest ON CONFLICT (%s) DO UPDATE SET ",
                  history, device, time, device);
    reading_sql_columns(sql, kind, "{} = EXCLUDED.{}", ", ", 1);
    strbuf_printf(sql, ", updated_at = now() WHERE %s.%s < EXCLUDED.%s", state, time, time);
}

int hot_state_take(PGconn *conn, const char *hot_group, const char *cold_group, eie_err *err)
{
    static const struct {
        reading_kind kind;
        const char *history, *state;
    } streams[] = {{READING_METER, "meter_history", "meter_state"},
                   {READING_VEHICLE, "vehicle_history", "vehicle_state"}};
    int64_t t0 = timefmt_now_ms();
    int rc = pg_exec(conn, "BEGIN", err);
    for (size_t i = 0; rc == 0 && i < sizeof streams / sizeof streams[0]; i++) {
        strbuf sql = STRBUF_INIT;
        build_take_sql(&sql, streams[i].kind, streams[i].history, streams[i].state);
        rc = pg_exec(conn, sql.data, err);
        strbuf_free(&sql);
    }
    if (rc == 0) {
        const char *params[] = {hot_group, cold_group};
        PGresult *res = PQexecParams(
            conn,
            "INSERT INTO " REBUILD_SCHEMA ".sink_offsets (consumer_group, topic, partition, "
            "next_offset, committed_ms) SELECT $1, topic, partition, next_offset, committed_ms "
            "FROM " REBUILD_SCHEMA ".sink_offsets WHERE consumer_group = $2 "
            "ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET "
            "next_offset = EXCLUDED.next_offset, committed_ms = EXCLUDED.committed_ms, "
            "updated_at = now()",
            2, NULL, params, NULL, NULL, 0);
        rc = pg_check(res, PGRES_COMMAND_OK, "giving the cold group's offsets to the hot group", err);
        PQclear(res);
    }
    if (rc == 0)
        rc = pg_exec(conn, "COMMIT", err);
    if (rc < 0) {
        eie_err ignored;
        pg_exec(conn, "ROLLBACK", &ignored);
        return -1;
    }
    log_info("hot state taken from the history in %.1f s",
             (double)(timefmt_now_ms() - t0) / 1000.0);
    return 0;
}
