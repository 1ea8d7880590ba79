/* The data layer's reads of the hot store: vehicles and meters as they are
 * now; see data.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "data_args.h"
#include "respond.h"

/* Known: it has a state or an assignment (an assignment may come first). */
static const char *const known_sql =
    "SELECT EXISTS (SELECT 1 FROM vehicle_state WHERE vehicle_id = $1)"
    "    OR EXISTS (SELECT 1 FROM vehicle_meter_assignment WHERE vehicle_id = $1)";

int data_vehicle_known(api_context *ctx, struct _u_response *resp, const char *vehicle_id)
{
    data_args a = {0};
    data_arg_text(&a, vehicle_id);
    PGresult *res = data_run(ctx, resp, "known vehicle", known_sql, &a);
    if (!res)
        return -1;
    bool known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return known;
}

/* The columns of a vehicle_state_entry's state, in this order. */
#define VEHICLE_COLUMNS                                                                          \
    "vs.vehicle_id, cur.meter_id, (extract(epoch FROM vs.ts) * 1000)::bigint, vs.soc, "         \
    "vs.kwh_delivered_dc, vs.battery_temp "
#define VEHICLE_FROM                                                                             \
    "FROM vehicle_state vs LEFT JOIN vehicle_assignment_current cur USING (vehicle_id) "

void data_vehicle_entry(const PGresult *res, int row, vehicle_state_entry *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->vehicle_id, sizeof e->vehicle_id, "%s", PQgetvalue(res, row, 0));
    snprintf(e->meter_id, sizeof e->meter_id, "%s", PQgetvalue(res, row, 1));
    e->ts_ms = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    e->soc = pg_field_double(res, row, 3);
    e->kwh_delivered_dc = pg_field_double(res, row, 4);
    e->battery_temp = pg_field_double(res, row, 5);
    e->has_state = true;
}

int data_vehicle_state(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                       vehicle_state_entry *out)
{
    data_args a = {0};
    data_arg_text(&a, vehicle_id);
    PGresult *res = data_run(ctx, resp, "vehicle state",
                             "SELECT " VEHICLE_COLUMNS VEHICLE_FROM "WHERE vs.vehicle_id = $1", &a);
    if (!res)
        return -1;
    int found = PQntuples(res) > 0;
    if (found)
        data_vehicle_entry(res, 0, out);
    PQclear(res);
    return found;
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

PGresult *data_vehicle_list(api_context *ctx, struct _u_response *resp,
                            const data_vehicle_filter *f)
{
    data_args a = {0};
    data_arg_text(&a, f->after);
    data_arg_double(&a, f->soc_below);
    data_arg_double(&a, f->soc_above);
    data_arg_text(&a, f->charging < 0 ? NULL : f->charging ? "true" : "false");
    data_arg_count(&a, f->stale_for_ms);
    data_arg_text(&a, f->meter_id);
    data_arg_long(&a, f->limit);
    data_arg_long(&a, DATA_CHARGING_FRESH_S);
    return data_run(ctx, resp, "vehicle list", list_sql, &a);
}

PGresult *data_meter_state(api_context *ctx, struct _u_response *resp, const char *meter_id)
{
    data_args a = {0};
    data_arg_text(&a, meter_id);
    return data_run(ctx, resp, "meter state",
                    "SELECT ms.meter_id, (extract(epoch FROM ms.ts) * 1000)::bigint, "
                    "ms.kwh_consumed_ac, ms.voltage, coalesce((SELECT json_agg(vehicle_id ORDER BY "
                    "vehicle_id) FROM vehicle_assignment_current WHERE meter_id = ms.meter_id), "
                    "'[]') FROM meter_state ms WHERE ms.meter_id = $1",
                    &a);
}
