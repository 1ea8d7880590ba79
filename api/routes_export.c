/* Exports over a range, streamed as CSV or JSON Lines (export_format.h,
 * export_stream.h), with the JSON routes' validation and limits (a window or
 * from..to of at most 30 days):
 *
 *   GET /v1/export/history?kind=meter|vehicle  every stored reading of one
 *       stream (of one device with deviceId), by device, then time
 *   GET /v1/export/sessions  the stored charging sessions that overlap the
 *       range, with /v1/sessions' filters and vehicleId, oldest first
 *   GET /v1/export/reports  a row per vehicle: its performance figures over
 *       the range by the attribution rule (eie_fleet_attribution, migration
 *       010), by vehicle
 *
 * Bad parameters get their JSON error before anything is streamed. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "data.h"
#include "export_format.h"
#include "export_stream.h"
#include "params.h"
#include "respond.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)


/* What every export reads first: its format and its range. 0, or -1 with
 * the error response set. */
static int common_params(const struct _u_request *req, struct _u_response *resp,
                         export_choice *choice, param_window *w)
{
    char msg[PARAM_MSG_LEN];
    unsigned status;
    if (param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, w, msg) < 0) {
        respond_error(resp, 400, "invalid_parameter", "%s", msg);
        return -1;
    }
    if (export_format_choose(req, choice, &status, msg) < 0) {
        respond_error(resp, status, status == 406 ? "not_acceptable" : "invalid_parameter", "%s",
                      msg);
        return -1;
    }
    return 0;
}

/* "meter-history_20260208T130800Z_20260209T130800Z.csv" */
static void file_name(char *out, size_t size, const char *what, const param_window *w,
                      export_format f)
{
    char stamp[2][20];
    int64_t ms[2] = {w->from_ms, w->to_ms};
    for (int i = 0; i < 2; i++) {
        time_t t = (time_t)(ms[i] / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp[i], sizeof stamp[i], "%Y%m%dT%H%M%SZ", &tm);
    }
    snprintf(out, size, "%s_%s_%s.%s", what, stamp[0], stamp[1], export_format_extension(f));
}

/* Streams the export of copy_sql (taken), or answers 400 when building it
 * failed (a value that cannot be quoted: not UTF-8). */
static int run(export_stream *ex, struct _u_response *resp, int built, strbuf *copy_sql,
               const export_choice *choice, const char *name)
{
    if (built < 0) {
        strbuf_free(copy_sql);
        export_stream_abandon(ex);
        return respond_error(resp, 400, "invalid_parameter", "a parameter is not valid UTF-8");
    }
    int rc = export_stream_start(ex, resp, copy_sql->data, choice, name);
    strbuf_free(copy_sql);
    return rc;
}

static int get_history(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    export_choice choice;
    param_window w;
    char msg[PARAM_MSG_LEN], name[128];
    const char *kind = u_map_get(req->map_url, "kind"), *device = NULL;
    if (!kind || (strcmp(kind, "meter") != 0 && strcmp(kind, "vehicle") != 0))
        return respond_error(resp, 400, "invalid_parameter", "kind: expected meter or vehicle");
    bool meter = kind[0] == 'm';
    if (u_map_get(req->map_url, "deviceId") && param_device_id(req, "deviceId", &device, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (common_params(req, resp, &choice, &w) < 0)
        return U_CALLBACK_COMPLETE;
    export_stream *ex = export_stream_open(ctx, resp, "/v1/export/history");
    if (!ex)
        return U_CALLBACK_COMPLETE;
    strbuf copy = {0};
    int built = data_export_history(ex, choice.format, meter, device, w.from_ms, w.to_ms, &copy);
    file_name(name, sizeof name, meter ? "meter-history" : "vehicle-history", &w, choice.format);
    return run(ex, resp, built, &copy, &choice, name);
}

static int get_sessions(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    export_choice choice;
    param_window w;
    char msg[PARAM_MSG_LEN], name[128];
    const char *vehicle = NULL, *meter_id = NULL;
    double below = 0, temp_above = 0;
    bool has_below, has_temp;
    if (param_double(req, "efficiencyBelow", 0, 1, &below, &has_below, msg) < 0 ||
        param_double(req, "batteryTempAbove", -60, 120, &temp_above, &has_temp, msg) < 0 ||
        (u_map_get(req->map_url, "meterId") && param_device_id(req, "meterId", &meter_id, msg) < 0) ||
        (u_map_get(req->map_url, "vehicleId") &&
         param_device_id(req, "vehicleId", &vehicle, msg) < 0))
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (common_params(req, resp, &choice, &w) < 0)
        return U_CALLBACK_COMPLETE;
    export_stream *ex = export_stream_open(ctx, resp, "/v1/export/sessions");
    if (!ex)
        return U_CALLBACK_COMPLETE;
    data_session_filter filter = {.from_ms = w.from_ms,
                                  .to_ms = w.to_ms,
                                  .efficiency_below = has_below ? below : NAN,
                                  .temp_above = has_temp ? temp_above : NAN,
                                  .meter_id = meter_id};
    strbuf copy = {0};
    int built = data_export_sessions(ex, choice.format, &filter, vehicle, &copy);
    file_name(name, sizeof name, "sessions", &w, choice.format);
    return run(ex, resp, built, &copy, &choice, name);
}

static int get_reports(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    export_choice choice;
    param_window w;
    char name[128];
    if (common_params(req, resp, &choice, &w) < 0)
        return U_CALLBACK_COMPLETE;
    export_stream *ex = export_stream_open(ctx, resp, "/v1/export/reports");
    if (!ex)
        return U_CALLBACK_COMPLETE;
    strbuf copy = {0};
    int built = data_export_reports(ex, choice.format, w.from_ms, w.to_ms, &copy);
    file_name(name, sizeof name, "reports", &w, choice.format);
    return run(ex, resp, built, &copy, &choice, name);
}

static const api_route routes[] = {
    {"GET", "/v1/export/history", get_history, API_ACCESS_READ},
    {"GET", "/v1/export/sessions", get_sessions, API_ACCESS_READ},
    {"GET", "/v1/export/reports", get_reports, API_ACCESS_READ},
};

int routes_export_register(api_context *ctx)
{
    export_stream_describe_metrics(ctx->metrics);
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
