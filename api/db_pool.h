/* A small, fixed set of long-lived PostgreSQL connections shared by the request
 * threads: new backends are slow to warm up, so connections are reused rather
 * than opened per request, and few (about two per core) so the database is not
 * swamped. A broken connection is replaced on its next use. */
#ifndef EIE_DB_POOL_H
#define EIE_DB_POOL_H

#include <libpq-fe.h>

#include "err.h"

typedef struct db_pool db_pool;

/* Connects size connections up front (failures are retried on use, so the
 * service can start before the database). statement_timeout_ms bounds every
 * query. */
db_pool *db_pool_new(const char *url, int size, long statement_timeout_ms, eie_err *err);
void db_pool_free(db_pool *pool);

/* Waits up to wait_ms for a connection; NULL with err set when none came or the
 * database cannot be reached. */
PGconn *db_pool_acquire(db_pool *pool, long wait_ms, eie_err *err);
void db_pool_release(db_pool *pool, PGconn *conn);

#endif
