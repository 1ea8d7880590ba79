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

/* The half-open window [from, to) of a vehicle's readings. The energy comes
 * from eie_window_energy (007_window_energy.sql): hourly summaries for whole
 * clean hours, the history for the minutes at the edges and for dirty hours,
 * each meter only while the vehicle was assigned to it. */
static const char *const performance_sql =
    "WITH e AS ("
    "  SELECT * FROM eie_window_energy($1, $2::timestamptz, $3::timestamptz)"
    "), cur AS ("
    "  SELECT meter_id FROM vehicle_meter_assignment"
    "  WHERE vehicle_id = $1 AND valid_from < $3::timestamptz"
    "  ORDER BY valid_from DESC LIMIT 1"
    ")"
    "SELECT (vs.vehicle_id IS NOT NULL OR EXISTS (SELECT 1 FROM cur)) AS known,"
    "  (SELECT meter_id FROM cur) AS meter_id,"
    "  (extract(epoch FROM vs.ts) * 1000)::bigint AS last_ms, vs.soc, vs.battery_temp,"
    "  (SELECT voltage FROM meter_state WHERE meter_id = (SELECT meter_id FROM cur)) AS voltage,"
    "  e.ac_kwh, e.ac_readings, e.dc_kwh, e.dc_readings,"
    "  e.temp_sum / nullif(e.dc_readings, 0) "
    "FROM e LEFT JOIN vehicle_state vs ON vs.vehicle_id = $1";

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
