/* Batched sums over the history; see edge_batch.h. */
#include "edge_batch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "data.h"
#include "log.h"

typedef struct job {
    edge_range *ranges;
    int n;
    const edge_hours *asked;
    edge_freshness *fresh;
    int status; /* 0, or the HTTP status of a failure */
    bool done;
    pthread_cond_t finished;
    struct job *next;
} job;

struct edge_batch {
    db_pool *db;
    pthread_mutex_t lock;
    pthread_cond_t queued;
    job *first, *last;
    bool stop;
    int n_workers;
    pthread_t *workers;
};

/* 0, or the HTTP status of a failure. */
static int run_sums(edge_batch *b, data_sums *bt, edge_freshness *fresh)
{
    eie_err err;
    PGconn *conn = db_pool_acquire(b->db, API_POOL_WAIT_MS, &err);
    if (!conn) {
        log_error("history sums: %s", err.msg);
        return 503;
    }
    int status = data_sums_run(conn, bt, fresh);
    db_pool_release(b->db, conn);
    return status;
}

static void *worker_main(void *arg)
{
    edge_batch *b = arg;
    data_sums bt;
    memset(&bt, 0, sizeof bt);
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->first && !b->stop)
            pthread_cond_wait(&b->queued, &b->lock);
        if (!b->first)
            break; /* stopping, and nothing left to answer */
        /* Whole jobs, as many as fit. */
        job *taken = NULL, **tail = &taken;
        int n = 0;
        int jobs = 0;
        while (b->first && (jobs++ == 0 || n + b->first->n <= DATA_SUMS_MAX_RANGES)) {
            job *j = b->first;
            if (!(b->first = j->next))
                b->last = NULL;
            j->next = NULL;
            *tail = j;
            tail = &j->next;
            n += j->n;
        }
        pthread_mutex_unlock(&b->lock);

        data_sums_reset(&bt);
        for (job *j = taken; j; j = j->next) {
            for (int i = 0; i < j->n; i++)
                data_sums_add(&bt, &j->ranges[i]);
            data_sums_ask_hours(&bt, j->asked);
        }
        edge_freshness fresh = {0};
        int status = run_sums(b, &bt, &fresh);

        pthread_mutex_lock(&b->lock);
        for (job *j = taken, *next; j; j = next) {
            next = j->next;
            j->status = status;
            *j->fresh = fresh;
            j->done = true;
            pthread_cond_signal(&j->finished);
        }
    }
    pthread_mutex_unlock(&b->lock);
    data_sums_free(&bt);
    return NULL;
}

int edge_batch_sum(edge_batch *b, edge_range *ranges, int n, const edge_hours *asked,
                   edge_freshness *fresh)
{
    if (n < 0 || n > DATA_SUMS_MAX_RANGES)
        return 503;
    job j = {.ranges = ranges, .n = n, .asked = asked, .fresh = fresh};
    pthread_cond_init(&j.finished, NULL);
    pthread_mutex_lock(&b->lock);
    if (b->last)
        b->last->next = &j;
    else
        b->first = &j;
    b->last = &j;
    pthread_cond_signal(&b->queued);
    /* A worker always answers: its statement is bounded by the statement
     * timeout and its wait for a connection by API_POOL_WAIT_MS. */
    while (!j.done)
        pthread_cond_wait(&j.finished, &b->lock);
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&j.finished);
    return j.status;
}

edge_batch *edge_batch_start(db_pool *db, int workers, eie_err *err)
{
    edge_batch *b = calloc(1, sizeof *b);
    if (!b || !(b->workers = calloc((size_t)workers, sizeof *b->workers))) {
        free(b);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    b->db = db;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->queued, NULL);
    for (; b->n_workers < workers; b->n_workers++)
        if (pthread_create(&b->workers[b->n_workers], NULL, worker_main, b) != 0) {
            eie_err_set(err, "cannot start the history sums' threads");
            edge_batch_stop(b);
            return NULL;
        }
    return b;
}

void edge_batch_stop(edge_batch *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_broadcast(&b->queued);
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->n_workers; i++)
        pthread_join(b->workers[i], NULL);
    pthread_cond_destroy(&b->queued);
    pthread_mutex_destroy(&b->lock);
    free(b->workers);
    free(b);
}
