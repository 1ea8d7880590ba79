/* The hot store in memory; see state_cache.h. Per-device tables indexed
 * through idmaps under one read-write lock: requests read concurrently, the
 * refresher writes the rows that changed. */
#include "state_cache.h"

#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "idmap.h"
#include "log.h"
#include "pg.h"
#include "refresher.h"

/* Each refresh reads the rows stamped since the previous one began, less
 * LOOK_BACK_S: a row's stamp is its transaction's start (now()), so a
 * transaction that began before the previous refresh and committed after it
 * carries an older stamp. Applying a row twice changes nothing. Every so often
 * a refresh looks further: the state tables are read whole (they hold a row
 * per device), the assignment history, which only grows, as far back as
 * LONG_LOOK_BACK_S.
 *
 * Between refreshes the cache listens for the hot store's commits
 * (PG_HOT_STATE_CHANNEL): each names its rows' stamp, so reading the rows
 * stamped since then is exact, and a reading shows within milliseconds of
 * being stored. The refreshes stay for what announces nothing (a replay's
 * switch of stores, rows written by other means) and for a lost connection,
 * which loses the notices sent meanwhile. */
#define LOOK_BACK_S 10
#define LONG_LOOK_BACK_S 600
#define LONG_LOOK_EVERY 120

typedef struct state_cache state_cache;

typedef struct vehicle_list {
    uint32_t *at; /* indexes into vehicles */
    size_t n, cap;
} vehicle_list;

/* One table the cache follows. */
typedef struct source {
    data_hot_table table;
    void (*apply)(state_cache *c, const PGresult *res, int row);
    int long_look_back_s; /* 0: the long look reads every row */
} source;

struct state_cache {
    char *url;
    refresher *refresher;
    unsigned long rounds;
    pthread_rwlock_t lock;
    idmap vehicle_ids, meter_ids;
    vehicle_state_entry *vehicles; /* by vehicle_ids index */
    double *voltages;              /* by meter_ids index */
    /* Per meter ever assigned (by assigned_meter_ids index): the vehicles
     * with a cached assignment to it, to tell whether a vehicle had its meter
     * to itself. Before horizon_ms the cache cannot tell: some vehicle's
     * older assignments were let go. */
    idmap assigned_meter_ids;
    vehicle_list *meter_vehicles;
    int64_t horizon_ms;
    PGconn *conn;
    bool listening; /* conn gets the hot store's notices */
    char store[96]; /* the tables' oids: a replay's switch changes them */
    char since[64]; /* when the last complete refresh began; "" none */
    db_stamp assignment_stored; /* the newest assignment then */
    bool following; /* see vehicle_state_entry; under the lock */
};

/* Called with the write lock held: the entry of id, created empty. */
static vehicle_state_entry *vehicle_slot(state_cache *c, const char *id)
{
    size_t n = c->vehicle_ids.n, cap = c->vehicle_ids.cap_ids;
    long i = idmap_add(&c->vehicle_ids, id);
    if (i < 0)
        return NULL;
    if (c->vehicle_ids.cap_ids != cap) {
        c->vehicles = realloc(c->vehicles, c->vehicle_ids.cap_ids * sizeof *c->vehicles);
        if (!c->vehicles)
            abort();
    }
    vehicle_state_entry *e = &c->vehicles[i];
    if (c->vehicle_ids.n != n) {
        memset(e, 0, sizeof *e);
        snprintf(e->vehicle_id, sizeof e->vehicle_id, "%s", id);
    }
    return e;
}

static void apply_vehicle_state(state_cache *c, const PGresult *res, int row)
{
    vehicle_state_entry *e = vehicle_slot(c, PQgetvalue(res, row, 0));
    if (!e)
        return;
    e->has_state = true;
    e->ts_ms = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    e->soc = strtod(PQgetvalue(res, row, 2), NULL);
    e->kwh_delivered_dc = strtod(PQgetvalue(res, row, 3), NULL);
    e->battery_temp = strtod(PQgetvalue(res, row, 4), NULL);
}

static void apply_meter_voltage(state_cache *c, const PGresult *res, int row)
{
    size_t cap = c->meter_ids.cap_ids;
    long i = idmap_add(&c->meter_ids, PQgetvalue(res, row, 0));
    if (i < 0)
        return;
    if (c->meter_ids.cap_ids != cap) {
        c->voltages = realloc(c->voltages, c->meter_ids.cap_ids * sizeof *c->voltages);
        if (!c->voltages)
            abort();
    }
    c->voltages[i] = strtod(PQgetvalue(res, row, 1), NULL);
}

/* Called with the write lock held: the vehicle listed under the meter. */
static void note_meter_vehicle(state_cache *c, const char *meter_id, const vehicle_state_entry *e)
{
    size_t cap = c->assigned_meter_ids.cap_ids;
    long m = idmap_add(&c->assigned_meter_ids, meter_id);
    if (m < 0)
        return;
    if (c->assigned_meter_ids.cap_ids != cap) {
        c->meter_vehicles = realloc(c->meter_vehicles,
                                    c->assigned_meter_ids.cap_ids * sizeof *c->meter_vehicles);
        if (!c->meter_vehicles)
            abort();
        memset(&c->meter_vehicles[cap], 0,
               (c->assigned_meter_ids.cap_ids - cap) * sizeof *c->meter_vehicles);
    }
    vehicle_list *list = &c->meter_vehicles[m];
    uint32_t at = (uint32_t)(e - c->vehicles);
    for (size_t i = 0; i < list->n; i++)
        if (list->at[i] == at)
            return;
    if (list->n == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 4;
        if (!(list->at = realloc(list->at, list->cap * sizeof *list->at)))
            abort();
    }
    list->at[list->n++] = at;
}

/* Into the vehicle's assignments, oldest first, keeping the newest ones. */
static void apply_assignment(state_cache *c, const PGresult *res, int row)
{
    vehicle_state_entry *e = vehicle_slot(c, PQgetvalue(res, row, 0));
    if (!e)
        return;
    note_meter_vehicle(c, PQgetvalue(res, row, 2), e);
    int64_t from = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    int at = e->n_assignments;
    while (at > 0 && e->assignments[at - 1].valid_from_ms >= from)
        at--;
    if (at < e->n_assignments && e->assignments[at].valid_from_ms == from)
        return; /* seen: the history keeps the first one stored */
    if (e->n_assignments == STATE_CACHE_ASSIGNMENTS) {
        e->older_assignments = true;
        if (at == 0) { /* older than every one kept */
            if (e->assignments[0].valid_from_ms > c->horizon_ms)
                c->horizon_ms = e->assignments[0].valid_from_ms;
            return;
        }
        memmove(&e->assignments[0], &e->assignments[1], (size_t)(at - 1) * sizeof e->assignments[0]);
        at--;
        int64_t oldest = at == 0 ? from : e->assignments[0].valid_from_ms;
        if (oldest > c->horizon_ms)
            c->horizon_ms = oldest;
    } else {
        memmove(&e->assignments[at + 1], &e->assignments[at],
                (size_t)(e->n_assignments - at) * sizeof e->assignments[0]);
        e->n_assignments++;
    }
    e->assignments[at].valid_from_ms = from;
    snprintf(e->assignments[at].meter_id, sizeof e->assignments[at].meter_id, "%s",
             PQgetvalue(res, row, 2));
    snprintf(e->meter_id, sizeof e->meter_id, "%s", e->assignments[e->n_assignments - 1].meter_id);
}

static const source sources[] = {
    {DATA_HOT_VEHICLE_STATES, apply_vehicle_state, 0},
    {DATA_HOT_METER_STATES, apply_meter_voltage, 0},
    {DATA_HOT_ASSIGNMENTS, apply_assignment, LONG_LOOK_BACK_S},
};

bool state_cache_vehicle(state_cache *c, const char *vehicle_id, vehicle_state_entry *out,
                         bool with_assignments)
{
    if (!c)
        return false;
    pthread_rwlock_rdlock(&c->lock);
    long i = idmap_find(&c->vehicle_ids, vehicle_id);
    if (i >= 0 && with_assignments) {
        *out = c->vehicles[i];
        out->assignment_stored = c->assignment_stored;
        out->following = c->following;
    } else if (i >= 0) { /* the state only: a tenth of the entry */
        memcpy(out, &c->vehicles[i], offsetof(vehicle_state_entry, n_assignments));
        out->n_assignments = 0;
    }
    pthread_rwlock_unlock(&c->lock);
    return i >= 0;
}

bool state_cache_meter_voltage(state_cache *c, const char *meter_id, double *voltage)
{
    if (!c)
        return false;
    pthread_rwlock_rdlock(&c->lock);
    long i = idmap_find(&c->meter_ids, meter_id);
    if (i >= 0)
        *voltage = c->voltages[i];
    pthread_rwlock_unlock(&c->lock);
    return i >= 0;
}

bool state_cache_meter_alone(state_cache *c, const char *meter_id, const char *vehicle_id,
                             int64_t lo_ms, int64_t hi_ms)
{
    if (!c)
        return false;
    bool alone = true;
    pthread_rwlock_rdlock(&c->lock);
    long m = idmap_find(&c->assigned_meter_ids, meter_id);
    long self = idmap_find(&c->vehicle_ids, vehicle_id);
    if (lo_ms < c->horizon_ms || m < 0 || self < 0)
        alone = false; /* cannot tell */
    for (size_t i = 0; alone && i < c->meter_vehicles[m].n; i++) {
        uint32_t w = c->meter_vehicles[m].at[i];
        if (w == (uint32_t)self)
            continue;
        const vehicle_state_entry *e = &c->vehicles[w];
        for (int a = 0; alone && a < e->n_assignments; a++) {
            int64_t from = e->assignments[a].valid_from_ms;
            int64_t to = a + 1 < e->n_assignments ? e->assignments[a + 1].valid_from_ms : INT64_MAX;
            if (from < hi_ms && to > lo_ms && strcmp(e->assignments[a].meter_id, meter_id) == 0)
                alone = false;
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return alone;
}

/* Called with the write lock held. */
static void clear(state_cache *c)
{
    for (size_t i = 0; i < c->assigned_meter_ids.n; i++)
        free(c->meter_vehicles[i].at);
    free(c->meter_vehicles);
    c->meter_vehicles = NULL;
    idmap_free(&c->assigned_meter_ids);
    c->horizon_ms = INT64_MIN;
    idmap_free(&c->vehicle_ids);
    idmap_free(&c->meter_ids);
    free(c->vehicles);
    free(c->voltages);
    c->vehicles = NULL;
    c->voltages = NULL;
    c->since[0] = '\0';
    c->assignment_stored = DB_STAMP_UNKNOWN;
    c->following = false;
}

/* Applies the source's rows stamped from since (NULL: all) less look_back_s. */
static int follow_since(state_cache *c, const source *s, const char *since, int look_back_s,
                        eie_err *err)
{
    PGresult *res = data_hot_changes(c->conn, s->table, since, look_back_s, err);
    if (!res)
        return -1;
    int n = PQntuples(res);
    /* In steps: while the sinks drain a backlog every device changes between
     * two commits, and a notice brings tens of thousands of rows. Applied in
     * one hold, a report waited for all of them (clusters of 32 requests past
     * 30 ms in bench/api.sh while draining). Each row is applied whole, and a
     * reader between two steps sees what two refreshes, one for each part of
     * the commits, would have left. */
    pthread_rwlock_wrlock(&c->lock);
    for (int i = 0; i < n; i++) {
        if (i % REFRESH_ROWS_PER_LOCK == REFRESH_ROWS_PER_LOCK - 1) {
            pthread_rwlock_unlock(&c->lock);
            pthread_rwlock_wrlock(&c->lock);
        }
        s->apply(c, res, i);
    }
    pthread_rwlock_unlock(&c->lock);
    PQclear(res);
    return 0;
}

static int follow(state_cache *c, const source *s, int look_long, eie_err *err)
{
    const char *since =
        !c->since[0] || (look_long && s->long_look_back_s == 0) ? NULL : c->since;
    return follow_since(c, s, since, look_long ? s->long_look_back_s : LOOK_BACK_S, err);
}

static int refresh(state_cache *c, int look_long, eie_err *err)
{
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        PQfinish(c->conn);
        c->listening = false;
        if (!(c->conn = pg_connect(c->url, "eie-api state cache", err)))
            return -1;
        c->store[0] = '\0';
    }
    /* Before the refresh reads: a commit after it is announced. */
    if (!c->listening) {
        if (data_hot_listen(c->conn, err) < 0)
            return -1;
        c->listening = true;
    }
    /* After a replay switched stores, what the cache holds (and its stamps)
     * is the old store's: it starts over. */
    data_hot_store store;
    if (data_hot_store_read(c->conn, &store, err) < 0)
        return -1;
    if (strcmp(store.tables, c->store) != 0) {
        if (c->store[0])
            log_info("the state tables were replaced (a replay's switch): reloading");
        snprintf(c->store, sizeof c->store, "%s", store.tables);
        pthread_rwlock_wrlock(&c->lock);
        clear(c);
        pthread_rwlock_unlock(&c->lock);
    }
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (follow(c, &sources[i], look_long, err) < 0)
            return -1;
    snprintf(c->since, sizeof c->since, "%s", store.now);
    pthread_rwlock_wrlock(&c->lock);
    c->assignment_stored = store.assignments_stored;
    c->following = true; /* listening since before it read */
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

/* A failure may have lost notices: nothing is vouched for until a refresh. */
static int unless_failed(state_cache *c, int rc)
{
    if (rc < 0) {
        pthread_rwlock_wrlock(&c->lock);
        c->following = false;
        pthread_rwlock_unlock(&c->lock);
    }
    return rc;
}

static int refresh_round(void *arg, eie_err *err)
{
    state_cache *c = arg;
    return unless_failed(c, refresh(c, c->rounds++ % LONG_LOOK_EVERY == 0, err));
}

/* The earliest stamp among the notices received; false when none. */
static bool take_notices(state_cache *c, int64_t *earliest_us)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(c->conn))) {
        int64_t us = strtoll(n->extra, NULL, 10);
        if (us > 0 && (!any || us < *earliest_us))
            *earliest_us = us;
        any = any || us > 0;
        PQfreemem(n);
    }
    return any;
}

/* PostgreSQL's timestamptz input form of a stamp, to the microsecond. */
static void format_stamp(int64_t us, char *buf, size_t size)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* Waits up to ms for the hot store's notices; applies the rows stamped from
 * the earliest one on. Notices of commits during the refreshes wait in
 * libpq already, so they are taken before sleeping. */
static int apply_commits(state_cache *c, long ms, eie_err *err)
{
    if (!c->conn || !c->listening || PQstatus(c->conn) != CONNECTION_OK) {
        struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&nap, NULL);
        return 0;
    }
    int64_t earliest_us = 0;
    if (PQconsumeInput(c->conn) == 0) {
        eie_err_set(err, "reading the hot store's notices: %s", PQerrorMessage(c->conn));
        return -1;
    }
    if (!take_notices(c, &earliest_us)) {
        struct pollfd pfd = {.fd = PQsocket(c->conn), .events = POLLIN};
        if (poll(&pfd, 1, (int)ms) <= 0)
            return 0;
        if (PQconsumeInput(c->conn) == 0) {
            eie_err_set(err, "reading the hot store's notices: %s", PQerrorMessage(c->conn));
            return -1;
        }
        if (!take_notices(c, &earliest_us))
            return 0;
    }
    /* The newest assignment stored is read first, and the assignments are
     * then followed from the newest the cache had (a few rows: the table only
     * grows by assignments), so that the cache holds every one up to that
     * stamp and says so at once: reports need not wait for the next refresh to
     * trust it, while the sinks drain a backlog and assignments keep coming. */
    data_hot_store store;
    if (data_hot_store_read(c->conn, &store, err) < 0)
        return -1;
    take_notices(c, &earliest_us);
    char since[64];
    format_stamp(earliest_us, since, sizeof since);
    pthread_rwlock_rdlock(&c->lock);
    db_stamp had = c->assignment_stored;
    pthread_rwlock_unlock(&c->lock);
    /* Not loaded yet, or another store's (a replay's switch): the next
     * refresh sees to it. */
    bool vouch = had != DB_STAMP_UNKNOWN && strcmp(store.tables, c->store) == 0;
    char assignments_since[64];
    if (vouch && had != DB_STAMP_NONE && had < earliest_us)
        format_stamp(had, assignments_since, sizeof assignments_since);
    else
        snprintf(assignments_since, sizeof assignments_since, "%s", since);
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        const char *from = sources[i].table != DATA_HOT_ASSIGNMENTS ? since
                           : vouch && had == DB_STAMP_NONE         ? NULL
                                                                   : assignments_since;
        if (follow_since(c, &sources[i], from, 0, err) < 0)
            return -1;
    }
    pthread_rwlock_wrlock(&c->lock);
    if (vouch)
        c->assignment_stored = store.assignments_stored;
    else
        c->following = false;
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

static int wait_for_commits(void *arg, long ms, eie_err *err)
{
    state_cache *c = arg;
    return unless_failed(c, apply_commits(c, ms, err));
}

state_cache *state_cache_start(const char *database_url, long refresh_ms, eie_err *err)
{
    state_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->url = strdup(database_url))) {
        free(c);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    idmap_init(&c->vehicle_ids, READING_VEHICLE);
    idmap_init(&c->meter_ids, READING_METER);
    idmap_init(&c->assigned_meter_ids, READING_METER);
    c->horizon_ms = INT64_MIN;
    pthread_rwlock_init(&c->lock, NULL);
    if (!(c->refresher = refresher_start("state cache", refresh_ms, refresh_round,
                                         wait_for_commits, c, err))) {
        pthread_rwlock_destroy(&c->lock);
        free(c->url);
        free(c);
        return NULL;
    }
    return c;
}

void state_cache_stop(state_cache *c)
{
    if (!c)
        return;
    refresher_stop(c->refresher);
    PQfinish(c->conn);
    pthread_rwlock_destroy(&c->lock);
    clear(c);
    free(c->url);
    free(c);
}
