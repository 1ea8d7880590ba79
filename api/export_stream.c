/* Exports streamed from a COPY; see export_stream.h. */
#include "export_stream.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "log.h"
#include "pg.h"
#include "respond.h"

/* What libmicrohttpd asks for at most per call: a chunk of the body. */
#define BLOCK_BYTES (64 * 1024)
/* How long a cancelled COPY may take to end before its connection is closed
 * instead: the rows already on their way are read and dropped meanwhile. */
#define CANCEL_DRAIN_MS 5000
/* Seconds a client is told to wait when every export slot is taken. */
#define BUSY_RETRY_AFTER "10"
#define SQLSTATE_QUERY_CANCELED "57014"

struct export_stream {
    api_context *ctx;
    const char *route;
    PGconn *conn;
    export_format format;
    char *row; /* the row being sent, from PQgetCopyData */
    size_t row_len, row_off;
    bool header_pending; /* CSV: the first row is the header, not counted */
    bool finished;       /* the COPY ended well and all of it was handed over */
    bool failed;         /* the COPY failed mid-way: the body ends in an error */
    unsigned long long rows, bytes;
    struct timespec started;
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void release_slot(api_context *ctx)
{
    int left = atomic_fetch_sub(&ctx->exports_running, 1) - 1;
    metrics_set(ctx->metrics, "eie_api_exports_running", "", left);
}

export_stream *export_stream_open(api_context *ctx, struct _u_response *resp, const char *route)
{
    int running = atomic_fetch_add(&ctx->exports_running, 1);
    if (running >= ctx->max_exports) {
        release_slot(ctx);
        respond_error(resp, 503, "unavailable",
                      "%d exports are running, as many as run at once; try again later",
                      ctx->max_exports);
        u_map_put(resp->map_header, "Retry-After", BUSY_RETRY_AFTER);
        return NULL;
    }
    metrics_set(ctx->metrics, "eie_api_exports_running", "", running + 1);
    export_stream *ex = calloc(1, sizeof *ex);
    eie_err err;
    if (!ex || !(ex->conn = db_pool_acquire(ctx->db, API_POOL_WAIT_MS, &err))) {
        if (ex)
            log_error("export %s: %s", route, err.msg);
        free(ex);
        release_slot(ctx);
        respond_error(resp, 503, "unavailable", "the database is not available");
        return NULL;
    }
    ex->ctx = ctx;
    ex->route = route;
    clock_gettime(CLOCK_MONOTONIC, &ex->started);
    return ex;
}

int export_stream_literal(export_stream *ex, strbuf *sql, const char *value)
{
    if (!value) {
        strbuf_puts(sql, "NULL");
        return 0;
    }
    char *literal = PQescapeLiteral(ex->conn, value, strlen(value));
    if (!literal)
        return -1;
    strbuf_puts(sql, literal);
    PQfreemem(literal);
    return 0;
}

void export_stream_abandon(export_stream *ex)
{
    if (!ex)
        return;
    db_pool_release(ex->ctx->db, ex->conn);
    release_slot(ex->ctx);
    PQfreemem(ex->row);
    free(ex);
}

/* Ends the export's transaction (and with it its statement timeout), and
 * gives back its connection and its slot: as soon as the COPY is over, not
 * when libmicrohttpd frees the response after the last chunk went out, or
 * a client asking for its next export at once could find the slot taken. A
 * connection this leaves outside idle is closed by the pool. */
static void finish(export_stream *ex, bool commit)
{
    if (!ex->conn)
        return;
    PQclear(PQexec(ex->conn, commit ? "COMMIT" : "ROLLBACK"));
    db_pool_release(ex->ctx->db, ex->conn);
    ex->conn = NULL;
    release_slot(ex->ctx);
}

/* COPY's text format writes a backslash before each backslash (and escapes
 * control characters, which JSON text never holds raw): undone in place,
 * for JSON Lines. Returns the new length. */
static size_t unescape_copy_text(char *s, size_t len)
{
    if (!memchr(s, '\\', len))
        return len;
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < len) {
            c = s[++i];
            c = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r'
              : c == 't' ? '\t' : c == 'v' ? '\v' : c;
        }
        s[out++] = c;
    }
    return out;
}

/* The COPY's data ended: its result says whether it all came. */
static bool copy_ended_well(export_stream *ex)
{
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(ex->conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            log_error("export %s: the COPY failed after %llu rows: %s", ex->route, ex->rows,
                      PQresultErrorMessage(res));
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

/* The next row of the COPY (PQgetCopyData's result), waiting for it only
 * when wait is set. The rows libpq already holds are taken before it reads
 * the socket again: reading first would move its whole unread buffer for
 * every row and let the buffer grow without bound when the server writes
 * faster than the client reads. */
static int next_row(PGconn *conn, char **row, bool wait)
{
    int len = PQgetCopyData(conn, row, 1);
    if (len != 0)
        return len;
    if (!wait && PQconsumeInput(conn) && (len = PQgetCopyData(conn, row, 1)) == 0)
        return 0;
    /* Waits; a connection PQconsumeInput found broken fails here. */
    return len != 0 ? len : PQgetCopyData(conn, row, 0);
}

/* libmicrohttpd's content reader: up to max bytes of the body into buf. It
 * blocks for the next row only while it has nothing to give; once it has
 * some, it takes only the rows already arrived. */
static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    export_stream *ex = cls;
    size_t n = 0;
    for (;;) {
        if (ex->row_off < ex->row_len) {
            size_t k = ex->row_len - ex->row_off < max - n ? ex->row_len - ex->row_off : max - n;
            memcpy(buf + n, ex->row + ex->row_off, k);
            n += k;
            ex->row_off += k;
            if (n == max)
                break;
        }
        if (ex->finished)
            break;
        PQfreemem(ex->row);
        ex->row = NULL;
        ex->row_len = ex->row_off = 0;
        char *row;
        int len = next_row(ex->conn, &row, n == 0);
        if (len == 0)
            break; /* nothing more arrived yet: send what there is */
        if (len == -1 && copy_ended_well(ex)) {
            ex->finished = true;
            finish(ex, true);
            break;
        }
        if (len < 0) {
            if (len == -2)
                log_error("export %s: reading the COPY: %s", ex->route, PQerrorMessage(ex->conn));
            ex->failed = true;
            finish(ex, false);
            /* The status line went out long ago: the body ends without its
             * last chunk, which tells the client the export is incomplete. */
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        ex->row = row;
        ex->row_len = ex->format == EXPORT_JSONL ? unescape_copy_text(row, (size_t)len)
                                                 : (size_t)len;
        if (ex->header_pending)
            ex->header_pending = false;
        else
            ex->rows++;
    }
    ex->bytes += n;
    if (n == 0 && ex->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

/* A client gone mid-stream: the COPY is cancelled and what the server had
 * already sent is read and dropped, so the connection can go back to the
 * pool. false when it cannot be (then it is closed, which ends the COPY on
 * the server too). */
static bool cancel_copy(export_stream *ex)
{
    PGcancel *cancel = PQgetCancel(ex->conn);
    char why[256] = "";
    int sent = cancel && PQcancel(cancel, why, sizeof why);
    PQfreeCancel(cancel);
    if (!sent) {
        log_warn("export %s: cannot cancel the COPY (%s); closing its connection", ex->route, why);
        return false;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *row;
    int len;
    while ((len = PQgetCopyData(ex->conn, &row, 0)) > 0) {
        PQfreemem(row);
        if (seconds_since(&t0) * 1000 > CANCEL_DRAIN_MS) {
            log_warn("export %s: the cancelled COPY still runs after %d ms; closing its connection",
                     ex->route, CANCEL_DRAIN_MS);
            return false;
        }
    }
    PGresult *res;
    while ((res = PQgetResult(ex->conn)))
        PQclear(res);
    return true;
}

/* libmicrohttpd's free callback: the response is done with, sent or not. */
static void export_free(void *cls)
{
    export_stream *ex = cls;
    const char *outcome = ex->finished ? "complete" : ex->failed ? "failed" : "client_gone";
    if (ex->conn && !cancel_copy(ex)) {
        PQfinish(ex->conn);
        ex->conn = NULL;
        db_pool_release(ex->ctx->db, NULL); /* its slot, to be opened again */
        release_slot(ex->ctx);
    }
    finish(ex, false);
    double secs = seconds_since(&ex->started);
    log_info("export: route=%s format=%s outcome=%s rows=%llu bytes=%llu seconds=%.3f", ex->route,
             export_format_extension(ex->format), outcome, ex->rows, ex->bytes, secs);
    char labels[192];
    snprintf(labels, sizeof labels, "route=\"%s\",outcome=\"%s\"", ex->route, outcome);
    metrics_add(ex->ctx->metrics, "eie_api_exports_total", labels, 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", ex->route);
    metrics_add(ex->ctx->metrics, "eie_api_export_rows_total", labels, (double)ex->rows);
    metrics_add(ex->ctx->metrics, "eie_api_export_bytes_total", labels, (double)ex->bytes);
    PQfreemem(ex->row);
    free(ex);
}

int export_stream_start(export_stream *ex, struct _u_response *resp, const char *copy_sql,
                        const export_choice *choice, const char *file_name)
{
    /* Numbers with 15 significant digits, as the JSON routes print them
     * (respond.h): 34.2, not 34.200000000000003. */
    char begin[128];
    snprintf(begin, sizeof begin,
             "BEGIN READ ONLY; SET LOCAL statement_timeout = %ld; SET LOCAL extra_float_digits = 0",
             ex->ctx->export_timeout_ms);
    eie_err err;
    if (pg_exec(ex->conn, begin, &err) < 0) {
        log_error("export %s: %s", ex->route, err.msg);
        export_stream_abandon(ex);
        return respond_error(resp, 503, "unavailable", "the database is not available");
    }
    /* The server answers once the statement is planned, before its first row:
     * a failure to begin still gets a JSON error. */
    PGresult *res = PQexec(ex->conn, copy_sql);
    if (pg_check(res, PGRES_COPY_OUT, ex->route, &err) < 0) {
        log_error("export: %s", err.msg);
        bool timeout = strcmp(pg_sqlstate(res), SQLSTATE_QUERY_CANCELED) == 0;
        PQclear(res);
        PQclear(PQexec(ex->conn, "ROLLBACK"));
        export_stream_abandon(ex);
        return data_respond_error(resp, timeout ? 504 : 503);
    }
    PQclear(res);
    ex->format = choice->format;
    ex->header_pending = choice->format == EXPORT_CSV;
    ulfius_set_stream_response(resp, 200, export_read, export_free, U_STREAM_SIZE_UNKNOWN,
                               BLOCK_BYTES, ex);
    u_map_put(resp->map_header, "Content-Type", choice->content_type);
    char disposition[256];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", file_name);
    u_map_put(resp->map_header, "Content-Disposition", disposition);
    u_map_put(resp->map_header, "Cache-Control", "no-store");
    return U_CALLBACK_COMPLETE;
}

void export_stream_describe_metrics(metrics *m)
{
    metrics_describe(m, "eie_api_exports_running", METRIC_GAUGE, "exports streaming now");
    metrics_describe(m, "eie_api_exports_total", METRIC_COUNTER,
                     "exports ended, by route and outcome (complete, failed, client_gone)");
    metrics_describe(m, "eie_api_export_rows_total", METRIC_COUNTER, "rows exported, by route");
    metrics_describe(m, "eie_api_export_bytes_total", METRIC_COUNTER,
                     "bytes of export bodies handed to the HTTP server, by route");
}
