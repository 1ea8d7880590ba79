/* The route table of the whole service: every group of routes, registered in
 * one place, so that eie-api and the router's tests and fuzz harness serve the
 * same routes. */
#include "api.h"

int routes_register_all(api_context *ctx)
{
    int (*const groups[])(api_context *) = {
        routes_health_register, routes_analytics_register, routes_state_register,
        routes_history_register, routes_fleet_register,    routes_ingest_register,
        routes_sessions_register, routes_trends_register, routes_export_register,
        routes_docs_register,
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (groups[i](ctx) < 0)
            return -1;
    return 0;
}
