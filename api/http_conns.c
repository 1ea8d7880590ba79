/* Connection tracking and the request head deadline; see http_conns.h. */
#include "http_conns.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "timefmt.h"

struct http_conn {
    http_conn *prev, *next;
    int fd;
    int64_t head_since_ms; /* monotonic; 0 while a request is being served */
    bool shed;
};

struct http_conns {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    http_conn *head;
    int64_t head_timeout_ms;
    bool stopping;
    pthread_t thread;
    metrics *metrics;
};

/* Sheds every connection whose head is overdue. Under the lock, so that a
 * socket is never shut down after libmicrohttpd closed it (it reports the
 * close, which takes the lock, before closing the descriptor) and its number
 * went to another connection. */
static int shed_overdue(http_conns *cs, int64_t now)
{
    int shed = 0;
    for (http_conn *c = cs->head; c; c = c->next) {
        if (c->shed || c->head_since_ms == 0 || now - c->head_since_ms < cs->head_timeout_ms)
            continue;
        /* Both directions: the connection's thread wakes to end-of-stream and
         * closes it; no response, since the request never began. */
        if (shutdown(c->fd, SHUT_RDWR) == 0 || errno == ENOTCONN)
            shed++;
        c->shed = true;
    }
    return shed;
}

static void *housekeeping(void *arg)
{
    http_conns *cs = arg;
    /* A tenth of the deadline: a head is cut at most 10% late. */
    int64_t period_ms = cs->head_timeout_ms / 10 > 0 ? cs->head_timeout_ms / 10 : 1;
    if (period_ms > 250)
        period_ms = 250;
    pthread_mutex_lock(&cs->lock);
    while (!cs->stopping) {
        struct timespec until = timefmt_deadline((long)period_ms);
        pthread_cond_timedwait(&cs->wake, &cs->lock, &until);
        int shed = shed_overdue(cs, timefmt_monotonic_ms());
        if (shed > 0) {
            metrics_add(cs->metrics, "eie_api_connections_shed_total", "", shed);
            log_debug("closed %d connection(s) whose request head took over %lld ms", shed,
                      (long long)cs->head_timeout_ms);
        }
    }
    pthread_mutex_unlock(&cs->lock);
    return NULL;
}

http_conns *http_conns_start(int64_t head_timeout_ms, metrics *m, eie_err *err)
{
    http_conns *cs = calloc(1, sizeof *cs);
    if (!cs) {
        eie_err_set(err, "http connections: out of memory");
        return NULL;
    }
    cs->head_timeout_ms = head_timeout_ms;
    cs->metrics = m;
    pthread_mutex_init(&cs->lock, NULL);
    pthread_cond_init(&cs->wake, NULL);
    metrics_describe(m, "eie_api_connections_shed_total", METRIC_COUNTER,
                     "connections closed because their request head was not complete in time");
    metrics_add(m, "eie_api_connections_shed_total", "", 0);
    int rc = pthread_create(&cs->thread, NULL, housekeeping, cs);
    if (rc != 0) {
        eie_err_set(err, "http connections: cannot start the housekeeping thread: %s",
                    strerror(rc));
        pthread_cond_destroy(&cs->wake);
        pthread_mutex_destroy(&cs->lock);
        free(cs);
        return NULL;
    }
    return cs;
}

void http_conns_stop(http_conns *cs)
{
    if (!cs)
        return;
    pthread_mutex_lock(&cs->lock);
    cs->stopping = true;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->lock);
    pthread_join(cs->thread, NULL);
    while (cs->head) { /* none once the daemon stopped; kept safe anyway */
        http_conn *c = cs->head;
        cs->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

void http_conns_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    http_conns *cs = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *c = info ? calloc(1, sizeof *c) : NULL;
        if (!c)
            return; /* untracked: only the idle timeout applies to it */
        c->fd = info->connect_fd;
        c->head_since_ms = timefmt_monotonic_ms();
        pthread_mutex_lock(&cs->lock);
        c->next = cs->head;
        if (cs->head)
            cs->head->prev = c;
        cs->head = c;
        pthread_mutex_unlock(&cs->lock);
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        http_conn *c = *socket_context;
        pthread_mutex_lock(&cs->lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            cs->head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        pthread_mutex_unlock(&cs->lock);
        free(c);
        *socket_context = NULL;
    }
}

http_conn *http_conns_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void http_conn_head_done(http_conns *cs, http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->head_since_ms = 0;
    pthread_mutex_unlock(&cs->lock);
}

void http_conn_request_done(http_conns *cs, http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->head_since_ms = timefmt_monotonic_ms();
    pthread_mutex_unlock(&cs->lock);
}

int http_conn_fd(const http_conn *c)
{
    return c->fd;
}
