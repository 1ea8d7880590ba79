/* GET /v1/vehicles/{vehicleId}/history: a vehicle's readings downsampled into
 * steps for charts: last state of charge, DC energy summed, average battery
 * temperature, and the AC of the meters assigned at the time by the
 * attribution rule (migration 010): the vehicle's own while it had the meter
 * to itself, shared while it had company. Bounded in points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define MINUTE_MS 60000LL
#define DAY_MS (86400 * 1000LL)
#define MAX_SPAN_MS (30 * DAY_MS)
#define TARGET_POINTS 500
#define MAX_POINTS 2000

/* The smallest of the usual chart steps that gives at most TARGET_POINTS. */
static int64_t auto_step(int64_t span_ms)
{
    static const int64_t steps[] = {MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS, 60 * MINUTE_MS,
                                    6 * 60 * MINUTE_MS, DAY_MS};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span_ms / steps[i] <= TARGET_POINTS)
            return steps[i];
    return DAY_MS;
}

static int get_history(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *id;
    char msg[PARAM_MSG_LEN];
    bool has_from, has_to;
    int64_t now = timefmt_now_ms(), from_ms = now - DAY_MS, to_ms = now, step_ms = 0;
    if (param_device_id(req, "vehicleId", &id, msg) < 0 ||
        param_time(req, "from", &from_ms, &has_from, msg) < 0 ||
        param_time(req, "to", &to_ms, &has_to, msg) < 0 ||
        param_duration(req, "step", MINUTE_MS, MAX_SPAN_MS, &step_ms, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (has_from && !has_to)
        to_ms = from_ms + DAY_MS < now ? from_ms + DAY_MS : now;
    if (has_to && !has_from)
        from_ms = to_ms - DAY_MS;
    if (to_ms <= from_ms || to_ms - from_ms > MAX_SPAN_MS)
        return respond_error(resp, 400, "invalid_parameter", "to: must be after from, by at most 30d");
    if (!step_ms)
        step_ms = auto_step(to_ms - from_ms);
    if ((to_ms - from_ms + step_ms - 1) / step_ms > MAX_POINTS)
        return respond_error(resp, 400, "invalid_parameter",
                             "step: gives more than %d points over this range; take a larger step",
                             MAX_POINTS);

    if (api_vehicle_known(ctx, resp, id) < 1)
        return U_CALLBACK_COMPLETE;

    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], step_label[24];
    timefmt_format_rfc3339(from_ms, from);
    timefmt_format_rfc3339(to_ms, to);
    param_format_duration(step_ms, step_label, sizeof step_label);
    PGresult *res = data_vehicle_history(ctx, resp, id, from_ms, to_ms, step_ms);
    if (!res)
        return U_CALLBACK_COMPLETE;
    json_t *points = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        char t[TIMEFMT_RFC3339_LEN];
        timefmt_format_rfc3339(strtoll(PQgetvalue(res, i, DATA_HISTORY_T_MS), NULL, 10), t);
        json_array_append_new(
            points, json_pack("{s:s, s:o, s:f, s:f, s:f, s:o}", "t", t, "soc",
                              pg_field_json_number(res, i, DATA_HISTORY_SOC), "kwhDeliveredDc",
                              pg_field_double(res, i, DATA_HISTORY_DC), "kwhConsumedAc",
                              pg_field_double(res, i, DATA_HISTORY_AC), "kwhConsumedAcShared",
                              pg_field_double(res, i, DATA_HISTORY_SHARED_AC), "batteryTemp",
                              pg_field_json_number(res, i, DATA_HISTORY_TEMP)));
    }
    PQclear(res);
    return respond_json(resp, 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:o}", "vehicleId", id, "from", from, "to",
                                  to, "step", step_label, "points", points));
}

static const api_route routes[] = {
    {"GET", "/v1/vehicles/:vehicleId/history", get_history, API_ACCESS_READ},
};

int routes_history_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
