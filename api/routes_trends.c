/* GET /v1/vehicles/{vehicleId}/trend: a vehicle's efficiency per day over the
 * last `days` days, its own baseline, and whether its last 24 hours fall
 * clearly below it (migration 012 says how "clearly" is decided), from its
 * charging sessions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define DEFAULT_DAYS 30
#define MIN_DAYS 7
#define MAX_DAYS 90
#define DEFAULT_MIN_KWH 1.0

static const char *const daily_sql =
    "SELECT to_char(day, 'YYYY-MM-DD'), sessions, ac_kwh, dc_kwh, temp_avg "
    "FROM eie_daily_efficiency($2::timestamptz - make_interval(days => $3::int), $2::timestamptz, $1) "
    "ORDER BY day";

static const char *const baseline_sql =
    "SELECT recent_ac, recent_dc, recent_ratio, baseline, spread, baseline_days, below_baseline "
    "FROM eie_efficiency_baselines($2::timestamptz, $3::int, $4::float8, $1)";

static void real_or_null(jsonw *w, const char *key, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        jsonw_null(w, key);
    else
        jsonw_real(w, key, respond_pg_double(res, row, col));
}

static int get_trend(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *id;
    long days = DEFAULT_DAYS;
    double min_kwh = DEFAULT_MIN_KWH;
    bool has_min, has_to;
    int64_t to_ms = timefmt_now_ms();
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "vehicleId", &id, msg) < 0 ||
        param_long(req, "days", MIN_DAYS, MAX_DAYS, &days, msg) < 0 ||
        param_double(req, "minEnergyKwh", 0, 1e9, &min_kwh, &has_min, msg) < 0 ||
        param_time(req, "to", &to_ms, &has_to, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);

    if (api_vehicle_known(ctx, resp, id) < 1)
        return U_CALLBACK_COMPLETE;

    char to[TIMEFMT_RFC3339_LEN], days_s[16], min_s[32];
    timefmt_format_rfc3339(to_ms, to);
    snprintf(days_s, sizeof days_s, "%ld", days);
    snprintf(min_s, sizeof min_s, "%.17g", min_kwh);
    const char *params[] = {id, to, days_s, min_s};
    PGresult *daily = api_query(ctx, resp, "trend: daily", daily_sql, 3, params);
    if (!daily)
        return U_CALLBACK_COMPLETE;
    PGresult *base = api_query(ctx, resp, "trend: baseline", baseline_sql, 4, params);
    if (!base) {
        PQclear(daily);
        return U_CALLBACK_COMPLETE;
    }
    jsonw w;
    jsonw_init(&w);
    jsonw_begin(&w, NULL);
    jsonw_string(&w, "vehicleId", id);
    jsonw_time(&w, "to", to_ms);
    jsonw_int(&w, "days", days);
    jsonw_begin_array(&w, "daily");
    for (int i = 0; i < PQntuples(daily); i++) {
        double ac = respond_pg_double(daily, i, 2), dc = respond_pg_double(daily, i, 3);
        jsonw_begin(&w, NULL);
        jsonw_string(&w, "day", PQgetvalue(daily, i, 0));
        jsonw_int(&w, "sessions", strtoll(PQgetvalue(daily, i, 1), NULL, 10));
        jsonw_real(&w, "acKwh", ac);
        jsonw_real(&w, "dcKwh", dc);
        if (ac > 0)
            jsonw_real(&w, "efficiencyRatio", dc / ac);
        else
            jsonw_null(&w, "efficiencyRatio");
        real_or_null(&w, "avgBatteryTemp", daily, i, 4);
        jsonw_end(&w);
    }
    jsonw_end_array(&w);
    bool has_row = PQntuples(base) > 0;
    jsonw_begin(&w, "recent");
    jsonw_time(&w, "from", to_ms - 86400000LL);
    jsonw_time(&w, "to", to_ms);
    jsonw_real(&w, "acKwh", has_row ? respond_pg_double(base, 0, 0) : 0);
    jsonw_real(&w, "dcKwh", has_row ? respond_pg_double(base, 0, 1) : 0);
    if (has_row)
        real_or_null(&w, "efficiencyRatio", base, 0, 2);
    else
        jsonw_null(&w, "efficiencyRatio");
    jsonw_end(&w);
    jsonw_begin(&w, "baseline");
    if (has_row) {
        real_or_null(&w, "efficiencyRatio", base, 0, 3);
        real_or_null(&w, "spread", base, 0, 4);
    } else {
        jsonw_null(&w, "efficiencyRatio");
        jsonw_null(&w, "spread");
    }
    jsonw_int(&w, "days", has_row ? strtoll(PQgetvalue(base, 0, 5), NULL, 10) : 0);
    jsonw_end(&w);
    jsonw_bool(&w, "belowBaseline", has_row && strcmp(PQgetvalue(base, 0, 6), "t") == 0);
    jsonw_end(&w);
    PQclear(daily);
    PQclear(base);
    return respond_jsonw(resp, 200, &w);
}

static const api_route routes[] = {
    {"GET", "/v1/vehicles/:vehicleId/trend", get_trend, API_ACCESS_READ},
};

int routes_trends_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
