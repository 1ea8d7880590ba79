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
#include "log.h"
#include "pg.h"
#include "respond.h"

static int not_found(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    return respond_error(resp, 404, "not_found", "no such route; see /openapi.json");
}

int main(int argc, char **argv)
{
    log_init("eie-api");
    const char *database_url, *host;
    long port, pool_size, statement_timeout_ms;
    config_option options[] = {
        {"port", 'p', "PORT", CONFIG_INT, &port, "3000", 1, 65535, "HTTP port"},
        {"host", 0, "HOST", CONFIG_STRING, &host, "127.0.0.1", 0, 0,
         "address to listen on (0.0.0.0 for all)"},
        {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, &database_url, PG_DEFAULT_URL, 0, 0,
         "PostgreSQL connection URL"},
        {"db-pool-size", 0, "EIE_DB_POOL_SIZE", CONFIG_INT, &pool_size, "4", 1, 256,
         "PostgreSQL connections (about two per core serves best)"},
        {"statement-timeout-ms", 0, "EIE_STATEMENT_TIMEOUT_MS", CONFIG_INT, &statement_timeout_ms,
         "5000", 1, 3600000, "longest a query may run"},
    };
    config_spec spec = {"eie-api", "[options]",
                        "Serves the analytics REST API over the hot and cold stores.", options,
                        sizeof options / sizeof options[0], false};
    int first;
    config_result cr = config_parse(&spec, argc, argv, NULL, &first);
    if (cr != CONFIG_OK || first != argc) {
        if (cr == CONFIG_OK)
            fprintf(stderr, "eie-api: unexpected argument '%s'\n", argv[first]);
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    struct sockaddr_in bind_address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &bind_address.sin_addr) != 1) {
        fprintf(stderr, "eie-api: invalid --host (HOST) '%s': expected an IPv4 address\n", host);
        return 2;
    }

    /* Signals go to the main thread's sigwait only: the server threads inherit
     * this mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    eie_err err;
    api_context ctx = {0};
    if (!(ctx.db = db_pool_new(database_url, (int)pool_size, statement_timeout_ms, &err))) {
        log_error("%s", err.msg);
        return 1;
    }
    struct _u_instance instance;
    if (ulfius_init_instance(&instance, (unsigned)port, &bind_address, NULL) != U_OK) {
        log_error("cannot set up the HTTP server on %s:%ld", host, port);
        db_pool_free(ctx.db);
        return 1;
    }
    instance.max_post_body_size = 1 << 20;
    int rc = 1;
    if (routes_health_register(&instance, &ctx) < 0 || routes_analytics_register(&instance, &ctx) < 0 ||
        ulfius_set_default_endpoint(&instance, not_found, NULL) != U_OK) {
        log_error("cannot register the routes");
        goto done;
    }
    if (ulfius_start_framework(&instance) != U_OK) {
        log_error("cannot listen on %s:%ld (is the port in use? set PORT)", host, port);
        goto done;
    }
    log_info("listening on http://%s:%ld", host, port);
    int sig;
    sigwait(&stop_signals, &sig);
    log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ulfius_stop_framework(&instance);
    rc = 0;
done:
    ulfius_clean_instance(&instance);
    db_pool_free(ctx.db);
    return rc;
}
