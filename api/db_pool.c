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
#include "timefmt.h"

/* A request waiting for a connection. Waiters are served first come, first
 * served, each handed its connection directly: with one condition for all, a
 * request arriving just as a connection came back could take it before those
 * already waiting, and under load the unlucky ones waited many times longer
 * than the rest (the p99 of bench/api.sh). */
typedef struct waiter {
    pthread_cond_t handed;
    int given;
    PGconn *conn;
    struct waiter *next;
} waiter;

struct db_pool {
    char *url;
    long statement_timeout_ms;
    pthread_mutex_t lock;
    waiter *first, *last; /* the queue of waiters */
    int size, n_idle;
    PGconn **idle; /* NULL entries are slots whose connection must be (re)opened */
};

static PGconn *open_conn(db_pool *pool, eie_err *err)
{
    PGconn *conn = pg_connect(pool->url, "eie-api", err);
    if (!conn)
        return NULL;
    /* No JIT: the reports' statements are lookups that run in a few
     * milliseconds, but the planner's estimates through the attribution's
     * functions (schemas/sql/010_energy_attribution.sql) pass jit_above_cost,
     * and compiling took 30 ms of a 2 ms report for a vehicle on a shared
     * meter (eie_vehicle_attribution, psql \timing, jit on and off). */
    char sql[128];
    snprintf(sql, sizeof sql, "SET statement_timeout = %ld; SET jit = off",
             pool->statement_timeout_ms);
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
    if (pool->idle)
        pthread_mutex_destroy(&pool->lock);
    free(pool->idle);
    free(pool->url);
    free(pool);
}

/* Called with the lock held: a waiter that gave up leaves the queue. */
static void unqueue(db_pool *pool, waiter *w)
{
    waiter *prev = NULL;
    for (waiter *it = pool->first; it && it != w; it = it->next)
        prev = it;
    if (prev)
        prev->next = w->next;
    else
        pool->first = w->next;
    if (pool->last == w)
        pool->last = prev;
}

PGconn *db_pool_acquire(db_pool *pool, long wait_ms, eie_err *err)
{
    struct timespec deadline = timefmt_deadline(wait_ms);
    PGconn *conn = NULL;
    int given = 1;
    pthread_mutex_lock(&pool->lock);
    if (pool->n_idle > 0 && !pool->first) {
        conn = pool->idle[--pool->n_idle];
    } else {
        waiter w = {.given = 0};
        pthread_cond_init(&w.handed, NULL);
        if (pool->last)
            pool->last->next = &w;
        else
            pool->first = &w;
        pool->last = &w;
        while (!w.given)
            if (pthread_cond_timedwait(&w.handed, &pool->lock, &deadline) == ETIMEDOUT)
                break;
        if (!w.given)
            unqueue(pool, &w);
        given = w.given;
        conn = w.conn;
        pthread_cond_destroy(&w.handed);
    }
    pthread_mutex_unlock(&pool->lock);
    if (!given) {
        eie_err_set(err, "no database connection free within %ld ms", wait_ms);
        return NULL;
    }

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
    waiter *w = pool->first;
    if (w) {
        if (!(pool->first = w->next))
            pool->last = NULL;
        w->conn = conn;
        w->given = 1;
        pthread_cond_signal(&w->handed);
    } else {
        pool->idle[pool->n_idle++] = conn;
    }
    pthread_mutex_unlock(&pool->lock);
}
