/* eie-replay: rebuilds the stores from the topics, which are the source of
 * truth, while the live stores keep serving. Without --from-day it rebuilds
 * both stores and switches to them (rebuild.h); with --from-day (and
 * --to-day) it rebuilds the history of those days only and swaps them in
 * (days.h). This file reads the flags, sets up the sink jobs of the mode and
 * runs it; rounds.h runs the jobs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "days.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "priority.h"
#include "rebuild.h"
#include "replay_db.h"
#include "rounds.h"
#include "sink.h"
#include "timefmt.h"

/* The replay's cold writers do no housekeeping, so no session gap of theirs:
 * a rebuild derives the sessions at its end with the live store's gap
 * (rebuild.c), and replayed days are derived again by the consumers'
 * housekeeping once their hours are summarised again. */
#define REPLAY_NO_SESSIONS 0

static void on_signal(int sig)
{
    (void)sig;
    replay_stop_requested = 1;
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
    long ahead_days, hot_batch_size, cold_writers, nice;
    sink_config base = {0};
    config_option options[] = {
        KAFKA_OPTION_BOOTSTRAP(&base.bootstrap),
        {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, &base.database_url, PG_DEFAULT_URL,
         0, 0, "PostgreSQL connection URL, of the owner role (eie_owner) where the roles are set "
               "up: the rebuild makes schemas and moves tables"},
        KAFKA_OPTION_TOPIC_PREFIX(&base.topic_prefix),
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
        PRIORITY_OPTION_NICE(&nice),
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
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
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
    char fatal[512];
    int rc = 1;
    replay_job jobs[1 + 16] = {0};
    size_t n_jobs = 1;
    PGconn *conn = NULL;
    if (priority_lower((int)nice, &err) < 0) {
        log_error("%s", err.msg);
        goto done;
    }
    conn = pg_connect(base.database_url, "eie-replay", &err);
    if (!conn || replay_lock(conn, &err) < 0) {
        log_error("%s", err.msg);
        goto done;
    }
    if (from_day) {
        jobs[0].cfg = base;
        jobs[0].cfg.group = cold_group ? cold_group : default_cold;
        jobs[0].cfg.search_path = DAYS_SCHEMA ", public";
        jobs[0].cfg.replay = &jobs[0].replay;
        jobs[0].counts_records = true;
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
        rc = replay_rebuild(conn, jobs, n_jobs, restart, keep_old);
    }
done:
    if (kafka_fatal_stop(fatal, sizeof fatal)) {
        log_error("stopped: %s", fatal);
        rc = 1;
    }
    for (size_t i = 0; i < n_jobs; i++)
        if (jobs[i].store)
            jobs[i].store->destroy(jobs[i].store);
    PQfinish(conn);
    config_props_free(&props);
    return rc;
}
