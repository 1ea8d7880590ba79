/* The cold store: every reading appended to its stream's history, partitioned
 * by day. Rows go in with COPY straight into the partitioned table inside a
 * savepoint; only when that meets a unique violation (a reading repeated by an
 * upstream system, or a batch replayed after a crash) does the batch take the
 * slower road through a staging table with ON CONFLICT DO NOTHING. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy_rows.h"
#include "log.h"
#include "pg.h"
#include "sink.h"
#include "timefmt.h"

#define SQLSTATE_UNIQUE_VIOLATION "23505"

typedef struct known_day {
    reading_kind kind;
    int64_t day;
} known_day;

typedef struct cold_state {
    int ahead_days, retention_days;
    int session_gap_s; /* a charging session ends after this long without DC */
    strbuf copy;
    known_day *days; /* partitions known to exist, so a batch checks only new days */
    size_t n_days, cap_days;
    uint64_t merged_batches;
    /* store_cold_rebuilding: which rows of the batch are stored (the first
     * of each device and time), found through a hash table of row indexes;
     * and no hourly summaries until the rebuild's end. */
    bool dedup;
    int64_t *hours; /* a batch's distinct hours before summarised_until */
    size_t cap_hours;
    unsigned char *keep;
    size_t *slots; /* index + 1; 0: free */
    size_t cap_keep, cap_slots;
    int64_t *row_day; /* the day of each row of the batch, found once */
    size_t cap_row_day;
} cold_state;

static const char *const history_table[READING_KIND_COUNT] = {
    [READING_METER] = "meter_history",
    [READING_VEHICLE] = "vehicle_history",
};


static int cold_prepare(sink_store *store, PGconn *conn, eie_err *err)
{
    cold_state *st = store->state;
    st->n_days = 0; /* a new session may face a database whose partitions changed */
    return pg_exec(conn,
                   "CREATE TEMP TABLE IF NOT EXISTS cold_meter (LIKE meter_history) "
                   "ON COMMIT DELETE ROWS;"
                   "CREATE TEMP TABLE IF NOT EXISTS cold_vehicle (LIKE vehicle_history) "
                   "ON COMMIT DELETE ROWS",
                   err);
}

static int day_known(const cold_state *st, reading_kind kind, int64_t day)
{
    for (size_t i = st->n_days; i-- > 0;)
        if (st->days[i].day == day && st->days[i].kind == kind)
            return 1;
    return 0;
}

static int ensure_partition(cold_state *st, PGconn *conn, reading_kind kind, int64_t day,
                            eie_err *err)
{
    if (day_known(st, kind, day))
        return 0;
    char date[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(day * 86400000LL, date);
    date[10] = '\0'; /* keep YYYY-MM-DD */
    const char *params[] = {history_table[kind], date};
    PGresult *res = PQexecParams(conn, "SELECT eie_ensure_day_partition($1, $2::date)", 2, NULL,
                                 params, NULL, NULL, 0);
    int rc = pg_check(res, PGRES_TUPLES_OK, "creating a day partition", err);
    if (rc == 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        log_info("created partition %s_%c%c%c%c%c%c%c%c", history_table[kind], date[0], date[1],
                 date[2], date[3], date[5], date[6], date[8], date[9]);
    PQclear(res);
    if (rc < 0)
        return -1;
    /* Created outside any batch's transaction, so it stays; retention and a new
     * session (prepare) forget what they may have changed. */
    if (st->n_days == st->cap_days) {
        size_t cap = st->cap_days ? st->cap_days * 2 : 64;
        known_day *days = realloc(st->days, cap * sizeof *days);
        if (!days) {
            eie_err_set(err, "out of memory");
            return -1;
        }
        st->days = days;
        st->cap_days = cap;
    }
    st->days[st->n_days++] = (known_day){kind, day};
    return 0;
}

/* "meter_history_20260209": the partition eie_ensure_day_partition names. */
static void partition_name(reading_kind kind, int64_t day, char *buf, size_t size)
{
    char date[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(day * 86400000LL, date);
    snprintf(buf, size, "%s_%.4s%.2s%.2s", history_table[kind], date, date + 5, date + 8);
}

/* A batch usually spans one or two days; more than this goes through the parent
 * table's routing instead of one COPY per day. */
#define MAX_DIRECT_DAYS 8

/* COPY of the rows of one kind (and one day, when day_only) into table. */
static int copy_rows_of(cold_state *st, PGconn *conn, const char *table, reading_kind kind,
                        const reading *rows, size_t n, int day_only, int64_t day, char state[6],
                        eie_err *err)
{
    strbuf sql = STRBUF_INIT;
    copy_rows_statement(&sql, table, kind);
    strbuf_reset(&st->copy);
    copy_rows_begin(&st->copy);
    for (size_t i = 0; i < n; i++)
        if (rows[i].kind == kind && (!st->dedup || st->keep[i]) &&
            (!day_only || st->row_day[i] == day))
            copy_rows_append(&st->copy, &rows[i]);
    copy_rows_end(&st->copy);
    int rc = pg_copy(conn, sql.data, st->copy.data, st->copy.len, state, err);
    strbuf_free(&sql);
    return rc;
}

/* Rows of one kind: straight into their day partitions, skipping the parent's
 * per-row routing; on a unique violation, the whole kind again through the
 * staging table. */
static int write_kind(cold_state *st, PGconn *conn, reading_kind kind, const reading *rows,
                      size_t n, const int64_t *days, size_t n_days, eie_err *err)
{
    char table[96], state[6] = "";
    const char *staging = kind == READING_METER ? "cold_meter" : "cold_vehicle";
    if (pg_exec(conn, "SAVEPOINT cold_copy", err) < 0)
        return -1;
    int rc = 0;
    if (n_days <= MAX_DIRECT_DAYS) {
        for (size_t d = 0; d < n_days && rc == 0; d++) {
            partition_name(kind, days[d], table, sizeof table);
            rc = copy_rows_of(st, conn, table, kind, rows, n, 1, days[d], state, err);
        }
    } else {
        rc = copy_rows_of(st, conn, history_table[kind], kind, rows, n, 0, 0, state, err);
    }
    if (rc == 0)
        return pg_exec(conn, "RELEASE SAVEPOINT cold_copy", err);
    if (strcmp(state, SQLSTATE_UNIQUE_VIOLATION) != 0)
        return -1;
    st->merged_batches++;
    log_debug("%s: batch holds readings already stored; merging", history_table[kind]);
    char merge_sql[200];
    snprintf(merge_sql, sizeof merge_sql, "INSERT INTO %s SELECT * FROM %s ON CONFLICT DO NOTHING",
             history_table[kind], staging);
    return pg_exec(conn, "ROLLBACK TO SAVEPOINT cold_copy", err) < 0 ||
                   copy_rows_of(st, conn, staging, kind, rows, n, 0, 0, NULL, err) < 0 ||
                   pg_exec(conn, merge_sql, err) < 0
               ? -1
               : 0;
}

static size_t hash_row(const reading *r, size_t mask)
{
    uint64_t h = reading_hash_id(r->kind, reading_key(r)) ^ (uint64_t)reading_time_ms(r);
    return (size_t)(h * 1099511628211ULL) & mask;
}

/* Marks in st->keep the first row of each (kind, device, time) of the batch. */
static int mark_first_rows(cold_state *st, const reading *rows, size_t n, eie_err *err)
{
    if (n > st->cap_keep || n * 2 > st->cap_slots) {
        size_t cap = 1024;
        while (cap < n * 2)
            cap *= 2;
        unsigned char *keep = realloc(st->keep, n);
        size_t *slots = keep ? realloc(st->slots, cap * sizeof *slots) : NULL;
        if (keep)
            st->keep = keep;
        if (!slots) {
            eie_err_set(err, "out of memory checking a batch of %zu readings", n);
            return -1;
        }
        st->slots = slots;
        st->cap_keep = n;
        st->cap_slots = cap;
    }
    memset(st->slots, 0, st->cap_slots * sizeof *st->slots);
    size_t mask = st->cap_slots - 1;
    for (size_t i = 0; i < n; i++) {
        st->keep[i] = 1;
        for (size_t h = hash_row(&rows[i], mask);; h = (h + 1) & mask) {
            if (!st->slots[h]) {
                st->slots[h] = i + 1;
                break;
            }
            const reading *seen = &rows[st->slots[h] - 1];
            if (seen->kind == rows[i].kind && reading_time_ms(seen) == reading_time_ms(&rows[i]) &&
                strcmp(reading_key(seen), reading_key(&rows[i])) == 0) {
                st->keep[i] = 0;
                break;
            }
        }
    }
    return 0;
}

static int compare_hours(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Readings stored for an hour already summarised make that hour dirty
 * (006_hourly_rollups.sql). The row lock taken here holds eie_rollup off until
 * this batch commits. */
static int mark_dirty_hours(cold_state *st, PGconn *conn, const reading *rows, size_t n,
                            eie_err *err)
{
    PGresult *res = PQexec(conn, "SELECT stream, coalesce((extract(epoch FROM summarised_until) "
                                 "* 1000)::bigint, 0) FROM hourly_rollup ORDER BY stream FOR SHARE");
    if (pg_check(res, PGRES_TUPLES_OK, "reading where the hourly summaries end", err) < 0) {
        PQclear(res);
        return -1;
    }
    int64_t until[READING_KIND_COUNT] = {0};
    for (int i = 0; i < PQntuples(res); i++)
        for (int k = READING_METER; k <= READING_VEHICLE; k++)
            if (strcmp(PQgetvalue(res, i, 0), reading_kind_name((reading_kind)k)) == 0)
                until[k] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    PQclear(res);
    for (int k = READING_METER; k <= READING_VEHICLE; k++) {
        size_t n_hours = 0;
        for (size_t i = 0; i < n; i++) {
            if ((int)rows[i].kind != k)
                continue;
            int64_t t = reading_time_ms(&rows[i]);
            if (t >= until[k] || (st->dedup && !st->keep[i]))
                continue;
            int64_t hour = t / 3600000;
            size_t h = 0;
            while (h < n_hours && st->hours[h] != hour)
                h++;
            if (h < n_hours)
                continue;
            if (n_hours == st->cap_hours) {
                size_t cap = st->cap_hours ? st->cap_hours * 2 : 16;
                int64_t *hours = realloc(st->hours, cap * sizeof *hours);
                if (!hours) {
                    eie_err_set(err, "out of memory");
                    return -1;
                }
                st->hours = hours;
                st->cap_hours = cap;
            }
            st->hours[n_hours++] = hour;
        }
        if (n_hours == 0)
            continue;
        /* In order: two writers marking the same hours then wait for each
         * other in the same order, and never deadlock. */
        qsort(st->hours, n_hours, sizeof *st->hours, compare_hours);
        strbuf list = STRBUF_INIT;
        for (size_t h = 0; h < n_hours; h++)
            strbuf_printf(&list, "%s%lld", h ? "," : "{", (long long)st->hours[h] * 3600);
        strbuf_putc(&list, '}');
        const char *params[] = {reading_kind_name((reading_kind)k), list.data};
        res = PQexecParams(conn,
                           "INSERT INTO hourly_rollup_dirty (stream, hour) "
                           "SELECT $1, to_timestamp(h) FROM unnest($2::bigint[]) AS h "
                           "ON CONFLICT DO NOTHING",
                           2, NULL, params, NULL, NULL, 0);
        strbuf_free(&list);
        int rc = pg_check(res, PGRES_COMMAND_OK, "marking summarised hours dirty", err);
        PQclear(res);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Every day the batch touches has its partition, each created in a short
 * transaction of its own before the batch's. */
static int cold_before_write(sink_store *store, PGconn *conn, const reading *rows, size_t n,
                             eie_err *err)
{
    cold_state *st = store->state;
    for (size_t i = 0; i < n; i++)
        if (ensure_partition(st, conn, rows[i].kind, timefmt_day(reading_time_ms(&rows[i])), err) <
            0)
            return -1;
    return 0;
}

static int cold_write(sink_store *store, PGconn *conn, const reading *rows, size_t n, eie_err *err)
{
    cold_state *st = store->state;
    if (st->dedup && mark_first_rows(st, rows, n, err) < 0)
        return -1;
    if (n > st->cap_row_day) {
        int64_t *row_day = realloc(st->row_day, n * sizeof *row_day);
        if (!row_day) {
            eie_err_set(err, "out of memory writing a batch of %zu readings", n);
            return -1;
        }
        st->row_day = row_day;
        st->cap_row_day = n;
    }
    for (size_t i = 0; i < n; i++)
        st->row_day[i] = timefmt_day(reading_time_ms(&rows[i]));
    for (int k = READING_METER; k <= READING_VEHICLE; k++) {
        reading_kind kind = (reading_kind)k;
        int64_t days[MAX_DIRECT_DAYS + 1];
        size_t n_days = 0, n_kind = 0;
        for (size_t i = 0; i < n; i++) {
            if (rows[i].kind != kind)
                continue;
            n_kind++;
            int64_t day = st->row_day[i];
            size_t d = 0;
            while (d < n_days && d <= MAX_DIRECT_DAYS && days[d] != day)
                d++;
            if (d == n_days && n_days <= MAX_DIRECT_DAYS)
                days[n_days++] = day;
        }
        if (n_kind && write_kind(st, conn, kind, rows, n, days, n_days, err) < 0)
            return -1;
    }
    return 0;
}

/* After the rows, in commit order (sink.h): the hours' rows are shared. The
 * summaries cannot move between this and the commit (mark_dirty_hours). */
static int cold_finish(sink_store *store, PGconn *conn, const reading *rows, size_t n,
                       eie_err *err)
{
    return mark_dirty_hours(store->state, conn, rows, n, err);
}

/* Hours stay raw until they have been closed this long, so that the usual
 * stragglers land before their hour is summarised. */
#define ROLLUP_SETTLE "15 minutes"
/* Hours summarised per stream and call: a long backlog goes in steps, each
 * holding the batches off for a few seconds at most. */
#define ROLLUP_STEP_HOURS "6"

/* The summaries, then the charging sessions, which follow them (migration
 * 011). */
static int roll_up(const cold_state *st, PGconn *conn, eie_err *err)
{
    PGresult *res = PQexec(conn, "SELECT eie_rollup('" ROLLUP_SETTLE "', " ROLLUP_STEP_HOURS ")");
    int rc = pg_check(res, PGRES_TUPLES_OK, "summarising hours", err);
    if (rc == 0 && atoi(PQgetvalue(res, 0, 0)) > 0)
        log_info("hourly summaries: %s hour(s) of the streams summarised", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (rc < 0)
        return -1;
    char gap[16];
    snprintf(gap, sizeof gap, "%d", st->session_gap_s);
    const char *params[] = {gap};
    res = PQexecParams(conn,
                       "SELECT eie_refresh_sessions(make_interval(secs => $1::int), " ROLLUP_STEP_HOURS ")",
                       1, NULL, params, NULL, NULL, 0);
    rc = pg_check(res, PGRES_TUPLES_OK, "deriving charging sessions", err);
    if (rc == 0 && atoi(PQgetvalue(res, 0, 0)) > 0)
        log_info("charging sessions: those of %s vehicle(s) derived", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

static int cold_housekeep(sink_store *store, PGconn *conn, eie_err *err)
{
    cold_state *st = store->state;
    int64_t today = timefmt_day(timefmt_now_ms());
    for (int kind = READING_METER; kind <= READING_VEHICLE; kind++) {
        for (int64_t day = today; day <= today + st->ahead_days; day++)
            if (ensure_partition(st, conn, (reading_kind)kind, day, err) < 0)
                return -1;
        if (st->retention_days <= 0)
            continue;
        char cutoff[TIMEFMT_RFC3339_LEN];
        timefmt_format_rfc3339((today - st->retention_days) * 86400000LL, cutoff);
        cutoff[10] = '\0';
        const char *params[] = {reading_kind_name((reading_kind)kind), cutoff};
        PGresult *res = PQexecParams(conn, "SELECT eie_drop_days_before($1, $2::date)", 2, NULL,
                                     params, NULL, NULL, 0);
        int rc = pg_check(res, PGRES_TUPLES_OK, "dropping expired day partitions", err);
        if (rc == 0 && atoi(PQgetvalue(res, 0, 0)) > 0) {
            log_info("retention: dropped %s day partition(s) of %s before %s",
                     PQgetvalue(res, 0, 0), history_table[kind], cutoff);
            st->n_days = 0; /* forget what was dropped */
        }
        PQclear(res);
        if (rc < 0)
            return -1;
    }
    /* A rebuild summarises everything once, at its end. */
    return st->dedup ? 0 : roll_up(st, conn, err);
}

static void cold_destroy(sink_store *store)
{
    cold_state *st = store->state;
    strbuf_free(&st->copy);
    free(st->days);
    free(st->keep);
    free(st->slots);
    free(st->row_day);
    free(st->hours);
    free(st);
    free(store);
}

sink_store *store_cold_new(int ahead_days, int retention_days, int session_gap_s)
{
    sink_store *store = calloc(1, sizeof *store);
    cold_state *st = calloc(1, sizeof *st);
    if (!store || !st) {
        free(store);
        free(st);
        return NULL;
    }
    st->ahead_days = ahead_days;
    st->retention_days = retention_days;
    st->session_gap_s = session_gap_s;
    *store = (sink_store){.name = "cold",
                          .kinds = 1u << READING_METER | 1u << READING_VEHICLE,
                          .prepare = cold_prepare,
                          .before_write = cold_before_write,
                          .write = cold_write,
                          .finish = cold_finish,
                          .housekeep = cold_housekeep,
                          .destroy = cold_destroy,
                          .state = st};
    return store;
}

void store_cold_rebuilding(sink_store *store)
{
    ((cold_state *)store->state)->dedup = true;
}
