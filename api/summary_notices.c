/* The summaries' notices; see summary_notices.h. */
#include "summary_notices.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

struct summary_notices {
    char *url;
    int hours;
    PGconn *conn;         /* NULL when not listening */
    atomic_bool listening;
    atomic_uint_least64_t taken;     /* batches of notices taken; 1 at the start */
    atomic_uint_least64_t everything; /* the last batch that named everything */
    /* Per stream and ring position: the last batch that named an hour there,
     * that hour, and the newest batch that named another hour there before
     * (an hour 48 hours earlier, with the default ring: a backfill of old
     * days must not make the window's hours look changed, nor hide a change
     * of them). */
    struct ring_position {
        atomic_uint_least64_t batch, before;
        atomic_int_least64_t hour;
    } *named[2];
};

summary_notices *summary_notices_new(const char *database_url, int hours)
{
    summary_notices *n = calloc(1, sizeof *n);
    if (!n || !(n->url = strdup(database_url)))
        abort();
    n->hours = hours;
    for (int k = 0; k < 2; k++)
        if (!(n->named[k] = calloc((size_t)hours, sizeof *n->named[k])))
            abort();
    atomic_store(&n->taken, 1);
    atomic_store(&n->everything, 1);
    return n;
}

void summary_notices_free(summary_notices *n)
{
    if (!n)
        return;
    PQfinish(n->conn);
    free(n->named[0]);
    free(n->named[1]);
    free(n->url);
    free(n);
}

/* Everything may have changed unheard: from the next batch's number on. */
static void deaf(summary_notices *n)
{
    atomic_store(&n->listening, false);
    atomic_store(&n->everything, atomic_fetch_add(&n->taken, 1) + 1);
    PQfinish(n->conn);
    n->conn = NULL;
}

/* Records one notice's hours under batch number `batch`; anything not as
 * written by the triggers names everything. */
static void record(summary_notices *n, const char *payload, uint64_t batch)
{
    const char *colon = strchr(payload, ':');
    reading_kind kind;
    char stream[16];
    size_t len = colon ? (size_t)(colon - payload) : 0;
    if (len && len < sizeof stream) {
        memcpy(stream, payload, len);
        stream[len] = '\0';
    }
    if (!len || len >= sizeof stream || reading_kind_parse(stream, &kind) < 0 ||
        kind == READING_ASSIGNMENT) {
        atomic_store(&n->everything, batch);
        return;
    }
    for (const char *p = colon + 1; *p;) {
        char *end;
        long long hour = strtoll(p, &end, 10);
        if (end == p || hour < 0) {
            atomic_store(&n->everything, batch);
            return;
        }
        struct ring_position *at = &n->named[kind][hour % n->hours];
        /* Written in this order and read in the other, so that a reader who
         * sees the new hour sees the old one's batch kept in `before`. */
        if (atomic_load(&at->hour) != hour && atomic_load(&at->batch) > atomic_load(&at->before))
            atomic_store(&at->before, atomic_load(&at->batch));
        atomic_store(&at->batch, batch);
        atomic_store(&at->hour, hour);
        p = *end == ',' ? end + 1 : end;
    }
}

/* Whether any notice waits in libpq; takes them all as one batch. */
static bool take_waiting(summary_notices *n)
{
    PGnotify *notice = PQnotifies(n->conn);
    if (!notice)
        return false;
    uint64_t batch = atomic_load(&n->taken) + 1;
    for (; notice; notice = PQnotifies(n->conn)) {
        record(n, notice->extra, batch);
        PQfreemem(notice);
    }
    /* Published after the hours it names: a mark that includes this batch
     * is taken only once they are recorded. */
    atomic_store(&n->taken, batch);
    return true;
}

int summary_notices_take(summary_notices *n, long wait_ms, eie_err *err)
{
    if (!n->conn) {
        if (!(n->conn = pg_connect(n->url, "eie-api summary notices", err)))
            return -1;
        if (pg_exec(n->conn, "LISTEN " PG_SUMMARIES_CHANNEL, err) < 0) {
            deaf(n);
            return -1;
        }
        atomic_store(&n->listening, true);
    }
    if (PQconsumeInput(n->conn) == 0)
        goto lost;
    if (take_waiting(n) || wait_ms <= 0)
        return 0;
    struct pollfd pfd = {.fd = PQsocket(n->conn), .events = POLLIN};
    if (poll(&pfd, 1, (int)wait_ms) <= 0)
        return 0;
    if (PQconsumeInput(n->conn) == 0)
        goto lost;
    take_waiting(n);
    return 0;
lost:
    eie_err_set(err, "hearing the summaries' notices: %s", PQerrorMessage(n->conn));
    deaf(n);
    return -1;
}

uint64_t summary_notices_mark(summary_notices *n)
{
    return atomic_load(&n->listening) ? atomic_load(&n->taken) : 0;
}

bool summary_notices_quiet(const summary_notices *n, uint64_t mark, reading_kind kind, int64_t lo,
                           int64_t hi)
{
    if (!mark || !atomic_load(&n->listening) || atomic_load(&n->everything) > mark ||
        (kind != READING_METER && kind != READING_VEHICLE))
        return false;
    if (hi - lo > n->hours)
        return false;
    for (int64_t h = lo; h < hi; h++) {
        struct ring_position *at = &n->named[kind][h % n->hours];
        if ((atomic_load(&at->hour) == h && atomic_load(&at->batch) > mark) ||
            atomic_load(&at->before) > mark)
            return false;
    }
    return true;
}
