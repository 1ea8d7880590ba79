/* Connection pool; see db_pool.h. */
#include "db_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"

struct db_pool {
    char *url;
    long statement_timeout_ms;
    pthread_mutex_t lock;
    pthread_cond_t available;
    int size, n_idle;
    PGconn **idle; /* NULL entries are slots whose connection must be (re)opened */
};

static PGconn *open_conn(db_pool *pool, eie_err *err)
{
    PGconn *conn = pg_connect(pool->url, "eie-api", err);
    if (!conn)
        return NULL;
    char sql[96];
    snprintf(sql, sizeof sql, "SET statement_timeout = %ld", pool->statement_timeout_ms);
    if (pg_exec(conn, sql, err) < 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

db_pool *db_pool_new(const char *url, int size, long statement_timeout_ms, eie_err *err)
{
    db_pool *pool = calloc(1, sizeof *pool);
    if (!pool || !(pool->idle = calloc((size_t)size, sizeof *pool->idle)) ||
        !(pool->url = strdup(url))) {
        eie_err_set(err, "out of memory");
        db_pool_free(pool);
        return NULL;
    }
    pool->size = pool->n_idle = size;
    pool->statement_timeout_ms = statement_timeout_ms;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->available, NULL);
    for (int i = 0; i < size; i++) {
        eie_err e;
        if (!(pool->idle[i] = open_conn(pool, &e))) {
            log_warn("database not reachable yet, will retry on use: %s", e.msg);
            break;
        }
    }
    return pool;
}

void db_pool_free(db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; pool->idle && i < pool->n_idle; i++)
        PQfinish(pool->idle[i]);
    if (pool->idle) {
        pthread_mutex_destroy(&pool->lock);
        pthread_cond_destroy(&pool->available);
    }
    free(pool->idle);
    free(pool->url);
    free(pool);
}

PGconn *db_pool_acquire(db_pool *pool, long wait_ms, eie_err *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->lock);
    while (pool->n_idle == 0) {
        if (pthread_cond_timedwait(&pool->available, &pool->lock, &deadline) == ETIMEDOUT &&
            pool->n_idle == 0) {
            pthread_mutex_unlock(&pool->lock);
            eie_err_set(err, "no database connection free within %ld ms", wait_ms);
            return NULL;
        }
    }
    PGconn *conn = pool->idle[--pool->n_idle];
    pthread_mutex_unlock(&pool->lock);

    if (conn && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = NULL;
    }
    if (!conn && !(conn = open_conn(pool, err))) {
        db_pool_release(pool, NULL); /* give the slot back, to be retried */
        return NULL;
    }
    return conn;
}

void db_pool_release(db_pool *pool, PGconn *conn)
{
    /* A connection left inside a transaction (an error mid-way) is not reused. */
    if (conn && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PQfinish(conn);
        conn = NULL;
    }
    pthread_mutex_lock(&pool->lock);
    pool->idle[pool->n_idle++] = conn;
    pthread_cond_signal(&pool->available);
    pthread_mutex_unlock(&pool->lock);
}
