/* PostgreSQL helpers shared by the consumers, the API and the admin tool:
 * connecting, running statements with errors that carry context, and applying
 * the migrations of schemas/sql (compiled in) exactly once. */
#ifndef EIE_PG_H
#define EIE_PG_H

#include <libpq-fe.h>
#include <stddef.h>

#include "err.h"

#define PG_DEFAULT_URL "postgresql://eie@127.0.0.1:55432/energy_ingestion"

/* The option row (config.h) of the setting every PostgreSQL program shares. */
#define PG_OPTION_DATABASE_URL(value)                                                            \
    {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, value, PG_DEFAULT_URL, 0, 0,            \
     "PostgreSQL connection URL"}

/* The hot store's commits are announced on this channel (NOTIFY), with the
 * committing transaction's start as microseconds since the epoch: the stamp
 * (now()) of every state row it wrote, and the devices it wrote when they are
 * few (hot_notice.h). The API's state cache listens, so a reading shows as
 * soon as it is stored rather than at the next refresh. */
#define PG_HOT_STATE_CHANNEL "eie_hot_state"

/* Changes to the hourly summaries are announced on this channel, by the
 * triggers of schemas/sql/016_summary_notices.sql: "stream:hour,hour,..." or
 * "*" (anything may have changed: a replay's switch of stores). The API's
 * rollup cache listens. */
#define PG_SUMMARIES_CHANNEL "eie_summaries"

/* Connects; application_name defaults to the program's name. */
PGconn *pg_connect(const char *url, const char *application_name, eie_err *err);

/* Runs SQL with no parameters and no rows wanted. */
int pg_exec(PGconn *conn, const char *sql, eie_err *err);

/* Runs SQL built like printf (names of schemas and tables, which cannot be
 * parameters; values go through pg_query_value's parameters instead). */
int pg_exec_printf(PGconn *conn, eie_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs a query and copies the first column of its first row into out ("" when
 * there is no row), cut to size. */
int pg_query_value(PGconn *conn, const char *sql, int n_params, const char *const *params,
                   char *out, size_t size, eie_err *err);

/* Checks a result: returns 0 when its status is ok_status, else sets err from the
 * server's message (prefixed with what) and returns -1. res stays the caller's. */
int pg_check(PGresult *res, ExecStatusType ok_status, const char *what, eie_err *err);

/* The SQLSTATE of a failed result, or "" when there is none. */
const char *pg_sqlstate(const PGresult *res);

/* Applies every migration not yet applied, in file-name order, each in its own
 * transaction, under an advisory lock so that concurrent callers wait rather
 * than race. Returns the number applied, or -1. A database that has them all
 * is only read: a role that may not change the schema (the consumers' writer
 * role) gets 0; one with migrations to apply gets an error saying that they
 * are the owner role's to apply. */
int pg_migrate(PGconn *conn, eie_err *err);

/* ---- COPY ---- */

/* Runs copy_sql ("COPY t (...) FROM STDIN ...") and sends data, a whole body in
 * the format copy_sql names. On failure err holds the server's message and *sqlstate (if given) its
 * SQLSTATE, so callers can tell a unique violation from other failures. */
int pg_copy(PGconn *conn, const char *copy_sql, const char *data, size_t len, char sqlstate[6],
            eie_err *err);

#endif
