/* Charging sessions (migration 011): GET /v1/vehicles/{vehicleId}/sessions,
 * one vehicle's, from the store and, past its end, derived from the history
 * on the spot (eie_vehicle_sessions); GET /v1/sessions, the fleet's, from the
 * store alone, filtered, with the time up to which the store is complete.
 * Both over a window or from..to, oldest first, in pages. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "params.h"
#include "reading.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000


static long long column_ll(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void write_session(jsonw *w, const PGresult *res, int row)
{
    double ac = pg_field_double(res, row, DATA_SESSION_AC), own_dc = pg_field_double(res, row, DATA_SESSION_OWN_DC);
    int64_t start = column_ll(res, row, DATA_SESSION_START_MS), end = column_ll(res, row, DATA_SESSION_END_MS);
    jsonw_begin(w, NULL);
    jsonw_string(w, "vehicleId", PQgetvalue(res, row, DATA_SESSION_VEHICLE));
    jsonw_time(w, "startedAt", start);
    jsonw_time(w, "endedAt", end);
    jsonw_bool(w, "ongoing", strcmp(PQgetvalue(res, row, DATA_SESSION_ONGOING), "t") == 0);
    jsonw_real(w, "durationSeconds", (double)(end - start) / 1000);
    jsonw_int(w, "readings", column_ll(res, row, DATA_SESSION_READINGS));
    jsonw_begin_array(w, "meterIds");
    json_t *meters = json_loads(PQgetvalue(res, row, DATA_SESSION_METERS), 0, NULL);
    for (size_t i = 0; i < json_array_size(meters); i++)
        jsonw_string(w, NULL, json_string_value(json_array_get(meters, i)));
    json_decref(meters);
    jsonw_end_array(w);
    jsonw_real(w, "energyDeliveredDc", pg_field_double(res, row, DATA_SESSION_DC));
    jsonw_real(w, "energyConsumedAc", ac);
    jsonw_real(w, "attributableDc", own_dc);
    if (ac > 0)
        jsonw_real(w, "efficiencyRatio", own_dc / ac);
    else
        jsonw_null(w, "efficiencyRatio");
    jsonw_real(w, "sharedSeconds", pg_field_double(res, row, DATA_SESSION_SHARED_S));
    jsonw_real(w, "socFrom", pg_field_double(res, row, DATA_SESSION_SOC_FROM));
    jsonw_real(w, "socTo", pg_field_double(res, row, DATA_SESSION_SOC_TO));
    jsonw_real(w, "batteryTempMax", pg_field_double(res, row, DATA_SESSION_TEMP_MAX));
    jsonw_real(w, "batteryTempAvg", pg_field_double(res, row, DATA_SESSION_TEMP_AVG));
    jsonw_end(w);
}

/* A cursor is the last session's start in epoch milliseconds, and for the
 * fleet, "~" and its vehicle. 0 when it decodes, -1 otherwise. */
static int decode_cursor(const char *cursor, bool with_vehicle, char *ms, size_t ms_size,
                         const char **vehicle)
{
    char *end;
    errno = 0;
    long long v = strtoll(cursor, &end, 10);
    if (end == cursor || errno || v < 0 || (with_vehicle ? *end != '~' : *end != '\0'))
        return -1;
    if (with_vehicle) {
        *vehicle = end + 1;
        size_t len = strlen(*vehicle);
        if (len == 0 || len > READING_ID_MAX)
            return -1;
    }
    snprintf(ms, ms_size, "%lld", v);
    return 0;
}

static int respond_sessions(struct _u_response *resp, const PGresult *res, int n, long limit,
                            bool fleet, const param_window *w)
{
    int shown = n > limit ? (int)limit : n;
    jsonw out;
    jsonw_init(&out);
    jsonw_begin(&out, NULL);
    jsonw_time(&out, "from", w->from_ms);
    jsonw_time(&out, "to", w->to_ms);
    if (fleet) {
        if (PQgetisnull(res, 0, DATA_SESSION_COMPLETE_UNTIL_MS))
            jsonw_null(&out, "completeUntil");
        else
            jsonw_time(&out, "completeUntil", column_ll(res, 0, DATA_SESSION_COMPLETE_UNTIL_MS));
    }
    jsonw_begin_array(&out, "items");
    for (int i = 0; i < shown; i++)
        write_session(&out, res, i);
    jsonw_end_array(&out);
    if (n > limit) {
        char next[READING_ID_MAX + 32];
        const char *ms = PQgetvalue(res, shown - 1, DATA_SESSION_START_MS);
        if (fleet)
            snprintf(next, sizeof next, "%s~%s", ms, PQgetvalue(res, shown - 1, DATA_SESSION_VEHICLE));
        else
            snprintf(next, sizeof next, "%s", ms);
        jsonw_string(&out, "nextCursor", next);
    } else {
        jsonw_null(&out, "nextCursor");
    }
    jsonw_end(&out);
    return respond_jsonw(resp, 200, &out);
}

static int get_vehicle_sessions(const struct _u_request *req, struct _u_response *resp,
                                api_context *ctx)
{
    const char *id, *cursor = u_map_get(req->map_url, "cursor");
    param_window w;
    long limit = DEFAULT_LIMIT;
    char msg[PARAM_MSG_LEN], after[32];
    if (param_device_id(req, "vehicleId", &id, msg) < 0 ||
        param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0 ||
        param_long(req, "limit", 1, MAX_LIMIT, &limit, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (cursor && decode_cursor(cursor, false, after, sizeof after, NULL) < 0)
        return respond_error(resp, 400, "invalid_parameter", "cursor: not one this service gave");

    if (api_vehicle_known(ctx, resp, id) < 1)
        return U_CALLBACK_COMPLETE;

    /* One more than the page tells whether a next page exists. */
    PGresult *res = data_vehicle_sessions(ctx, resp, id, w.from_ms, w.to_ms,
                                          cursor ? strtoll(after, NULL, 10) : -1, limit + 1);
    if (!res)
        return U_CALLBACK_COMPLETE;
    int rc = respond_sessions(resp, res, PQntuples(res), limit, false, &w);
    PQclear(res);
    return rc;
}

static int get_fleet_sessions(const struct _u_request *req, struct _u_response *resp,
                              api_context *ctx)
{
    const char *cursor = u_map_get(req->map_url, "cursor"), *meter = NULL, *after_vehicle = NULL;
    param_window w;
    long limit = DEFAULT_LIMIT;
    double below = 0, temp_above = 0;
    bool has_below, has_temp;
    char msg[PARAM_MSG_LEN], after[32];
    if (param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0 ||
        param_double(req, "efficiencyBelow", 0, 1, &below, &has_below, msg) < 0 ||
        param_double(req, "batteryTempAbove", -60, 120, &temp_above, &has_temp, msg) < 0 ||
        param_long(req, "limit", 1, MAX_LIMIT, &limit, msg) < 0 ||
        (u_map_get(req->map_url, "meterId") && param_device_id(req, "meterId", &meter, msg) < 0))
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (cursor && decode_cursor(cursor, true, after, sizeof after, &after_vehicle) < 0)
        return respond_error(resp, 400, "invalid_parameter", "cursor: not one this service gave");

    data_session_filter filter = {
        .from_ms = w.from_ms,
        .to_ms = w.to_ms,
        .efficiency_below = has_below ? below : NAN,
        .temp_above = has_temp ? temp_above : NAN,
        .meter_id = meter,
        .after_ms = cursor ? strtoll(after, NULL, 10) : -1,
        .after_vehicle = after_vehicle,
        .limit = limit + 1,
    };
    PGresult *res = data_fleet_sessions(ctx, resp, &filter);
    if (!res)
        return U_CALLBACK_COMPLETE;
    /* The state row always comes; without sessions, with NULLs beside it. */
    int n = PQgetisnull(res, 0, DATA_SESSION_VEHICLE) ? 0 : PQntuples(res);
    int rc = respond_sessions(resp, res, n, limit, true, &w);
    PQclear(res);
    return rc;
}

static const api_route routes[] = {
    {"GET", "/v1/vehicles/:vehicleId/sessions", get_vehicle_sessions, API_ACCESS_READ},
    {"GET", "/v1/sessions", get_fleet_sessions, API_ACCESS_READ},
};

int routes_sessions_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
