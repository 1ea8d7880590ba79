/* eie-api: the REST service. Sets up the database pool and the HTTP server,
 * registers each group of routes (one file per group), and serves until SIGINT
 * or SIGTERM, when it stops accepting, finishes what is in flight and exits. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "edge_batch.h"
#include "ingest.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "respond.h"
#include "rollup_cache.h"
#include "state_cache.h"

/* Statements of batched history sums running at once. One: while it runs,
 * the next batch gathers, so batches grow with the load. bench/api.sh, 32
 * connections: 5,000 reports/s with p99 11.5 ms on one, the same rate with
 * p99 13-14 ms on two (smaller batches, each paying the statement's fixed
 * cost), p99 18-20 ms on three. */
#define EDGE_BATCH_WORKERS 1

static int register_routes(struct _u_instance *instance, api_context *ctx)
{
    if (routes_register_all(ctx) < 0)
        return -1;
    /* Every request goes to the router (ulfius' default endpoint). ulfius
     * will not start without an endpoint, so it gets one no request reaches:
     * no client sends this method. */
    return ulfius_add_endpoint_by_val(instance, "EIE-NONE", NULL, "/", 0, api_route_request, ctx) ==
                       U_OK &&
                   ulfius_set_default_endpoint(instance, api_route_request, ctx) == U_OK
               ? 0
               : -1;
}

int main(int argc, char **argv)
{
    log_init("eie-api");
    const char *database_url, *host, *bootstrap, *prefix, *swagger_dir;
    long port, pool_size, statement_timeout_ms, ingest_timeout_ms, state_cache_ms, rollup_hours,
        http_threads;
    config_option options[] = {
        {"port", 'p', "PORT", CONFIG_INT, &port, "3000", 1, 65535, "HTTP port"},
        {"host", 0, "HOST", CONFIG_STRING, &host, "127.0.0.1", 0, 0,
         "address to listen on (0.0.0.0 for all)"},
        {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, &database_url, PG_DEFAULT_URL, 0, 0,
         "PostgreSQL connection URL"},
        {"bootstrap-servers", 'b', "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STRING, &bootstrap,
         KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers, for the ingest routes"},
        {"topic-prefix", 0, "EIE_TOPIC_PREFIX", CONFIG_STRING, &prefix, KAFKA_DEFAULT_TOPIC_PREFIX,
         0, 0, "prefix of the topic names"},
        {"db-pool-size", 0, "EIE_DB_POOL_SIZE", CONFIG_INT, &pool_size, "4", 1, 256,
         "PostgreSQL connections (about two per core serves best)"},
        {"statement-timeout-ms", 0, "EIE_STATEMENT_TIMEOUT_MS", CONFIG_INT, &statement_timeout_ms,
         "5000", 1, 3600000, "longest a query may run (then 504)"},
        {"ingest-timeout-ms", 0, "EIE_INGEST_TIMEOUT_MS", CONFIG_INT, &ingest_timeout_ms, "10000",
         100, 600000, "longest an ingest request waits for Kafka (then 503)"},
        {"http-threads", 0, "EIE_HTTP_THREADS", CONFIG_INT, &http_threads, "0", 0, 1024,
         "HTTP worker threads over epoll (0: a thread per connection)"},
        {"state-cache-ms", 0, "EIE_STATE_CACHE_MS", CONFIG_INT, &state_cache_ms, "500", 0, 60000,
         "refresh period of the in-memory latest states and hourly summaries (0: always ask "
         "the database)"},
        {"rollup-cache-hours", 0, "EIE_ROLLUP_CACHE_HOURS", CONFIG_INT, &rollup_hours, "48", 0, 744,
         "hours of summaries kept in memory for the performance report (0: none)"},
        {"swagger-ui-dir", 0, "EIE_SWAGGER_UI_DIR", CONFIG_STRING, &swagger_dir, NULL, 0, 0,
         "folder of the swagger-ui-dist assets served under /docs"},
    };
    config_spec spec = {"eie-api", "[options]",
                        "Serves the REST API: analytics and fleet state from PostgreSQL, HTTP ingest\n"
                        "to Kafka, /openapi.json and Swagger UI at /docs, /healthz, /readyz, /metrics.\n"
                        "Stops cleanly on SIGINT or SIGTERM.",
                        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    config_result cr = kafka_config_parse(&spec, argc, argv, &props, &first);
    if (cr != CONFIG_OK) {
        config_props_free(&props);
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    struct sockaddr_in bind_address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &bind_address.sin_addr) != 1) {
        fprintf(stderr, "eie-api: invalid --host (HOST) '%s': expected an IPv4 address\n", host);
        config_props_free(&props);
        return 2;
    }

    /* Signals go to the main thread's sigwait only: every thread started from
     * here on inherits this mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    eie_err err;
    int rc = 1, started = 0;
    struct _u_instance instance;
    api_context ctx = {.metrics = metrics_new(), .swagger_ui_dir = swagger_dir};
    if (!(ctx.db = db_pool_new(database_url, (int)pool_size, statement_timeout_ms, &err)) ||
        !(ctx.edges = edge_batch_start(ctx.db, EDGE_BATCH_WORKERS, &err)) ||
        !(ctx.ingest = ingest_open(bootstrap, prefix, &props, (int)ingest_timeout_ms, &err)) ||
        (state_cache_ms > 0 && !(ctx.state = state_cache_start(database_url, state_cache_ms, &err))) ||
        (state_cache_ms > 0 && rollup_hours > 0 &&
         !(ctx.rollups = rollup_cache_start(database_url, state_cache_ms, (int)rollup_hours, &err)))) {
        log_error("%s", err.msg);
        goto done_early;
    }
    if (ulfius_init_instance(&instance, (unsigned)port, &bind_address, NULL) != U_OK) {
        log_error("cannot set up the HTTP server on %s:%ld", host, port);
        goto done_early;
    }
    /* One byte over the ingest limit, so that a larger body is seen as such. */
    instance.max_post_body_size = (1 << 20) + 1;
    instance.timeout = 30; /* seconds a connection may stay idle */
    /* Bodies are JSON, parsed by the routes; ulfius' form parsing would only
     * drop the connection on a malformed multipart header. */
    instance.allowed_post_processor = U_POST_PROCESS_NONE;
    if (register_routes(&instance, &ctx) < 0) {
        log_error("cannot register the routes");
        goto done;
    }
    /* A fixed pool of threads over epoll serves many connections each, where
     * a thread per connection spends a 2-core machine on scheduling. The pool
     * is larger than the database pool, since handlers wait on queries. */
    struct MHD_OptionItem mhd_options[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, http_threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, instance.timeout, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &bind_address},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    int started_ok = http_threads > 0
                         ? ulfius_start_framework_with_mhd_options(
                               &instance, MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
                               mhd_options)
                         : ulfius_start_framework(&instance);
    if (started_ok != U_OK) {
        log_error("cannot listen on %s:%ld (is the port in use? set PORT)", host, port);
        goto done;
    }
    started = 1;
    log_info("listening on http://%s:%ld (docs at /docs)", host, port);
    int sig;
    sigwait(&stop_signals, &sig);
    log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
done:
    if (started)
        ulfius_stop_framework(&instance);
    ulfius_clean_instance(&instance);
done_early:
    edge_batch_stop(ctx.edges);
    rollup_cache_stop(ctx.rollups);
    state_cache_stop(ctx.state);
    ingest_close(ctx.ingest);
    db_pool_free(ctx.db);
    metrics_free(ctx.metrics);
    config_props_free(&props);
    return rc;
}
