/* Fleet and device state from the hot store: GET /v1/vehicles/{id},
 * GET /v1/meters/{id}, and GET /v1/vehicles with filters and cursor
 * pagination. A vehicle is charging when DC flows in a reading that is still
 * fresh; a device is stale when it has not reported for a while. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "params.h"
#include "respond.h"
#include "state_cache.h"
#include "timefmt.h"

/* Readings come every 60 s: five missed mean the device is stale. */
#define STALE_AFTER_S 300
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

/* The vehicle document, from the cache or from the database,
 * written straight out: the route served from memory answers tens of
 * thousands of requests a second. */
static void write_vehicle(jsonw *w, const vehicle_state_entry *e, int64_t now_ms)
{
    double age_s = (double)(now_ms - e->ts_ms) / 1000.0;
    jsonw_begin(w, NULL);
    jsonw_string(w, "vehicleId", e->vehicle_id);
    jsonw_string(w, "meterId", e->meter_id[0] ? e->meter_id : NULL);
    jsonw_time(w, "lastReadingAt", e->ts_ms);
    jsonw_real(w, "soc", e->soc);
    jsonw_real(w, "kwhDeliveredDc", e->kwh_delivered_dc);
    jsonw_real(w, "batteryTemp", e->battery_temp);
    jsonw_bool(w, "charging", e->kwh_delivered_dc > 0 && age_s <= DATA_CHARGING_FRESH_S);
    jsonw_bool(w, "stale", age_s > STALE_AFTER_S);
    jsonw_real(w, "ageSeconds", age_s);
    jsonw_end(w);
}

static int respond_vehicle(struct _u_response *resp, const vehicle_state_entry *e)
{
    jsonw w;
    jsonw_init(&w);
    write_vehicle(&w, e, timefmt_now_ms());
    return respond_jsonw(resp, 200, &w);
}

static int get_vehicle(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *id;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "vehicleId", &id, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    vehicle_state_entry cached;
    if (state_cache_vehicle(ctx->state, id, &cached, false) && cached.has_state)
        return respond_vehicle(resp, &cached);
    int found = data_vehicle_state(ctx, resp, id, &cached);
    if (found < 0)
        return U_CALLBACK_COMPLETE;
    if (!found)
        return respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    return respond_vehicle(resp, &cached);
}

static int get_meter(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *id;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "meterId", &id, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    PGresult *res = data_meter_state(ctx, resp, id);
    if (!res)
        return U_CALLBACK_COMPLETE;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return respond_error(resp, 404, "not_found", "no meter with this id has reported");
    }
    int64_t ts = strtoll(PQgetvalue(res, 0, DATA_METER_TS_MS), NULL, 10);
    double age_s = (double)(timefmt_now_ms() - ts) / 1000.0;
    json_t *vehicles = json_loads(PQgetvalue(res, 0, DATA_METER_VEHICLES), 0, NULL);
    int rc = respond_json(
        resp, 200,
        json_pack("{s:s, s:o, s:f, s:f, s:b, s:f, s:o}", "meterId", PQgetvalue(res, 0, DATA_METER_ID),
                  "lastReadingAt", json_rfc3339(ts), "kwhConsumedAc",
                  pg_field_double(res, 0, DATA_METER_AC), "voltage",
                  pg_field_double(res, 0, DATA_METER_VOLTAGE), "stale", age_s > STALE_AFTER_S,
                  "ageSeconds", age_s, "vehicleIds", vehicles ? vehicles : json_array()));
    PQclear(res);
    return rc;
}

static int list_vehicles(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    char msg[PARAM_MSG_LEN];
    double soc_below = 0, soc_above = 0;
    bool has_below, has_above, charging = false, has_charging;
    int64_t stale_ms = -1;
    long limit = DEFAULT_LIMIT;
    const char *cursor = u_map_get(req->map_url, "cursor");
    const char *meter = u_map_get(req->map_url, "meterId");
    if (param_double(req, "socBelow", 0, 100, &soc_below, &has_below, msg) < 0 ||
        param_double(req, "socAbove", 0, 100, &soc_above, &has_above, msg) < 0 ||
        param_bool(req, "charging", &charging, &has_charging, msg) < 0 ||
        param_duration(req, "staleFor", 60000, 3650LL * 86400000, &stale_ms, msg) < 0 ||
        param_long(req, "limit", 1, MAX_LIMIT, &limit, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (meter && param_device_id(req, "meterId", &meter, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (cursor && param_device_id(req, "cursor", &cursor, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "cursor: not one this service gave");

    data_vehicle_filter filter = {
        .after = cursor,
        .meter_id = meter,
        .soc_below = has_below ? soc_below : NAN,
        .soc_above = has_above ? soc_above : NAN,
        .charging = has_charging ? charging : -1,
        .stale_for_ms = stale_ms,
        .limit = limit + 1, /* one more tells whether a next page exists */
    };
    PGresult *res = data_vehicle_list(ctx, resp, &filter);
    if (!res)
        return U_CALLBACK_COMPLETE;
    int n = PQntuples(res), shown = n > limit ? (int)limit : n;
    int64_t now = timefmt_now_ms();
    jsonw w;
    jsonw_init(&w);
    jsonw_begin(&w, NULL);
    jsonw_begin_array(&w, "items");
    for (int i = 0; i < shown; i++) {
        vehicle_state_entry e;
        data_vehicle_entry(res, i, &e);
        write_vehicle(&w, &e, now);
    }
    jsonw_end_array(&w);
    jsonw_string(&w, "nextCursor", n > limit ? PQgetvalue(res, shown - 1, 0) : NULL);
    jsonw_end(&w);
    PQclear(res);
    return respond_jsonw(resp, 200, &w);
}

static const api_route routes[] = {
    {"GET", "/v1/vehicles", list_vehicles, API_ACCESS_READ},
    {"GET", "/v1/vehicles/:vehicleId", get_vehicle, API_ACCESS_READ},
    {"GET", "/v1/meters/:meterId", get_meter, API_ACCESS_READ},
};

int routes_state_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
