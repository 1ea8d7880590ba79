/* GET /v1/fleet/summary: the fleet at a glance: device counts, charging and
 * stale devices, average state of charge, fleet efficiency over a window, and
 * the vehicles whose efficiency falls below a threshold (degraded chargers or
 * batteries: below 0.85 suggests a fault or energy leakage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)
#define DEFAULT_THRESHOLD 0.85
#define DEFAULT_STALE_MS (5 * 60 * 1000LL)
#define MAX_DEGRADED 100
#define CHARGING_FRESH_S 180

static const char *const summary_sql =
    "WITH dc AS ("
    "  SELECT vehicle_id, sum(kwh_delivered_dc) AS dc FROM vehicle_history"
    "  WHERE ts >= $1::timestamptz AND ts < $2::timestamptz GROUP BY vehicle_id"
    "), ac AS ("
    "  SELECT p.vehicle_id, sum(m.kwh_consumed_ac) AS ac"
    "  FROM vehicle_meter_assignment_period p JOIN meter_history m"
    "    ON m.meter_id = p.meter_id AND m.ts >= greatest(p.valid_from, $1::timestamptz)"
    "   AND m.ts < least(coalesce(p.valid_to, 'infinity'), $2::timestamptz)"
    "  WHERE p.valid_from < $2::timestamptz AND coalesce(p.valid_to, 'infinity') > $1::timestamptz"
    "  GROUP BY p.vehicle_id"
    "), per AS ("
    "  SELECT vehicle_id, coalesce(ac.ac, 0) AS ac, coalesce(dc.dc, 0) AS dc"
    "  FROM ac FULL JOIN dc USING (vehicle_id)"
    ")"
    "SELECT (SELECT count(*) FROM vehicle_state),"
    "  (SELECT count(*) FROM meter_state),"
    "  (SELECT count(*) FROM vehicle_state WHERE kwh_delivered_dc > 0"
    "     AND ts >= now() - make_interval(secs => $5)),"
    "  (SELECT count(*) FROM vehicle_state WHERE ts < now() - $4 * interval '1 millisecond'),"
    "  (SELECT count(*) FROM meter_state WHERE ts < now() - $4 * interval '1 millisecond'),"
    "  (SELECT avg(soc) FROM vehicle_state),"
    "  (SELECT coalesce(sum(ac), 0) FROM per), (SELECT coalesce(sum(dc), 0) FROM per),"
    "  (SELECT coalesce(json_agg(json_build_object('vehicleId', vehicle_id,"
    "     'totalEnergyConsumedAc', ac, 'totalEnergyDeliveredDc', dc, 'efficiencyRatio', ratio)"
    "     ORDER BY ratio, vehicle_id), '[]')"
    "   FROM (SELECT vehicle_id, ac, dc, dc / ac AS ratio FROM per WHERE ac > 0 AND dc / ac < $3"
    "         ORDER BY dc / ac, vehicle_id LIMIT $6) d)";

static int get_summary(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    char msg[PARAM_MSG_LEN];
    param_window w;
    double threshold = DEFAULT_THRESHOLD;
    bool has_threshold;
    int64_t stale_ms = DEFAULT_STALE_MS;
    if (param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0 ||
        param_double(req, "efficiencyBelow", 0, 1, &threshold, &has_threshold, msg) < 0 ||
        param_duration(req, "staleAfter", 60000, 3650LL * 86400000, &stale_ms, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);

    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], thr[32], stale[32], fresh[16], lim[16];
    timefmt_format_rfc3339(w.from_ms, from);
    timefmt_format_rfc3339(w.to_ms, to);
    snprintf(thr, sizeof thr, "%.17g", threshold);
    snprintf(stale, sizeof stale, "%lld", (long long)stale_ms);
    snprintf(fresh, sizeof fresh, "%d", CHARGING_FRESH_S);
    snprintf(lim, sizeof lim, "%d", MAX_DEGRADED);
    const char *params[] = {from, to, thr, stale, fresh, lim};
    PGresult *res = api_query(ctx, resp, "fleet summary", summary_sql, 6, params);
    if (!res)
        return U_CALLBACK_COMPLETE;
    double ac = respond_pg_double(res, 0, 6), dc = respond_pg_double(res, 0, 7);
    json_t *degraded = json_loads(PQgetvalue(res, 0, 8), 0, NULL);
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:{s:f, s:f, s:o}, s:f, s:o}", "window",
        w.label, "from", from, "to", to, "vehicles",
        (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), "meters",
        (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10), "charging",
        (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10), "staleVehicles",
        (json_int_t)strtoll(PQgetvalue(res, 0, 3), NULL, 10), "staleMeters",
        (json_int_t)strtoll(PQgetvalue(res, 0, 4), NULL, 10), "averageSoC",
        respond_pg_real(res, 0, 5),
        "fleetEfficiency", "totalEnergyConsumedAc", ac, "totalEnergyDeliveredDc", dc,
        "efficiencyRatio", ac > 0 ? json_real(dc / ac) : json_null(), "efficiencyBelow",
        threshold, "degradedVehicles", degraded ? degraded : json_array());
    PQclear(res);
    return respond_json(resp, 200, body);
}

static const api_route routes[] = {
    {"GET", "/v1/fleet/summary", get_summary},
};

int routes_fleet_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
