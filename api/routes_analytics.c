/* The analytics reports: GET /v1/analytics/performance/{vehicleId}, a
 * vehicle's charging efficiency over a window, and GET
 * /v1/analytics/meters/{meterId}, a meter's. Both follow the attribution rule
 * of migration 010: a meter's AC belongs to a vehicle only while the vehicle
 * was its only assignee; while several were, it is theirs together. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "params.h"
#include "performance.h"
#include "reading.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)

static void write_share(jsonw *w, const char *key, const energy_share *e, bool with_ac)
{
    jsonw_begin(w, key);
    jsonw_real(w, "seconds", e->seconds);
    if (with_ac)
        jsonw_real(w, "acKwh", e->ac_kwh);
    jsonw_real(w, "dcKwh", e->dc_kwh);
    jsonw_end(w);
}

/* Why a vehicle has no efficiency over the window, or NULL when it has one. */
static const char *no_efficiency_reason(const performance *p)
{
    if (p->attributable.ac_kwh > 0)
        return NULL;
    if (p->attributable.seconds > 0)
        return "no AC was measured while the vehicle had its meter to itself";
    if (p->shared.seconds > 0)
        return "whenever a meter was assigned to the vehicle in this window it fed other "
               "vehicles too, so none of its AC is this vehicle's own; see attribution.shared "
               "and the meter's report";
    return "no meter was assigned to the vehicle during the window";
}

static void write_attribution(jsonw *w, const performance *p)
{
    jsonw_begin(w, "attribution");
    write_share(w, "attributable", &p->attributable, true);
    jsonw_begin(w, "shared");
    jsonw_real(w, "seconds", p->shared.seconds);
    jsonw_real(w, "acKwh", p->shared.ac_kwh);
    jsonw_real(w, "dcKwh", p->shared.dc_kwh);
    jsonw_real(w, "othersDcKwh", p->others_dc_kwh);
    jsonw_begin_array(w, "periods");
    for (size_t i = 0; i < p->n_periods; i++) {
        const shared_period *s = &p->periods[i];
        jsonw_begin(w, NULL);
        jsonw_string(w, "meterId", s->meter_id);
        jsonw_time(w, "from", s->from_ms);
        jsonw_time(w, "to", s->to_ms);
        jsonw_begin_array(w, "sharedWith");
        for (size_t k = 0; k < json_array_size(s->others); k++)
            jsonw_string(w, NULL, json_string_value(json_array_get(s->others, k)));
        jsonw_end_array(w);
        jsonw_real(w, "acKwh", s->ac_kwh);
        jsonw_real(w, "dcKwh", s->dc_kwh);
        jsonw_real(w, "othersDcKwh", s->others_dc_kwh);
        jsonw_end(w);
    }
    jsonw_end_array(w);
    jsonw_end(w);
    write_share(w, "unassigned", &p->unassigned, false);
    jsonw_real(w, "totalEnergyDeliveredDc",
               p->attributable.dc_kwh + p->shared.dc_kwh + p->unassigned.dc_kwh);
    jsonw_end(w);
}

static int respond_performance(struct _u_response *resp, const char *vehicle_id,
                               const char *time_range, int64_t from_ms, int64_t to_ms,
                               const performance *p)
{
    const energy_share *own = &p->attributable;
    long long dc_readings = own->dc_readings + p->shared.dc_readings + p->unassigned.dc_readings;
    const char *no_ratio = no_efficiency_reason(p);
    jsonw w;
    jsonw_init(&w);
    jsonw_begin(&w, NULL);
    jsonw_string(&w, "vehicleId", vehicle_id);
    jsonw_string(&w, "meterId", p->meter_id[0] ? p->meter_id : NULL);
    jsonw_string(&w, "timeRange", time_range);
    jsonw_time(&w, "from", from_ms);
    jsonw_time(&w, "to", to_ms);
    jsonw_begin(&w, "latestSnapshot");
    if (p->has_state) {
        jsonw_time(&w, "lastReadingAt", p->last_ms);
        jsonw_real(&w, "currentSoC", p->soc);
    } else {
        jsonw_null(&w, "lastReadingAt");
        jsonw_null(&w, "currentSoC");
    }
    if (p->has_voltage)
        jsonw_real(&w, "currentVoltage", p->voltage);
    else
        jsonw_null(&w, "currentVoltage");
    if (p->has_state)
        jsonw_real(&w, "lastBatteryTemp", p->battery_temp);
    else
        jsonw_null(&w, "lastBatteryTemp");
    jsonw_end(&w);
    /* Over the attributable part only: the efficiency of this vehicle alone. */
    jsonw_begin(&w, "metrics");
    jsonw_real(&w, "totalEnergyConsumedAc", own->ac_kwh);
    jsonw_real(&w, "totalEnergyDeliveredDc", own->dc_kwh);
    if (no_ratio)
        jsonw_null(&w, "efficiencyRatio");
    else
        jsonw_real(&w, "efficiencyRatio", own->dc_kwh / own->ac_kwh);
    jsonw_string(&w, "efficiencyUnavailableReason", no_ratio);
    if (dc_readings > 0)
        jsonw_real(&w, "avgBatteryTemp", p->temp_sum / (double)dc_readings);
    else
        jsonw_null(&w, "avgBatteryTemp");
    jsonw_int(&w, "meterReadings", own->ac_readings);
    jsonw_int(&w, "vehicleReadings", dc_readings);
    jsonw_real(&w, "energyLossKwh", own->ac_kwh - own->dc_kwh);
    jsonw_end(&w);
    write_attribution(&w, p);
    jsonw_end(&w);
    return respond_jsonw(resp, 200, &w);
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

    performance p = {.has_state = false};
    int found = performance_from_caches(ctx, resp, vehicle_id, w.from_ms, w.to_ms, &p);
    if (found < 0)
        return U_CALLBACK_COMPLETE;
    metrics_add(ctx->metrics, "eie_api_performance_reports_total",
                found ? "source=\"caches\"" : "source=\"database\"", 1);
    if (p.from_memory)
        metrics_add(ctx->metrics, "eie_api_performance_reports_from_memory_total", "", 1);
    if (!found) {
        memset(&p, 0, sizeof p);
        found = performance_from_database(ctx, resp, vehicle_id, w.from_ms, w.to_ms, &p);
        if (found < 0) {
            performance_free(&p);
            return U_CALLBACK_COMPLETE;
        }
    }
    int rc = found ? respond_performance(resp, vehicle_id, w.label, w.from_ms, w.to_ms, &p)
                   : respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    performance_free(&p);
    return rc;
}

static int get_meter_report(const struct _u_request *req, struct _u_response *resp,
                            api_context *ctx)
{
    const char *meter_id;
    param_window w;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "meterId", &meter_id, msg) < 0 ||
        param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(w.from_ms, from);
    timefmt_format_rfc3339(w.to_ms, to);
    PGresult *res = data_meter_report(ctx, resp, meter_id, w.from_ms, w.to_ms);
    if (!res)
        return U_CALLBACK_COMPLETE;
    if (strcmp(PQgetvalue(res, 0, DATA_MREP_KNOWN), "t") != 0) {
        PQclear(res);
        return respond_error(resp, 404, "not_found", "no meter with this id has reported");
    }
    double ac = pg_field_double(res, 0, DATA_MREP_AC), dc = pg_field_double(res, 0, DATA_MREP_DC);
    double ac_all = pg_field_double(res, 0, DATA_MREP_AC_ALL);
    json_t *vehicles = json_loads(PQgetvalue(res, 0, DATA_MREP_VEHICLES), 0, NULL);
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:f, s:f, s:o, s:f, s:I, s:f, s:f}, s:{s:f, s:f, s:f}, s:o}",
        "meterId", meter_id, "timeRange", w.label, "from", from, "to", to, "metrics",
        "totalEnergyConsumedAc", ac, "totalEnergyDeliveredDc", dc, "efficiencyRatio",
        ac > 0 ? json_real(dc / ac) : json_null(), "energyLossKwh", ac - dc, "meterReadings",
        (json_int_t)strtoll(PQgetvalue(res, 0, DATA_MREP_READINGS), NULL, 10), "assignedSeconds",
        pg_field_double(res, 0, DATA_MREP_SECS), "unassignedAcKwh",
        round((ac_all - ac) * 1e9) / 1e9, "shared", "seconds",
        pg_field_double(res, 0, DATA_MREP_SHARED_SECS), "acKwh",
        pg_field_double(res, 0, DATA_MREP_SHARED_AC), "dcKwh",
        pg_field_double(res, 0, DATA_MREP_SHARED_DC), "vehicles", vehicles ? vehicles : json_array());
    PQclear(res);
    return respond_json(resp, 200, body);
}

static const api_route routes[] = {
    {"GET", "/v1/analytics/performance/:vehicleId", get_performance, API_ACCESS_READ},
    {"GET", "/v1/analytics/meters/:meterId", get_meter_report, API_ACCESS_READ},
};

int routes_analytics_register(api_context *ctx)
{
    metrics_describe(ctx->metrics, "eie_api_performance_reports_total", METRIC_COUNTER,
                     "performance reports by where their data came from: caches (memory, and "
                     "the history for a window's edges) or database");
    metrics_describe(ctx->metrics, "eie_api_performance_reports_from_memory_total",
                     METRIC_COUNTER,
                     "performance reports from the caches that asked the database nothing: the "
                     "summaries' and the hot store's notices vouched for what the caches held");
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
