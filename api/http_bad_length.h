/* The answer to a Content-Length that libmicrohttpd 0.9.75 cannot read (not
 * digits, or past 2^64). It answers that itself, then goes on with the
 * request as if nothing had happened: parse_connection_headers() queues the
 * error and writes its status line, its caller sets the state back to
 * "headers processed", and the reply is started again, so the status line
 * goes out twice. It says so in its log first, from the thread that parses
 * the headers: the server (http_server.c) finds the request from there and
 * has the answer written here, past libmicrohttpd, and the socket shut, so
 * that libmicrohttpd's own sends then fail. */
#ifndef EIE_HTTP_BAD_LENGTH_H
#define EIE_HTTP_BAD_LENGTH_H

#include <microhttpd.h>
#include <stdbool.h>

/* The status for libmicrohttpd's log format fmt when it reports an unreadable
 * Content-Length (413 too large, 400 not a number), 0 for any other. */
unsigned http_bad_length_status(const char *fmt);

/* Writes the JSON answer of that status to connection (socket fd) and shuts
 * the socket; tls: the connection speaks TLS, and the answer goes through its
 * GnuTLS session. Called from the thread serving the connection. */
void http_bad_length_answer(struct MHD_Connection *connection, int fd, bool tls, unsigned status);

#endif
