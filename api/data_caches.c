/* The data layer's statements for the caches (state_cache.c, rollup_cache.c):
 * what they load, on their own connections; see data.h. */
#include <stdio.h>
#include <string.h>

#include "data.h"
#include "pg.h"

/* $1: when to look back from (NULL: every row); $2: seconds further back. */
#define CHANGED_SINCE(stamp)                                                                     \
    " WHERE $1::timestamptz IS NULL OR " stamp                                                  \
    " >= $1::timestamptz - make_interval(secs => $2::int)"

/* Each table's columns (data.h says which), and its key for pages. */
#define VEHICLE_STATE_COLUMNS                                                                   \
    "SELECT vehicle_id, (extract(epoch FROM ts) * 1000)::bigint, soc, kwh_delivered_dc, "      \
    "battery_temp FROM vehicle_state"
#define METER_STATE_COLUMNS                                                                     \
    "SELECT meter_id, voltage, (extract(epoch FROM ts) * 1000)::bigint FROM meter_state"
/* $1: the last key of the previous page ("" before the first); $2: rows. */
#define PAGE_AFTER(key) " WHERE " key " > $1 ORDER BY " key " LIMIT $2::int"

static const struct {
    const char *what, *sql, *page;
} hot_tables[DATA_HOT_TABLES] = {
    [DATA_HOT_VEHICLE_STATES] = {"vehicle states", VEHICLE_STATE_COLUMNS CHANGED_SINCE("updated_at"),
                                 VEHICLE_STATE_COLUMNS PAGE_AFTER("vehicle_id")},
    [DATA_HOT_METER_STATES] = {"meter states", METER_STATE_COLUMNS CHANGED_SINCE("updated_at"),
                               METER_STATE_COLUMNS PAGE_AFTER("meter_id")},
    [DATA_HOT_ASSIGNMENTS] =
        {"assignments",
         "SELECT vehicle_id, (extract(epoch FROM valid_from) * 1000)::bigint, meter_id "
         "FROM vehicle_meter_assignment" CHANGED_SINCE("stored_at"),
         NULL},
};

/* A statement's rows, or NULL with err set (what says which). */
static PGresult *rows(PGconn *conn, const char *what, const char *sql, int n_params,
                      const char *const *params, eie_err *err)
{
    PGresult *res = n_params ? PQexecParams(conn, sql, n_params, NULL, params, NULL, NULL, 0)
                             : PQexec(conn, sql);
    if (pg_check(res, PGRES_TUPLES_OK, what, err) < 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* A hot table's statement with its two parameters: a text (NULL allowed)
 * and a number. */
static PGresult *hot_rows(PGconn *conn, data_hot_table t, const char *sql, const char *text,
                          int number, eie_err *err)
{
    char number_text[16];
    snprintf(number_text, sizeof number_text, "%d", number);
    const char *params[] = {text, number_text};
    return rows(conn, hot_tables[t].what, sql, 2, params, err);
}

PGresult *data_hot_changes(PGconn *conn, data_hot_table t, const char *since, int look_back_s,
                           eie_err *err)
{
    return hot_rows(conn, t, hot_tables[t].sql, since, look_back_s, err);
}

PGresult *data_hot_page(PGconn *conn, data_hot_table t, const char *after, int limit,
                        eie_err *err)
{
    return hot_rows(conn, t, hot_tables[t].page, after, limit, err);
}

int data_hot_store_read(PGconn *conn, data_hot_store *out, eie_err *err)
{
    PGresult *res = rows(conn, "identifying the state tables",
                         "SELECT 'vehicle_state'::regclass::oid || '/' || "
                         "'meter_state'::regclass::oid || '/' || "
                         "'vehicle_meter_assignment'::regclass::oid, now()::text, "
                         DATA_ASSIGNMENTS_STORED,
                         0, NULL, err);
    if (!res)
        return -1;
    snprintf(out->tables, sizeof out->tables, "%s", PQgetvalue(res, 0, 0));
    snprintf(out->now, sizeof out->now, "%s", PQgetvalue(res, 0, 1));
    out->assignments_stored = db_stamp_get(res, 0, 2);
    PQclear(res);
    return 0;
}

int data_hot_listen(PGconn *conn, eie_err *err)
{
    return pg_exec(conn, "LISTEN " PG_HOT_STATE_CHANNEL, err);
}

int data_snapshot_begin(PGconn *conn, eie_err *err)
{
    return pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
}

void data_snapshot_end(PGconn *conn)
{
    PQclear(PQexec(conn, "COMMIT"));
}

int data_summary_tables(PGconn *conn, char *out, size_t len, eie_err *err)
{
    return pg_query_value(conn,
                          "SELECT 'meter_hourly'::regclass::oid || '/' || "
                          "'vehicle_hourly'::regclass::oid || '/' || "
                          "'hourly_rollup'::regclass::oid || '/' || "
                          "'hourly_summary_change'::regclass::oid",
                          0, NULL, out, len, err);
}

PGresult *data_summaries_state(PGconn *conn, eie_err *err)
{
    return rows(conn, "reading the summaries' state",
                "SELECT r.stream, floor(extract(epoch FROM r.summarised_until) / 3600)::bigint, "
                "  (SELECT string_agg(floor(extract(epoch FROM d.hour) / 3600)::bigint::text, ',') "
                "   FROM hourly_rollup_dirty d WHERE d.stream = r.stream), "
                "  " DATA_SUMMARIES_CHANGED " "
                "FROM hourly_rollup r",
                0, NULL, err);
}

PGresult *data_summary_changes(PGconn *conn, int64_t from_hour, eie_err *err)
{
    char from[24];
    snprintf(from, sizeof from, "%lld", (long long)from_hour);
    const char *params[] = {from};
    return rows(conn, "reading the summaries' changes",
                "SELECT stream, floor(extract(epoch FROM hour) / 3600)::bigint, "
                "eie_stamp(changed_at) "
                "FROM hourly_summary_change WHERE hour >= to_timestamp($1::bigint * 3600.0)",
                1, params, err);
}

PGresult *data_summaries_of_hour(PGconn *conn, reading_kind kind, int64_t hour, eie_err *err)
{
    char param[24];
    snprintf(param, sizeof param, "%lld", (long long)hour);
    const char *params[] = {param};
    return rows(conn, "loading hourly summaries",
                kind == READING_METER
                    ? "SELECT meter_id, readings, kwh_consumed_ac, 0 FROM meter_hourly "
                      "WHERE hour = to_timestamp($1::bigint * 3600.0)"
                    : "SELECT vehicle_id, readings, kwh_delivered_dc, battery_temp_sum "
                      "FROM vehicle_hourly WHERE hour = to_timestamp($1::bigint * 3600.0)",
                1, params, err);
}
