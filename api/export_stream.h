/* An export streamed from PostgreSQL to the HTTP client: a COPY ... TO
 * STDOUT on a connection held from the pool for as long as the body takes,
 * read a row at a time as libmicrohttpd asks for more of the body, which it
 * does only as the client's socket drains. A slow client therefore slows the
 * COPY (the server waits on its socket to the API) instead of filling
 * memory: the API holds one block of the body and one row, whatever the
 * range.
 *
 * The COPY runs in a transaction of its own with the export's statement
 * timeout (--export-timeout-ms), not the API's (--statement-timeout-ms,
 * which bounds the JSON routes and would cut a long export); the
 * transaction's end restores the connection's own. A client that goes away
 * mid-stream has the COPY cancelled and the connection returned to the pool,
 * or closed if it cannot be brought back to idle.
 *
 * Exports take a slot each (ctx->max_exports), so that they cannot hold every
 * pooled connection and starve the other routes. */
#ifndef EIE_EXPORT_STREAM_H
#define EIE_EXPORT_STREAM_H

#include <ulfius.h>

#include "api.h"
#include "export_format.h"
#include "strbuf.h"

typedef struct export_stream export_stream;

/* Takes a slot and a pooled connection for the export route (its path, for
 * logs and metrics). NULL with resp set (503) when every slot is taken or no
 * connection came. */
export_stream *export_stream_open(api_context *ctx, struct _u_response *resp, const char *route);

/* Appends value as an SQL literal for the held connection ("NULL" for NULL);
 * -1 when it cannot be (not valid in the connection's encoding). */
int export_stream_literal(export_stream *ex, strbuf *sql, const char *value);

/* Begins copy_sql and, once the server accepted it, makes resp the stream:
 * 200, the choice's Content-Type, Content-Disposition with file_name. Takes
 * ex in every case: when the COPY fails to begin, resp gets the JSON error
 * (503, 504 on a timeout) and ex is gone. The body is produced when the HTTP
 * server (http_server.c) sends resp. */
int export_stream_start(export_stream *ex, struct _u_response *resp, const char *copy_sql,
                        const export_choice *choice, const char *file_name);

/* Gives back the slot and the connection of an export that will not start. */
void export_stream_abandon(export_stream *ex);

/* Describes the exports' metrics. */
void export_stream_describe_metrics(metrics *m);

#endif
