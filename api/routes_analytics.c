/* GET /v1/analytics/performance/{vehicleId}: the efficiency of a vehicle's
 * charging over a window (AC drawn by the meters it was assigned to, while it
 * was assigned to each, against DC delivered to its battery), with a snapshot
 * of its latest state.
 *
 * Two ways to the same answer. From the caches: the vehicle's state and
 * assignments (state_cache) and the summaries of whole hours (rollup_cache)
 * come from memory, and the minutes at the window's edges from the history,
 * in a statement shared with other requests (edge_batch). From the database: one statement does it all, for what the caches
 * cannot vouch for (hours older than they keep, dirty hours, a vehicle not
 * cached yet). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "edge_batch.h"
#include "params.h"
#include "reading.h"
#include "respond.h"
#include "rollup_cache.h"
#include "state_cache.h"
#include "timefmt.h"

#define MIN_WINDOW_MS (15 * 60 * 1000LL)
#define MAX_WINDOW_MS (30 * 86400 * 1000LL)
#define DEFAULT_WINDOW_MS (86400 * 1000LL)

/* What a report says, from either way. */
typedef struct performance {
    char meter_id[READING_ID_MAX + 1]; /* assigned at the window's end; "" none */
    bool has_state, has_voltage;
    int64_t last_ms;
    double soc, battery_temp, voltage;
    double ac_kwh, dc_kwh, temp_sum;
    long long ac_readings, dc_readings;
} performance;

static int respond_performance(struct _u_response *resp, const char *vehicle_id,
                               const char *time_range, int64_t from_ms, int64_t to_ms,
                               const performance *p)
{
    double ac = p->ac_kwh, dc = p->dc_kwh;
    jsonw w;
    jsonw_init(&w);
    jsonw_begin(&w, NULL);
    jsonw_string(&w, "vehicleId", vehicle_id);
    jsonw_string(&w, "meterId", p->meter_id[0] ? p->meter_id : NULL);
    jsonw_string(&w, "timeRange", time_range);
    jsonw_time(&w, "from", from_ms);
    jsonw_time(&w, "to", to_ms);
    jsonw_begin(&w, "latestSnapshot");
    if (p->has_state) {
        jsonw_time(&w, "lastReadingAt", p->last_ms);
        jsonw_real(&w, "currentSoC", p->soc);
    } else {
        jsonw_null(&w, "lastReadingAt");
        jsonw_null(&w, "currentSoC");
    }
    if (p->has_voltage)
        jsonw_real(&w, "currentVoltage", p->voltage);
    else
        jsonw_null(&w, "currentVoltage");
    if (p->has_state)
        jsonw_real(&w, "lastBatteryTemp", p->battery_temp);
    else
        jsonw_null(&w, "lastBatteryTemp");
    jsonw_end(&w);
    jsonw_begin(&w, "metrics");
    jsonw_real(&w, "totalEnergyConsumedAc", ac);
    jsonw_real(&w, "totalEnergyDeliveredDc", dc);
    if (ac > 0)
        jsonw_real(&w, "efficiencyRatio", dc / ac);
    else
        jsonw_null(&w, "efficiencyRatio");
    if (p->dc_readings > 0)
        jsonw_real(&w, "avgBatteryTemp", p->temp_sum / (double)p->dc_readings);
    else
        jsonw_null(&w, "avgBatteryTemp");
    jsonw_int(&w, "meterReadings", p->ac_readings);
    jsonw_int(&w, "vehicleReadings", p->dc_readings);
    jsonw_real(&w, "energyLossKwh", ac - dc);
    jsonw_end(&w);
    jsonw_end(&w);
    return respond_jsonw(resp, 200, &w);
}

/* --- from the database ------------------------------------------------------ */

/* The energy comes from eie_window_energy (007_window_energy.sql): hourly
 * summaries for whole clean hours, the history for the minutes at the edges
 * and for dirty hours, each meter only while the vehicle was assigned to it. */
static const char *const performance_sql =
    "WITH e AS ("
    "  SELECT * FROM eie_window_energy($1, $2::timestamptz, $3::timestamptz)"
    "), cur AS ("
    "  SELECT meter_id FROM vehicle_meter_assignment"
    "  WHERE vehicle_id = $1 AND valid_from < $3::timestamptz"
    "  ORDER BY valid_from DESC LIMIT 1"
    ")"
    "SELECT (vs.vehicle_id IS NOT NULL OR EXISTS (SELECT 1 FROM cur)) AS known,"
    "  (SELECT meter_id FROM cur) AS meter_id,"
    "  (extract(epoch FROM vs.ts) * 1000)::bigint AS last_ms, vs.soc, vs.battery_temp,"
    "  (SELECT voltage FROM meter_state WHERE meter_id = (SELECT meter_id FROM cur)) AS voltage,"
    "  e.ac_kwh, e.ac_readings, e.dc_kwh, e.dc_readings, e.temp_sum "
    "FROM e LEFT JOIN vehicle_state vs ON vs.vehicle_id = $1";

enum { COL_KNOWN, COL_METER, COL_LAST_MS, COL_SOC, COL_TEMP, COL_VOLTAGE, COL_AC, COL_AC_N,
       COL_DC, COL_DC_N, COL_TEMP_SUM };

/* 1: found, 0: unknown vehicle, -1: the response is set (an error). */
static int performance_from_database(api_context *ctx, struct _u_response *resp,
                                     const char *vehicle_id, const char *from, const char *to,
                                     performance *p)
{
    const char *params[] = {vehicle_id, from, to};
    PGresult *res = api_query(ctx, resp, "performance query", performance_sql, 3, params);
    if (!res)
        return -1;
    int known = strcmp(PQgetvalue(res, 0, COL_KNOWN), "t") == 0;
    if (known) {
        snprintf(p->meter_id, sizeof p->meter_id, "%s", PQgetvalue(res, 0, COL_METER));
        p->has_state = !PQgetisnull(res, 0, COL_LAST_MS);
        if (p->has_state) {
            p->last_ms = strtoll(PQgetvalue(res, 0, COL_LAST_MS), NULL, 10);
            p->soc = respond_pg_double(res, 0, COL_SOC);
            p->battery_temp = respond_pg_double(res, 0, COL_TEMP);
        }
        p->has_voltage = !PQgetisnull(res, 0, COL_VOLTAGE);
        if (p->has_voltage)
            p->voltage = respond_pg_double(res, 0, COL_VOLTAGE);
        p->ac_kwh = respond_pg_double(res, 0, COL_AC);
        p->ac_readings = strtoll(PQgetvalue(res, 0, COL_AC_N), NULL, 10);
        p->dc_kwh = respond_pg_double(res, 0, COL_DC);
        p->dc_readings = strtoll(PQgetvalue(res, 0, COL_DC_N), NULL, 10);
        p->temp_sum = respond_pg_double(res, 0, COL_TEMP_SUM);
    }
    PQclear(res);
    return known;
}

/* --- from the caches --------------------------------------------------------- */

/* What is left of the window once the cached hours are taken out: the
 * vehicle's history before its first whole hour and after its last summarised
 * one, and the same of each meter period; summed by the edge batcher. An edge
 * that covers most of its hour is read the other way round: the hour's
 * summary less the few minutes outside the edge (sign -1), so that a window
 * from 16:59 to 16:59 reads two minutes of each device, not two hours. */
#define MAX_EDGES (2 + 2 * STATE_CACHE_ASSIGNMENTS)
#define HOUR_MS 3600000LL

typedef struct edges {
    edge_range r[MAX_EDGES];
    int sign[MAX_EDGES];
    int n;
    bool overflow; /* more edges than fit: ask the database instead */
    char changed[sizeof ((rollup_part *)0)->changed]; /* of every part used */
    bool have_changed;
} edges;

typedef struct sums {
    double kwh, temp_sum;
    long long readings;
} sums;

static void edges_add(edges *e, int sign, reading_kind kind, const char *id, int64_t lo_ms,
                      int64_t hi_ms)
{
    if (hi_ms <= lo_ms)
        return;
    if (e->n == MAX_EDGES) {
        e->overflow = true;
        return;
    }
    e->sign[e->n] = sign;
    e->r[e->n++] = (edge_range){.kind = kind, .id = id, .lo_ms = lo_ms, .hi_ms = hi_ms};
}

/* Whether a part read from the cache agrees with the others (a refresh in
 * between would mix two states). */
static bool same_state(edges *e, const rollup_part *part)
{
    if (!e->have_changed) {
        memcpy(e->changed, part->changed, sizeof e->changed);
        e->have_changed = true;
        return true;
    }
    return strcmp(e->changed, part->changed) == 0;
}

static void add_part(sums *to, const rollup_part *part)
{
    to->kwh += part->kwh;
    to->temp_sum += part->temp_sum;
    to->readings += part->readings;
}

/* The edge [lo, hi), within the hour that starts at hour_ms: raw, or that
 * hour's summary less the rest of the hour when that is less to read. */
static bool add_edge(api_context *ctx, edges *e, sums *to, reading_kind kind, const char *id,
                     int64_t hour_ms, int64_t lo_ms, int64_t hi_ms)
{
    rollup_part hour;
    if (hi_ms > lo_ms && (hi_ms - lo_ms) * 2 > HOUR_MS &&
        rollup_cache_hour(ctx->rollups, kind, id, hour_ms, &hour)) {
        if (!same_state(e, &hour))
            return false;
        add_part(to, &hour);
        edges_add(e, -1, kind, id, hour_ms, lo_ms);
        edges_add(e, -1, kind, id, hi_ms, hour_ms + HOUR_MS);
        return true;
    }
    edges_add(e, 1, kind, id, lo_ms, hi_ms);
    return true;
}

/* A device's share of the window, [lo, hi): its summarised whole hours from
 * the cache into to, the rest as edges. */
static bool add_span(api_context *ctx, edges *e, sums *to, reading_kind kind, const char *id,
                     int64_t lo_ms, int64_t hi_ms)
{
    rollup_part part;
    if (!rollup_cache_window(ctx->rollups, kind, id, lo_ms, hi_ms, &part) || !same_state(e, &part))
        return false;
    if (part.lo_ms == part.hi_ms) { /* no whole hour: all of it raw */
        edges_add(e, 1, kind, id, lo_ms, hi_ms);
        return true;
    }
    add_part(to, &part);
    /* Before the first whole hour: within one hour. After the last summarised
     * one: within one hour too, unless hours there are not summarised yet. */
    if (!add_edge(ctx, e, to, kind, id, part.lo_ms - HOUR_MS, lo_ms, part.lo_ms))
        return false;
    if (hi_ms - part.hi_ms < HOUR_MS)
        return add_edge(ctx, e, to, kind, id, part.hi_ms, part.hi_ms, hi_ms);
    edges_add(e, 1, kind, id, part.hi_ms, hi_ms);
    return true;
}

/* The vehicle's meter periods within [from, to), each with its cached hours;
 * false when the cache cannot vouch for them. */
static bool add_meters(api_context *ctx, const vehicle_state_entry *v, int64_t from_ms,
                       int64_t to_ms, performance *p, edges *e, sums *ac)
{
    if (v->older_assignments && (v->n_assignments == 0 || v->assignments[0].valid_from_ms > from_ms))
        return false; /* the window reaches assignments the cache does not keep */
    for (int i = 0; i < v->n_assignments; i++) {
        const cached_assignment *a = &v->assignments[i];
        if (a->valid_from_ms < to_ms)
            snprintf(p->meter_id, sizeof p->meter_id, "%s", a->meter_id);
        int64_t lo = a->valid_from_ms > from_ms ? a->valid_from_ms : from_ms;
        int64_t hi = i + 1 < v->n_assignments && v->assignments[i + 1].valid_from_ms < to_ms
                         ? v->assignments[i + 1].valid_from_ms
                         : to_ms;
        if (lo < hi && !add_span(ctx, e, ac, READING_METER, a->meter_id, lo, hi))
            return false;
    }
    return true;
}

/* Whether what the caches said holds at the moment the edges were read: no
 * summary changed and no assignment arrived since the caches were read, and
 * no hour of the window is dirty (a late reading stored for it). */
static bool cache_current(const edges *e, const vehicle_state_entry *v, const edge_freshness *f,
                          int64_t from_ms, int64_t to_ms)
{
    if ((e->have_changed && strcmp(e->changed, f->summaries_changed) != 0) ||
        strcmp(v->assignment_stored, f->assignment_stored) != 0 || f->n_dirty < 0)
        return false;
    for (int i = 0; i < f->n_dirty; i++) {
        int64_t hour_ms = f->dirty_hours[i] * HOUR_MS;
        if (hour_ms + HOUR_MS > from_ms && hour_ms < to_ms)
            return false;
    }
    return true;
}

/* 1: answered, 0: ask the database instead, -1: the response is set. */
static int performance_from_caches(api_context *ctx, struct _u_response *resp,
                                   const char *vehicle_id, int64_t from_ms, int64_t to_ms,
                                   performance *p)
{
    vehicle_state_entry v;
    edges e = {.n = 0};
    sums ac = {0}, dc = {0};
    if (!ctx->state || !ctx->rollups || !ctx->edges ||
        !state_cache_vehicle(ctx->state, vehicle_id, &v, true) ||
        !add_meters(ctx, &v, from_ms, to_ms, p, &e, &ac) ||
        !add_span(ctx, &e, &dc, READING_VEHICLE, vehicle_id, from_ms, to_ms))
        return 0;
    /* Unknown here may be only not cached yet: the database says which. */
    if (e.overflow || (!v.has_state && !p->meter_id[0]))
        return 0;
    /* Even with no edges to read: the database says whether the caches are
     * as current as it is, so that a reading stored a moment ago counts. */
    edge_freshness fresh;
    int status = edge_batch_sum(ctx->edges, e.r, e.n, &fresh);
    if (status) {
        api_respond_db_error(resp, status);
        return -1;
    }
    if (!cache_current(&e, &v, &fresh, from_ms, to_ms))
        return 0;
    for (int i = 0; i < e.n; i++) {
        sums *to = e.r[i].kind == READING_VEHICLE ? &dc : &ac;
        to->kwh += e.sign[i] * e.r[i].kwh;
        to->temp_sum += e.sign[i] * e.r[i].temp_sum;
        to->readings += e.sign[i] * e.r[i].readings;
    }
    p->ac_kwh = ac.kwh;
    p->ac_readings = ac.readings;
    p->dc_kwh = dc.kwh;
    p->dc_readings = dc.readings;
    p->temp_sum = dc.temp_sum;
    p->has_state = v.has_state;
    p->last_ms = v.ts_ms;
    p->soc = v.soc;
    p->battery_temp = v.battery_temp;
    p->has_voltage = p->meter_id[0] && state_cache_meter_voltage(ctx->state, p->meter_id, &p->voltage);
    return 1;
}

static int get_performance(const struct _u_request *req, struct _u_response *resp,
                           api_context *ctx)
{
    const char *vehicle_id;
    param_window w;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "vehicleId", &vehicle_id, msg) < 0 ||
        param_window_get(req, DEFAULT_WINDOW_MS, MIN_WINDOW_MS, MAX_WINDOW_MS, &w, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);

    performance p = {.has_state = false};
    int found = performance_from_caches(ctx, resp, vehicle_id, w.from_ms, w.to_ms, &p);
    if (found < 0)
        return U_CALLBACK_COMPLETE;
    metrics_add(ctx->metrics, "eie_api_performance_reports_total",
                found ? "source=\"caches\"" : "source=\"database\"", 1);
    if (!found) {
        char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
        timefmt_format_rfc3339(w.from_ms, from);
        timefmt_format_rfc3339(w.to_ms, to);
        memset(&p, 0, sizeof p);
        found = performance_from_database(ctx, resp, vehicle_id, from, to, &p);
        if (found < 0)
            return U_CALLBACK_COMPLETE;
    }
    if (!found)
        return respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    return respond_performance(resp, vehicle_id, w.label, w.from_ms, w.to_ms, &p);
}

static const api_route routes[] = {
    {"GET", "/v1/analytics/performance/:vehicleId", get_performance},
};

int routes_analytics_register(api_context *ctx)
{
    metrics_describe(ctx->metrics, "eie_api_performance_reports_total", METRIC_COUNTER,
                     "performance reports by where their data came from: caches (memory, and "
                     "the history for a window's edges) or database");
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
