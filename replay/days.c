/* eie-replay's replay of single days; see days.h. */
#include "days.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "offsets.h"
#include "pg.h"
#include "replay_db.h"
#include "timefmt.h"

static const char *const history_tables[] = {"meter_history", "vehicle_history"};
#define N_HISTORY (sizeof history_tables / sizeof history_tables[0])

/* "meter_history_20261120" and its day's bounds. */
static void day_partition(const char *parent, int64_t day, char name[96], char from[32],
                          char to[TIMEFMT_RFC3339_LEN])
{
    char date[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(day * 86400000LL, date);
    snprintf(name, 96, "%s_%.4s%.2s%.2s", parent, date, date + 5, date + 8);
    snprintf(from, 32, "%s", date);
    timefmt_format_rfc3339((day + 1) * 86400000LL, to);
}

/* Prepares eie_replay (always anew) for the history days [first_day,
 * last_day]: partitioned tables shaped like the live history, with empty
 * partitions for those days, and an offsets table. */
static int prepare(PGconn *conn, int64_t first_day, int64_t last_day, eie_err *err)
{
    if (pg_exec(conn,
                "SET client_min_messages = warning;"
                "DROP SCHEMA IF EXISTS " DAYS_SCHEMA " CASCADE;"
                "CREATE SCHEMA " DAYS_SCHEMA ";"
                "CREATE TABLE " DAYS_SCHEMA ".sink_offsets (LIKE public.sink_offsets INCLUDING ALL)",
                err) < 0)
        return -1;
    for (size_t t = 0; t < N_HISTORY; t++) {
        if (pg_exec_printf(conn, err,
                           "CREATE TABLE " DAYS_SCHEMA ".%s (LIKE public.%s INCLUDING ALL) "
                           "PARTITION BY RANGE (ts)",
                           history_tables[t], history_tables[t]) < 0)
            return -1;
        for (int64_t day = first_day; day <= last_day; day++) {
            char part[96], from[32], to[TIMEFMT_RFC3339_LEN];
            day_partition(history_tables[t], day, part, from, to);
            /* The check lets the swap attach it to the live table without a scan. */
            if (pg_exec_printf(conn, err,
                               "CREATE TABLE " DAYS_SCHEMA ".%s PARTITION OF " DAYS_SCHEMA ".%s "
                               "FOR VALUES FROM ('%s') TO ('%s');"
                               "ALTER TABLE " DAYS_SCHEMA ".%s ADD CONSTRAINT eie_day "
                               "CHECK (ts >= '%s' AND ts < '%s')",
                               part, history_tables[t], from, to, part, from, to) < 0)
                return -1;
        }
    }
    return 0;
}

/* VACUUM and ANALYZE the replayed days. */
static int vacuum(PGconn *conn, eie_err *err)
{
    return pg_exec(conn,
                   "VACUUM (ANALYZE) " DAYS_SCHEMA ".meter_history, " DAYS_SCHEMA ".vehicle_history",
                   err);
}

/* The cold group's stored offsets in the live store: where a day replay
 * stops. *ends is malloc'd. */
static int live_ends(PGconn *conn, const char *group, const kafka_topics *topics,
                     replay_end **ends, size_t *n_ends, eie_err *err)
{
    offsets_stored stored;
    if (offsets_read(conn, "public", group, &stored, err) < 0)
        return -1;
    replay_end *list = calloc(offsets_count(&stored) + 1, sizeof *list);
    size_t n = 0;
    for (size_t i = 0; list && i < offsets_count(&stored); i++) {
        const char *topic;
        int32_t partition;
        int64_t next;
        offsets_row(&stored, i, &topic, &partition, &next);
        for (int k = 0; k < READING_KIND_COUNT; k++)
            if (strcmp(topic, topics->name[k]) == 0)
                list[n++] = (replay_end){(reading_kind)k, partition, next};
    }
    offsets_release(&stored);
    if (!list) {
        eie_err_set(err, "out of memory");
        return -1;
    }
    free(*ends);
    *ends = list;
    *n_ends = n;
    return 0;
}

/* Inside a transaction: locks the live history so that its days cannot change
 * (live partitions of the days exclusively, the parents against new
 * partitions); live_ends is read after it. REPLAY_VICTIM when a reader
 * holding some of them deadlocked with it. */
static int lock_days(PGconn *conn, int64_t first_day, int64_t last_day, eie_err *err)
{
    /* SHARE UPDATE EXCLUSIVE on the parents stops new partitions (a live
     * consumer creating one of these days) but not reads or inserts. */
    if (pg_exec(conn,
                "LOCK TABLE public.meter_history, public.vehicle_history "
                "IN SHARE UPDATE EXCLUSIVE MODE",
                err) < 0)
        return -1;
    for (size_t t = 0; t < N_HISTORY; t++) {
        for (int64_t day = first_day; day <= last_day; day++) {
            char part[96], from[32], to[TIMEFMT_RFC3339_LEN], exists[8];
            day_partition(history_tables[t], day, part, from, to);
            char qualified[120];
            snprintf(qualified, sizeof qualified, "public.%s", part);
            const char *params[] = {qualified};
            if (pg_query_value(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, exists,
                               sizeof exists, err) < 0)
                return -1;
            if (strcmp(exists, "t") == 0) {
                char sql[160];
                snprintf(sql, sizeof sql, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", qualified);
                int rc = replay_exec(conn, sql, err);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* Inside the transaction of lock_days: replaces the live partitions of the
 * days with the rebuilt ones (the old ones are dropped, or kept in a schema
 * eie_retired_<time> when keep_old), and drops eie_replay. */
static int swap(PGconn *conn, int64_t first_day, int64_t last_day, bool keep_old,
                char retired[64], eie_err *err)
{
    retired[0] = '\0';
    if (keep_old) {
        replay_retired_name(retired);
        if (pg_exec_printf(conn, err, "CREATE SCHEMA %s", retired) < 0)
            return -1;
    }
    for (size_t t = 0; t < N_HISTORY; t++) {
        const char *parent = history_tables[t];
        for (int64_t day = first_day; day <= last_day; day++) {
            char part[96], from[32], to[TIMEFMT_RFC3339_LEN], exists[8], qualified[120];
            day_partition(parent, day, part, from, to);
            snprintf(qualified, sizeof qualified, "public.%s", part);
            const char *params[] = {qualified};
            if (pg_query_value(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, exists,
                               sizeof exists, err) < 0)
                return -1;
            if (strcmp(exists, "t") == 0 &&
                (pg_exec_printf(conn, err, "ALTER TABLE public.%s DETACH PARTITION public.%s",
                                parent, part) < 0 ||
                 (keep_old ? pg_exec_printf(conn, err, "ALTER TABLE public.%s SET SCHEMA %s", part,
                                            retired)
                           : pg_exec_printf(conn, err, "DROP TABLE public.%s", part)) < 0))
                return -1;
            if (pg_exec_printf(conn, err,
                               "ALTER TABLE " DAYS_SCHEMA ".%s DETACH PARTITION " DAYS_SCHEMA ".%s;"
                               "ALTER TABLE " DAYS_SCHEMA ".%s SET SCHEMA public;"
                               "ALTER TABLE public.%s ATTACH PARTITION public.%s "
                               "FOR VALUES FROM ('%s') TO ('%s')",
                               parent, part, part, parent, part, from, to) < 0)
                return -1;
        }
    }
    /* The summaries of these days' hours are now out of date: read raw until
     * the cold consumers summarise them again. */
    char from[TIMEFMT_RFC3339_LEN], to[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(first_day * 86400000LL, from);
    timefmt_format_rfc3339((last_day + 1) * 86400000LL, to);
    if (pg_exec_printf(conn, err,
                       "INSERT INTO public.hourly_rollup_dirty (stream, hour) "
                       "SELECT r.stream, h FROM public.hourly_rollup r, "
                       "generate_series('%s'::timestamptz, '%s'::timestamptz - interval '1 hour', "
                       "interval '1 hour') AS h WHERE h < r.summarised_until ON CONFLICT DO NOTHING",
                       from, to) < 0)
        return -1;
    return pg_exec(conn, "DROP SCHEMA " DAYS_SCHEMA " CASCADE", err);
}

int replay_days(PGconn *conn, replay_job *job, int64_t first_day, int64_t last_day,
                bool keep_old)
{
    eie_err err;
    int64_t start_ms = timefmt_now_ms();
    kafka_topics topics;
    replay_end *ends = NULL;
    size_t n_ends = 0;
    replay_totals totals = {0};
    char retired[64] = "";
    job->store->housekeep = NULL; /* no partitions beyond the days, no retention */
    job->replay.start_ms = first_day * 86400000LL - READING_MAX_FUTURE_MS;
    job->replay.keep_from_ms = first_day * 86400000LL;
    job->replay.keep_to_ms = (last_day + 1) * 86400000LL;
    int rc = -1;
    if (kafka_topics_init(&topics, job->cfg.topic_prefix, &err) < 0 ||
        prepare(conn, first_day, last_day, &err) < 0 ||
        live_ends(conn, job->cfg.group, &topics, &ends, &n_ends, &err) < 0)
        goto done;
    log_info("replaying the history of %lld day%s into schema %s", (long long)(last_day - first_day + 1),
             last_day > first_day ? "s" : "", DAYS_SCHEMA);
    job->replay.ends = ends;
    job->replay.n_ends = n_ends;
    rc = replay_run_round(job, 1, "replay", &totals, &err);
    if (rc == 0) {
        log_info("vacuuming and analysing the replayed days");
        if (vacuum(conn, &err) < 0)
            rc = -1;
    }
    /* The last stretch under lock: live writes to these days wait for the swap,
     * so that the replayed days hold everything the live store had. */
    for (int attempt = 1; rc == 0; attempt++) {
        if (pg_exec(conn, "BEGIN; SET LOCAL lock_timeout = '30s'", &err) < 0) {
            rc = -1;
            break;
        }
        int locked = lock_days(conn, first_day, last_day, &err);
        if (locked == 0) {
            if (live_ends(conn, job->cfg.group, &topics, &ends, &n_ends, &err) < 0)
                rc = -1;
            break;
        }
        eie_err ignored;
        pg_exec(conn, "ROLLBACK", &ignored);
        if (locked != REPLAY_VICTIM || attempt == REPLAY_VICTIM_ATTEMPTS) {
            rc = -1;
            break;
        }
        log_info("locking the live days: chosen as a deadlock's victim; trying again");
        replay_victim_pause();
    }
    if (rc == 0) {
        job->replay.ends = ends;
        job->replay.n_ends = n_ends;
        rc = replay_run_round(job, 1, "catch-up", &totals, &err);
    }
    if (rc == 0 && (swap(conn, first_day, last_day, keep_old, retired, &err) < 0 ||
                    pg_exec(conn, "COMMIT", &err) < 0))
        rc = -1;
    if (rc != 0) {
        eie_err ignored;
        pg_exec(conn, "ROLLBACK", &ignored);
    }
done:
    if (rc == 1) {
        replay_log_interrupted();
    } else if (rc < 0) {
        log_error("%s", err.msg);
    } else {
        log_info("swapped in the replayed days; the old partitions were %s%s",
                 keep_old ? "kept in schema " : "dropped", retired);
        replay_print_summary("replay", &totals, start_ms);
    }
    free(ends);
    return rc == 0 ? 0 : 1;
}
