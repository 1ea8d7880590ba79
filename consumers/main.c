/* eie-consumer: one consumer of either group. --store hot keeps the latest
 * state per device and the assignments; --store cold appends the history. Both
 * run the same sink loop (sink.c) and differ only in their store. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "priority.h"
#include "sink.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int main(int argc, char **argv)
{
    log_init("eie-consumer");
    const char *store_name, *group = NULL, *instance_id;
    bool no_migrate = false;
    long ahead_days, retention_days, session_gap_s, writers, nice;
    sink_config cfg = {0};
    config_option options[] = {
        {"store", 's', "EIE_STORE", CONFIG_STRING, &store_name, NULL, 0, 0,
         "which store to keep: hot (latest state, assignments) or cold (history)"},
        KAFKA_OPTION_BOOTSTRAP(&cfg.bootstrap),
        PG_OPTION_DATABASE_URL(&cfg.database_url),
        KAFKA_OPTION_TOPIC_PREFIX(&cfg.topic_prefix),
        {"group", 'g', "EIE_CONSUMER_GROUP", CONFIG_STRING, &group, NULL, 0, 0,
         "consumer group id (default: the topic prefix and the store, eie.hot or eie.cold)"},
        {"batch-size", 0, "EIE_BATCH_SIZE", CONFIG_INT, &cfg.batch_size, "20000", 1, 1000000,
         "most messages in one PostgreSQL transaction"},
        {"linger-ms", 0, "EIE_LINGER_MS", CONFIG_INT, &cfg.linger_ms, "0", 0, 600000,
         "how long an idle writer waits for more messages after a batch's first one (0: "
         "it writes what is there at once; a busy writer's next batch grows meanwhile)"},
        {"writers", 0, "EIE_CONSUMER_WRITERS", CONFIG_INT, &writers, "2", 1, SINK_MAX_WRITERS,
         "cold: batches written at once, each on its own PostgreSQL connection, and committed "
         "in the order they were read (the hot store ignores it: it writes one at a time)"},
        {"instance-id", 0, "EIE_INSTANCE_ID", CONFIG_STRING, &instance_id, NULL, 0, 0,
         "static group membership (group.instance.id): a restarted instance takes its "
         "partitions back at once, without a rebalance"},
        {"partitions-ahead-days", 0, "EIE_PARTITIONS_AHEAD_DAYS", CONFIG_INT, &ahead_days, "3", 0,
         366, "cold: day partitions prepared beyond today"},
        {"retention-days", 0, "EIE_RETENTION_DAYS", CONFIG_INT, &retention_days, "0", 0, 36500,
         "cold: days of history kept before today; older day partitions are dropped "
         "(0 keeps all)"},
        {"session-gap-s", 0, "EIE_SESSION_GAP_S", CONFIG_INT, &session_gap_s, "600", 60, 86400,
         "cold: a charging session ends after this many seconds without DC energy (changing "
         "it derives every session again)"},
        {"housekeep-interval-s", 0, "EIE_HOUSEKEEP_INTERVAL_S", CONFIG_INT, &cfg.housekeep_ms,
         "60", 1, 86400,
         "cold: how often closed hours are summarised, charging sessions derived, partitions "
         "prepared and retention applied"},
        {"metrics-port", 0, "EIE_METRICS_PORT", CONFIG_INT, &cfg.metrics_port, "0", 0, 65535,
         "serve /metrics (Prometheus), /healthz and /readyz on this port (0: off)"},
        {"metrics-host", 0, "EIE_METRICS_HOST", CONFIG_STRING, &cfg.metrics_host, "127.0.0.1", 0,
         0, "address for /metrics, /healthz and /readyz"},
        {"stall-after-ms", 0, "EIE_STALL_AFTER_MS", CONFIG_INT, &cfg.stall_after_ms, "60000", 1,
         86400000, "/readyz answers 503 once a batch has failed to commit for this long"},
        {"no-migrate", 0, "EIE_NO_MIGRATE", CONFIG_FLAG, &no_migrate, NULL, 0, 0,
         "do not apply SQL migrations at start"},
        PRIORITY_OPTION_NICE(&nice),
    };
    config_spec spec = {
        "eie-consumer", "--store hot|cold [options]",
        "Consumes readings from Kafka into PostgreSQL, exactly once: each batch's rows and\n"
        "its next offsets are committed in one transaction, and the consumer resumes from\n"
        "the offsets stored there. Stops cleanly on SIGINT or SIGTERM.",
        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
    bool hot = store_name && strcmp(store_name, "hot") == 0;
    bool cold = store_name && strcmp(store_name, "cold") == 0;
    if (!store_name)
        fprintf(stderr, "eie-consumer: --store (EIE_STORE) is required: hot or cold\n");
    else if (!hot && !cold)
        fprintf(stderr, "eie-consumer: invalid --store (EIE_STORE) '%s': expected hot or cold\n",
                store_name);
    if (!hot && !cold) {
        config_props_free(&props);
        return 2;
    }
    /* The hot store's upserts of one batch touch rows the next one touches
     * too, so they could not be written at once (and they are far from
     * PostgreSQL's limit with one writer: bench/ingest.sh). */
    int n_stores = hot ? 1 : (int)writers;
    sink_store *stores[SINK_MAX_WRITERS] = {0};
    for (int i = 0; i < n_stores; i++) {
        stores[i] = hot ? store_hot_new()
                        : store_cold_new((int)ahead_days, (int)retention_days, (int)session_gap_s);
        if (!stores[i]) {
            fprintf(stderr, "eie-consumer: out of memory\n");
            for (int j = 0; j < i; j++)
                stores[j]->destroy(stores[j]);
            config_props_free(&props);
            return 1;
        }
    }
    sink_store *store = stores[0];
    char default_group[256];
    snprintf(default_group, sizeof default_group, "%s%s", cfg.topic_prefix, store->name);
    cfg.group = group ? group : default_group;
    cfg.migrate = !no_migrate;
    cfg.housekeep_ms *= 1000;
    if (instance_id)
        config_props_add(&props, "group.instance.id", instance_id);
    cfg.kafka_props = &props;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    eie_err err;
    int rc = priority_lower((int)nice, &err);
    if (rc == 0)
        rc = sink_run(&cfg, stores, n_stores, &stop_requested, &err);
    bool failed = rc < 0 && !stop_requested;
    if (failed)
        log_error("%s", err.msg);
    char fatal[512];
    if (kafka_fatal_stop(fatal, sizeof fatal)) {
        log_error("stopped: %s", fatal);
        failed = true;
    }
    for (int i = 0; i < n_stores; i++)
        stores[i]->destroy(stores[i]);
    config_props_free(&props);
    return failed ? 1 : 0;
}
