/* GET /v1/vehicles/{vehicleId}/trend: a vehicle's efficiency per day over the
 * last `days` days, its own baseline, and whether its last 24 hours fall
 * clearly below it (migration 012 says how "clearly" is decided), from its
 * charging sessions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define DEFAULT_DAYS 30
#define MIN_DAYS 7
#define MAX_DAYS 90
#define DEFAULT_MIN_KWH 1.0

static void real_or_null(jsonw *w, const char *key, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        jsonw_null(w, key);
    else
        jsonw_real(w, key, pg_field_double(res, row, col));
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

    PGresult *daily = data_trend_daily(ctx, resp, id, to_ms, days);
    if (!daily)
        return U_CALLBACK_COMPLETE;
    PGresult *base = data_trend_baseline(ctx, resp, id, to_ms, days, min_kwh);
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
        double ac = pg_field_double(daily, i, DATA_DAILY_AC), dc = pg_field_double(daily, i, DATA_DAILY_DC);
        jsonw_begin(&w, NULL);
        jsonw_string(&w, "day", PQgetvalue(daily, i, DATA_DAILY_DAY));
        jsonw_int(&w, "sessions", strtoll(PQgetvalue(daily, i, DATA_DAILY_SESSIONS), NULL, 10));
        jsonw_real(&w, "acKwh", ac);
        jsonw_real(&w, "dcKwh", dc);
        if (ac > 0)
            jsonw_real(&w, "efficiencyRatio", dc / ac);
        else
            jsonw_null(&w, "efficiencyRatio");
        real_or_null(&w, "avgBatteryTemp", daily, i, DATA_DAILY_TEMP);
        jsonw_end(&w);
    }
    jsonw_end_array(&w);
    bool has_row = PQntuples(base) > 0;
    jsonw_begin(&w, "recent");
    jsonw_time(&w, "from", to_ms - 86400000LL);
    jsonw_time(&w, "to", to_ms);
    jsonw_real(&w, "acKwh", has_row ? pg_field_double(base, 0, DATA_BASE_RECENT_AC) : 0);
    jsonw_real(&w, "dcKwh", has_row ? pg_field_double(base, 0, DATA_BASE_RECENT_DC) : 0);
    if (has_row)
        real_or_null(&w, "efficiencyRatio", base, 0, DATA_BASE_RECENT_RATIO);
    else
        jsonw_null(&w, "efficiencyRatio");
    jsonw_end(&w);
    jsonw_begin(&w, "baseline");
    if (has_row) {
        real_or_null(&w, "efficiencyRatio", base, 0, DATA_BASE_BASELINE);
        real_or_null(&w, "spread", base, 0, DATA_BASE_SPREAD);
    } else {
        jsonw_null(&w, "efficiencyRatio");
        jsonw_null(&w, "spread");
    }
    jsonw_int(&w, "days", has_row ? strtoll(PQgetvalue(base, 0, DATA_BASE_DAYS), NULL, 10) : 0);
    jsonw_end(&w);
    jsonw_bool(&w, "belowBaseline", has_row && strcmp(PQgetvalue(base, 0, DATA_BASE_BELOW), "t") == 0);
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
