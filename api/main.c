/* eie-api: the REST service. Sets up the database pool and the HTTP server,
 * registers each group of routes (one file per group), and serves until SIGINT
 * or SIGTERM, when it stops accepting, finishes what is in flight and exits.
 * SIGHUP reads the API key file again (auth.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "edge_batch.h"
#include "edge_memo.h"
#include "http_server.h"
#include "ingest.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "respond.h"
#include "rollup_cache.h"
#include "state_cache.h"
#include "state_tail.h"
#include "tls.h"

/* Statements of batched history sums running at once. One: while it runs,
 * the next batch gathers, so batches grow with the load; with more, batches
 * are smaller, each pays the statement's fixed cost, and the tail latency
 * grows for the same throughput. */
#define EDGE_BATCH_WORKERS 1

/* Descriptors kept for everything but HTTP clients: the database pool, the
 * caches' connections, Kafka's sockets, files, with room to spare. */
#define FD_RESERVE 128
/* The total connection limit when none is given, if descriptors allow. */
#define DEFAULT_MAX_CONNECTIONS 4096
/* Seconds a connection may send and read nothing (libmicrohttpd's timeout,
 * restarted by every byte; the head deadline bounds a slow head). */
#define IDLE_TIMEOUT_S 30

/* Raises the soft open-file limit to the hard one (a thread per connection
 * and one descriptor each: 1,024, the usual soft limit, ran out under a
 * flood), and returns the descriptors left for HTTP connections. */
static long raise_fd_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return 1024 - FD_RESERVE;
    if (lim.rlim_cur < lim.rlim_max) {
        rlim_t before = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? 1048576 : lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            log_warn("cannot raise the open-file limit from %llu to %llu: %s",
                     (unsigned long long)before, (unsigned long long)lim.rlim_cur, strerror(errno));
            lim.rlim_cur = before;
        }
    }
    return (long)lim.rlim_cur > 2 * FD_RESERVE ? (long)lim.rlim_cur - FD_RESERVE : FD_RESERVE;
}

/* Whether value is on or off; if not, says so of the setting. */
static bool is_on_off(const char *setting, const char *value)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)
        return true;
    fprintf(stderr, "eie-api: invalid %s '%s': expected on or off\n", setting, value);
    return false;
}

int main(int argc, char **argv)
{
    log_init("eie-api");
    const char *database_url, *host, *bootstrap, *prefix, *swagger_dir, *access_log, *keys_file,
        *keys_text, *read_access, *tls_cert, *tls_key, *state_from_broker;
    double write_rate, write_burst;
    long port, pool_size, statement_timeout_ms, ingest_timeout_ms, state_cache_ms, rollup_hours,
        edge_memo_slots, http_threads, max_connections, export_timeout_ms, max_exports, max_per_address, header_timeout_ms, connection_memory;
    config_option options[] = {
        {"port", 'p', "PORT", CONFIG_INT, &port, "3000", 1, 65535, "HTTP port"},
        {"host", 0, "HOST", CONFIG_STRING, &host, "127.0.0.1", 0, 0,
         "address to listen on (0.0.0.0 for all)"},
        PG_OPTION_DATABASE_URL(&database_url),
        KAFKA_OPTION_BOOTSTRAP(&bootstrap),
        KAFKA_OPTION_TOPIC_PREFIX(&prefix),
        {"db-pool-size", 0, "EIE_DB_POOL_SIZE", CONFIG_INT, &pool_size, "4", 1, 256,
         "PostgreSQL connections (about two per core serves best)"},
        {"statement-timeout-ms", 0, "EIE_STATEMENT_TIMEOUT_MS", CONFIG_INT, &statement_timeout_ms,
         "5000", 1, 3600000, "longest a query may run (then 504)"},
        {"export-timeout-ms", 0, "EIE_EXPORT_TIMEOUT_MS", CONFIG_INT, &export_timeout_ms,
         "3600000", 0, 86400000,
         "longest an export's query may run, the client's reading included (0: no limit); "
         "then the export ends incomplete"},
        {"max-exports", 0, "EIE_MAX_EXPORTS", CONFIG_INT, &max_exports, "1", 0, 255,
         "exports streaming at once, each holding a PostgreSQL connection (then 503); "
         "less than --db-pool-size (0: none)"},
        {"ingest-timeout-ms", 0, "EIE_INGEST_TIMEOUT_MS", CONFIG_INT, &ingest_timeout_ms, "10000",
         100, 600000, "longest an ingest request waits for Kafka (then 503)"},
        {"http-threads", 0, "EIE_HTTP_THREADS", CONFIG_INT, &http_threads, "0", 0, 1024,
         "HTTP worker threads over epoll (0: a thread per connection)"},
        {"max-connections", 0, "EIE_MAX_CONNECTIONS", CONFIG_INT, &max_connections, "0", 0,
         1000000,
         "HTTP connections in all (0: 4096, or fewer if the open-file limit is lower); "
         "more wait in the listen backlog"},
        {"max-connections-per-address", 0, "EIE_MAX_CONNECTIONS_PER_ADDRESS", CONFIG_INT,
         &max_per_address, "128", 0, 1000000,
         "HTTP connections from one client address (0: no limit, e.g. behind a proxy); more "
         "are closed at once"},
        {"header-timeout-ms", 0, "EIE_HEADER_TIMEOUT_MS", CONFIG_INT, &header_timeout_ms, "10000",
         100, 600000,
         "longest a client may take to send a request head, from connecting or from the "
         "previous response; then the connection is closed"},
        {"connection-memory-limit", 0, "EIE_CONNECTION_MEMORY_LIMIT", CONFIG_INT,
         &connection_memory, "32768", 4096, 16777216,
         "bytes per connection for its request head and buffers (a larger head gets 431 or "
         "414)"},
        {"access-log", 0, "EIE_ACCESS_LOG", CONFIG_STRING, &access_log, "on", 0, 0,
         "one info line per request (address, method, route, status, duration): on or off"},
        {"state-cache-ms", 0, "EIE_STATE_CACHE_MS", CONFIG_INT, &state_cache_ms, "500", 0, 60000,
         "refresh period of the in-memory latest states and hourly summaries (0: always ask "
         "the database)"},
        {"state-from-broker", 0, "EIE_STATE_FROM_BROKER", CONFIG_STRING, &state_from_broker, "on",
         0, 0,
         "on: GET /v1/vehicles/{id} shows a reading as soon as the broker has it (the API reads "
         "the vehicle topic's newest records itself); off: once the hot store has it"},
        {"rollup-cache-hours", 0, "EIE_ROLLUP_CACHE_HOURS", CONFIG_INT, &rollup_hours, "48", 0, 744,
         "hours of summaries kept in memory for the performance report (0: none)"},
        {"edge-memo-slots", 0, "EIE_EDGE_MEMO_SLOTS", CONFIG_INT, &edge_memo_slots, "262144", 0,
         16777216,
         "settled minutes at reports' window edges remembered, 120 bytes each once used "
         "(below 8: none; each report reads its edges from the history)"},
        {"swagger-ui-dir", 0, "EIE_SWAGGER_UI_DIR", CONFIG_STRING, &swagger_dir, NULL, 0, 0,
         "folder of the swagger-ui-dist assets served under /docs"},
        {"keys-file", 0, "EIE_API_KEYS_FILE", CONFIG_STRING, &keys_file, NULL, 0, 0,
         "the API key file (NAME ROLE HASH lines, made by eie-admin keys create), read again "
         "on SIGHUP; without keys, write routes answer 401"},
        {"keys", 0, "EIE_API_KEYS", CONFIG_STRING, &keys_text, NULL, 0, 0,
         "the key file's lines themselves, separated by ';' (instead of --keys-file; not "
         "reloadable)"},
        {"read-access", 0, "EIE_READ_ACCESS", CONFIG_STRING, &read_access, "auto", 0, 0,
         "read routes: open (no key), key (a key of any role), or auto: open when listening on "
         "loopback (127.0.0.0/8), key otherwise"},
        {"write-rate", 0, "EIE_WRITE_RATE", CONFIG_DOUBLE, &write_rate, "50", 0, 1e6,
         "write requests per second per key (0: no limit), unless the key's line says rate=N"},
        {"tls-cert", 0, "EIE_TLS_CERT", CONFIG_STRING, &tls_cert, NULL, 0, 0,
         "PEM file of the server's certificate (its chain after it): serve HTTPS; with "
         "--tls-key"},
        {"tls-key", 0, "EIE_TLS_KEY", CONFIG_STRING, &tls_key, NULL, 0, 0,
         "PEM file of the certificate's private key (unencrypted; keep it mode 0600)"},
        {"write-burst", 0, "EIE_WRITE_BURST", CONFIG_DOUBLE, &write_burst, "100", 1, 1e9,
         "write requests a key may send at once before the rate applies (burst=N in its line)"},
    };
    config_spec spec = {"eie-api", "[options]",
                        "Serves the REST API: analytics and fleet state from PostgreSQL, HTTP ingest\n"
                        "to Kafka, /openapi.json and Swagger UI at /docs, /healthz, /readyz, /metrics.\n"
                        "Stops cleanly on SIGINT or SIGTERM.",
                        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
    if (!is_on_off("--access-log (EIE_ACCESS_LOG)", access_log) ||
        !is_on_off("--state-from-broker (EIE_STATE_FROM_BROKER)", state_from_broker)) {
        config_props_free(&props);
        return 2;
    }
    if (max_exports > 0 && max_exports >= pool_size) {
        fprintf(stderr,
                "eie-api: --max-exports (EIE_MAX_EXPORTS) %ld must be less than --db-pool-size "
                "(EIE_DB_POOL_SIZE) %ld: exports would hold every connection\n",
                max_exports, pool_size);
        config_props_free(&props);
        return 2;
    }
    if (keys_file && keys_text) {
        fprintf(stderr, "eie-api: --keys-file (EIE_API_KEYS_FILE) and --keys (EIE_API_KEYS) "
                        "exclude each other: give one\n");
        config_props_free(&props);
        return 2;
    }
    if (!tls_cert != !tls_key) {
        fprintf(stderr, "eie-api: %s without %s: HTTPS needs both\n",
                tls_cert ? "--tls-cert (EIE_TLS_CERT)" : "--tls-key (EIE_TLS_KEY)",
                tls_cert ? "--tls-key (EIE_TLS_KEY)" : "--tls-cert (EIE_TLS_CERT)");
        config_props_free(&props);
        return 2;
    }
    long fd_room = raise_fd_limit();
    if (max_connections > fd_room) {
        fprintf(stderr,
                "eie-api: --max-connections (EIE_MAX_CONNECTIONS) %ld is more than the %ld "
                "descriptors the open-file limit leaves for clients (raise the hard limit, "
                "ulimit -Hn)\n",
                max_connections, fd_room);
        config_props_free(&props);
        return 2;
    }
    if (max_connections == 0)
        max_connections = fd_room < DEFAULT_MAX_CONNECTIONS ? fd_room : DEFAULT_MAX_CONNECTIONS;
    struct sockaddr_in bind_address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &bind_address.sin_addr) != 1) {
        fprintf(stderr, "eie-api: invalid --host (HOST) '%s': expected an IPv4 address\n", host);
        config_props_free(&props);
        return 2;
    }

    int reads_need_key = auth_reads_need_key(read_access, &bind_address.sin_addr);
    if (reads_need_key < 0) {
        fprintf(stderr,
                "eie-api: invalid --read-access (EIE_READ_ACCESS) '%s': expected auto, open or key\n",
                read_access);
        config_props_free(&props);
        return 2;
    }
    auth_settings auth_set = {
        .keys_file = keys_file,
        .keys_text = keys_text,
        .reads_need_key = reads_need_key,
        .write_rate = write_rate,
        .write_burst = write_burst,
    };

    /* Signals go to the main thread's sigwait only: every thread started from
     * here on inherits this mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Read once, at start: a certificate renewed on disk takes a restart. */
    eie_err err;
    tls_files tls = {0};
    if (tls_cert && tls_files_load(tls_cert, tls_key, &tls, &err) < 0) {
        fprintf(stderr, "eie-api: invalid %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    int rc = 1;
    http_server *server = NULL;
    state_tail *tail = NULL;
    api_context ctx = {.metrics = metrics_new(),
                       .swagger_ui_dir = swagger_dir,
                       .export_timeout_ms = export_timeout_ms,
                       .max_exports = (int)max_exports};
    if (!(ctx.auth = auth_open(&auth_set, ctx.metrics, &err))) {
        fprintf(stderr, "eie-api: invalid %s: %s\n",
                keys_file ? "--keys-file (EIE_API_KEYS_FILE)" : "--keys (EIE_API_KEYS)", err.msg);
        metrics_free(ctx.metrics);
        tls_files_free(&tls);
        config_props_free(&props);
        return 2;
    }
    if (!(ctx.db = db_pool_new(database_url, (int)pool_size, statement_timeout_ms, &err)) ||
        !(ctx.edges = edge_batch_start(ctx.db, EDGE_BATCH_WORKERS, &err)) ||
        !(ctx.ingest = ingest_open(bootstrap, prefix, &props, (int)ingest_timeout_ms, &err)) ||
        (state_cache_ms > 0 &&
         !(ctx.state = state_cache_start(database_url, state_cache_ms, ctx.metrics, &err))) ||
        (ctx.state && strcmp(state_from_broker, "on") == 0 &&
         !(tail = state_tail_start(ctx.state, bootstrap, prefix, &props, ctx.metrics, &err))) ||
        (state_cache_ms > 0 && rollup_hours > 0 &&
         !(ctx.rollups = rollup_cache_start(database_url, state_cache_ms, (int)rollup_hours, &err)))) {
        log_error("%s", err.msg);
        goto done_early;
    }
    if (ctx.rollups && edge_memo_slots > 0 && !(ctx.memo = edge_memo_new((size_t)edge_memo_slots))) {
        log_error("out of memory for --edge-memo-slots %ld", edge_memo_slots);
        goto done_early;
    }
    if (routes_register_all(&ctx) < 0) {
        log_error("cannot register the routes");
        goto done_early;
    }
    http_settings http = {
        .max_connections = (unsigned)max_connections,
        .max_per_address = (unsigned)max_per_address,
        .head_timeout_ms = header_timeout_ms,
        .connection_memory = (size_t)connection_memory,
        .idle_timeout_s = IDLE_TIMEOUT_S,
        .threads = (unsigned)http_threads,
        .max_body = API_MAX_BODY_BYTES,
        .access_log = strcmp(access_log, "on") == 0,
        .tls_cert_pem = tls.cert_pem,
        .tls_key_pem = tls.key_pem,
    };
    if (!(server = http_server_start(&bind_address, &http, &ctx, &err))) {
        log_error("%s", err.msg);
        goto done_early;
    }
    log_info("listening on %s://%s:%ld (docs at /docs); at most %ld connections, %ld per "
             "address, request heads within %ld ms",
             tls_cert ? "https" : "http", host, port, max_connections, max_per_address,
             header_timeout_ms);
    log_info("API keys: %zu from %s; read routes %s; write routes need a write key, %.15g "
             "requests/s per key (bursts of %.15g)",
             auth_key_count(ctx.auth), keys_file ? keys_file : keys_text ? "EIE_API_KEYS" : "nowhere",
             auth_set.reads_need_key ? "need a key" : "open", write_rate, write_burst);
    if (auth_key_count(ctx.auth) == 0)
        log_warn("no API keys: every write route answers 401 (create one with eie-admin keys "
                 "create --keys-file FILE, then give eie-api --keys-file FILE)");
    int sig;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
        if (!keys_file) {
            log_warn("SIGHUP: no --keys-file to read again");
        } else if (auth_reload(ctx.auth, &err) < 0) {
            log_error("SIGHUP: the key file was not loaded, the %zu keys in use stay: %s",
                      auth_key_count(ctx.auth), err.msg);
        } else {
            log_info("SIGHUP: %zu API keys loaded from %s", auth_key_count(ctx.auth), keys_file);
        }
    }
    /* A fatal Kafka error stops the service with the same SIGTERM (kafka.h);
     * a supervisor must see that as a failure, not as a requested stop. */
    char fatal[512];
    if (kafka_fatal_stop(fatal, sizeof fatal)) {
        log_error("stopped: %s", fatal);
    } else {
        log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        rc = 0;
    }
    http_server_stop(server);
done_early:
    edge_batch_stop(ctx.edges);
    rollup_cache_stop(ctx.rollups);
    edge_memo_free(ctx.memo);
    state_tail_stop(tail);
    state_cache_stop(ctx.state);
    ingest_close(ctx.ingest);
    db_pool_free(ctx.db);
    auth_free(ctx.auth);
    metrics_free(ctx.metrics);
    tls_files_free(&tls);
    config_props_free(&props);
    return rc;
}
