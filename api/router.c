/* Route registration with request metrics, and the pooled-query helper every
 * handler uses; see api.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "pg.h"
#include "respond.h"

#define SQLSTATE_QUERY_CANCELED "57014" /* statement_timeout */
#define SQLSTATE_NO_SUCH_STATEMENT "26000" /* invalid_sql_statement_name */

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    const api_binding *b = user_data;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = b->route->handler(req, resp, b->ctx);
    double secs = seconds_since(&t0);
    char labels[256];
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",status=\"%ld\"", b->route->method,
             b->route->path, resp->status);
    metrics_add(b->ctx->metrics, "eie_api_requests_total", labels, 1);
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", b->route->method, b->route->path);
    metrics_observe(b->ctx->metrics, "eie_api_request_seconds", labels, secs);
    return rc;
}

int api_register(struct _u_instance *instance, api_context *ctx, const api_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ctx->n_bindings == API_MAX_ROUTES)
            return -1;
        api_binding *b = &ctx->bindings[ctx->n_bindings++];
        *b = (api_binding){&routes[i], ctx};
        if (ulfius_add_endpoint_by_val(instance, routes[i].method, NULL, routes[i].path, 0, dispatch,
                                       b) != U_OK)
            return -1;
    }
    return 0;
}

PGresult *api_exec(PGconn *conn, const char *what, const char *sql, int n_params,
                   const char *const *params, int *status)
{
    eie_err err;
    /* Prepared once per connection, on first use (named after what): planning
     * costs about as much as running these queries. */
    PGresult *res = PQexecPrepared(conn, what, n_params, params, NULL, NULL, 0);
    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR &&
        strcmp(pg_sqlstate(res), SQLSTATE_NO_SUCH_STATEMENT) == 0) {
        PQclear(res);
        res = PQprepare(conn, what, sql, n_params, NULL);
        if (pg_check(res, PGRES_COMMAND_OK, what, &err) == 0) {
            PQclear(res);
            res = PQexecPrepared(conn, what, n_params, params, NULL, NULL, 0);
        }
    }
    if (pg_check(res, PGRES_TUPLES_OK, what, &err) == 0)
        return res;
    /* The details are for the operator's log, never for the client. */
    log_error("%s", err.msg);
    *status = strcmp(pg_sqlstate(res), SQLSTATE_QUERY_CANCELED) == 0 ? 504 : 503;
    PQclear(res);
    return NULL;
}

int api_respond_db_error(struct _u_response *resp, int status)
{
    return status == 504 ? respond_error(resp, 504, "timeout", "the query took too long")
                         : respond_error(resp, 503, "unavailable", "the query could not be answered");
}

PGresult *api_query(api_context *ctx, struct _u_response *resp, const char *what, const char *sql,
                    int n_params, const char *const *params)
{
    eie_err err;
    PGconn *conn = db_pool_acquire(ctx->db, API_POOL_WAIT_MS, &err);
    if (!conn) {
        log_error("%s: %s", what, err.msg);
        respond_error(resp, 503, "unavailable", "the database is not available");
        return NULL;
    }
    int status;
    PGresult *res = api_exec(conn, what, sql, n_params, params, &status);
    db_pool_release(ctx->db, conn);
    if (!res)
        api_respond_db_error(resp, status);
    return res;
}
