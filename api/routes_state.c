/* Fleet and device state from the hot store: GET /v1/vehicles/{id},
 * GET /v1/meters/{id}, and GET /v1/vehicles with filters and cursor
 * pagination. A vehicle is charging when DC flows in a reading that is still
 * fresh; a device is stale when it has not reported for a while. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "params.h"
#include "respond.h"
#include "state_cache.h"
#include "timefmt.h"

/* Readings come every 60 s: three missed mean the charging state is unknown,
 * five that the device is stale. */
#define CHARGING_FRESH_S 180
#define STALE_AFTER_S 300
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

/* Columns shared by the vehicle queries, in this order. */
#define VEHICLE_COLUMNS                                                                          \
    "vs.vehicle_id, cur.meter_id, (extract(epoch FROM vs.ts) * 1000)::bigint, vs.soc, "         \
    "vs.kwh_delivered_dc, vs.battery_temp "
#define VEHICLE_FROM                                                                             \
    "FROM vehicle_state vs LEFT JOIN vehicle_assignment_current cur USING (vehicle_id) "

/* The vehicle document, from the cache or from a row of VEHICLE_COLUMNS,
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
    jsonw_bool(w, "charging", e->kwh_delivered_dc > 0 && age_s <= CHARGING_FRESH_S);
    jsonw_bool(w, "stale", age_s > STALE_AFTER_S);
    jsonw_real(w, "ageSeconds", age_s);
    jsonw_end(w);
}

static void row_entry(const PGresult *res, int row, vehicle_state_entry *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->vehicle_id, sizeof e->vehicle_id, "%s", PQgetvalue(res, row, 0));
    snprintf(e->meter_id, sizeof e->meter_id, "%s", PQgetvalue(res, row, 1));
    e->ts_ms = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    e->soc = respond_pg_double(res, row, 3);
    e->kwh_delivered_dc = respond_pg_double(res, row, 4);
    e->battery_temp = respond_pg_double(res, row, 5);
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
    const char *params[] = {id};
    PGresult *res = api_query(ctx, resp, "vehicle state",
                              "SELECT " VEHICLE_COLUMNS VEHICLE_FROM "WHERE vs.vehicle_id = $1", 1,
                              params);
    if (!res)
        return U_CALLBACK_COMPLETE;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    }
    row_entry(res, 0, &cached);
    PQclear(res);
    return respond_vehicle(resp, &cached);
}

static int get_meter(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *id;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "meterId", &id, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    const char *params[] = {id};
    PGresult *res = api_query(
        ctx, resp, "meter state",
        "SELECT ms.meter_id, (extract(epoch FROM ms.ts) * 1000)::bigint, ms.kwh_consumed_ac, "
        "ms.voltage, coalesce((SELECT json_agg(vehicle_id ORDER BY vehicle_id) "
        "FROM vehicle_assignment_current WHERE meter_id = ms.meter_id), '[]') "
        "FROM meter_state ms WHERE ms.meter_id = $1",
        1, params);
    if (!res)
        return U_CALLBACK_COMPLETE;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return respond_error(resp, 404, "not_found", "no meter with this id has reported");
    }
    int64_t ts = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    double age_s = (double)(timefmt_now_ms() - ts) / 1000.0;
    json_t *vehicles = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    int rc = respond_json(
        resp, 200,
        json_pack("{s:s, s:o, s:f, s:f, s:b, s:f, s:o}", "meterId", PQgetvalue(res, 0, 0),
                  "lastReadingAt", respond_time(ts), "kwhConsumedAc", respond_pg_double(res, 0, 2),
                  "voltage", respond_pg_double(res, 0, 3), "stale", age_s > STALE_AFTER_S, "ageSeconds", age_s, "vehicleIds",
                  vehicles ? vehicles : json_array()));
    PQclear(res);
    return rc;
}

/* Every filter is a parameter that is NULL when not given, so one statement
 * (planned once per shape by PostgreSQL) serves all combinations. */
static const char *const list_sql =
    "SELECT " VEHICLE_COLUMNS VEHICLE_FROM
    "WHERE ($1::text IS NULL OR vs.vehicle_id > $1) "
    "AND ($2::float8 IS NULL OR vs.soc < $2) "
    "AND ($3::float8 IS NULL OR vs.soc > $3) "
    "AND ($4::bool IS NULL OR $4 = (vs.kwh_delivered_dc > 0 AND "
    "     vs.ts >= now() - make_interval(secs => $8))) "
    "AND ($5::bigint IS NULL OR vs.ts <= now() - $5 * interval '1 millisecond') "
    "AND ($6::text IS NULL OR cur.meter_id = $6) "
    "ORDER BY vs.vehicle_id LIMIT $7";

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

    char below[32], above[32], stale[32], lim[32], fresh[32];
    snprintf(below, sizeof below, "%.17g", soc_below);
    snprintf(above, sizeof above, "%.17g", soc_above);
    snprintf(stale, sizeof stale, "%lld", (long long)stale_ms);
    snprintf(lim, sizeof lim, "%ld", limit + 1); /* one more tells whether a next page exists */
    snprintf(fresh, sizeof fresh, "%d", CHARGING_FRESH_S);
    const char *params[] = {cursor,
                            has_below ? below : NULL,
                            has_above ? above : NULL,
                            has_charging ? (charging ? "true" : "false") : NULL,
                            stale_ms >= 0 ? stale : NULL,
                            meter,
                            lim,
                            fresh};
    PGresult *res = api_query(ctx, resp, "vehicle list", list_sql, 8, params);
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
        row_entry(res, i, &e);
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
