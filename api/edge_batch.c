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
#include "strbuf.h"
#include "timefmt.h"

/* Ranges per statement at most (64 reports of four ranges). */
#define MAX_BATCH_RANGES 256

typedef struct job {
    edge_range *ranges;
    int n;
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

/* Each range joins its device's index in its own day partition(s): the
 * partitions are pruned per range at run time. Three more rows say how current
 * the summaries and assignments are, in the same snapshot. The tables come in
 * the order a replay's switch locks them (the histories, meter first, then the
 * others by name), which is the order this statement locks them in: against
 * the other order the two deadlocked (test_replay, in CI). */
static const char *const batch_sql =
    "SELECT 1, r.i, (SELECT row(coalesce(sum(h.kwh_consumed_ac), 0), count(*), 0)"
    "  FROM meter_history h"
    "  WHERE h.meter_id = r.id AND h.ts >= r.lo AND h.ts < r.hi)::text"
    " FROM unnest($4::text[], $5::timestamptz[], $6::timestamptz[]) WITH ORDINALITY r(id, lo, hi, i)"
    " UNION ALL "
    "SELECT 0, r.i, (SELECT row(coalesce(sum(h.kwh_delivered_dc), 0), count(*),"
    "    coalesce(sum(h.battery_temp), 0)) FROM vehicle_history h"
    "  WHERE h.vehicle_id = r.id AND h.ts >= r.lo AND h.ts < r.hi)::text"
    " FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY r(id, lo, hi, i)"
    " UNION ALL SELECT 4, count(*), string_agg(DISTINCT floor(extract(epoch FROM hour) / 3600)::text, ',')"
    "  FROM hourly_rollup_dirty"
    " UNION ALL SELECT 2, 0, eie_summaries_changed()::text"
    " UNION ALL SELECT 3, 0, eie_assignments_stored()::text";

/* Appends one element of a text[] literal: quoted, with " and \ escaped. */
static void put_text_element(strbuf *b, bool first, const char *s)
{
    strbuf_putc(b, first ? '{' : ',');
    strbuf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            strbuf_putc(b, '\\');
        strbuf_putc(b, *s);
    }
    strbuf_putc(b, '"');
}

typedef struct batch {
    strbuf ids[2], los[2], his[2];
    edge_range *by_kind[2][MAX_BATCH_RANGES];
    int n[2];
    edge_freshness fresh;
} batch;

static void read_dirty(edge_freshness *f, long count, const char *list)
{
    f->n_dirty = 0;
    if (count > EDGE_MAX_DIRTY) {
        f->n_dirty = -1;
        return;
    }
    for (const char *p = list; *p && f->n_dirty < EDGE_MAX_DIRTY;) {
        char *end;
        f->dirty_hours[f->n_dirty++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
}

static void batch_add(batch *bt, edge_range *r)
{
    int k = r->kind == READING_METER;
    bool first = bt->n[k] == 0;
    put_text_element(&bt->ids[k], first, r->id);
    char t[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(r->lo_ms, t);
    strbuf_putc(&bt->los[k], first ? '{' : ',');
    strbuf_puts(&bt->los[k], t);
    timefmt_format_rfc3339(r->hi_ms, t);
    strbuf_putc(&bt->his[k], first ? '{' : ',');
    strbuf_puts(&bt->his[k], t);
    bt->by_kind[k][bt->n[k]++] = r;
}

/* A row of the sums as text, "(kwh,readings,temp_sum)". */
static bool parse_sums(const char *text, double *kwh, long long *n, double *temp)
{
    char *end;
    if (*text++ != '(')
        return false;
    *kwh = strtod(text, &end);
    if (end == text || *end != ',')
        return false;
    text = end + 1;
    *n = strtoll(text, &end, 10);
    if (end == text || *end != ',')
        return false;
    text = end + 1;
    *temp = strtod(text, &end);
    return end != text && end[0] == ')' && end[1] == '\0';
}

/* Runs the statement for the ranges in bt; 0 or an HTTP status. */
static int batch_run(edge_batch *b, batch *bt)
{
    const char *params[6];
    for (int k = 0; k < 2; k++) {
        if (bt->n[k] == 0) {
            strbuf_puts(&bt->ids[k], "{");
            strbuf_puts(&bt->los[k], "{");
            strbuf_puts(&bt->his[k], "{");
        }
        strbuf_putc(&bt->ids[k], '}');
        strbuf_putc(&bt->los[k], '}');
        strbuf_putc(&bt->his[k], '}');
        params[3 * k] = bt->ids[k].data;
        params[3 * k + 1] = bt->los[k].data;
        params[3 * k + 2] = bt->his[k].data;
    }
    eie_err err;
    PGconn *conn = db_pool_acquire(b->db, API_POOL_WAIT_MS, &err);
    if (!conn) {
        log_error("history sums: %s", err.msg);
        return 503;
    }
    int status = 0;
    PGresult *res = data_exec(conn, "history sums", batch_sql, 6, params, &status);
    db_pool_release(b->db, conn);
    if (!res)
        return status;
    int rows = PQntuples(res);
    for (int i = 0; i < rows && status == 0; i++) {
        int k = atoi(PQgetvalue(res, i, 0));
        long at = strtol(PQgetvalue(res, i, 1), NULL, 10) - 1;
        if (k == 2 || k == 3) {
            *(k == 2 ? &bt->fresh.summaries_changed : &bt->fresh.assignment_stored) =
                db_stamp_get(res, i, 2);
            continue;
        }
        if (k == 4) {
            read_dirty(&bt->fresh, at + 1, PQgetvalue(res, i, 2));
            continue;
        }
        double kwh, temp;
        long long n;
        if (k < 0 || k > 1 || at < 0 || at >= bt->n[k] ||
            !parse_sums(PQgetvalue(res, i, 2), &kwh, &n, &temp)) {
            /* Cannot happen with the statement above: say so rather than guess. */
            log_error("history sums: unexpected row %d: %s %s %s", i, PQgetvalue(res, i, 0),
                      PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
            status = 503;
            break;
        }
        edge_range *r = bt->by_kind[k][at];
        r->kwh = kwh;
        r->readings = n;
        r->temp_sum = temp;
    }
    if (status == 0 && rows != bt->n[0] + bt->n[1] + 3) {
        log_error("history sums: %d rows for %d ranges", rows, bt->n[0] + bt->n[1]);
        status = 503;
    }
    PQclear(res);
    return status;
}

static void *worker_main(void *arg)
{
    edge_batch *b = arg;
    batch bt;
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
        while (b->first && (jobs++ == 0 || n + b->first->n <= MAX_BATCH_RANGES)) {
            job *j = b->first;
            if (!(b->first = j->next))
                b->last = NULL;
            j->next = NULL;
            *tail = j;
            tail = &j->next;
            n += j->n;
        }
        pthread_mutex_unlock(&b->lock);

        for (int k = 0; k < 2; k++) {
            strbuf_reset(&bt.ids[k]);
            strbuf_reset(&bt.los[k]);
            strbuf_reset(&bt.his[k]);
            bt.n[k] = 0;
        }
        for (job *j = taken; j; j = j->next)
            for (int i = 0; i < j->n; i++)
                batch_add(&bt, &j->ranges[i]);
        int status = batch_run(b, &bt);

        pthread_mutex_lock(&b->lock);
        for (job *j = taken, *next; j; j = next) {
            next = j->next;
            j->status = status;
            *j->fresh = bt.fresh;
            j->done = true;
            pthread_cond_signal(&j->finished);
        }
    }
    pthread_mutex_unlock(&b->lock);
    for (int k = 0; k < 2; k++) {
        strbuf_free(&bt.ids[k]);
        strbuf_free(&bt.los[k]);
        strbuf_free(&bt.his[k]);
    }
    return NULL;
}

int edge_batch_sum(edge_batch *b, edge_range *ranges, int n, edge_freshness *fresh)
{
    if (n < 0 || n > MAX_BATCH_RANGES)
        return 503;
    job j = {.ranges = ranges, .n = n, .fresh = fresh};
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
