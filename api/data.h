/* The API's data layer: every statement the service runs, with typed
 * arguments and its result's columns named here. Routes and caches ask for
 * results and never see SQL; the statements, their parameters' text forms and
 * their execution are in data_*.c. A route's query returns NULL when the
 * database could not answer, with the response already set (503, or 504
 * after the statement timeout); the caller PQclear()s what it gets. */
#ifndef EIE_DATA_H
#define EIE_DATA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "db_stamp.h"
#include "edge_batch.h"
#include "err.h"
#include "export_format.h"
#include "export_stream.h"
#include "reading.h"
#include "state_cache.h"
#include "strbuf.h"

/* Readings come every 60 s: a vehicle charges while DC flows in a reading no
 * older than three intervals. */
#define DATA_CHARGING_FRESH_S 180

/* The freshness stamps the caches compare (migration 013's eie_stamp: a
 * bigint of microseconds), as expressions for a statement's select list:
 * written here once, and inline in each statement rather than as SQL
 * functions, which PostgreSQL cannot inline (see migration 015). */
#define DATA_SUMMARIES_CHANGED "(SELECT eie_stamp(max(changed_at)) FROM hourly_summary_change)"
#define DATA_ASSIGNMENTS_STORED "(SELECT eie_stamp(max(stored_at)) FROM vehicle_meter_assignment)"

/* ---- execution ---------------------------------------------------------- */

/* One parameterised query on a pooled connection, as a statement prepared
 * per connection under the name `what` (one name, one SQL text). */
PGresult *data_query(api_context *ctx, struct _u_response *resp, const char *what,
                     const char *sql, int n_params, const char *const *params);
/* The statement part of data_query, on a connection the caller holds: NULL on
 * failure (logged) with the HTTP status to answer in *status (503, or 504 on
 * a timeout), which data_respond_error then sets. */
PGresult *data_exec(PGconn *conn, const char *what, const char *sql, int n_params,
                    const char *const *params, int *status);
int data_respond_error(struct _u_response *resp, int status);

/* Whether PostgreSQL answers within wait_ms (for /readyz). */
bool data_ready(api_context *ctx, long wait_ms);

/* ---- devices (the hot store) -------------------------------------------- */

/* 1 when the vehicle has a state or an assignment (an assignment may come
 * first), 0 when not, -1 on an error (the response is set). */
int data_vehicle_known(api_context *ctx, struct _u_response *resp, const char *vehicle_id);

/* A vehicle's state: 1 and *out, 0 when it never reported, -1 on an error. */
int data_vehicle_state(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                       vehicle_state_entry *out);

/* Vehicles in id order after `after` (NULL: from the first); a filter is off
 * when NAN, -1 or NULL. */
typedef struct data_vehicle_filter {
    const char *after, *meter_id;
    double soc_below, soc_above;
    int charging; /* 1, 0, or -1 */
    int64_t stale_for_ms;
    long limit;
} data_vehicle_filter;
/* Up to limit rows, each read with data_vehicle_entry. */
PGresult *data_vehicle_list(api_context *ctx, struct _u_response *resp,
                            const data_vehicle_filter *f);
/* A row of data_vehicle_list as the state it gives (no assignments). */
void data_vehicle_entry(const PGresult *res, int row, vehicle_state_entry *e);

enum { DATA_METER_ID, DATA_METER_TS_MS, DATA_METER_AC, DATA_METER_VOLTAGE,
       DATA_METER_VEHICLES /* a JSON array of the ids assigned now */ };
PGresult *data_meter_state(api_context *ctx, struct _u_response *resp, const char *meter_id);

/* ---- reports (the history and what is derived from it) ------------------- */

/* A vehicle's readings in steps of step_ms from from_ms, by the attribution
 * rule (migration 010) for the AC. A row per step with readings. */
enum { DATA_HISTORY_T_MS, DATA_HISTORY_SOC, DATA_HISTORY_DC, DATA_HISTORY_AC, DATA_HISTORY_TEMP,
       DATA_HISTORY_SHARED_AC };
PGresult *data_vehicle_history(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                               int64_t from_ms, int64_t to_ms, int64_t step_ms);

/* A vehicle's efficiency per day over `days` days to to_ms (migration 012). */
enum { DATA_DAILY_DAY, DATA_DAILY_SESSIONS, DATA_DAILY_AC, DATA_DAILY_DC, DATA_DAILY_TEMP };
PGresult *data_trend_daily(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                           int64_t to_ms, long days);
/* Its last 24 hours against its baseline of `days` days (one row). */
enum { DATA_BASE_RECENT_AC, DATA_BASE_RECENT_DC, DATA_BASE_RECENT_RATIO, DATA_BASE_BASELINE,
       DATA_BASE_SPREAD, DATA_BASE_DAYS, DATA_BASE_BELOW };
PGresult *data_trend_baseline(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                              int64_t to_ms, long days, double min_kwh);

/* Charging sessions (migration 011): limit rows at most. */
enum { DATA_SESSION_VEHICLE, DATA_SESSION_START_MS, DATA_SESSION_END_MS, DATA_SESSION_ONGOING,
       DATA_SESSION_READINGS, DATA_SESSION_METERS, DATA_SESSION_AC, DATA_SESSION_DC,
       DATA_SESSION_OWN_DC, DATA_SESSION_SHARED_S, DATA_SESSION_SOC_FROM, DATA_SESSION_SOC_TO,
       DATA_SESSION_TEMP_MAX, DATA_SESSION_TEMP_AVG,
       DATA_SESSION_COMPLETE_UNTIL_MS /* data_fleet_sessions only */ };
/* A vehicle's, started after after_ms (-1: any), oldest first. */
PGresult *data_vehicle_sessions(api_context *ctx, struct _u_response *resp,
                                const char *vehicle_id, int64_t from_ms, int64_t to_ms,
                                int64_t after_ms, long limit);
/* The fleet's, overlapping the range, by start then vehicle after the cursor
 * (after_ms -1: from the first); filters off when NAN or NULL. The first row
 * always comes, with NULL sessions columns when there is none, for its
 * DATA_SESSION_COMPLETE_UNTIL_MS. */
typedef struct data_session_filter {
    int64_t from_ms, to_ms;
    double efficiency_below, temp_above;
    const char *meter_id;
    int64_t after_ms;
    const char *after_vehicle;
    long limit;
} data_session_filter;
PGresult *data_fleet_sessions(api_context *ctx, struct _u_response *resp,
                              const data_session_filter *f);

/* A meter's report over a window by the attribution rule (one row). */
enum { DATA_MREP_KNOWN, DATA_MREP_AC_ALL, DATA_MREP_READINGS, DATA_MREP_AC, DATA_MREP_SHARED_AC,
       DATA_MREP_SECS, DATA_MREP_SHARED_SECS, DATA_MREP_DC, DATA_MREP_SHARED_DC,
       DATA_MREP_VEHICLES /* a JSON array */ };
PGresult *data_meter_report(api_context *ctx, struct _u_response *resp, const char *meter_id,
                            int64_t from_ms, int64_t to_ms);

/* The fleet summary over a window (one row; the lists are JSON arrays of at
 * most `limit` entries). */
typedef struct data_fleet_query {
    int64_t from_ms, to_ms;
    double efficiency_below, min_kwh;
    int64_t stale_ms;
    int limit;
} data_fleet_query;
enum { DATA_FLEET_VEHICLES, DATA_FLEET_METERS, DATA_FLEET_CHARGING, DATA_FLEET_STALE_VEHICLES,
       DATA_FLEET_STALE_METERS, DATA_FLEET_SOC, DATA_FLEET_AC, DATA_FLEET_DC, DATA_FLEET_OWN_AC,
       DATA_FLEET_OWN_DC, DATA_FLEET_SHARED_AC, DATA_FLEET_SHARED_DC, DATA_FLEET_DEGRADED,
       DATA_FLEET_DEGRADED_METERS, DATA_FLEET_BELOW_BASELINE, DATA_FLEET_HOT };
PGresult *data_fleet_summary(api_context *ctx, struct _u_response *resp,
                             const data_fleet_query *q);

/* ---- history sums (the statement edge_batch.c's workers run) ------------ */

/* Ranges per statement at most (64 reports of four ranges). */
#define DATA_SUMS_MAX_RANGES 256
/* The ranges of one statement, as its array parameters; kept between
 * statements (data_sums_reset) for their buffers. */
typedef struct data_sums {
    strbuf ids[2], los[2], his[2]; /* [0] vehicles, [1] meters */
    edge_range *by_kind[2][DATA_SUMS_MAX_RANGES];
    int n[2];
    /* The hours whose stamps to read: every request's, and their caches'
     * newest change when they all had the same (else DB_STAMP_UNKNOWN). */
    edge_hours asked;
    int n_asked;
} data_sums;
void data_sums_add(data_sums *bt, edge_range *r);
void data_sums_ask_hours(data_sums *bt, const edge_hours *h);
/* Fills in each range's sums and the freshness at that moment: 0, or the
 * HTTP status to answer (503, or 504 when the statement timed out). */
int data_sums_run(PGconn *conn, data_sums *bt, edge_freshness *fresh);
void data_sums_reset(data_sums *bt);
void data_sums_free(data_sums *bt);

/* ---- the caches' loads (each on its cache's own connection) -------------- */

/* The hot store's rows stamped from `since` (a time as data_hot_store gives
 * it; NULL: every row) less look_back_s seconds; NULL on an error (in err). */
typedef enum data_hot_table {
    DATA_HOT_VEHICLE_STATES, /* id, ts (ms), soc, kWh DC, battery temperature */
    DATA_HOT_METER_STATES,   /* id, voltage, ts (ms) */
    DATA_HOT_ASSIGNMENTS,    /* vehicle id, valid from (ms), meter id */
    DATA_HOT_TABLES
} data_hot_table;
PGresult *data_hot_changes(PGconn *conn, data_hot_table t, const char *since, int look_back_s,
                           eie_err *err);
/* A page of a state table (DATA_HOT_VEHICLE_STATES or DATA_HOT_METER_STATES,
 * the same columns): the rows whose ids follow `after` ("" from the first),
 * in the order of their ids, at most limit of them; NULL on an error. */
PGresult *data_hot_page(PGconn *conn, data_hot_table t, const char *after, int limit,
                        eie_err *err);

/* Which tables hold the hot store (a replay's switch replaces them), the
 * database's time and its newest assignment, in one statement. */
typedef struct data_hot_store {
    char tables[96]; /* their oids */
    char now[64];
    db_stamp assignments_stored;
} data_hot_store;
int data_hot_store_read(PGconn *conn, data_hot_store *out, eie_err *err);
/* Asks for the hot store's commit notices (PG_HOT_STATE_CHANNEL). */
int data_hot_listen(PGconn *conn, eie_err *err);

/* The hourly summaries are read in one snapshot, so their state, their
 * change stamps and their rows agree. */
int data_snapshot_begin(PGconn *conn, eie_err *err);
void data_snapshot_end(PGconn *conn);
/* The summary tables' oids, as text (a replay's switch replaces them). */
int data_summary_tables(PGconn *conn, char *out, size_t len, eie_err *err);
/* A row per stream: its name, the hour (since 1970) summarised until, its
 * dirty hours as a comma-separated list (NULL: none), and the newest change
 * of any summary (the same in every row). */
enum { DATA_SUMSTATE_STREAM, DATA_SUMSTATE_UNTIL_HOUR, DATA_SUMSTATE_DIRTY, DATA_SUMSTATE_CHANGED };
PGresult *data_summaries_state(PGconn *conn, eie_err *err);
/* A row per stream and hour from from_hour on that changed: the stream, the
 * hour, its stamp. */
enum { DATA_SUMCHANGE_STREAM, DATA_SUMCHANGE_HOUR, DATA_SUMCHANGE_STAMP };
PGresult *data_summary_changes(PGconn *conn, int64_t from_hour, eie_err *err);
/* One hour's summary per device: its id, readings, kWh (AC for meters, DC
 * for vehicles) and the sum of battery temperatures (0 for meters). */
enum { DATA_SUMMARY_ID, DATA_SUMMARY_READINGS, DATA_SUMMARY_KWH, DATA_SUMMARY_TEMP_SUM };
PGresult *data_summaries_of_hour(PGconn *conn, reading_kind kind, int64_t hour, eie_err *err);

/* ---- exports (GET /v1/export/...) ---------------------------------------- */

/* Each appends to copy_sql the COPY of its export in format f, values quoted
 * on ex's connection: 0, or -1 when one cannot be (not UTF-8). */
int data_export_history(export_stream *ex, export_format f, bool meter, const char *device,
                        int64_t from_ms, int64_t to_ms, strbuf *copy_sql);
/* The stored sessions as GET /v1/sessions filters them (no cursor or limit),
 * of one vehicle when vehicle_id is not NULL. */
int data_export_sessions(export_stream *ex, export_format f, const data_session_filter *q,
                         const char *vehicle_id, strbuf *copy_sql);
/* A row per vehicle with its performance figures over the range. */
int data_export_reports(export_stream *ex, export_format f, int64_t from_ms, int64_t to_ms,
                        strbuf *copy_sql);

#endif
