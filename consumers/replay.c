/* eie-replay: rebuilds the stores from the topics, which are the source of
 * truth, while the live stores keep serving.
 *
 * Without --from-day it rebuilds both stores: the hot and the cold sink run
 * side by side, each reading every partition from the beginning into the
 * schema eie_rebuild, until they reach the end the topics had when they
 * started; short catch-up rounds follow until little is left, the rebuilt
 * tables are vacuumed, and one transaction switches them in (replay_store.h).
 * Its offsets are stored with its rows, exactly as the live consumers' are, so
 * an interrupted rebuild goes on where it stopped when run again (or starts
 * over with --restart), and nothing live changes before the switch.
 *
 * With --from-day (and --to-day) it rebuilds the history of those days only:
 * from the first message produced on the first day (less the five minutes a
 * reading may lie in the future) up to the live cold consumers' stored
 * offsets, into day partitions of its own, swapped in under a lock after a
 * last catch-up. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "progress.h"
#include "replay_store.h"
#include "sink.h"
#include "timefmt.h"

/* The replay's cold writers do no housekeeping, so no session gap of theirs:
 * a rebuild derives the sessions at its end with the live store's gap
 * (rebuild_summarise), and replayed days are derived again by the consumers'
 * housekeeping once their hours are summarised again. */
#define REPLAY_NO_SESSIONS 0

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Catch-up rounds go on while a round had more than this to read. */
#define CATCH_UP_RECORDS 20000
#define MAX_CATCH_UP_ROUNDS 5

typedef struct replay_job {
    sink_config cfg;
    sink_store *store;
    sink_replay replay;
    pthread_t thread;
    atomic_int ended;
    int rc;
    eie_err err;
} replay_job;

static void *job_main(void *arg)
{
    replay_job *job = arg;
    job->rc = sink_run(&job->cfg, job->store, &stop_requested, &job->err);
    job->ended = 1;
    return NULL;
}

static uint64_t stored_by(const replay_job *jobs, size_t n)
{
    uint64_t stored = 0;
    for (size_t i = 0; i < n; i++)
        stored += jobs[i].replay.stored;
    return stored;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What the rounds of one run read (counted by the first job: the hot one, or
 * the only one, reads every topic it replays) and stored. */
typedef struct replay_totals {
    uint64_t records, stored;
    uint64_t last_read; /* by the last round */
} replay_totals;

/* Runs the jobs side by side until each has read its ranges, drawing their
 * progress as one, and adds to totals. Returns 0 when all finished, 1 when
 * stopped by a signal, -1 on failure (err set). */
static int run_round(replay_job *jobs, size_t n, const char *label, replay_totals *totals,
                     eie_err *err)
{
    for (size_t i = 0; i < n; i++) {
        jobs[i].replay.total = jobs[i].replay.read = jobs[i].replay.stored = 0;
        jobs[i].replay.finished = false;
        jobs[i].ended = 0;
        if (pthread_create(&jobs[i].thread, NULL, job_main, &jobs[i]) != 0) {
            eie_err_set(err, "cannot start a replay thread");
            stop_requested = 1;
            for (size_t j = 0; j < i; j++)
                pthread_join(jobs[j].thread, NULL);
            return -1;
        }
    }
    progress bar;
    progress_start(&bar, label, 0);
    for (;;) {
        uint64_t total = 0, done = 0;
        size_t ended = 0;
        for (size_t i = 0; i < n; i++) {
            total += jobs[i].replay.total;
            done += jobs[i].replay.read;
            ended += jobs[i].ended != 0;
        }
        bar.total = total;
        progress_update(&bar, done);
        if (ended == n)
            break;
        sleep_ms(100);
    }
    progress_finish(&bar);
    log_info("%s: %llu rows stored in %.1f s", label, (unsigned long long)stored_by(jobs, n),
             (double)(timefmt_now_ms() - bar.start_ms) / 1000.0);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(jobs[i].thread, NULL);
        if (jobs[i].rc < 0 && rc == 0) {
            *err = jobs[i].err;
            rc = -1;
        } else if (rc == 0 && !jobs[i].replay.finished) {
            rc = 1;
        }
    }
    totals->last_read = jobs[0].replay.read;
    totals->records += totals->last_read;
    totals->stored += stored_by(jobs, n);
    return rc;
}

/* The run's summary line, on standard output for scripts. */
static void print_summary(const char *what, const replay_totals *totals, int64_t start_ms)
{
    double secs = (double)(timefmt_now_ms() - start_ms) / 1000.0;
    printf("%s: records=%llu rows=%llu seconds=%.1f records_per_s=%.0f\n", what,
           (unsigned long long)totals->records, (unsigned long long)totals->stored, secs,
           secs > 0 ? (double)totals->records / secs : 0.0);
}

static void interrupted(void)
{
    log_warn("interrupted: the live stores are untouched; run eie-replay again to go on "
             "(a rebuild resumes where it stopped; --restart starts it over)");
}

static int rebuild(PGconn *conn, replay_job *jobs, size_t n_jobs, bool restart, bool keep_old)
{
    eie_err err;
    bool resumed;
    int64_t start_ms = timefmt_now_ms();
    if (rebuild_prepare(conn, restart, &resumed, &err) < 0) {
        log_error("preparing schema %s: %s", REBUILD_SCHEMA, err.msg);
        return 1;
    }
    log_info("%s both stores into schema %s", resumed ? "resuming the rebuild of" : "rebuilding",
             REBUILD_SCHEMA);
    replay_totals totals = {0};
    int rc = run_round(jobs, n_jobs, "rebuild", &totals, &err);
    /* What arrived meanwhile, in shorter rounds, then once more after the
     * vacuum: the switch then leaves the live consumers little to redo. */
    for (int round = 0;
         rc == 0 && totals.last_read > CATCH_UP_RECORDS && round < MAX_CATCH_UP_ROUNDS; round++)
        rc = run_round(jobs, n_jobs, "catch-up", &totals, &err);
    if (rc == 0) {
        log_info("building the history's primary keys");
        int64_t t0 = timefmt_now_ms();
        if (rebuild_restore_keys(conn, &err) < 0)
            rc = -1;
        else
            log_info("primary keys built in %.1f s", (double)(timefmt_now_ms() - t0) / 1000.0);
    }
    if (rc == 0) {
        int64_t t0 = timefmt_now_ms();
        if (rebuild_summarise(jobs[0].cfg.database_url, &err) < 0)
            rc = -1;
        else
            log_info("hourly summaries built in %.1f s", (double)(timefmt_now_ms() - t0) / 1000.0);
    }
    if (rc == 0) {
        log_info("vacuuming and analysing the rebuilt tables");
        int64_t t0 = timefmt_now_ms();
        if (rebuild_vacuum(conn, &err) < 0)
            rc = -1;
        else
            log_info("vacuumed in %.1f s", (double)(timefmt_now_ms() - t0) / 1000.0);
    }
    if (rc == 0)
        rc = run_round(jobs, n_jobs, "catch-up", &totals, &err);
    if (rc == 1) {
        interrupted();
        return 1;
    }
    char retired[64];
    int64_t switch_ms = timefmt_now_ms();
    if (rc < 0 || rebuild_switch(conn, keep_old, retired, &err) < 0) {
        log_error("%s", err.msg);
        return 1;
    }
    switch_ms = timefmt_now_ms() - switch_ms;
    log_info("switched in %lld ms: the rebuilt stores are live; the old tables were %s%s",
             (long long)switch_ms, retired[0] ? "kept in schema " : "dropped", retired);
    print_summary("rebuild", &totals, start_ms);
    return 0;
}

static int replay_days(PGconn *conn, replay_job *job, int64_t first_day, int64_t last_day,
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
        days_prepare(conn, first_day, last_day, &err) < 0 ||
        days_live_ends(conn, job->cfg.group, &topics, &ends, &n_ends, &err) < 0)
        goto done;
    log_info("replaying the history of %lld day%s into schema %s", (long long)(last_day - first_day + 1),
             last_day > first_day ? "s" : "", DAYS_SCHEMA);
    job->replay.ends = ends;
    job->replay.n_ends = n_ends;
    rc = run_round(job, 1, "replay", &totals, &err);
    if (rc == 0) {
        log_info("vacuuming and analysing the replayed days");
        if (days_vacuum(conn, &err) < 0)
            rc = -1;
    }
    /* The last stretch under lock: live writes to these days wait for the swap,
     * so that the replayed days hold everything the live store had. */
    if (rc == 0 && (pg_exec(conn, "BEGIN; SET LOCAL lock_timeout = '30s'", &err) < 0 ||
                    days_lock(conn, first_day, last_day, &err) < 0 ||
                    days_live_ends(conn, job->cfg.group, &topics, &ends, &n_ends, &err) < 0))
        rc = -1;
    if (rc == 0) {
        job->replay.ends = ends;
        job->replay.n_ends = n_ends;
        rc = run_round(job, 1, "catch-up", &totals, &err);
    }
    if (rc == 0 && (days_swap(conn, first_day, last_day, keep_old, retired, &err) < 0 ||
                    pg_exec(conn, "COMMIT", &err) < 0))
        rc = -1;
    if (rc != 0) {
        eie_err ignored;
        pg_exec(conn, "ROLLBACK", &ignored);
    }
done:
    if (rc == 1) {
        interrupted();
    } else if (rc < 0) {
        log_error("%s", err.msg);
    } else {
        log_info("swapped in the replayed days; the old partitions were %s%s",
                 keep_old ? "kept in schema " : "dropped", retired);
        print_summary("replay", &totals, start_ms);
    }
    free(ends);
    return rc == 0 ? 0 : 1;
}

static int parse_day(const char *flag, const char *text, int64_t *day)
{
    char stamp[40];
    int64_t ms;
    snprintf(stamp, sizeof stamp, "%.10sT00:00:00Z", text);
    if (strlen(text) != 10 || timefmt_parse_rfc3339(stamp, &ms) < 0) {
        fprintf(stderr, "eie-replay: invalid --%s '%s': expected a day as YYYY-MM-DD\n", flag,
                text);
        return -1;
    }
    *day = timefmt_day(ms);
    return 0;
}

int main(int argc, char **argv)
{
    log_init("eie-replay");
    const char *hot_group, *cold_group, *from_day = NULL, *to_day = NULL;
    bool keep_old = false, restart = false;
    long ahead_days, hot_batch_size, cold_writers;
    sink_config base = {0};
    config_option options[] = {
        {"bootstrap-servers", 'b', "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STRING, &base.bootstrap,
         KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers"},
        {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, &base.database_url, PG_DEFAULT_URL,
         0, 0, "PostgreSQL connection URL"},
        {"topic-prefix", 0, "EIE_TOPIC_PREFIX", CONFIG_STRING, &base.topic_prefix,
         KAFKA_DEFAULT_TOPIC_PREFIX, 0, 0, "prefix of the topic names"},
        {"hot-group", 0, "EIE_HOT_GROUP", CONFIG_STRING, &hot_group, NULL, 0, 0,
         "the live hot consumers' group, whose offsets the rebuilt store carries on with "
         "(default: the topic prefix and hot)"},
        {"cold-group", 0, "EIE_COLD_GROUP", CONFIG_STRING, &cold_group, NULL, 0, 0,
         "the live cold consumers' group (default: the topic prefix and cold)"},
        {"from-day", 0, "EIE_REPLAY_FROM_DAY", CONFIG_STRING, &from_day, NULL, 0, 0,
         "replay only the history of the days from this one (YYYY-MM-DD, UTC)"},
        {"to-day", 0, "EIE_REPLAY_TO_DAY", CONFIG_STRING, &to_day, NULL, 0, 0,
         "... to this one, included (default: --from-day)"},
        {"keep-old", 0, "EIE_REPLAY_KEEP_OLD", CONFIG_FLAG, &keep_old, NULL, 0, 0,
         "keep the replaced tables in a schema eie_retired_<time> instead of dropping them"},
        {"restart", 0, "EIE_REPLAY_RESTART", CONFIG_FLAG, &restart, NULL, 0, 0,
         "discard an interrupted rebuild and start over (default: resume it)"},
        {"batch-size", 0, "EIE_BATCH_SIZE", CONFIG_INT, &base.batch_size, "20000", 1, 1000000,
         "most messages in one PostgreSQL transaction"},
        {"hot-batch-size", 0, "EIE_REPLAY_HOT_BATCH_SIZE", CONFIG_INT, &hot_batch_size, "200000",
         1, 10000000,
         "most messages in one transaction of the hot store: a batch keeps only each device's "
         "newest reading, so large ones write far fewer rows"},
        {"cold-writers", 0, "EIE_REPLAY_COLD_WRITERS", CONFIG_INT, &cold_writers, "2", 1, 16,
         "cold sinks side by side, each with its share of the partitions (one PostgreSQL "
         "backend's COPY is the bottleneck)"},
        {"partitions-ahead-days", 0, "EIE_PARTITIONS_AHEAD_DAYS", CONFIG_INT, &ahead_days, "3", 0,
         366, "day partitions the rebuilt history prepares beyond today"},
    };
    config_spec spec = {
        "eie-replay", "[--from-day DAY [--to-day DAY]] [options]",
        "Rebuilds the hot and cold stores from the topics into fresh tables while the live\n"
        "ones keep serving, then switches to them in one transaction; or, with --from-day,\n"
        "rebuilds the history of the given days and swaps just those day partitions in.\n"
        "Interrupting it (SIGINT, SIGTERM, even SIGKILL) leaves the live stores untouched.",
        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    config_result cr = kafka_config_parse(&spec, argc, argv, &props, &first);
    if (cr != CONFIG_OK) {
        config_props_free(&props);
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    int64_t first_day = 0, last_day = 0;
    if ((from_day && parse_day("from-day", from_day, &first_day) < 0) ||
        (to_day && parse_day("to-day", to_day, &last_day) < 0)) {
        config_props_free(&props);
        return 2;
    }
    if (to_day && !from_day) {
        fprintf(stderr, "eie-replay: --to-day needs --from-day\n");
        config_props_free(&props);
        return 2;
    }
    if (from_day && !to_day)
        last_day = first_day;
    if (from_day && (last_day < first_day || last_day - first_day > 366)) {
        fprintf(stderr, "eie-replay: invalid --to-day '%s': expected a day from --from-day (%s) "
                        "up to a year later\n",
                to_day, from_day);
        config_props_free(&props);
        return 2;
    }
    char default_hot[256], default_cold[256];
    snprintf(default_hot, sizeof default_hot, "%shot", base.topic_prefix);
    snprintf(default_cold, sizeof default_cold, "%scold", base.topic_prefix);
    base.linger_ms = 200;
    base.housekeep_ms = 3600 * 1000;
    base.metrics_host = "127.0.0.1";
    base.kafka_props = &props;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    eie_err err;
    int rc = 1;
    replay_job jobs[1 + 16] = {0};
    size_t n_jobs = 1;
    PGconn *conn = pg_connect(base.database_url, "eie-replay", &err);
    if (!conn || replay_lock(conn, &err) < 0) {
        log_error("%s", err.msg);
        goto done;
    }
    if (from_day) {
        jobs[0].cfg = base;
        jobs[0].cfg.group = cold_group ? cold_group : default_cold;
        jobs[0].cfg.search_path = DAYS_SCHEMA ", public";
        jobs[0].cfg.replay = &jobs[0].replay;
        jobs[0].store = store_cold_new(0, 0, REPLAY_NO_SESSIONS);
        rc = replay_days(conn, &jobs[0], first_day, last_day, keep_old);
    } else {
        n_jobs = 1 + (size_t)cold_writers;
        for (size_t i = 0; i < n_jobs; i++) {
            jobs[i].cfg = base;
            jobs[i].cfg.group = i == 0 ? (hot_group ? hot_group : default_hot)
                                       : (cold_group ? cold_group : default_cold);
            jobs[i].cfg.search_path = REBUILD_SCHEMA;
            jobs[i].cfg.replay = &jobs[i].replay;
            if (i == 0) {
                jobs[i].cfg.batch_size = hot_batch_size;
                jobs[i].store = store_hot_new();
            } else {
                jobs[i].replay.share = (int32_t)(i - 1);
                jobs[i].replay.shares = (int32_t)cold_writers;
                jobs[i].store = store_cold_new((int)ahead_days, 0, REPLAY_NO_SESSIONS);
                store_cold_rebuilding(jobs[i].store);
            }
        }
        rc = rebuild(conn, jobs, n_jobs, restart, keep_old);
    }
done:
    for (size_t i = 0; i < n_jobs; i++)
        if (jobs[i].store)
            jobs[i].store->destroy(jobs[i].store);
    PQfinish(conn);
    config_props_free(&props);
    return rc;
}
