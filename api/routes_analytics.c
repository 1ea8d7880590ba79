/* GET /v1/analytics/performance/{vehicleId}: the efficiency of a vehicle's
 * charging over a window (AC drawn by the meters it was assigned to, while it
 * was assigned to each, against DC delivered to its battery), with a snapshot
 * of its latest state. One SQL round trip per request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "pg.h"
#include "reading.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW "24h"
#define POOL_WAIT_MS 2000

/* The half-open window [from, to) of a vehicle's readings. */
static const char *const performance_sql =
    "WITH periods AS ("
    "  SELECT meter_id, greatest(valid_from, $2::timestamptz) AS lo,"
    "         least(coalesce(valid_to, 'infinity'), $3::timestamptz) AS hi"
    "  FROM vehicle_meter_assignment_period"
    "  WHERE vehicle_id = $1 AND valid_from < $3::timestamptz"
    "    AND coalesce(valid_to, 'infinity') > $2::timestamptz"
    "), ac AS ("
    "  SELECT coalesce(sum(m.kwh_consumed_ac), 0) AS kwh, count(m.ts) AS n"
    "  FROM periods p JOIN meter_history m"
    "    ON m.meter_id = p.meter_id AND m.ts >= p.lo AND m.ts < p.hi"
    "), dc AS ("
    "  SELECT coalesce(sum(kwh_delivered_dc), 0) AS kwh, count(*) AS n, avg(battery_temp) AS temp"
    "  FROM vehicle_history WHERE vehicle_id = $1 AND ts >= $2::timestamptz AND ts < $3::timestamptz"
    "), cur AS ("
    "  SELECT meter_id FROM vehicle_meter_assignment"
    "  WHERE vehicle_id = $1 AND valid_from <= $3::timestamptz"
    "  ORDER BY valid_from DESC LIMIT 1"
    ")"
    "SELECT (vs.vehicle_id IS NOT NULL OR EXISTS (SELECT 1 FROM cur)) AS known,"
    "  (SELECT meter_id FROM cur) AS meter_id,"
    "  (extract(epoch FROM vs.ts) * 1000)::bigint AS last_ms, vs.soc, vs.battery_temp,"
    "  (SELECT voltage FROM meter_state WHERE meter_id = (SELECT meter_id FROM cur)) AS voltage,"
    "  ac.kwh, ac.n, dc.kwh, dc.n, dc.temp "
    "FROM ac CROSS JOIN dc LEFT JOIN vehicle_state vs ON vs.vehicle_id = $1";

enum { COL_KNOWN, COL_METER, COL_LAST_MS, COL_SOC, COL_TEMP, COL_VOLTAGE, COL_AC, COL_AC_N,
       COL_DC, COL_DC_N, COL_AVG_TEMP };

/* "15m", "24h", "7d": a number and a unit. */
static int parse_window(const char *text, int64_t *ms)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (end == text || n <= 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    int64_t unit = end[0] == 'm' ? 60000LL : end[0] == 'h' ? 3600000LL : end[0] == 'd' ? 86400000LL : 0;
    if (!unit || n > MAX_WINDOW_MS / unit)
        return -1;
    *ms = n * unit;
    return *ms >= MIN_WINDOW_MS && *ms <= MAX_WINDOW_MS ? 0 : -1;
}

static json_t *nullable_real(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? json_null() : respond_real_or_null(strtod(PQgetvalue(res, 0, col), NULL));
}

static json_t *nullable_string(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? json_null() : json_string(PQgetvalue(res, 0, col));
}

static json_t *build_response(const char *vehicle_id, const char *time_range, int64_t from_ms,
                              int64_t to_ms, const PGresult *res)
{
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], last[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(from_ms, from);
    timefmt_format_rfc3339(to_ms, to);
    json_t *last_at = json_null();
    if (!PQgetisnull(res, 0, COL_LAST_MS)) {
        timefmt_format_rfc3339(strtoll(PQgetvalue(res, 0, COL_LAST_MS), NULL, 10), last);
        json_decref(last_at);
        last_at = json_string(last);
    }
    double ac = strtod(PQgetvalue(res, 0, COL_AC), NULL);
    double dc = strtod(PQgetvalue(res, 0, COL_DC), NULL);
    return json_pack(
        "{s:s, s:o, s:s, s:s, s:s,"
        " s:{s:o, s:o, s:o, s:o},"
        " s:{s:f, s:f, s:o, s:o, s:I, s:I, s:f}}",
        "vehicleId", vehicle_id, "meterId", nullable_string(res, COL_METER), "timeRange", time_range,
        "from", from, "to", to,
        "latestSnapshot", "lastReadingAt", last_at, "currentSoC", nullable_real(res, COL_SOC),
        "currentVoltage", nullable_real(res, COL_VOLTAGE), "lastBatteryTemp",
        nullable_real(res, COL_TEMP),
        "metrics", "totalEnergyConsumedAc", ac, "totalEnergyDeliveredDc", dc, "efficiencyRatio",
        ac > 0 ? json_real(dc / ac) : json_null(), "avgBatteryTemp", nullable_real(res, COL_AVG_TEMP),
        "meterReadings", (json_int_t)strtoll(PQgetvalue(res, 0, COL_AC_N), NULL, 10),
        "vehicleReadings", (json_int_t)strtoll(PQgetvalue(res, 0, COL_DC_N), NULL, 10),
        "energyLossKwh", ac - dc);
}

static int get_performance(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    api_context *ctx = user_data;
    const char *vehicle_id = u_map_get(req->map_url, "vehicleId");
    json_t *id_check = vehicle_id ? json_string(vehicle_id) : NULL;
    json_decref(id_check);
    if (!vehicle_id || !*vehicle_id || strlen(vehicle_id) > READING_ID_MAX || !id_check)
        return respond_error(resp, 400, "invalid_parameter",
                             "vehicleId must be 1 to %d bytes of UTF-8", READING_ID_MAX);

    const char *window = u_map_get(req->map_url, "window");
    const char *from_text = u_map_get(req->map_url, "from");
    const char *to_text = u_map_get(req->map_url, "to");
    int64_t now = timefmt_now_ms(), from_ms, to_ms, window_ms;
    const char *time_range;
    if ((from_text || to_text) && window)
        return respond_error(resp, 400, "invalid_parameter", "give either window or from/to, not both");
    if (from_text || to_text) {
        if (!from_text || !to_text)
            return respond_error(resp, 400, "invalid_parameter", "from and to go together");
        if (timefmt_parse_rfc3339(from_text, &from_ms) < 0)
            return respond_error(resp, 400, "invalid_parameter",
                                 "from: expected an RFC 3339 time such as 2026-02-09T13:08:00Z");
        if (timefmt_parse_rfc3339(to_text, &to_ms) < 0)
            return respond_error(resp, 400, "invalid_parameter",
                                 "to: expected an RFC 3339 time such as 2026-02-09T13:08:00Z");
        if (to_ms <= from_ms || to_ms - from_ms > MAX_WINDOW_MS)
            return respond_error(resp, 400, "invalid_parameter",
                                 "to must be after from, by at most 30 days");
        time_range = "custom";
    } else {
        time_range = window ? window : DEFAULT_WINDOW;
        if (parse_window(time_range, &window_ms) < 0)
            return respond_error(resp, 400, "invalid_parameter",
                                 "window: expected a duration from 15m to 30d, such as 15m, 24h or 7d");
        to_ms = now;
        from_ms = now - window_ms;
    }

    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(from_ms, from);
    timefmt_format_rfc3339(to_ms, to);
    const char *params[] = {vehicle_id, from, to};
    eie_err err;
    PGconn *conn = db_pool_acquire(ctx->db, POOL_WAIT_MS, &err);
    if (!conn)
        return respond_error(resp, 503, "unavailable", "the database is not available");
    PGresult *res = PQexecParams(conn, performance_sql, 3, NULL, params, NULL, NULL, 0);
    int ok = pg_check(res, PGRES_TUPLES_OK, "performance query", &err) == 0 && PQntuples(res) == 1;
    if (!ok) {
        /* The details are for the operator's log, never the client. */
        log_error("GET performance/%s: %s", vehicle_id, err.msg);
        int timed_out = strcmp(pg_sqlstate(res), "57014") == 0; /* query_canceled */
        PQclear(res);
        db_pool_release(ctx->db, conn);
        return timed_out ? respond_error(resp, 504, "timeout", "the query took too long")
                         : respond_error(resp, 503, "unavailable", "the query could not be answered");
    }
    db_pool_release(ctx->db, conn);
    int rc;
    if (strcmp(PQgetvalue(res, 0, COL_KNOWN), "t") != 0)
        rc = respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    else
        rc = respond_json(resp, 200, build_response(vehicle_id, time_range, from_ms, to_ms, res));
    PQclear(res);
    return rc;
}

int routes_analytics_register(struct _u_instance *instance, api_context *ctx)
{
    return ulfius_add_endpoint_by_val(instance, "GET", "/v1/analytics/performance", "/:vehicleId",
                                      0, get_performance, ctx) == U_OK
               ? 0
               : -1;
}
