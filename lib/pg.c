/* PostgreSQL helpers; see pg.h. */
#include "pg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "embedded.h"
#include "log.h"
#include "strbuf.h"

/* Any constant, as long as nothing else in the database uses it. */
#define MIGRATION_LOCK_KEY 7420170001LL

PGconn *pg_connect(const char *url, const char *application_name, eie_err *err)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *values[] = {url, application_name, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        eie_err_set(err, "connecting to PostgreSQL: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        eie_err_set(err, "connecting to PostgreSQL (DATABASE_URL): %s", msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

const char *pg_sqlstate(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state ? state : "";
}

int pg_check(PGresult *res, ExecStatusType ok_status, const char *what, eie_err *err)
{
    if (res && PQresultStatus(res) == ok_status)
        return 0;
    char msg[400];
    snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : "no result (connection lost?)");
    msg[strcspn(msg, "\n")] = '\0';
    eie_err_set(err, "%s: %s", what, msg);
    return -1;
}

int pg_exec(PGconn *conn, const char *sql, eie_err *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char what[80];
        snprintf(what, sizeof what, "%.60s", sql);
        what[strcspn(what, "\n")] = '\0';
        rc = pg_check(res, PGRES_COMMAND_OK, what, err);
    }
    PQclear(res);
    return rc;
}

int pg_exec_printf(PGconn *conn, eie_err *err, const char *fmt, ...)
{
    strbuf sql = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sql, fmt, ap);
    va_end(ap);
    int rc = pg_exec(conn, sql.data, err);
    strbuf_free(&sql);
    return rc;
}

int pg_query_value(PGconn *conn, const char *sql, int n_params, const char *const *params,
                   char *out, size_t size, eie_err *err)
{
    PGresult *res = PQexecParams(conn, sql, n_params, NULL, params, NULL, NULL, 0);
    int rc = pg_check(res, PGRES_TUPLES_OK, sql, err);
    if (rc == 0)
        snprintf(out, size, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return rc;
}

static int is_applied(PGconn *conn, const char *name, int *applied, eie_err *err)
{
    const char *params[] = {name};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM eie_schema_migrations WHERE name = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, "reading eie_schema_migrations", err) < 0) {
        PQclear(res);
        return -1;
    }
    *applied = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int apply(PGconn *conn, const eie_embedded_file *file, eie_err *err)
{
    const char *params[] = {file->name};
    if (pg_exec(conn, "BEGIN", err) < 0)
        return -1;
    if (pg_exec(conn, file->text, err) < 0) {
        eie_err_prefix(err, "migration %s", file->name);
        goto fail;
    }
    PGresult *res = PQexecParams(conn, "INSERT INTO eie_schema_migrations (name) VALUES ($1)", 1,
                                 NULL, params, NULL, NULL, 0);
    int rc = pg_check(res, PGRES_COMMAND_OK, "recording a migration", err);
    PQclear(res);
    if (rc < 0 || pg_exec(conn, "COMMIT", err) < 0)
        goto fail;
    log_info("applied migration %s", file->name);
    return 0;
fail:
    pg_exec(conn, "ROLLBACK", NULL);
    return -1;
}

/* Whether every embedded migration is recorded, by reading only. */
static int all_applied(PGconn *conn, bool *all, eie_err *err)
{
    *all = false;
    PGresult *res = PQexec(conn, "SELECT to_regclass('eie_schema_migrations') IS NOT NULL");
    int rc = pg_check(res, PGRES_TUPLES_OK, "looking for eie_schema_migrations", err);
    bool exists = rc == 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (rc < 0 || !exists)
        return rc;
    *all = true;
    for (const eie_embedded_file *f = eie_embedded_sql; *all && f->name; f++) {
        int applied;
        if (is_applied(conn, f->name, &applied, err) < 0)
            return -1;
        *all = applied;
    }
    return 0;
}

int pg_migrate(PGconn *conn, eie_err *err)
{
    bool up_to_date;
    if (all_applied(conn, &up_to_date, err) < 0)
        return -1;
    if (up_to_date)
        return 0;
    char lock[96], unlock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)", MIGRATION_LOCK_KEY);
    snprintf(unlock, sizeof unlock, "SELECT pg_advisory_unlock(%lld)", MIGRATION_LOCK_KEY);
    if (pg_exec(conn, lock, err) < 0)
        return -1;
    int applied_now = 0, rc = pg_exec(conn,
                                      "SET client_min_messages = warning;"
                                      "CREATE TABLE IF NOT EXISTS eie_schema_migrations ("
                                      " name text PRIMARY KEY,"
                                      " applied_at timestamptz NOT NULL DEFAULT now())",
                                      err);
    for (const eie_embedded_file *f = eie_embedded_sql; rc == 0 && f->name; f++) {
        int applied;
        if ((rc = is_applied(conn, f->name, &applied, err)) == 0 && !applied) {
            rc = apply(conn, f, err);
            applied_now += rc == 0;
        }
    }
    pg_exec(conn, unlock, NULL);
    if (rc < 0 && strstr(err->msg, "permission denied"))
        eie_err_prefix(err, "%s may not apply the migrations this database lacks (they are its "
                            "owner role's to apply: eie-admin migrate with the owner's "
                            "DATABASE_URL)", PQuser(conn));
    return rc < 0 ? -1 : applied_now;
}

int pg_copy(PGconn *conn, const char *copy_sql, const char *data, size_t len, char sqlstate[6],
            eie_err *err)
{
    if (sqlstate)
        sqlstate[0] = '\0';
    PGresult *res = PQexec(conn, copy_sql);
    if (pg_check(res, PGRES_COPY_IN, copy_sql, err) < 0) {
        if (sqlstate)
            snprintf(sqlstate, 6, "%s", pg_sqlstate(res));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    /* Sent in pieces under libpq's int limit; libpq buffers and flushes them. */
    const size_t piece = 1 << 20;
    const char *abort_reason = NULL;
    for (size_t off = 0; off < len && !abort_reason; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (PQputCopyData(conn, data + off, (int)n) != 1)
            abort_reason = "sending rows failed";
    }
    if (PQputCopyEnd(conn, abort_reason) != 1 || abort_reason) {
        eie_err_set(err, "%s: %s", copy_sql, PQerrorMessage(conn));
        while ((res = PQgetResult(conn)) != NULL)
            PQclear(res);
        return -1;
    }
    int rc = 0;
    while ((res = PQgetResult(conn)) != NULL) {
        if (rc == 0 && pg_check(res, PGRES_COMMAND_OK, copy_sql, err) < 0) {
            rc = -1;
            if (sqlstate)
                snprintf(sqlstate, 6, "%s", pg_sqlstate(res));
        }
        PQclear(res);
    }
    return rc;
}
