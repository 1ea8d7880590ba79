/* GET /v1/fleet/summary: the fleet at a glance: device counts, charging and
 * stale devices, average state of charge, fleet efficiency over a window, and
 * the vehicles whose efficiency falls below a threshold (degraded chargers or
 * batteries: below 0.85 suggests a fault or energy leakage), and the shared
 * meters whose group efficiency does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)
#define DEFAULT_THRESHOLD 0.85
/* Below this much attributable AC (kWh) a ratio says more about rounding and
 * idle meters than about a fault. */
#define DEFAULT_MIN_KWH 1.0
#define DEFAULT_STALE_MS (5 * 60 * 1000LL)
#define MAX_DEGRADED 100

static json_int_t column_int(const PGresult *res, int col)
{
    return (json_int_t)strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

static json_t *ratio_or_null(double dc, double ac)
{
    return ac > 0 ? json_real(dc / ac) : json_null();
}

static int get_summary(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    char msg[PARAM_MSG_LEN];
    param_window w;
    double threshold = DEFAULT_THRESHOLD, min_kwh = DEFAULT_MIN_KWH;
    bool has_threshold, has_min;
    int64_t stale_ms = DEFAULT_STALE_MS;
    if (param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0 ||
        param_double(req, "efficiencyBelow", 0, 1, &threshold, &has_threshold, msg) < 0 ||
        param_double(req, "minEnergyKwh", 0, 1e9, &min_kwh, &has_min, msg) < 0 ||
        param_duration(req, "staleAfter", 60000, 3650LL * 86400000, &stale_ms, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);

    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(w.from_ms, from);
    timefmt_format_rfc3339(w.to_ms, to);
    data_fleet_query query = {.from_ms = w.from_ms,
                              .to_ms = w.to_ms,
                              .efficiency_below = threshold,
                              .min_kwh = min_kwh,
                              .stale_ms = stale_ms,
                              .limit = MAX_DEGRADED};
    PGresult *res = data_fleet_summary(ctx, resp, &query);
    if (!res)
        return U_CALLBACK_COMPLETE;
    double ac = pg_field_double(res, 0, DATA_FLEET_AC), dc = pg_field_double(res, 0, DATA_FLEET_DC);
    double own_ac = pg_field_double(res, 0, DATA_FLEET_OWN_AC), own_dc = pg_field_double(res, 0, DATA_FLEET_OWN_DC);
    double shared_ac = pg_field_double(res, 0, DATA_FLEET_SHARED_AC);
    json_t *degraded = json_loads(PQgetvalue(res, 0, DATA_FLEET_DEGRADED), 0, NULL);
    json_t *degraded_meters = json_loads(PQgetvalue(res, 0, DATA_FLEET_DEGRADED_METERS), 0, NULL);
    json_t *below_baseline = json_loads(PQgetvalue(res, 0, DATA_FLEET_BELOW_BASELINE), 0, NULL);
    json_t *hot = json_loads(PQgetvalue(res, 0, DATA_FLEET_HOT), 0, NULL);
    json_t *efficiency = json_pack(
        "{s:f, s:f, s:o, s:{s:f, s:f, s:o}, s:{s:f, s:f}, s:f}", "totalEnergyConsumedAc", ac,
        "totalEnergyDeliveredDc", dc, "efficiencyRatio", ratio_or_null(dc, ac), "attributable",
        "acKwh", own_ac, "dcKwh", own_dc, "efficiencyRatio", ratio_or_null(own_dc, own_ac),
        "shared", "acKwh", shared_ac, "dcKwh", pg_field_double(res, 0, DATA_FLEET_SHARED_DC),
        "unassignedAcKwh", round((ac - own_ac - shared_ac) * 1e9) / 1e9); /* no float dust */
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:f, s:f, s:o, s:o, s:o, s:o}", "window",
        w.label, "from", from, "to", to, "vehicles", column_int(res, DATA_FLEET_VEHICLES), "meters",
        column_int(res, DATA_FLEET_METERS), "charging", column_int(res, DATA_FLEET_CHARGING), "staleVehicles",
        column_int(res, DATA_FLEET_STALE_VEHICLES), "staleMeters", column_int(res, DATA_FLEET_STALE_METERS),
        "averageSoC", pg_field_json_number(res, 0, DATA_FLEET_SOC), "fleetEfficiency", efficiency,
        "efficiencyBelow", threshold, "minEnergyKwh", min_kwh, "degradedVehicles",
        degraded ? degraded : json_array(), "degradedMeters",
        degraded_meters ? degraded_meters : json_array(), "belowBaseline",
        below_baseline ? below_baseline : json_array(), "temperatureOutliers", hot ? hot : json_array());
    PQclear(res);
    return respond_json(resp, 200, body);
}

static const api_route routes[] = {
    {"GET", "/v1/fleet/summary", get_summary, API_ACCESS_READ},
};

int routes_fleet_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
