/* The hot store in memory; see state_cache.h. Per-device tables indexed
 * through idmaps under one read-write lock: requests read concurrently, the
 * refresher writes the rows that changed. */
#include "state_cache_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index of id in ids, added when new (*created), with *array (entries
 * of size bytes, by index) grown alongside; -1 when ids refuses it. */
static long slot(idmap *ids, const char *id, void **array, size_t size, bool *created)
{
    size_t n = ids->n, cap = ids->cap_ids;
    long i = idmap_add(ids, id);
    if (i < 0)
        return -1;
    if (ids->cap_ids != cap && !(*array = realloc(*array, ids->cap_ids * size)))
        abort();
    *created = ids->n != n;
    return i;
}

/* Called with the write lock held: the entry of id, created empty. */
static vehicle_state_entry *vehicle_slot(state_cache *c, const char *id)
{
    bool created;
    long i = slot(&c->vehicle_ids, id, (void **)&c->vehicles, sizeof *c->vehicles, &created);
    if (i < 0)
        return NULL;
    vehicle_state_entry *e = &c->vehicles[i];
    if (created) {
        memset(e, 0, sizeof *e);
        snprintf(e->vehicle_id, sizeof e->vehicle_id, "%s", id);
    }
    return e;
}

/* Called with the write lock held: the entry of the meter, created with no
 * reading (ts_ms INT64_MIN). */
static meter_state_entry *meter_slot(state_cache *c, const char *id)
{
    bool created;
    long i = slot(&c->meter_ids, id, (void **)&c->meters, sizeof *c->meters, &created);
    if (i < 0)
        return NULL;
    if (created)
        c->meters[i] = (meter_state_entry){.ts_ms = INT64_MIN};
    return &c->meters[i];
}

void state_cache_apply_vehicle_state(state_cache *c, const PGresult *res, int row)
{
    vehicle_state_entry *e = vehicle_slot(c, PQgetvalue(res, row, 0));
    if (!e)
        return;
    int64_t ts_ms = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    /* The store's row otherwise wins: it is the record, and may have been
     * written by other means. */
    if (e->from_broker && ts_ms < e->ts_ms)
        return;
    e->has_state = true;
    e->from_broker = false;
    e->ts_ms = ts_ms;
    e->soc = strtod(PQgetvalue(res, row, 2), NULL);
    e->kwh_delivered_dc = strtod(PQgetvalue(res, row, 3), NULL);
    e->battery_temp = strtod(PQgetvalue(res, row, 4), NULL);
}

void state_cache_apply_meter_voltage(state_cache *c, const PGresult *res, int row)
{
    meter_state_entry *m = meter_slot(c, PQgetvalue(res, row, 0));
    if (!m)
        return;
    m->voltage = strtod(PQgetvalue(res, row, 1), NULL);
    m->ts_ms = strtoll(PQgetvalue(res, row, 2), NULL, 10);
}

/* Called with the write lock held: the newer of the vehicle's state and v,
 * the state when they are of the same time (the store's rule, hot_notice.h). */
static void take_vehicle_reading(state_cache *c, const vehicle_reading *v, bool from_broker)
{
    vehicle_state_entry *e = vehicle_slot(c, v->vehicle_id);
    if (!e)
        return;
    if (e->has_state && v->ts_ms <= e->ts_ms) {
        if (!from_broker && v->ts_ms == e->ts_ms)
            e->from_broker = false; /* the store has caught up */
        return;
    }
    e->has_state = true;
    e->from_broker = from_broker;
    e->ts_ms = v->ts_ms;
    e->soc = v->soc;
    e->kwh_delivered_dc = v->kwh_delivered_dc;
    e->battery_temp = v->battery_temp;
}

void state_cache_apply_reading(state_cache *c, const reading *r)
{
    if (r->kind == READING_VEHICLE) {
        take_vehicle_reading(c, &r->u.vehicle, false);
    } else if (r->kind == READING_METER) {
        meter_state_entry *m = meter_slot(c, r->u.meter.meter_id);
        if (!m || r->u.meter.ts_ms <= m->ts_ms)
            return;
        m->voltage = r->u.meter.voltage;
        m->ts_ms = r->u.meter.ts_ms;
    }
}

void state_cache_offer(state_cache *c, const reading *rows, size_t n)
{
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < n; i++)
        if (rows[i].kind == READING_VEHICLE)
            take_vehicle_reading(c, &rows[i].u.vehicle, true);
    pthread_rwlock_unlock(&c->lock);
}

/* Called with the write lock held: the vehicle listed under the meter. */
static void note_meter_vehicle(state_cache *c, const char *meter_id, const vehicle_state_entry *e)
{
    bool created;
    long m = slot(&c->assigned_meter_ids, meter_id, (void **)&c->meter_vehicles,
                  sizeof *c->meter_vehicles, &created);
    if (m < 0)
        return;
    vehicle_list *list = &c->meter_vehicles[m];
    if (created)
        *list = (vehicle_list){0};
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
void state_cache_apply_assignment(state_cache *c, const PGresult *res, int row)
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
        *voltage = c->meters[i].voltage;
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

void state_cache_clear(state_cache *c)
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
    free(c->meters);
    c->vehicles = NULL;
    c->meters = NULL;
    c->since[0] = '\0';
    c->assignment_stored = DB_STAMP_UNKNOWN;
    c->following = false;
}

state_cache *state_cache_start(const char *database_url, long refresh_ms, metrics *m,
                               eie_err *err)
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
    c->metrics = m;
    metrics_describe(m, STATE_NOTICE_ROWS_METRIC, METRIC_COUNTER,
                     "readings the state cache applied from the hot store's commit notices, "
                     "without reading the state tables");
    metrics_describe(m, STATE_SCANS_METRIC, METRIC_COUNTER,
                     "reads of the state tables by stamp after commit notices that gave no "
                     "readings (more than their notices hold)");
    pthread_rwlock_init(&c->lock, NULL);
    if (!(c->refresher = refresher_start("state cache", refresh_ms, state_cache_refresh_round,
                                         state_cache_wait_for_commits, c, err))) {
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
    state_cache_clear(c);
    free(c->url);
    free(c);
}
