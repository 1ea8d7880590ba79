/* Health routes for supervisors and load balancers: /healthz says the process
 * serves requests; /readyz also says whether PostgreSQL answers. */
#include "api.h"
#include "pg.h"
#include "respond.h"

static int get_healthz(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    return respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static int get_readyz(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    api_context *ctx = user_data;
    eie_err err;
    PGconn *conn = db_pool_acquire(ctx->db, 1000, &err);
    int db_ok = 0;
    if (conn) {
        db_ok = pg_exec(conn, "SELECT 1", &err) == 0;
        db_pool_release(ctx->db, conn);
    }
    return respond_json(resp, db_ok ? 200 : 503,
                        json_pack("{s:s, s:{s:s}}", "status", db_ok ? "ready" : "not_ready",
                                  "checks", "postgres", db_ok ? "ok" : "unreachable"));
}

int routes_health_register(struct _u_instance *instance, api_context *ctx)
{
    return ulfius_add_endpoint_by_val(instance, "GET", "/healthz", NULL, 0, get_healthz, ctx) == U_OK &&
                   ulfius_add_endpoint_by_val(instance, "GET", "/readyz", NULL, 0, get_readyz, ctx) ==
                       U_OK
               ? 0
               : -1;
}
