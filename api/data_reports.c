/* The data layer's reports over the history and what is derived from it:
 * a vehicle's history in steps, its efficiency trend, charging sessions, a
 * meter's report and the fleet summary; see data.h. */
#include "data.h"
#include "data_args.h"

static const char *const history_sql =
    "WITH v AS ("
    "  SELECT date_bin($4::interval, ts, $2::timestamptz) AS t,"
    "         (array_agg(soc ORDER BY ts DESC))[1] AS soc, sum(kwh_delivered_dc) AS dc,"
    "         avg(battery_temp) AS temp"
    "  FROM vehicle_history WHERE vehicle_id = $1 AND ts >= $2::timestamptz AND ts < $3::timestamptz"
    "  GROUP BY 1"
    "), a AS ("
    "  SELECT date_bin($4::interval, m.ts, $2::timestamptz) AS t,"
    "         sum(m.kwh_consumed_ac) FILTER (WHERE cardinality(s.others) = 0) AS ac,"
    "         sum(m.kwh_consumed_ac) FILTER (WHERE cardinality(s.others) > 0) AS shared"
    "  FROM eie_vehicle_segments($1, $2::timestamptz, $3::timestamptz) s JOIN meter_history m"
    "    ON m.meter_id = s.meter_id AND m.ts >= s.seg_lo AND m.ts < s.seg_hi"
    "  GROUP BY 1"
    ")"
    "SELECT (extract(epoch FROM t) * 1000)::bigint, v.soc, coalesce(v.dc, 0), coalesce(a.ac, 0),"
    "       v.temp, coalesce(a.shared, 0) "
    "FROM v FULL JOIN a USING (t) ORDER BY t";

PGresult *data_vehicle_history(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                               int64_t from_ms, int64_t to_ms, int64_t step_ms)
{
    data_args a = {0};
    data_arg_text(&a, vehicle_id);
    data_arg_time(&a, from_ms);
    data_arg_time(&a, to_ms);
    snprintf(a.text[a.n], sizeof a.text[a.n], "%lld milliseconds", (long long)step_ms);
    data_arg_text(&a, a.text[a.n]);
    return data_run(ctx, resp, "history", history_sql, &a);
}

static const char *const daily_sql =
    "SELECT to_char(day, 'YYYY-MM-DD'), sessions, ac_kwh, dc_kwh, temp_avg "
    "FROM eie_daily_efficiency($2::timestamptz - make_interval(days => $3::int), $2::timestamptz, $1) "
    "ORDER BY day";

static const char *const baseline_sql =
    "SELECT recent_ac, recent_dc, recent_ratio, baseline, spread, baseline_days, below_baseline "
    "FROM eie_efficiency_baselines($2::timestamptz, $3::int, $4::float8, $1)";

/* $1 vehicle, $2 to, $3 days, $4 the least energy for a ratio. */
static void trend_args(data_args *a, const char *vehicle_id, int64_t to_ms, long days)
{
    data_arg_text(a, vehicle_id);
    data_arg_time(a, to_ms);
    data_arg_long(a, days);
}

PGresult *data_trend_daily(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                           int64_t to_ms, long days)
{
    data_args a = {0};
    trend_args(&a, vehicle_id, to_ms, days);
    return data_run(ctx, resp, "trend: daily", daily_sql, &a);
}

PGresult *data_trend_baseline(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                              int64_t to_ms, long days, double min_kwh)
{
    data_args a = {0};
    trend_args(&a, vehicle_id, to_ms, days);
    data_arg_double(&a, min_kwh);
    return data_run(ctx, resp, "trend: baseline", baseline_sql, &a);
}

/* The columns every session query returns, in the order of DATA_SESSION_*. */
#define SESSION_COLUMNS                                                                          \
    "s.vehicle_id, (extract(epoch FROM s.started_at) * 1000)::bigint,"                           \
    " (extract(epoch FROM s.ended_at) * 1000)::bigint, s.ended_at + st.gap > now(), s.readings," \
    " array_to_json(s.meters)::text, s.ac_kwh, s.dc_kwh, s.own_dc_kwh, s.shared_seconds,"        \
    " s.soc_from, s.soc_to, s.temp_max, s.temp_avg "

static const char *const vehicle_sessions_sql =
    "SELECT " SESSION_COLUMNS
    "FROM eie_vehicle_sessions($1, $2::timestamptz, $3::timestamptz) s, charging_session_state st "
    "WHERE $4::bigint IS NULL OR s.started_at > 'epoch'::timestamptz + $4::bigint * interval '1 millisecond' "
    "ORDER BY s.started_at LIMIT $5";

PGresult *data_vehicle_sessions(api_context *ctx, struct _u_response *resp,
                                const char *vehicle_id, int64_t from_ms, int64_t to_ms,
                                int64_t after_ms, long limit)
{
    data_args a = {0};
    data_arg_text(&a, vehicle_id);
    data_arg_time(&a, from_ms);
    data_arg_time(&a, to_ms);
    data_arg_count(&a, after_ms);
    data_arg_long(&a, limit);
    return data_run(ctx, resp, "vehicle sessions", vehicle_sessions_sql, &a);
}

/* Sessions are found by their start: one that began more than a day before
 * `from` is not listed (none lasts that long in practice; the bound keeps the
 * index range short). */
static const char *const fleet_sessions_sql =
    "SELECT " SESSION_COLUMNS ", (extract(epoch FROM st.until) * 1000)::bigint "
    "FROM charging_session_state st LEFT JOIN LATERAL ("
    "  SELECT * FROM charging_session s"
    "  WHERE s.started_at >= $1::timestamptz - interval '1 day' AND s.started_at < $2::timestamptz"
    "    AND s.ended_at >= $1::timestamptz"
    "    AND ($3::float8 IS NULL OR (s.ac_kwh > 0 AND s.own_dc_kwh / s.ac_kwh < $3))"
    "    AND ($4::float8 IS NULL OR s.temp_max > $4)"
    "    AND ($5::text IS NULL OR $5 = ANY (s.meters))"
    "    AND ($6::bigint IS NULL OR (s.started_at, s.vehicle_id) >"
    "         ('epoch'::timestamptz + $6::bigint * interval '1 millisecond', $7::text COLLATE \"C\"))"
    "  ORDER BY s.started_at, s.vehicle_id LIMIT $8"
    ") s ON true";

PGresult *data_fleet_sessions(api_context *ctx, struct _u_response *resp,
                              const data_session_filter *f)
{
    data_args a = {0};
    data_arg_time(&a, f->from_ms);
    data_arg_time(&a, f->to_ms);
    data_arg_double(&a, f->efficiency_below);
    data_arg_double(&a, f->temp_above);
    data_arg_text(&a, f->meter_id);
    data_arg_count(&a, f->after_ms);
    data_arg_text(&a, f->after_vehicle);
    data_arg_long(&a, f->limit);
    return data_run(ctx, resp, "fleet sessions", fleet_sessions_sql, &a);
}

/* The meter's segments by the rule, each with the meter's AC and the DC of
 * the vehicles assigned then; its AC over the whole window besides. */
static const char *const meter_report_sql =
    "WITH seg AS ("
    "  SELECT s.seg_lo, s.seg_hi, s.vehicles, cardinality(s.vehicles) > 1 AS shared,"
    "         extract(epoch FROM s.seg_hi - s.seg_lo) AS secs"
    "  FROM eie_meter_segments($2::timestamptz, $3::timestamptz, ARRAY[$1]) s"
    "), ac AS ("
    "  SELECT seg.shared, seg.secs, e.kwh FROM seg"
    "  CROSS JOIN LATERAL eie_energy('meter', $1, seg.seg_lo, seg.seg_hi) e"
    "), dc AS ("
    "  SELECT u.vehicle_id, sum(e.kwh) AS dc, coalesce(sum(e.kwh) FILTER (WHERE seg.shared), 0) AS shared_dc,"
    "         sum(seg.secs) AS secs, coalesce(sum(seg.secs) FILTER (WHERE seg.shared), 0) AS shared_secs"
    "  FROM seg CROSS JOIN unnest(seg.vehicles) u(vehicle_id)"
    "  CROSS JOIN LATERAL eie_energy('vehicle', u.vehicle_id, seg.seg_lo, seg.seg_hi) e"
    "  GROUP BY u.vehicle_id"
    ")"
    "SELECT EXISTS (SELECT 1 FROM meter_state WHERE meter_id = $1)"
    "    OR EXISTS (SELECT 1 FROM vehicle_meter_assignment WHERE meter_id = $1),"
    "  w.kwh, w.readings,"
    "  (SELECT coalesce(sum(kwh), 0) FROM ac), (SELECT coalesce(sum(kwh) FILTER (WHERE shared), 0) FROM ac),"
    "  (SELECT coalesce(sum(secs), 0) FROM ac), (SELECT coalesce(sum(secs) FILTER (WHERE shared), 0) FROM ac),"
    "  (SELECT coalesce(sum(dc), 0) FROM dc), (SELECT coalesce(sum(shared_dc), 0) FROM dc),"
    "  (SELECT coalesce(json_agg(json_build_object('vehicleId', vehicle_id, 'dcKwh', dc,"
    "     'assignedSeconds', secs, 'sharedSeconds', shared_secs, 'sharedDcKwh', shared_dc)"
    "     ORDER BY vehicle_id), '[]') FROM dc) "
    "FROM eie_energy('meter', $1, $2::timestamptz, $3::timestamptz) w";

PGresult *data_meter_report(api_context *ctx, struct _u_response *resp, const char *meter_id,
                            int64_t from_ms, int64_t to_ms)
{
    data_args a = {0};
    data_arg_text(&a, meter_id);
    data_arg_time(&a, from_ms);
    data_arg_time(&a, to_ms);
    return data_run(ctx, resp, "meter report", meter_report_sql, &a);
}

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

PGresult *data_fleet_summary(api_context *ctx, struct _u_response *resp,
                             const data_fleet_query *q)
{
    data_args a = {0};
    data_arg_time(&a, q->from_ms);
    data_arg_time(&a, q->to_ms);
    data_arg_double(&a, q->efficiency_below);
    data_arg_long(&a, q->stale_ms);
    data_arg_long(&a, DATA_CHARGING_FRESH_S);
    data_arg_long(&a, q->limit);
    data_arg_double(&a, q->min_kwh);
    return data_run(ctx, resp, "fleet summary", summary_sql, &a);
}
