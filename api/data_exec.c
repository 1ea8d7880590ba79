/* The data layer's execution: statements prepared per pooled connection,
 * deadlock victims run again, errors turned into 503 or 504; see data.h. */
#include <stdbool.h>
#include <string.h>

#include "data.h"
#include "data_args.h"
#include "log.h"
#include "pg.h"
#include "respond.h"
#include "timefmt.h"

#define SQLSTATE_QUERY_CANCELED "57014"    /* statement_timeout */
#define SQLSTATE_NO_SUCH_STATEMENT "26000" /* invalid_sql_statement_name */
#define SQLSTATE_DEADLOCK "40P01"          /* deadlock_detected */
#define DEADLOCK_RETRIES 3

/* One execution of the prepared statement, preparing it on first use. */
static PGresult *exec_prepared(PGconn *conn, const char *what, const char *sql, int n_params,
                               const char *const *params)
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
    return res;
}

PGresult *data_exec(PGconn *conn, const char *what, const char *sql, int n_params,
                   const char *const *params, int *status)
{
    eie_err err;
    PGresult *res = exec_prepared(conn, what, sql, n_params, params);
    /* Reads only: one that PostgreSQL chose as a deadlock's victim (against a
     * replay's switch, which locks every table of the store) is run again. */
    for (int retry = 0; retry < DEADLOCK_RETRIES && res &&
                        PQresultStatus(res) == PGRES_FATAL_ERROR &&
                        strcmp(pg_sqlstate(res), SQLSTATE_DEADLOCK) == 0;
         retry++) {
        log_warn("%s: deadlock, running it again", what);
        PQclear(res);
        res = exec_prepared(conn, what, sql, n_params, params);
    }
    if (pg_check(res, PGRES_TUPLES_OK, what, &err) == 0)
        return res;
    /* The details are for the operator's log, never for the client. */
    log_error("%s", err.msg);
    *status = strcmp(pg_sqlstate(res), SQLSTATE_QUERY_CANCELED) == 0 ? 504 : 503;
    PQclear(res);
    return NULL;
}

int data_respond_error(struct _u_response *resp, int status)
{
    return status == 504 ? respond_error(resp, 504, "timeout", "the query took too long")
                         : respond_error(resp, 503, "unavailable", "the query could not be answered");
}

PGresult *data_query(api_context *ctx, struct _u_response *resp, const char *what,
                     const char *sql, int n_params, const char *const *params)
{
    eie_err err;
    PGconn *conn = db_pool_acquire(ctx->db, API_POOL_WAIT_MS, &err);
    if (!conn) {
        log_error("%s: %s", what, err.msg);
        respond_error(resp, 503, "unavailable", "the database is not available");
        return NULL;
    }
    int status = 503;
    PGresult *res = data_exec(conn, what, sql, n_params, params, &status);
    db_pool_release(ctx->db, conn);
    if (!res)
        data_respond_error(resp, status);
    return res;
}

bool data_ready(api_context *ctx, long wait_ms)
{
    eie_err err;
    PGconn *conn = db_pool_acquire(ctx->db, wait_ms, &err);
    if (!conn)
        return false;
    bool ok = pg_exec(conn, "SELECT 1", &err) == 0;
    db_pool_release(ctx->db, conn);
    return ok;
}

void data_arg_text(data_args *a, const char *value)
{
    a->values[a->n++] = value;
}

void data_arg_time(data_args *a, int64_t ms)
{
    timefmt_format_rfc3339(ms, a->text[a->n]);
    a->values[a->n] = a->text[a->n];
    a->n++;
}

void data_arg_double(data_args *a, double v)
{
    if (isnan(v)) {
        a->values[a->n++] = NULL;
        return;
    }
    snprintf(a->text[a->n], sizeof a->text[a->n], "%.17g", v);
    a->values[a->n] = a->text[a->n];
    a->n++;
}

void data_arg_long(data_args *a, long long v)
{
    snprintf(a->text[a->n], sizeof a->text[a->n], "%lld", v);
    a->values[a->n] = a->text[a->n];
    a->n++;
}

void data_arg_count(data_args *a, long long v)
{
    if (v < 0)
        data_arg_text(a, NULL);
    else
        data_arg_long(a, v);
}

PGresult *data_run(api_context *ctx, struct _u_response *resp, const char *what, const char *sql,
                   const data_args *a)
{
    return data_query(ctx, resp, what, sql, a->n, a->values);
}
