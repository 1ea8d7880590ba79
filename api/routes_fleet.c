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
#define CHARGING_FRESH_S 180

/* The fleet's totals are the history's own sums, each reading once (of the
 * devices in the hot state or assigned in the window); the
 * attribution rule (migration 010) splits them and decides who is degraded:
 * a vehicle by its attributable energy only, a meter that fed several
 * vehicles at once by its group efficiency (its AC while assigned against
 * the DC of every vehicle it fed). */
static const char *const summary_sql =
    "WITH f AS (SELECT * FROM eie_fleet_attribution($1::timestamptz, $2::timestamptz)),"
    " v AS (SELECT id, ac_kwh AS ac, dc_kwh AS dc, all_kwh FROM f WHERE kind = 'vehicle'),"
    " m AS (SELECT * FROM f WHERE kind = 'meter') "
    "SELECT (SELECT count(*) FROM vehicle_state),"
    "  (SELECT count(*) FROM meter_state),"
    "  (SELECT count(*) FROM vehicle_state WHERE kwh_delivered_dc > 0"
    "     AND ts >= now() - make_interval(secs => $5)),"
    "  (SELECT count(*) FROM vehicle_state WHERE ts < now() - $4 * interval '1 millisecond'),"
    "  (SELECT count(*) FROM meter_state WHERE ts < now() - $4 * interval '1 millisecond'),"
    "  (SELECT avg(soc) FROM vehicle_state),"
    "  (SELECT coalesce(sum(all_kwh), 0) FROM m), (SELECT coalesce(sum(all_kwh), 0) FROM v),"
    "  (SELECT coalesce(sum(ac), 0) FROM v), (SELECT coalesce(sum(dc), 0) FROM v),"
    "  (SELECT coalesce(sum(shared_ac_kwh), 0) FROM m), (SELECT coalesce(sum(shared_dc_kwh), 0) FROM m),"
    "  (SELECT coalesce(json_agg(json_build_object('vehicleId', id,"
    "     'totalEnergyConsumedAc', ac, 'totalEnergyDeliveredDc', dc, 'efficiencyRatio', ratio)"
    "     ORDER BY ratio, id), '[]')"
    "   FROM (SELECT id, ac, dc, dc / nullif(ac, 0) AS ratio FROM v"
    "         WHERE ac > 0 AND ac >= $7 AND dc / nullif(ac, 0) < $3"
    "         ORDER BY 4, id LIMIT $6) d),"
    "  (SELECT coalesce(json_agg(json_build_object('meterId', id,"
    "     'totalEnergyConsumedAc', ac_kwh, 'totalEnergyDeliveredDc', dc_kwh,"
    "     'efficiencyRatio', ratio, 'sharedSeconds', shared_seconds) ORDER BY ratio, id), '[]')"
    "   FROM (SELECT id, ac_kwh, dc_kwh, dc_kwh / nullif(ac_kwh, 0) AS ratio, shared_seconds FROM m"
    "         WHERE shared_seconds > 0 AND ac_kwh > 0 AND ac_kwh >= $7"
    "           AND dc_kwh / nullif(ac_kwh, 0) < $3"
    "         ORDER BY 4, id LIMIT $6) d),"
    /* Migration 012: the last 24 hours against each vehicle's own 30 days. */
    "  (SELECT coalesce(json_agg(json_build_object('vehicleId', vehicle_id,"
    "     'efficiencyRatio', recent_ratio, 'baseline', baseline, 'spread', spread,"
    "     'baselineDays', baseline_days) ORDER BY recent_ratio - baseline, vehicle_id), '[]')"
    "   FROM (SELECT * FROM eie_efficiency_baselines($2::timestamptz, 30, $7::float8)"
    "         WHERE below_baseline ORDER BY recent_ratio - baseline, vehicle_id LIMIT $6) b),"
    "  (SELECT coalesce(json_agg(json_build_object('vehicleId', vehicle_id,"
    "     'avgBatteryTemp', temp_avg, 'fleetMedian', fleet_median, 'robustZ', robust_z)"
    "     ORDER BY temp_avg DESC, vehicle_id), '[]')"
    "   FROM (SELECT * FROM eie_temperature_outliers($1::timestamptz, $2::timestamptz)"
    "         ORDER BY temp_avg DESC, vehicle_id LIMIT $6) o)";

enum { COL_VEHICLES, COL_METERS, COL_CHARGING, COL_STALE_VEHICLES, COL_STALE_METERS, COL_SOC,
       COL_AC, COL_DC, COL_OWN_AC, COL_OWN_DC, COL_SHARED_AC, COL_SHARED_DC, COL_DEGRADED,
       COL_DEGRADED_METERS, COL_BELOW_BASELINE, COL_HOT };

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

    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], thr[32], stale[32], fresh[16], lim[16],
        min[32];
    timefmt_format_rfc3339(w.from_ms, from);
    timefmt_format_rfc3339(w.to_ms, to);
    snprintf(thr, sizeof thr, "%.17g", threshold);
    snprintf(stale, sizeof stale, "%lld", (long long)stale_ms);
    snprintf(fresh, sizeof fresh, "%d", CHARGING_FRESH_S);
    snprintf(lim, sizeof lim, "%d", MAX_DEGRADED);
    snprintf(min, sizeof min, "%.17g", min_kwh);
    const char *params[] = {from, to, thr, stale, fresh, lim, min};
    PGresult *res = api_query(ctx, resp, "fleet summary", summary_sql, 7, params);
    if (!res)
        return U_CALLBACK_COMPLETE;
    double ac = respond_pg_double(res, 0, COL_AC), dc = respond_pg_double(res, 0, COL_DC);
    double own_ac = respond_pg_double(res, 0, COL_OWN_AC), own_dc = respond_pg_double(res, 0, COL_OWN_DC);
    double shared_ac = respond_pg_double(res, 0, COL_SHARED_AC);
    json_t *degraded = json_loads(PQgetvalue(res, 0, COL_DEGRADED), 0, NULL);
    json_t *degraded_meters = json_loads(PQgetvalue(res, 0, COL_DEGRADED_METERS), 0, NULL);
    json_t *below_baseline = json_loads(PQgetvalue(res, 0, COL_BELOW_BASELINE), 0, NULL);
    json_t *hot = json_loads(PQgetvalue(res, 0, COL_HOT), 0, NULL);
    json_t *efficiency = json_pack(
        "{s:f, s:f, s:o, s:{s:f, s:f, s:o}, s:{s:f, s:f}, s:f}", "totalEnergyConsumedAc", ac,
        "totalEnergyDeliveredDc", dc, "efficiencyRatio", ratio_or_null(dc, ac), "attributable",
        "acKwh", own_ac, "dcKwh", own_dc, "efficiencyRatio", ratio_or_null(own_dc, own_ac),
        "shared", "acKwh", shared_ac, "dcKwh", respond_pg_double(res, 0, COL_SHARED_DC),
        "unassignedAcKwh", round((ac - own_ac - shared_ac) * 1e9) / 1e9); /* no float dust */
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:f, s:f, s:o, s:o, s:o, s:o}", "window",
        w.label, "from", from, "to", to, "vehicles", column_int(res, COL_VEHICLES), "meters",
        column_int(res, COL_METERS), "charging", column_int(res, COL_CHARGING), "staleVehicles",
        column_int(res, COL_STALE_VEHICLES), "staleMeters", column_int(res, COL_STALE_METERS),
        "averageSoC", respond_pg_real(res, 0, COL_SOC), "fleetEfficiency", efficiency,
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
