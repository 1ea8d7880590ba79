/* eie-admin: the operator's steps around the programs: `topics` creates the
 * topics and `migrate` applies the SQL migrations (both idempotent, so scripts
 * run them on every start); `rollup` brings the hourly summaries up to date;
 * `verify` compares two stores (verify.c); `keys` keeps eie-api's key file
 * (keys.c); `roles` sets up the PostgreSQL roles of least privilege (roles.c). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "interrupt.h"
#include "kafka.h"
#include "keys.h"
#include "log.h"
#include "pg.h"
#include "roles.h"
#include "verify.h"

static int run_topics(int argc, char **argv)
{
    const char *bootstrap, *prefix;
    long partitions, timeout_ms;
    double retention_ms;
    config_option options[] = {
        KAFKA_OPTION_BOOTSTRAP(&bootstrap),
        KAFKA_OPTION_TOPIC_PREFIX(&prefix),
        {"partitions", 'p', "EIE_TOPIC_PARTITIONS", CONFIG_INT, &partitions, "12", 1, 10000,
         "partitions per topic (new topics only)"},
        {"retention-ms", 0, "EIE_TOPIC_RETENTION_MS", CONFIG_DOUBLE, &retention_ms, "-1", -1,
         9.2e18, "topic retention; -1 keeps history forever (replays need it)"},
        {"timeout-ms", 0, "EIE_ADMIN_TIMEOUT_MS", CONFIG_INT, &timeout_ms, "30000", 100, 600000,
         "how long to wait for the broker"},
    };
    config_spec spec = {"eie-admin topics", "[options]",
                        "Creates the meter, vehicle and assignment topics if they do not exist.",
                        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
    eie_err err;
    kafka_topics topics;
    int rc = 1;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = NULL;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-admin topics: --topic-prefix: %s\n", err.msg);
        rc = 2;
        goto done;
    }
    if (!(conf = kafka_conf_new(NULL, 0, bootstrap, &props, &err)))
        goto fail;
    char errstr[512];
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eie_err_set(&err, "creating the Kafka client: %s", errstr);
        goto fail;
    }
    if (kafka_create_topics(rk, &topics, (int)partitions, (long long)retention_ms, (int)timeout_ms,
                            &err) < 0)
        goto fail;
    rc = 0;
    goto done;
fail:
    log_error("%s", err.msg);
done:
    if (rk)
        rd_kafka_destroy(rk);
    config_props_free(&props);
    return rc;
}

static int run_migrate(int argc, char **argv)
{
    const char *url;
    config_option options[] = {
        PG_OPTION_DATABASE_URL(&url),
    };
    config_spec spec = {"eie-admin migrate", "[options]",
                        "Applies the SQL migrations that the database does not have yet, as the\n"
                        "role of the URL, which owns what they make: eie_owner once `eie-admin\n"
                        "roles` has set the roles up.",
                        options, 1, false, false};
    int first;
    config_result cr = config_parse(&spec, argc, argv, NULL, &first);
    if (cr != CONFIG_OK) {
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    admin_interrupt_init();
    eie_err err;
    PGconn *conn = pg_connect(url, "eie-admin", &err);
    int applied = conn && admin_interrupt_watch(conn) ? pg_migrate(conn, &err) : -1;
    admin_interrupt_watch(NULL);
    PQfinish(conn);
    if (admin_interrupted()) {
        log_error("interrupted: the migration under way was cancelled");
        return 1;
    }
    if (applied < 0) {
        log_error("%s", err.msg);
        return 1;
    }
    log_info("database is up to date (%d migration%s applied now)", applied, applied == 1 ? "" : "s");
    return 0;
}

/* What the cold consumers' housekeeping does every minute, at once and to the
 * end: for a database loaded while no cold consumer ran, or to see it done. */
static int run_rollup(int argc, char **argv)
{
    const char *url, *settle;
    config_option options[] = {
        PG_OPTION_DATABASE_URL(&url),
        {"settle", 0, "EIE_ROLLUP_SETTLE", CONFIG_STRING, &settle, "15 minutes", 0, 0,
         "how long an hour has been closed before it is summarised (a PostgreSQL interval)"},
    };
    config_spec spec = {"eie-admin rollup", "[options]",
                        "Summarises every closed hour of the history not summarised yet, and the\n"
                        "hours marked dirty by readings stored late; then derives the charging\n"
                        "sessions they make (with the session gap the store has).",
                        options, sizeof options / sizeof options[0], false, false};
    int first;
    config_result cr = config_parse(&spec, argc, argv, NULL, &first);
    if (cr != CONFIG_OK)
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    admin_interrupt_init();
    eie_err err;
    PGconn *conn = pg_connect(url, "eie-admin", &err);
    PGresult *res = NULL;
    int rc = 1;
    if (conn && admin_interrupt_watch(conn)) {
        const char *params[] = {settle};
        res = PQexecParams(conn, "SELECT eie_rollup($1::interval, 2147483647)", 1, NULL, params,
                           NULL, NULL, 0);
        if (pg_check(res, PGRES_TUPLES_OK, "summarising hours", &err) == 0) {
            log_info("hourly summaries up to date (%s hour(s) of the streams summarised now)",
                     PQgetvalue(res, 0, 0));
            PQclear(res);
            res = admin_interrupted()
                      ? NULL
                      : PQexec(conn, "SELECT eie_refresh_sessions((SELECT gap FROM "
                                     "charging_session_state), 2147483647)");
            if (res && pg_check(res, PGRES_TUPLES_OK, "deriving charging sessions", &err) == 0) {
                log_info("charging sessions up to date (those of %s vehicle(s) derived now)",
                         PQgetvalue(res, 0, 0));
                rc = 0;
            }
        }
    }
    admin_interrupt_watch(NULL);
    if (admin_interrupted()) {
        log_error("interrupted: the rollup under way was cancelled (what it had summarised "
                  "is kept, a cold consumer or the next rollup goes on from there)");
        rc = 1;
    } else if (rc) {
        log_error("%s", err.msg);
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: eie-admin COMMAND [options]\n\n"
                 "Prepares Kafka and PostgreSQL for the Energy Ingestion Engine.\n\n"
                 "Commands:\n"
                 "  topics    create the topics (idempotent)\n"
                 "  migrate   apply the SQL migrations (idempotent)\n"
                 "  rollup    bring the hourly summaries and charging sessions up to date\n"
                 "  verify    compare the stores of two databases\n"
                 "  keys      create, list and revoke eie-api's API keys\n"
                 "  roles     set up the PostgreSQL roles: owner, writer, reader (as a superuser)\n\n"
                 "Run 'eie-admin COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    log_init("eie-admin");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "topics") == 0)
        return run_topics(argc - 1, argv + 1);
    if (strcmp(argv[1], "migrate") == 0)
        return run_migrate(argc - 1, argv + 1);
    if (strcmp(argv[1], "rollup") == 0)
        return run_rollup(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return verify_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "keys") == 0)
        return keys_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "roles") == 0)
        return roles_main(argc - 1, argv + 1);
    fprintf(stderr, "eie-admin: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
