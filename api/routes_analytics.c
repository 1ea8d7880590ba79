/* GET /v1/analytics/performance/{vehicleId}: the efficiency of a vehicle's
 * charging over a window (AC drawn by the meters it was assigned to, while it
 * was assigned to each, against DC delivered to its battery), with a snapshot
 * of its latest state. One SQL round trip per request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "params.h"
#include "reading.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)

/* Where summaries may stand in for the readings of [lo, hi): the whole hours
 * from r_lo to r_hi before summarised_until; [lo, r_lo) and [r_hi, hi) are
 * read raw (r_lo = r_hi = hi when no whole summarised hour fits). Written out
 * rather than called as a SQL function, which took a quarter of the
 * statement's time (psql, 300 executions each). */
#define ROLLUP_SPAN(lo, hi, summarised_until)                                                    \
    "SELECT CASE WHEN a < b THEN a ELSE " hi " END AS r_lo,"                                     \
    "       CASE WHEN a < b THEN b ELSE " hi " END AS r_hi"                                      \
    " FROM (SELECT date_trunc('hour', " lo " + interval '1 hour' - interval '1 microsecond',"   \
    "                         'UTC') AS a,"                                                      \
    "              least(date_trunc('hour', " hi ", 'UTC'),"                                     \
    "                    coalesce(" summarised_until ", '-infinity'::timestamptz)) AS b) AS t"

/* The half-open window [from, to) of a vehicle's readings. Whole hours that
 * are summarised (and not dirty) come from the hourly summaries, the minutes
 * at the edges and dirty hours from the history (006_hourly_rollups.sql):
 * about 50 rows a day instead of 2,880. */
static const char *const performance_sql =
    "WITH rollup AS ("
    "  SELECT max(summarised_until) FILTER (WHERE stream = 'meter') AS meter,"
    "         max(summarised_until) FILTER (WHERE stream = 'vehicle') AS vehicle"
    "  FROM hourly_rollup"
    "), periods AS ("
    "  SELECT meter_id, greatest(valid_from, $2::timestamptz) AS lo,"
    "         least(coalesce(valid_to, 'infinity'), $3::timestamptz) AS hi"
    "  FROM vehicle_meter_assignment_period"
    "  WHERE vehicle_id = $1 AND valid_from < $3::timestamptz"
    "    AND coalesce(valid_to, 'infinity') > $2::timestamptz"
    "), ac AS ("
    "  SELECT coalesce(sum(x.kwh), 0) AS kwh, coalesce(sum(x.n), 0) AS n"
    "  FROM periods p"
    "  CROSS JOIN LATERAL (" ROLLUP_SPAN("p.lo", "p.hi", "(SELECT meter FROM rollup)") ") s"
    "  CROSS JOIN LATERAL ("
    "    SELECT sum(m.kwh_consumed_ac) AS kwh, count(*) AS n FROM meter_history m"
    "    WHERE m.meter_id = p.meter_id AND m.ts >= p.lo AND m.ts < s.r_lo"
    "    UNION ALL"
    "    SELECT sum(m.kwh_consumed_ac), count(*) FROM meter_history m"
    "    WHERE m.meter_id = p.meter_id AND m.ts >= s.r_hi AND m.ts < p.hi"
    "    UNION ALL"
    "    SELECT sum(h.kwh_consumed_ac), sum(h.readings) FROM meter_hourly h"
    "    WHERE h.meter_id = p.meter_id AND h.hour >= s.r_lo AND h.hour < s.r_hi"
    "      AND NOT EXISTS (SELECT 1 FROM hourly_rollup_dirty d"
    "                      WHERE d.stream = 'meter' AND d.hour = h.hour)"
    "    UNION ALL"
    "    SELECT sum(m.kwh_consumed_ac), count(m.ts) FROM hourly_rollup_dirty d"
    "    JOIN meter_history m ON m.meter_id = p.meter_id"
    "      AND m.ts >= d.hour AND m.ts < d.hour + interval '1 hour'"
    "    WHERE d.stream = 'meter' AND d.hour >= s.r_lo AND d.hour < s.r_hi"
    "  ) x"
    "), dc AS ("
    "  SELECT coalesce(sum(x.kwh), 0) AS kwh, coalesce(sum(x.n), 0) AS n,"
    "         sum(x.temp) / nullif(sum(x.n), 0) AS temp"
    "  FROM (" ROLLUP_SPAN("$2::timestamptz", "$3::timestamptz", "(SELECT vehicle FROM rollup)") ") s"
    "  CROSS JOIN LATERAL ("
    "    SELECT sum(v.kwh_delivered_dc) AS kwh, count(*) AS n, sum(v.battery_temp) AS temp"
    "    FROM vehicle_history v"
    "    WHERE v.vehicle_id = $1 AND v.ts >= $2::timestamptz AND v.ts < s.r_lo"
    "    UNION ALL"
    "    SELECT sum(v.kwh_delivered_dc), count(*), sum(v.battery_temp) FROM vehicle_history v"
    "    WHERE v.vehicle_id = $1 AND v.ts >= s.r_hi AND v.ts < $3::timestamptz"
    "    UNION ALL"
    "    SELECT sum(h.kwh_delivered_dc), sum(h.readings), sum(h.battery_temp_sum)"
    "    FROM vehicle_hourly h"
    "    WHERE h.vehicle_id = $1 AND h.hour >= s.r_lo AND h.hour < s.r_hi"
    "      AND NOT EXISTS (SELECT 1 FROM hourly_rollup_dirty d"
    "                      WHERE d.stream = 'vehicle' AND d.hour = h.hour)"
    "    UNION ALL"
    "    SELECT sum(v.kwh_delivered_dc), count(v.ts), sum(v.battery_temp)"
    "    FROM hourly_rollup_dirty d"
    "    JOIN vehicle_history v ON v.vehicle_id = $1"
    "      AND v.ts >= d.hour AND v.ts < d.hour + interval '1 hour'"
    "    WHERE d.stream = 'vehicle' AND d.hour >= s.r_lo AND d.hour < s.r_hi"
    "  ) x"
    "), cur AS ("
    "  SELECT meter_id FROM vehicle_meter_assignment"
    "  WHERE vehicle_id = $1 AND valid_from < $3::timestamptz"
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

static json_t *nullable_string(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? json_null() : json_string(PQgetvalue(res, 0, col));
}

static json_t *build_response(const char *vehicle_id, const char *time_range, int64_t from_ms,
                              int64_t to_ms, const PGresult *res)
{
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(from_ms, from);
    timefmt_format_rfc3339(to_ms, to);
    json_t *last_at = PQgetisnull(res, 0, COL_LAST_MS)
                          ? json_null()
                          : respond_time(strtoll(PQgetvalue(res, 0, COL_LAST_MS), NULL, 10));
    double ac = respond_pg_double(res, 0, COL_AC);
    double dc = respond_pg_double(res, 0, COL_DC);
    return json_pack(
        "{s:s, s:o, s:s, s:s, s:s,"
        " s:{s:o, s:o, s:o, s:o},"
        " s:{s:f, s:f, s:o, s:o, s:I, s:I, s:f}}",
        "vehicleId", vehicle_id, "meterId", nullable_string(res, COL_METER), "timeRange", time_range,
        "from", from, "to", to,
        "latestSnapshot", "lastReadingAt", last_at, "currentSoC", respond_pg_real(res, 0, COL_SOC),
        "currentVoltage", respond_pg_real(res, 0, COL_VOLTAGE), "lastBatteryTemp",
        respond_pg_real(res, 0, COL_TEMP),
        "metrics", "totalEnergyConsumedAc", ac, "totalEnergyDeliveredDc", dc, "efficiencyRatio",
        ac > 0 ? json_real(dc / ac) : json_null(), "avgBatteryTemp", respond_pg_real(res, 0, COL_AVG_TEMP),
        "meterReadings", (json_int_t)strtoll(PQgetvalue(res, 0, COL_AC_N), NULL, 10),
        "vehicleReadings", (json_int_t)strtoll(PQgetvalue(res, 0, COL_DC_N), NULL, 10),
        "energyLossKwh", ac - dc);
}

static int get_performance(const struct _u_request *req, struct _u_response *resp,
                           api_context *ctx)
{
    const char *vehicle_id;
    param_window w;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "vehicleId", &vehicle_id, msg) < 0 ||
        param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);

    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(w.from_ms, from);
    timefmt_format_rfc3339(w.to_ms, to);
    const char *params[] = {vehicle_id, from, to};
    PGresult *res = api_query(ctx, resp, "performance query", performance_sql, 3, params);
    if (!res)
        return U_CALLBACK_COMPLETE;
    int rc;
    if (strcmp(PQgetvalue(res, 0, COL_KNOWN), "t") != 0)
        rc = respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    else
        rc = respond_json(resp, 200, build_response(vehicle_id, w.label, w.from_ms, w.to_ms, res));
    PQclear(res);
    return rc;
}

static const api_route routes[] = {
    {"GET", "/v1/analytics/performance/:vehicleId", get_performance},
};

int routes_analytics_register(struct _u_instance *instance, api_context *ctx)
{
    return api_register(instance, ctx, routes, sizeof routes / sizeof routes[0]);
}
