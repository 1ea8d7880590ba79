/* eie-bench-bare-api: the API's HTTP stack with one route that does nothing,
 * the baseline bench/api.sh measures beside the real routes in the same run:
 * the same server (http_server.c over libmicrohttpd), router, key check,
 * metrics and access log as eie-api, and a handler that writes a constant
 * document. A route's share of this one's throughput is what its own work
 * costs, whatever the machine. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "http_server.h"
#include "jsonw.h"
#include "log.h"
#include "respond.h"

static int get_bare(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    (void)req;
    (void)ctx;
    jsonw w;
    jsonw_init(&w);
    jsonw_begin(&w, NULL);
    jsonw_string(&w, "status", "ok");
    jsonw_end(&w);
    return respond_jsonw(resp, 200, &w);
}

static const api_route routes[] = {
    {"GET", "/bare/:id", get_bare, API_ACCESS_READ},
};

int main(int argc, char **argv)
{
    log_init("eie-bench-bare-api");
    long port, http_threads;
    const char *access_log;
    config_option options[] = {
        {"port", 'p', "PORT", CONFIG_INT, &port, "3001", 1, 65535, "HTTP port"},
        {"http-threads", 0, "EIE_HTTP_THREADS", CONFIG_INT, &http_threads, "0", 0, 1024,
         "HTTP worker threads over epoll (0: a thread per connection), as eie-api"},
        {"access-log", 0, "EIE_ACCESS_LOG", CONFIG_STRING, &access_log, "on", 0, 0,
         "one line per request at info level: on or off, as eie-api"},
    };
    config_spec spec = {"eie-bench-bare-api", "[options]",
                        "Serves GET /bare/{id} on 127.0.0.1 through eie-api's HTTP stack with a "
                        "handler that does nothing: bench/api.sh's baseline. Stops on SIGINT or "
                        "SIGTERM.",
                        options, sizeof options / sizeof options[0], false, false};
    int first;
    config_result parsed = config_parse(&spec, argc, argv, NULL, &first);
    if (parsed != CONFIG_OK)
        return parsed == CONFIG_HELP_SHOWN ? 0 : 2;
    if (strcmp(access_log, "on") != 0 && strcmp(access_log, "off") != 0) {
        fprintf(stderr, "eie-bench-bare-api: invalid --access-log (EIE_ACCESS_LOG) '%s': "
                        "expected on or off\n", access_log);
        return 2;
    }

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    eie_err err;
    int rc = 1;
    api_context ctx = {.metrics = metrics_new()};
    auth_settings open_reads = {.reads_need_key = false};
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    /* eie-api's defaults (api/main.c). */
    http_settings http = {.max_connections = 4096,
                          .max_per_address = 128,
                          .head_timeout_ms = 10000,
                          .connection_memory = 32768,
                          .idle_timeout_s = 30,
                          .threads = (unsigned)http_threads,
                          .max_body = API_MAX_BODY_BYTES,
                          .access_log = strcmp(access_log, "on") == 0};
    http_server *server = NULL;
    if (api_register(&ctx, routes, sizeof routes / sizeof routes[0]) < 0) {
        log_error("cannot register the route");
    } else if (!(ctx.auth = auth_open(&open_reads, ctx.metrics, &err)) ||
               !(server = http_server_start(&addr, &http, &ctx, &err))) {
        log_error("%s", err.msg);
    } else {
        log_info("listening on http://127.0.0.1:%ld/bare/{id}", port);
        int sig;
        sigwait(&signals, &sig);
        log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        rc = 0;
    }
    http_server_stop(server);
    auth_free(ctx.auth);
    metrics_free(ctx.metrics);
    return rc;
}
