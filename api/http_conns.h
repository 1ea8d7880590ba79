/* The connections eie-api holds, and the deadline for each request head.
 *
 * libmicrohttpd 0.9.75's connection timeout is an idle timeout: every byte
 * restarts it, so a client sending one header byte a second holds a
 * connection (and, with a thread per connection, a thread) for ever. Here
 * each connection is tracked from MHD_OPTION_NOTIFY_CONNECTION, the clock
 * starts when it opens and again when a response is done, stops when the
 * request head is complete (the server's first call for the request), and a
 * housekeeping thread shuts down the socket of every connection past the
 * deadline, which makes libmicrohttpd read end-of-stream and close it. */
#ifndef EIE_HTTP_CONNS_H
#define EIE_HTTP_CONNS_H

#include <microhttpd.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"

typedef struct http_conns http_conns;
typedef struct http_conn http_conn;

/* Starts the housekeeping thread; m (not owned) counts the connections shed. */
http_conns *http_conns_start(int64_t head_timeout_ms, metrics *m, eie_err *err);
void http_conns_stop(http_conns *cs); /* after the daemon stopped */

/* For MHD_OPTION_NOTIFY_CONNECTION, cls: the http_conns. */
void http_conns_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);

/* The tracked connection of a libmicrohttpd connection (NULL if untracked). */
http_conn *http_conns_of(struct MHD_Connection *connection);
/* The request head arrived: its deadline no longer applies. */
void http_conn_head_done(http_conns *cs, http_conn *c);
/* A response was sent: the next request head has its own deadline. */
void http_conn_request_done(http_conns *cs, http_conn *c);
int http_conn_fd(const http_conn *c);

#endif
