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
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "export_format.h"
#include "export_stream.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)

static const export_column meter_columns[] = {
    {"meterId", "h.meter_id", NULL},
    {"timestamp", EXPORT_RFC3339("h.ts"), NULL},
    {"kwhConsumedAc", "h.kwh_consumed_ac", NULL},
    {"voltage", "h.voltage", NULL},
};

static const export_column vehicle_columns[] = {
    {"vehicleId", "h.vehicle_id", NULL},
    {"timestamp", EXPORT_RFC3339("h.ts"), NULL},
    {"soc", "h.soc", NULL},
    {"kwhDeliveredDc", "h.kwh_delivered_dc", NULL},
    {"batteryTemp", "h.battery_temp", NULL},
};

/* The fields of GET /v1/sessions' items, in their order. */
static const export_column session_columns[] = {
    {"vehicleId", "s.vehicle_id", NULL},
    {"startedAt", EXPORT_RFC3339("s.started_at"), NULL},
    {"endedAt", EXPORT_RFC3339("s.ended_at"), NULL},
    {"ongoing", "s.ended_at + st.gap > now()", "(s.ended_at + st.gap > now())::text"},
    {"durationSeconds", "extract(epoch FROM s.ended_at - s.started_at)::float8", NULL},
    {"readings", "s.readings", NULL},
    /* In CSV a JSON array too: ids may hold any character but control ones. */
    {"meterIds", "to_json(s.meters)", "array_to_json(s.meters)::text"},
    {"energyDeliveredDc", "s.dc_kwh", NULL},
    {"energyConsumedAc", "s.ac_kwh", NULL},
    {"attributableDc", "s.own_dc_kwh", NULL},
    {"efficiencyRatio", "CASE WHEN s.ac_kwh > 0 THEN s.own_dc_kwh / s.ac_kwh END", NULL},
    {"sharedSeconds", "s.shared_seconds", NULL},
    {"socFrom", "s.soc_from", NULL},
    {"socTo", "s.soc_to", NULL},
    {"batteryTempMax", "s.temp_max", NULL},
    {"batteryTempAvg", "s.temp_avg", NULL},
};

/* The performance report's figures (GET /v1/analytics/performance), for
 * every vehicle at once. */
static const export_column report_columns[] = {
    {"vehicleId", "f.id", NULL},
    {"from", EXPORT_RFC3339("r.lo"), NULL},
    {"to", EXPORT_RFC3339("r.hi"), NULL},
    {"totalEnergyConsumedAc", "f.ac_kwh", NULL},
    {"totalEnergyDeliveredDc", "f.dc_kwh", NULL},
    {"efficiencyRatio", "CASE WHEN f.ac_kwh > 0 THEN f.dc_kwh / f.ac_kwh END", NULL},
    {"energyLossKwh", "f.ac_kwh - f.dc_kwh", NULL},
    {"sharedEnergyDeliveredDc", "f.shared_dc_kwh", NULL},
    {"allEnergyDeliveredDc", "f.all_kwh", NULL},
};

#define N(a) (sizeof a / sizeof a[0])

/* What every export reads first: its format and its range. 0, or -1 with
 * the error response set. */
static int common_params(const struct _u_request *req, struct _u_response *resp,
                         export_choice *choice, param_window *w, char *from, char *to)
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
    timefmt_format_rfc3339(w->from_ms, from);
    timefmt_format_rfc3339(w->to_ms, to);
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

/* Appends " AND <before><value as a literal><after>" when value is given. */
static int filter(export_stream *ex, strbuf *sql, const char *before, const char *value,
                  const char *after)
{
    if (!value)
        return 0;
    strbuf_printf(sql, " AND %s", before);
    if (export_stream_literal(ex, sql, value) < 0)
        return -1;
    strbuf_puts(sql, after);
    return 0;
}

/* Streams SELECT columns rest; takes ex and rest. */
static int run(export_stream *ex, struct _u_response *resp, const export_column *columns,
               size_t n_columns, strbuf *rest, const export_choice *choice, const char *name)
{
    strbuf copy = {0};
    export_format_copy_sql(choice->format, columns, n_columns, rest->data, &copy);
    strbuf_free(rest);
    int rc = export_stream_start(ex, resp, copy.data, choice, name);
    strbuf_free(&copy);
    return rc;
}

static int bad_literal(export_stream *ex, strbuf *sql, struct _u_response *resp)
{
    strbuf_free(sql);
    export_stream_abandon(ex);
    return respond_error(resp, 400, "invalid_parameter", "a parameter is not valid UTF-8");
}

static int get_history(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    export_choice choice;
    param_window w;
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], msg[PARAM_MSG_LEN], name[128];
    const char *kind = u_map_get(req->map_url, "kind"), *device = NULL;
    if (!kind || (strcmp(kind, "meter") != 0 && strcmp(kind, "vehicle") != 0))
        return respond_error(resp, 400, "invalid_parameter", "kind: expected meter or vehicle");
    bool meter = kind[0] == 'm';
    if (u_map_get(req->map_url, "deviceId") && param_device_id(req, "deviceId", &device, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (common_params(req, resp, &choice, &w, from, to) < 0)
        return U_CALLBACK_COMPLETE;
    export_stream *ex = export_stream_open(ctx, resp, "/v1/export/history");
    if (!ex)
        return U_CALLBACK_COMPLETE;
    strbuf rest = {0};
    const char *id = meter ? "h.meter_id" : "h.vehicle_id";
    strbuf_printf(&rest, "FROM %s h WHERE true", meter ? "meter_history" : "vehicle_history");
    if (filter(ex, &rest, "h.ts >= ", from, "::timestamptz") < 0 ||
        filter(ex, &rest, "h.ts < ", to, "::timestamptz") < 0 ||
        filter(ex, &rest, meter ? "h.meter_id = " : "h.vehicle_id = ", device, "") < 0)
        return bad_literal(ex, &rest, resp);
    /* By device, then time: the order of each day's primary key, so the
     * partitions are merged, not sorted. */
    strbuf_printf(&rest, " ORDER BY %s, h.ts", id);
    file_name(name, sizeof name, meter ? "meter-history" : "vehicle-history", &w, choice.format);
    return meter ? run(ex, resp, meter_columns, N(meter_columns), &rest, &choice, name)
                 : run(ex, resp, vehicle_columns, N(vehicle_columns), &rest, &choice, name);
}

static int get_sessions(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    export_choice choice;
    param_window w;
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], msg[PARAM_MSG_LEN], name[128];
    char below_s[32], temp_s[32];
    const char *vehicle = NULL, *meter_id = NULL;
    double below = 0, temp_above = 0;
    bool has_below, has_temp;
    if (param_double(req, "efficiencyBelow", 0, 1, &below, &has_below, msg) < 0 ||
        param_double(req, "batteryTempAbove", -60, 120, &temp_above, &has_temp, msg) < 0 ||
        (u_map_get(req->map_url, "meterId") && param_device_id(req, "meterId", &meter_id, msg) < 0) ||
        (u_map_get(req->map_url, "vehicleId") &&
         param_device_id(req, "vehicleId", &vehicle, msg) < 0))
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    if (common_params(req, resp, &choice, &w, from, to) < 0)
        return U_CALLBACK_COMPLETE;
    snprintf(below_s, sizeof below_s, "%.17g", below);
    snprintf(temp_s, sizeof temp_s, "%.17g", temp_above);
    export_stream *ex = export_stream_open(ctx, resp, "/v1/export/sessions");
    if (!ex)
        return U_CALLBACK_COMPLETE;
    /* As GET /v1/sessions finds them: by their start, at most a day before
     * the range (no session lasts that long), and their end in it. */
    strbuf rest = {0};
    strbuf_puts(&rest, "FROM charging_session s, charging_session_state st WHERE true");
    if (filter(ex, &rest, "s.started_at >= ", from, "::timestamptz - interval '1 day'") < 0 ||
        filter(ex, &rest, "s.started_at < ", to, "::timestamptz") < 0 ||
        filter(ex, &rest, "s.ended_at >= ", from, "::timestamptz") < 0 ||
        filter(ex, &rest, "s.vehicle_id = ", vehicle, "") < 0 ||
        filter(ex, &rest, "s.ac_kwh > 0 AND s.own_dc_kwh / s.ac_kwh < ",
               has_below ? below_s : NULL, "::float8") < 0 ||
        filter(ex, &rest, "s.temp_max > ", has_temp ? temp_s : NULL, "::float8") < 0 ||
        filter(ex, &rest, "s.meters @> ARRAY[", meter_id, "::text]") < 0)
        return bad_literal(ex, &rest, resp);
    strbuf_puts(&rest, " ORDER BY s.started_at, s.vehicle_id");
    file_name(name, sizeof name, "sessions", &w, choice.format);
    return run(ex, resp, session_columns, N(session_columns), &rest, &choice, name);
}

static int get_reports(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    export_choice choice;
    param_window w;
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN], name[128];
    if (common_params(req, resp, &choice, &w, from, to) < 0)
        return U_CALLBACK_COMPLETE;
    export_stream *ex = export_stream_open(ctx, resp, "/v1/export/reports");
    if (!ex)
        return U_CALLBACK_COMPLETE;
    strbuf rest = {0};
    strbuf_puts(&rest, "FROM (SELECT ");
    if (export_stream_literal(ex, &rest, from) < 0)
        return bad_literal(ex, &rest, resp);
    strbuf_puts(&rest, "::timestamptz AS lo, ");
    if (export_stream_literal(ex, &rest, to) < 0)
        return bad_literal(ex, &rest, resp);
    strbuf_puts(&rest, "::timestamptz AS hi) r, eie_fleet_attribution(r.lo, r.hi) f"
                       " WHERE f.kind = 'vehicle' ORDER BY f.id");
    file_name(name, sizeof name, "reports", &w, choice.format);
    return run(ex, resp, report_columns, N(report_columns), &rest, &choice, name);
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
