/* In-memory latest state; see state_cache.h. An open-addressing hash table
 * under a read-write lock: requests read it concurrently, the refresher writes
 * the rows that changed. */
#include "state_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"

/* Rows committed by a transaction that began before the last refresh carry an
 * older updated_at (now() is the transaction's start), so each refresh looks
 * back this far too; updates are idempotent. A full reload every so often
 * bounds anything missed even then. */
#define LOOK_BACK_S 10
#define FULL_RELOAD_EVERY 120

struct state_cache {
    char *url;
    long refresh_ms;
    pthread_rwlock_t lock;
    vehicle_state_entry *slots; /* vehicle_id[0] == '\0' marks a free slot */
    size_t cap, used;
    pthread_t thread;
    atomic_int stop;
    PGconn *conn;
    char since[64]; /* the newest updated_at seen, as PostgreSQL prints it */
    char store[64]; /* the tables' oids: a replay's switch changes them */
};

static uint64_t hash(const char *vehicle_id)
{
    return reading_hash_id(READING_VEHICLE, vehicle_id);
}

/* Called with the write lock held. */
static void grow(state_cache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 16384;
    vehicle_state_entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        abort();
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].vehicle_id[0])
            continue;
        size_t j = hash(c->slots[i].vehicle_id) & (cap - 1);
        while (slots[j].vehicle_id[0])
            j = (j + 1) & (cap - 1);
        slots[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
}

static void put(state_cache *c, const vehicle_state_entry *e)
{
    if ((c->used + 1) * 2 > c->cap)
        grow(c);
    size_t i = hash(e->vehicle_id) & (c->cap - 1);
    while (c->slots[i].vehicle_id[0] && strcmp(c->slots[i].vehicle_id, e->vehicle_id) != 0)
        i = (i + 1) & (c->cap - 1);
    if (!c->slots[i].vehicle_id[0])
        c->used++;
    c->slots[i] = *e;
}

bool state_cache_get(state_cache *c, const char *vehicle_id, vehicle_state_entry *out)
{
    if (!c || strlen(vehicle_id) > READING_ID_MAX)
        return false;
    bool found = false;
    pthread_rwlock_rdlock(&c->lock);
    if (c->cap) {
        size_t i = hash(vehicle_id) & (c->cap - 1);
        while (c->slots[i].vehicle_id[0]) {
            if (strcmp(c->slots[i].vehicle_id, vehicle_id) == 0) {
                *out = c->slots[i];
                found = true;
                break;
            }
            i = (i + 1) & (c->cap - 1);
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return found;
}

static int refresh(state_cache *c, int full, eie_err *err)
{
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        PQfinish(c->conn);
        if (!(c->conn = pg_connect(c->url, "eie-api state cache", err)) ||
            pg_exec(c->conn, "SET TIME ZONE 'UTC'", err) < 0) /* since compares as text */
            return -1;
        full = 1;
    }
    /* After a replay switched stores, what the cache holds (and its since) is
     * the old store's: it starts over. */
    PGresult *ids = PQexec(c->conn, "SELECT 'vehicle_state'::regclass::oid || '/' || "
                                    "'vehicle_assignment_current'::regclass::oid");
    if (pg_check(ids, PGRES_TUPLES_OK, "identifying the state tables", err) < 0) {
        PQclear(ids);
        return -1;
    }
    int switched = strcmp(PQgetvalue(ids, 0, 0), c->store) != 0;
    if (switched) {
        if (c->store[0])
            log_info("the state tables were replaced (a replay's switch): reloading");
        snprintf(c->store, sizeof c->store, "%s", PQgetvalue(ids, 0, 0));
        c->since[0] = '\0';
        full = 1;
    }
    PQclear(ids);
    char look_back[16];
    snprintf(look_back, sizeof look_back, "%d", LOOK_BACK_S);
    const char *params[] = {full || !c->since[0] ? NULL : c->since, look_back};
    PGresult *res = PQexecParams(
        c->conn,
        "SELECT vs.vehicle_id, coalesce(cur.meter_id, ''), "
        "(extract(epoch FROM vs.ts) * 1000)::bigint, vs.soc, vs.kwh_delivered_dc, "
        "vs.battery_temp, greatest(vs.updated_at, cur.updated_at) "
        "FROM vehicle_state vs LEFT JOIN vehicle_assignment_current cur USING (vehicle_id) "
        "WHERE $1::timestamptz IS NULL "
        "   OR vs.updated_at > $1::timestamptz - make_interval(secs => $2::int) "
        "   OR cur.updated_at > $1::timestamptz - make_interval(secs => $2::int)",
        2, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, "refreshing the state cache", err) < 0) {
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    pthread_rwlock_wrlock(&c->lock);
    if (switched && c->cap) {
        memset(c->slots, 0, c->cap * sizeof *c->slots);
        c->used = 0;
    }
    for (int i = 0; i < n; i++) {
        vehicle_state_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.vehicle_id, sizeof e.vehicle_id, "%s", PQgetvalue(res, i, 0));
        snprintf(e.meter_id, sizeof e.meter_id, "%s", PQgetvalue(res, i, 1));
        e.ts_ms = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        e.soc = strtod(PQgetvalue(res, i, 3), NULL);
        e.kwh_delivered_dc = strtod(PQgetvalue(res, i, 4), NULL);
        e.battery_temp = strtod(PQgetvalue(res, i, 5), NULL);
        if (e.vehicle_id[0])
            put(c, &e);
        /* Text timestamps of one session compare in time order as strings. */
        const char *seen = PQgetvalue(res, i, 6);
        if (strcmp(seen, c->since) > 0)
            snprintf(c->since, sizeof c->since, "%s", seen);
    }
    pthread_rwlock_unlock(&c->lock);
    PQclear(res);
    return 0;
}

static void *refresh_main(void *arg)
{
    state_cache *c = arg;
    unsigned long rounds = 0;
    int failing = 0; /* said once when it starts failing and once when it recovers */
    while (!c->stop) {
        eie_err err;
        if (refresh(c, rounds % FULL_RELOAD_EVERY == 0, &err) < 0) {
            if (!failing)
                log_warn("%s (requests ask the database until this recovers)", err.msg);
            failing = 1;
        } else if (failing) {
            log_info("state cache refreshed again");
            failing = 0;
        }
        rounds++;
        for (long slept = 0; slept < c->refresh_ms && !c->stop; slept += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

state_cache *state_cache_start(const char *database_url, long refresh_ms, eie_err *err)
{
    state_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->url = strdup(database_url))) {
        free(c);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    c->refresh_ms = refresh_ms;
    pthread_rwlock_init(&c->lock, NULL);
    if (pthread_create(&c->thread, NULL, refresh_main, c) != 0) {
        eie_err_set(err, "cannot start the state cache's thread");
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
    c->stop = 1;
    pthread_join(c->thread, NULL);
    PQfinish(c->conn);
    pthread_rwlock_destroy(&c->lock);
    free(c->slots);
    free(c->url);
    free(c);
}
