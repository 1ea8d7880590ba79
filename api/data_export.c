/* The data layer's exports: the COPY statements of GET /v1/export/..., their
 * columns (named as the JSON routes name their fields) and filters; see
 * data.h. COPY takes no parameters, so values go in as literals quoted on
 * the export's own connection. */
#include <string.h>

#include "data.h"
#include "data_args.h"

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

/* The COPY of SELECT columns rest (taken) as f. */
static int finish(export_format f, const export_column *columns, size_t n_columns, strbuf *rest,
                  strbuf *copy_sql)
{
    export_format_copy_sql(f, columns, n_columns, rest->data, copy_sql);
    strbuf_free(rest);
    return 0;
}

static int bad_literal(strbuf *rest)
{
    strbuf_free(rest);
    return -1;
}

int data_export_history(export_stream *ex, export_format f, bool meter, const char *device,
                        int64_t from_ms, int64_t to_ms, strbuf *copy_sql)
{
    data_args a = {0};
    data_arg_time(&a, from_ms);
    data_arg_time(&a, to_ms);
    strbuf rest = {0};
    const char *id = meter ? "h.meter_id" : "h.vehicle_id";
    strbuf_printf(&rest, "FROM %s h WHERE true", meter ? "meter_history" : "vehicle_history");
    if (filter(ex, &rest, "h.ts >= ", a.values[0], "::timestamptz") < 0 ||
        filter(ex, &rest, "h.ts < ", a.values[1], "::timestamptz") < 0 ||
        filter(ex, &rest, meter ? "h.meter_id = " : "h.vehicle_id = ", device, "") < 0)
        return bad_literal(&rest);
    /* By device, then time: the order of each day's primary key, so the
     * partitions are merged, not sorted. */
    strbuf_printf(&rest, " ORDER BY %s, h.ts", id);
    return meter ? finish(f, meter_columns, N(meter_columns), &rest, copy_sql)
                 : finish(f, vehicle_columns, N(vehicle_columns), &rest, copy_sql);
}

int data_export_sessions(export_stream *ex, export_format f, const data_session_filter *q,
                         const char *vehicle_id, strbuf *copy_sql)
{
    data_args a = {0};
    data_arg_time(&a, q->from_ms);
    data_arg_time(&a, q->to_ms);
    data_arg_double(&a, q->efficiency_below);
    data_arg_double(&a, q->temp_above);
    /* As GET /v1/sessions finds them: by their start, at most a day before
     * the range (no session lasts that long), and their end in it. */
    strbuf rest = {0};
    strbuf_puts(&rest, "FROM charging_session s, charging_session_state st WHERE true");
    if (filter(ex, &rest, "s.started_at >= ", a.values[0], "::timestamptz - interval '1 day'") < 0 ||
        filter(ex, &rest, "s.started_at < ", a.values[1], "::timestamptz") < 0 ||
        filter(ex, &rest, "s.ended_at >= ", a.values[0], "::timestamptz") < 0 ||
        filter(ex, &rest, "s.vehicle_id = ", vehicle_id, "") < 0 ||
        filter(ex, &rest, "s.ac_kwh > 0 AND s.own_dc_kwh / s.ac_kwh < ", a.values[2], "::float8") < 0 ||
        filter(ex, &rest, "s.temp_max > ", a.values[3], "::float8") < 0 ||
        filter(ex, &rest, "s.meters @> ARRAY[", q->meter_id, "::text]") < 0)
        return bad_literal(&rest);
    strbuf_puts(&rest, " ORDER BY s.started_at, s.vehicle_id");
    return finish(f, session_columns, N(session_columns), &rest, copy_sql);
}

int data_export_reports(export_stream *ex, export_format f, int64_t from_ms, int64_t to_ms,
                        strbuf *copy_sql)
{
    data_args a = {0};
    data_arg_time(&a, from_ms);
    data_arg_time(&a, to_ms);
    strbuf rest = {0};
    strbuf_puts(&rest, "FROM (SELECT ");
    if (export_stream_literal(ex, &rest, a.values[0]) < 0)
        return bad_literal(&rest);
    strbuf_puts(&rest, "::timestamptz AS lo, ");
    if (export_stream_literal(ex, &rest, a.values[1]) < 0)
        return bad_literal(&rest);
    strbuf_puts(&rest, "::timestamptz AS hi) r, eie_fleet_attribution(r.lo, r.hi) f"
                       " WHERE f.kind = 'vehicle' ORDER BY f.id");
    return finish(f, report_columns, N(report_columns), &rest, copy_sql);
}
