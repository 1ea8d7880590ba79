/* The performance report from the database (see performance.h): one
 * statement gives the vehicle's snapshot on every row, and a row per segment
 * of its window by the attribution rule (eie_vehicle_attribution, migration
 * 010), which this file sorts into attributable, shared and unassigned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "performance.h"
#include "respond.h"
#include "timefmt.h"

static const char *const performance_sql =
    "WITH cur AS ("
    "  SELECT meter_id FROM vehicle_meter_assignment"
    "  WHERE vehicle_id = $1 AND valid_from < $3::timestamptz"
    "  ORDER BY valid_from DESC LIMIT 1"
    "), snap AS ("
    "  SELECT (vs.vehicle_id IS NOT NULL OR EXISTS (SELECT 1 FROM cur)) AS known,"
    "    (SELECT meter_id FROM cur) AS meter_id,"
    "    (extract(epoch FROM vs.ts) * 1000)::bigint AS last_ms, vs.soc, vs.battery_temp,"
    "    (SELECT voltage FROM meter_state WHERE meter_id = (SELECT meter_id FROM cur)) AS voltage"
    "  FROM (SELECT 1) one LEFT JOIN vehicle_state vs ON vs.vehicle_id = $1"
    ")"
    "SELECT snap.*, a.meter_id, (extract(epoch FROM a.seg_lo) * 1000)::bigint,"
    "  (extract(epoch FROM a.seg_hi) * 1000)::bigint, array_to_json(a.others)::text,"
    "  a.ac_kwh, a.ac_readings, a.dc_kwh, a.dc_readings, a.temp_sum, a.others_dc_kwh "
    "FROM snap LEFT JOIN LATERAL eie_vehicle_attribution($1, $2::timestamptz, $3::timestamptz) a"
    "  ON snap.known "
    "ORDER BY a.seg_lo";

enum { COL_KNOWN, COL_METER, COL_LAST_MS, COL_SOC, COL_TEMP, COL_VOLTAGE, COL_SEG_METER,
       COL_SEG_LO, COL_SEG_HI, COL_OTHERS, COL_AC, COL_AC_N, COL_DC, COL_DC_N, COL_TEMP_SUM,
       COL_OTHERS_DC };

void performance_free(performance *p)
{
    for (size_t i = 0; i < p->n_periods; i++)
        json_decref(p->periods[i].others);
    free(p->periods);
    p->periods = NULL;
    p->n_periods = p->cap_periods = 0;
}

static long long column_ll(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void add_share(energy_share *to, double seconds, const PGresult *res, int row)
{
    to->seconds += seconds;
    to->ac_kwh += pg_field_double(res, row, COL_AC);
    to->ac_readings += column_ll(res, row, COL_AC_N);
    to->dc_kwh += pg_field_double(res, row, COL_DC);
    to->dc_readings += column_ll(res, row, COL_DC_N);
}

/* A shared segment: joined to the previous period when it continues it (same
 * meter, same company, no gap), a period of its own otherwise. */
static void add_shared_period(performance *p, const PGresult *res, int row, int64_t lo_ms,
                              int64_t hi_ms)
{
    const char *meter = PQgetvalue(res, row, COL_SEG_METER);
    json_t *others = json_loads(PQgetvalue(res, row, COL_OTHERS), 0, NULL);
    if (!others)
        others = json_array();
    shared_period *last = p->n_periods ? &p->periods[p->n_periods - 1] : NULL;
    if (!last || last->to_ms != lo_ms || strcmp(last->meter_id, meter) != 0 ||
        !json_equal(last->others, others)) {
        if (p->n_periods == p->cap_periods) {
            p->cap_periods = p->cap_periods ? 2 * p->cap_periods : 4;
            if (!(p->periods = realloc(p->periods, p->cap_periods * sizeof *p->periods)))
                abort();
        }
        last = &p->periods[p->n_periods++];
        *last = (shared_period){.from_ms = lo_ms, .others = others};
        snprintf(last->meter_id, sizeof last->meter_id, "%s", meter);
    } else {
        json_decref(others);
    }
    last->to_ms = hi_ms;
    last->ac_kwh += pg_field_double(res, row, COL_AC);
    last->dc_kwh += pg_field_double(res, row, COL_DC);
    last->others_dc_kwh += pg_field_double(res, row, COL_OTHERS_DC);
}

int performance_from_database(api_context *ctx, struct _u_response *resp,
                              const char *vehicle_id, int64_t from_ms, int64_t to_ms,
                              performance *p)
{
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(from_ms, from);
    timefmt_format_rfc3339(to_ms, to);
    const char *params[] = {vehicle_id, from, to};
    PGresult *res = data_query(ctx, resp, "performance query", performance_sql, 3, params);
    if (!res)
        return -1;
    int known = strcmp(PQgetvalue(res, 0, COL_KNOWN), "t") == 0;
    if (!known) {
        PQclear(res);
        return 0;
    }
    snprintf(p->meter_id, sizeof p->meter_id, "%s", PQgetvalue(res, 0, COL_METER));
    p->has_state = !PQgetisnull(res, 0, COL_LAST_MS);
    if (p->has_state) {
        p->last_ms = column_ll(res, 0, COL_LAST_MS);
        p->soc = pg_field_double(res, 0, COL_SOC);
        p->battery_temp = pg_field_double(res, 0, COL_TEMP);
    }
    p->has_voltage = !PQgetisnull(res, 0, COL_VOLTAGE);
    if (p->has_voltage)
        p->voltage = pg_field_double(res, 0, COL_VOLTAGE);
    for (int row = 0; row < PQntuples(res); row++) {
        if (PQgetisnull(res, row, COL_SEG_LO))
            continue;
        int64_t lo_ms = column_ll(res, row, COL_SEG_LO), hi_ms = column_ll(res, row, COL_SEG_HI);
        double seconds = (double)(hi_ms - lo_ms) / 1000;
        p->temp_sum += pg_field_double(res, row, COL_TEMP_SUM);
        if (PQgetisnull(res, row, COL_SEG_METER)) {
            add_share(&p->unassigned, seconds, res, row);
        } else if (strcmp(PQgetvalue(res, row, COL_OTHERS), "[]") == 0) {
            add_share(&p->attributable, seconds, res, row);
        } else {
            add_share(&p->shared, seconds, res, row);
            p->others_dc_kwh += pg_field_double(res, row, COL_OTHERS_DC);
            add_shared_period(p, res, row, lo_ms, hi_ms);
        }
    }
    PQclear(res);
    return 1;
}
