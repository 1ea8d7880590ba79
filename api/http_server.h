/* eie-api's HTTP server: libmicrohttpd with the limits that keep it available
 * under connection floods, the strict reading of a request's framing, and the
 * key check of a request with a body (auth.h), before the router sees it. Requests reach api_route_dispatch as ulfius
 * request and response structures (the routes' own interface); the server
 * is ours, not ulfius', because the checks below need the moment the request
 * head is complete, which ulfius keeps to itself. */
#ifndef EIE_HTTP_SERVER_H
#define EIE_HTTP_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "err.h"

typedef struct http_settings {
    unsigned max_connections;     /* in all; a new one past this waits in the backlog */
    unsigned max_per_address;     /* from one client address; a new one past this is closed */
    int64_t head_timeout_ms;      /* from opening (or the previous response) to a complete head */
    size_t connection_memory;     /* bytes per connection for the request head and buffers */
    unsigned idle_timeout_s;      /* a connection that sends or reads nothing for this long */
    unsigned threads;             /* workers over epoll; 0: one thread per connection */
    size_t max_body;              /* a larger declared body gets 413 before it is read */
    bool access_log;              /* one info line per request */
    const char *tls_cert_pem;     /* with tls_key_pem: serve HTTPS (tls.h); NULL: plain HTTP */
    const char *tls_key_pem;
} http_settings;

typedef struct http_server http_server;

/* Listens on addr; ctx (not owned) must outlive the server. */
http_server *http_server_start(const struct sockaddr_in *addr, const http_settings *settings,
                               api_context *ctx, eie_err *err);
/* Stops accepting, finishes what is in flight, and frees the server. */
void http_server_stop(http_server *s);

#endif
