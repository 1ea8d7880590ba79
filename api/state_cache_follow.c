/* The state cache's refresher: what it reads from the hot store and when;
 * see state_cache_internal.h. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "state_cache_internal.h"

/* Each refresh reads the rows stamped since the previous one began, less
 * LOOK_BACK_S: a row's stamp is its transaction's start (now()), so a
 * transaction that began before the previous refresh and committed after it
 * carries an older stamp. Applying a row twice changes nothing. Every so often
 * a refresh looks further: the state tables are read whole (they hold a row
 * per device), the assignment history, which only grows, as far back as
 * LONG_LOOK_BACK_S.
 *
 * Between refreshes the cache listens for the hot store's commits
 * (PG_HOT_STATE_CHANNEL): each carries the readings it offered the state
 * tables, or names its rows' stamp, so reading the rows stamped since then is
 * exact (hot_notice.h), and a reading shows within milliseconds of being
 * stored. The refreshes stay for what announces nothing (a replay's
 * switch of stores, rows written by other means) and for a lost connection,
 * which loses the notices sent meanwhile: while the cache follows the
 * commits, a refresh checks which tables hold the store and reads a page of
 * each state table, in the order of their ids, sized so that the pages go
 * round the table in about LONG_LOOK_EVERY refreshes; the long look reads the
 * assignments. (Read whole once a minute, the 50,000 rows of
 * bench/freshness.sh's steady load took 90 ms of statements alone, and the
 * notices waited meanwhile.) */
#define LOOK_BACK_S 10
#define LONG_LOOK_BACK_S 600
#define LONG_LOOK_EVERY 120
/* Rows a page reads beyond its share, so that a small table is read whole
 * every refresh or so. */
#define PAGE_ROWS_MIN 64

/* One table the cache follows. */
typedef struct source {
    data_hot_table table;
    void (*apply)(state_cache *c, const PGresult *res, int row);
    int long_look_back_s; /* 0: the long look reads every row */
    bool in_notices;      /* the commit notices carry its rows (hot_notice.h) */
} source;

static const source sources[] = {
    {DATA_HOT_VEHICLE_STATES, state_cache_apply_vehicle_state, 0, true},
    {DATA_HOT_METER_STATES, state_cache_apply_meter_voltage, 0, true},
    {DATA_HOT_ASSIGNMENTS, state_cache_apply_assignment, LONG_LOOK_BACK_S, false},
};

/* Applies the source's rows in res, then frees it; -1 when res is NULL (a
 * failed statement). */
static int apply_rows(state_cache *c, const source *s, PGresult *res)
{
    if (!res)
        return -1;
    int n = PQntuples(res);
    /* In steps: while the sinks drain a backlog every device changes between
     * two commits, and a notice brings tens of thousands of rows. Applied in
     * one hold, a report waited for all of them (clusters of 32 requests past
     * 30 ms in bench/api.sh while draining). Each row is applied whole, and a
     * reader between two steps sees what two refreshes, one for each part of
     * the commits, would have left. */
    pthread_rwlock_wrlock(&c->lock);
    for (int i = 0; i < n; i++) {
        if (i % REFRESH_ROWS_PER_LOCK == REFRESH_ROWS_PER_LOCK - 1) {
            pthread_rwlock_unlock(&c->lock);
            pthread_rwlock_wrlock(&c->lock);
        }
        s->apply(c, res, i);
    }
    pthread_rwlock_unlock(&c->lock);
    PQclear(res);
    return 0;
}

/* Applies the source's rows stamped from since (NULL: all) less look_back_s. */
static int follow_since(state_cache *c, const source *s, const char *since, int look_back_s,
                        eie_err *err)
{
    return apply_rows(c, s, data_hot_changes(c->conn, s->table, since, look_back_s, err));
}

static int follow(state_cache *c, const source *s, int look_long, eie_err *err)
{
    const char *since =
        !c->since[0] || (look_long && s->long_look_back_s == 0) ? NULL : c->since;
    return follow_since(c, s, since, look_long ? s->long_look_back_s : LOOK_BACK_S, err);
}

/* The next page of each state table; the pages start over at its end. */
static int read_pages(state_cache *c, eie_err *err)
{
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        const source *s = &sources[i];
        if (!s->in_notices)
            continue;
        /* The broker's thread adds vehicles too (state_tail.h), under the
         * write lock. */
        pthread_rwlock_rdlock(&c->lock);
        size_t held = s->table == DATA_HOT_VEHICLE_STATES ? c->vehicle_ids.n : c->meter_ids.n;
        pthread_rwlock_unlock(&c->lock);
        int limit = (int)(held / LONG_LOOK_EVERY) + PAGE_ROWS_MIN;
        char *after = c->page_after[s->table];
        PGresult *res = data_hot_page(c->conn, s->table, after, limit, err);
        if (!res)
            return -1;
        int n = PQntuples(res);
        if (n < limit)
            after[0] = '\0';
        else
            snprintf(after, READING_ID_MAX + 1, "%s", PQgetvalue(res, n - 1, 0));
        if (apply_rows(c, s, res) < 0)
            return -1;
    }
    return 0;
}

static int refresh(state_cache *c, int look_long, eie_err *err)
{
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        PQfinish(c->conn);
        c->listening = false;
        if (!(c->conn = pg_connect(c->url, "eie-api state cache", err)))
            return -1;
        c->store[0] = '\0';
    }
    /* Before the refresh reads: a commit after it is announced. */
    if (!c->listening) {
        if (data_hot_listen(c->conn, err) < 0)
            return -1;
        c->listening = true;
    }
    /* After a replay switched stores, what the cache holds (and its stamps)
     * is the old store's: it starts over. */
    data_hot_store store;
    if (data_hot_store_read(c->conn, &store, err) < 0)
        return -1;
    if (strcmp(store.tables, c->store) != 0) {
        if (c->store[0])
            log_info("the state tables were replaced (a replay's switch): reloading");
        snprintf(c->store, sizeof c->store, "%s", store.tables);
        pthread_rwlock_wrlock(&c->lock);
        state_cache_clear(c);
        pthread_rwlock_unlock(&c->lock);
        memset(c->page_after, 0, sizeof c->page_after);
    }
    /* While it follows the commits, the notices have told the cache what
     * reading the tables would: reading them every refresh (LOOK_BACK_S
     * back, so every device of a busy fleet) cost PostgreSQL a fifth of a
     * core at 50,000 readings/s. The pages read them a share at a time. The
     * refresher alone sets following: no lock needed to read it here. */
    if (c->following) {
        if (read_pages(c, err) < 0)
            return -1;
        if (!look_long)
            return 0;
    }
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (!(c->following && sources[i].in_notices) && follow(c, &sources[i], look_long, err) < 0)
            return -1;
    snprintf(c->since, sizeof c->since, "%s", store.now);
    pthread_rwlock_wrlock(&c->lock);
    c->assignment_stored = store.assignments_stored;
    c->following = true; /* listening since before it read */
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

/* A failure may have lost notices: nothing is vouched for until a refresh. */
static int unless_failed(state_cache *c, int rc)
{
    if (rc < 0) {
        pthread_rwlock_wrlock(&c->lock);
        c->following = false;
        pthread_rwlock_unlock(&c->lock);
    }
    return rc;
}

int state_cache_refresh_round(void *arg, eie_err *err)
{
    state_cache *c = arg;
    return unless_failed(c, refresh(c, c->rounds++ % LONG_LOOK_EVERY == 0, err));
}

static void apply_notice_row(void *arg, const reading *r)
{
    state_cache_apply_reading(arg, r);
}

/* Into the round, the notices received, with the readings they carry
 * applied (under the lock a notice at a time: a hundred readings or so);
 * false when none was a commit's. */
static bool take_notices(state_cache *c)
{
    uint64_t rows = c->notices.rows;
    PGnotify *n;
    while ((n = PQnotifies(c->conn))) {
        pthread_rwlock_wrlock(&c->lock);
        hot_notice_take(&c->notices, n->extra, apply_notice_row, c);
        pthread_rwlock_unlock(&c->lock);
        PQfreemem(n);
    }
    if (c->notices.rows > rows)
        metrics_add(c->metrics, STATE_NOTICE_ROWS_METRIC, "", (double)(c->notices.rows - rows));
    return c->notices.any;
}

/* PostgreSQL's timestamptz input form of a stamp, to the microsecond. */
static void format_stamp(int64_t us, char *buf, size_t size)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* Waits up to ms for the hot store's notices; applies the rows stamped from
 * the earliest one on. Notices of commits during the refreshes wait in
 * libpq already, so they are taken before sleeping. */
static int apply_commits(state_cache *c, long ms, eie_err *err)
{
    if (!c->conn || !c->listening || PQstatus(c->conn) != CONNECTION_OK) {
        struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&nap, NULL);
        return 0;
    }
    hot_notice_round_reset(&c->notices);
    if (PQconsumeInput(c->conn) == 0) {
        eie_err_set(err, "reading the hot store's notices: %s", PQerrorMessage(c->conn));
        return -1;
    }
    if (!take_notices(c)) {
        struct pollfd pfd = {.fd = PQsocket(c->conn), .events = POLLIN};
        if (poll(&pfd, 1, (int)ms) <= 0)
            return 0;
        if (PQconsumeInput(c->conn) == 0) {
            eie_err_set(err, "reading the hot store's notices: %s", PQerrorMessage(c->conn));
            return -1;
        }
        if (!take_notices(c))
            return 0;
    }
    /* The readings the commits carried are applied: unless some commit gave
     * its stamp only or stored assignments, there is nothing to read. */
    if (!c->notices.by_stamp && !c->notices.assignments)
        return 0;
    /* The newest assignment stored is read first, and the assignments are
     * then followed from the newest the cache had (a few rows: the table only
     * grows by assignments), so that the cache holds every one up to that
     * stamp and says so at once: reports need not wait for the next refresh to
     * trust it, while the sinks drain a backlog and assignments keep coming. */
    data_hot_store store;
    if (data_hot_store_read(c->conn, &store, err) < 0)
        return -1;
    take_notices(c);
    int64_t earliest_us = c->notices.earliest_us;
    char since[64];
    format_stamp(earliest_us, since, sizeof since);
    pthread_rwlock_rdlock(&c->lock);
    db_stamp had = c->assignment_stored;
    pthread_rwlock_unlock(&c->lock);
    /* Not loaded yet, or another store's (a replay's switch): the next
     * refresh sees to it. */
    bool vouch = had != DB_STAMP_UNKNOWN && strcmp(store.tables, c->store) == 0;
    char assignments_since[64];
    if (vouch && had != DB_STAMP_NONE && had < earliest_us)
        format_stamp(had, assignments_since, sizeof assignments_since);
    else
        snprintf(assignments_since, sizeof assignments_since, "%s", since);
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        const source *s = &sources[i];
        int rc = 0;
        if (!s->in_notices)
            rc = follow_since(c, s, vouch && had == DB_STAMP_NONE ? NULL : assignments_since, 0,
                              err);
        else if (c->notices.by_stamp) {
            metrics_add(c->metrics, STATE_SCANS_METRIC, "", 1);
            rc = follow_since(c, s, since, 0, err);
        }
        if (rc < 0)
            return -1;
    }
    pthread_rwlock_wrlock(&c->lock);
    if (vouch)
        c->assignment_stored = store.assignments_stored;
    else
        c->following = false;
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

int state_cache_wait_for_commits(void *arg, long ms, eie_err *err)
{
    state_cache *c = arg;
    return unless_failed(c, apply_commits(c, ms, err));
}
