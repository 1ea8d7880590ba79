/* The HTTP server; see http_server.h.
 *
 * A request passes through four callbacks of libmicrohttpd:
 *   on_uri       the request line arrived: the request's state, with the raw
 *                URI (libmicrohttpd decodes its copy in place, where a %00
 *                would end it silently)
 *   on_request   first call: the head is complete (its deadline stops), the
 *                framing is checked, and the key of a request with a body;
 *                then the body in pieces; then the last
 *                call, which routes the request and queues the response
 *   on_completed the response went out (or the connection broke): the next
 *                head's deadline starts, the state is freed
 *   on_mhd_log   libmicrohttpd's own messages (debug level) */
#include "http_server.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_bad_length.h"
#include "http_conns.h"
#include "log.h"
#include "respond.h"
#include "url.h"

struct http_server {
    struct MHD_Daemon *daemon;
    http_conns *conns;
    api_context *ctx;
    http_settings settings;
};

typedef struct http_request {
    struct MHD_Connection *connection;
    char *raw_uri;
    struct timespec started;
    bool head_seen, too_large, answered;
    char *body;
    size_t body_len;
    struct http_request *next_head; /* in this thread's heads_read */
} http_request;

/* The requests whose heads this thread is reading: their line seen (on_uri),
 * their headers not yet (on_request). libmicrohttpd serves a connection from
 * one thread only (its own, or the pool thread it was given), so the list is
 * the thread's alone; answer_bad_length looks for a request in it. */
static _Thread_local http_request *heads_read;

static void head_reading(http_request *r)
{
    r->next_head = heads_read;
    heads_read = r;
}

static void head_read(http_request *r)
{
    for (http_request **p = &heads_read; *p; p = &(*p)->next_head)
        if (*p == r) {
            *p = r->next_head;
            return;
        }
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void client_address(struct MHD_Connection *connection, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, size, "-");
    if (info && info->client_addr && info->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)info->client_addr)->sin_addr, out,
                  (socklen_t)size);
}

/* key is the name of the key the request used (never the key), or "". */
static void access_log(const http_server *s, http_request *r, const char *method,
                       const char *route, unsigned status, const char *key)
{
    r->answered = true;
    if (!s->settings.access_log || !log_enabled(LOG_INFO))
        return;
    char address[INET_ADDRSTRLEN];
    client_address(r->connection, address, sizeof address);
    log_buffered(LOG_INFO,
                 "access: address=%s method=%.16s route=%s status=%u duration_ms=%.3f%s%s", address,
                 method ? method : "-", route, status, ms_since(&r->started), *key ? " key=" : "",
                 key);
}

/* The MHD response of resp: its body, or its stream (an export,
 * export_stream.h), handed over to libmicrohttpd, which pulls a stream's
 * blocks as the client drains them and calls its free callback when done
 * with it, sent or not. */
static struct MHD_Response *mhd_response(struct _u_response *resp)
{
    if (!resp->stream_callback) {
        struct MHD_Response *m = MHD_create_response_from_buffer(
            resp->binary_body_length, resp->binary_body, MHD_RESPMEM_MUST_FREE);
        if (m) {
            resp->binary_body = NULL; /* now libmicrohttpd's */
            resp->binary_body_length = 0;
        }
        return m;
    }
    struct MHD_Response *m = MHD_create_response_from_callback(
        resp->stream_size,
        resp->stream_block_size, resp->stream_callback, resp->stream_user_data,
        resp->stream_callback_free);
    if (!m && resp->stream_callback_free)
        resp->stream_callback_free(resp->stream_user_data);
    resp->stream_callback = NULL; /* now libmicrohttpd's, or freed */
    resp->stream_callback_free = NULL;
    resp->stream_user_data = NULL;
    return m;
}

/* Queues resp (its body is handed over); close asks the client to go. */
static enum MHD_Result send_response(struct MHD_Connection *connection, struct _u_response *resp,
                                     bool close)
{
    struct MHD_Response *m = mhd_response(resp);
    if (!m)
        return MHD_NO;
    const char **keys = u_map_enum_keys(resp->map_header);
    for (size_t i = 0; keys && keys[i]; i++)
        MHD_add_response_header(m, keys[i], u_map_get(resp->map_header, keys[i]));
    if (close)
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(connection, (unsigned)resp->status, m);
    MHD_destroy_response(m);
    return rc;
}

#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
static enum MHD_Result
send_error(const http_server *s, http_request *r, const char *method, unsigned status,
           const char *code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct _u_response resp;
    if (ulfius_init_response(&resp) != U_OK)
        return MHD_NO;
    respond_error(&resp, status, code, "%s", message);
    /* Each of these leaves the connection unusable or suspect: closed after. */
    enum MHD_Result rc = send_response(r->connection, &resp, true);
    ulfius_clean_response(&resp);
    access_log(s, r, method, "-", status, "");
    return rc;
}

typedef struct framing {
    int content_lengths, transfer_encodings;
    const char *content_length, *transfer_encoding;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_lengths++;
        f->content_length = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encodings++;
        f->transfer_encoding = value;
    }
    return MHD_YES;
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    u_map_put(cls, key, value ? value : "");
    return MHD_YES;
}

/* A request with a body, to a route whose key it lacks (or whose role is too
 * low), is answered as soon as its head is in, and the connection closed with
 * the body unread: without a key no client makes the server take in a
 * megabyte. The key's bucket is left for the router's check, once the body
 * is in (auth_admit). */
static enum MHD_Result check_key(const http_server *s, http_request *r, const char *method)
{
    const api_route *route = api_route_match(s->ctx, method, r->raw_uri);
    if (!route || route->access == API_ACCESS_PUBLIC)
        return MHD_YES;
    struct _u_request req;
    struct _u_response resp;
    if (ulfius_init_request(&req) != U_OK)
        return MHD_NO;
    if (ulfius_init_response(&resp) != U_OK) {
        ulfius_clean_request(&req);
        return MHD_NO;
    }
    MHD_get_connection_values(r->connection, MHD_HEADER_KIND, copy_header, req.map_header);
    char key_name[API_KEY_NAME_MAX + 1];
    enum MHD_Result rc = MHD_YES;
    if (auth_admit(s->ctx->auth, route->access, &req, &resp, key_name) < 0) {
        unsigned status = (unsigned)resp.status;
        api_route_count(s->ctx, route, (long)status, ms_since(&r->started) / 1e3);
        rc = send_response(r->connection, &resp, true);
        access_log(s, r, method, route->path, status, key_name);
    }
    ulfius_clean_response(&resp);
    ulfius_clean_request(&req);
    return rc;
}

/* The head is complete: a body's length must be stated once and one way
 * (libmicrohttpd takes the first Content-Length, and Transfer-Encoding over
 * it, where a proxy in front might take another: a request smuggled past
 * it), and within the limit, answered before the body is read. */
static enum MHD_Result check_head(const http_server *s, http_request *r, const char *method)
{
    framing f = {0};
    MHD_get_connection_values(r->connection, MHD_HEADER_KIND, count_framing, &f);
    if (f.content_lengths > 1)
        return send_error(s, r, method, 400, "bad_request", "Content-Length given %d times",
                          f.content_lengths);
    if (f.transfer_encodings > 0 && f.content_lengths > 0)
        return send_error(s, r, method, 400, "bad_request",
                          "Content-Length and Transfer-Encoding together");
    if (f.transfer_encodings > 1 ||
        (f.transfer_encoding && strcasecmp(f.transfer_encoding, "chunked") != 0))
        return send_error(s, r, method, 400, "bad_request",
                          "Transfer-Encoding: only a single \"chunked\" is accepted");
    if (f.content_length && strtoull(f.content_length, NULL, 10) > s->settings.max_body)
        return send_error(s, r, method, 413, "payload_too_large",
                          "the body is larger than %zu bytes", s->settings.max_body);
    if (f.transfer_encodings > 0 || (f.content_length && strtoull(f.content_length, NULL, 10) > 0))
        return check_key(s, r, method);
    return MHD_YES;
}


/* The whole request is in: route it and queue the response. */
static enum MHD_Result serve(http_server *s, http_request *r, const char *method)
{
    if (r->too_large) /* a chunked body past the limit */
        return send_error(s, r, method, 413, "payload_too_large",
                          "the body is larger than %zu bytes", s->settings.max_body);
    struct _u_request req;
    struct _u_response resp;
    if (ulfius_init_request(&req) != U_OK)
        return MHD_NO;
    if (ulfius_init_response(&resp) != U_OK) {
        ulfius_clean_request(&req);
        return MHD_NO;
    }
    size_t path_len = strcspn(r->raw_uri, "?");
    req.http_verb = o_strdup(method);
    req.http_url = o_strndup(r->raw_uri, path_len);
    req.url_path = o_strndup(r->raw_uri, path_len);
    req.binary_body = r->body; /* now the request's */
    req.binary_body_length = r->body_len;
    r->body = NULL;
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(r->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (peer && peer->client_addr && (req.client_address = o_malloc(sizeof(struct sockaddr))))
        memcpy(req.client_address, peer->client_addr, sizeof(struct sockaddr));
    MHD_get_connection_values(r->connection, MHD_HEADER_KIND, copy_header, req.map_header);

    char msg[256];
    const char *route = "-";
    char key_name[API_KEY_NAME_MAX + 1] = "";
    if (!req.http_verb || !req.http_url || !req.url_path) {
        respond_error(&resp, 503, "unavailable", "out of memory");
    } else if (r->raw_uri[path_len] == '?' &&
               url_parse_query(r->raw_uri + path_len + 1, req.map_url, msg, sizeof msg) < 0) {
        respond_error(&resp, 400, "invalid_parameter", "%s", msg);
    } else {
        api_route_dispatch(s->ctx, &req, &resp, &route, key_name);
    }
    unsigned status = (unsigned)resp.status;
    enum MHD_Result rc = send_response(r->connection, &resp, false);
    access_log(s, r, method, route, status, key_name);
    ulfius_clean_response(&resp);
    ulfius_clean_request(&req);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)url;
    (void)version;
    http_server *s = cls;
    http_request *r = *req_cls;
    if (!r)
        return MHD_NO; /* on_uri found no memory */
    if (!r->head_seen) {
        r->head_seen = true;
        head_read(r);
        http_conn_head_done(s->conns, http_conns_of(connection));
        return check_head(s, r, method);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->body_len + n > s->settings.max_body) {
            r->too_large = true; /* read to its end, then 413 */
            return MHD_YES;
        }
        char *grown = realloc(r->body, r->body_len + n);
        if (!grown)
            return MHD_NO;
        memcpy(grown + r->body_len, upload_data, n);
        r->body = grown;
        r->body_len += n;
        return MHD_YES;
    }
    return serve(s, r, method);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *connection)
{
    (void)cls;
    http_request *r = calloc(1, sizeof *r);
    if (!r || !(r->raw_uri = strdup(uri))) {
        free(r);
        return NULL;
    }
    r->connection = connection;
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    head_reading(r);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_server *s = cls;
    http_request *r = *req_cls;
    http_conn_request_done(s->conns, http_conns_of(connection));
    if (!r)
        return;
    if (!r->head_seen)
        head_read(r);
    free(r->raw_uri);
    free(r->body);
    free(r);
    *req_cls = NULL;
}

/* The request of this thread whose headers libmicrohttpd is parsing: of the
 * heads it is reading, the only one whose headers have all arrived (its
 * header size is known from then on; the others are still arriving, or the
 * handler would have seen them), NULL when none or several. */
static http_request *head_being_parsed(void)
{
    http_request *found = NULL;
    for (http_request *r = heads_read; r; r = r->next_head) {
        if (!MHD_get_connection_info(r->connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE))
            continue;
        if (found)
            return NULL;
        found = r;
    }
    return found;
}

/* An unreadable Content-Length, reported by libmicrohttpd's log: answered
 * once, by us (http_bad_length.h). */
static void answer_bad_length(const http_server *s, const char *fmt)
{
    unsigned status = http_bad_length_status(fmt);
    if (!status)
        return;
    http_request *r = head_being_parsed();
    if (!r || r->answered)
        return;
    http_conn *c = http_conns_of(r->connection);
    if (!c)
        return;
    http_bad_length_answer(r->connection, http_conn_fd(c), s->settings.tls_cert_pem != NULL,
                           status);
    access_log(s, r, NULL, "-", status, "");
}

/* libmicrohttpd's log callback: fmt is its own printf format. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap)
{
    answer_bad_length(cls, fmt);
    if (!log_enabled(LOG_DEBUG))
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_debug("libmicrohttpd: %s", line);
}

http_server *http_server_start(const struct sockaddr_in *addr, const http_settings *settings,
                               api_context *ctx, eie_err *err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        eie_err_set(err, "http server: out of memory");
        return NULL;
    }
    s->ctx = ctx;
    s->settings = *settings;
    if (!(s->conns = http_conns_start(settings->head_timeout_ms, ctx->metrics, err))) {
        free(s);
        return NULL;
    }
    /* A thread per connection polls with poll(), not select(): descriptors
     * past 1,023 must work once the descriptor limit is raised. */
    unsigned flags = MHD_USE_ERROR_LOG | (settings->threads > 0
                                              ? MHD_USE_EPOLL_INTERNAL_THREAD
                                              : MHD_USE_THREAD_PER_CONNECTION |
                                                    MHD_USE_POLL_INTERNAL_THREAD);
    bool tls = settings->tls_cert_pem != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        eie_err_set(err, "this libmicrohttpd was built without TLS: --tls-cert (EIE_TLS_CERT) "
                         "cannot be served");
        http_conns_stop(s->conns);
        free(s);
        return NULL;
    }
    if (tls)
        flags |= MHD_USE_TLS;
    /* Optional items are appended: the array ends at its first MHD_OPTION_END. */
    struct MHD_OptionItem options[16] = {
        {MHD_OPTION_SOCK_ADDR, 0, (void *)addr},
        {MHD_OPTION_CONNECTION_LIMIT, settings->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, settings->max_per_address, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)settings->connection_memory, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, settings->idle_timeout_s, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_conns_notify, s->conns},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s},
    };
    size_t n = 9;
    if (settings->threads > 0)
        options[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, settings->threads, NULL};
    if (tls) {
        options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)settings->tls_cert_pem};
        options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)settings->tls_key_pem};
    }
    options[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->daemon = MHD_start_daemon(flags, ntohs(addr->sin_port), NULL, NULL, on_request, s,
                                 MHD_OPTION_ARRAY, options, MHD_OPTION_END);
    if (!s->daemon) {
        char host[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addr->sin_addr, host, sizeof host);
        eie_err_set(err, "cannot listen on %s:%d (is the port in use? set PORT)", host,
                    ntohs(addr->sin_port));
        http_conns_stop(s->conns);
        free(s);
        return NULL;
    }
    return s;
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    http_conns_stop(s->conns);
    free(s);
}
