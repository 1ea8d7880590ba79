/* Hourly summaries in memory; see rollup_cache.h.
 *
 * Per stream, a ring of `hours` positions per device (hour h at h % hours),
 * each slot tagged with the hour it holds: a slot whose tag is not the hour
 * asked for means no readings then. Per ring position the cache records which
 * hour is loaded there and with which change stamp; an hour is used only when
 * it is loaded, below summarised_until and not dirty. Each refresh reads the
 * summaries' state in one snapshot, first invalidates the hours that changed,
 * then reloads them, so a request never mixes an hour's old and new rows. */
#include "rollup_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "idmap.h"
#include "log.h"
#include "pg.h"
#include "refresher.h"
#include "summary_notices.h"

#define HOUR_MS 3600000LL
#define UNKNOWN INT64_MIN

typedef struct hour_slot {
    int32_t hour; /* hours since 1970; -1: none */
    int32_t readings;
    double kwh, temp_sum;
} hour_slot;

typedef struct stream_cache {
    const char *name; /* as in hourly_rollup.stream */
    reading_kind kind;
    idmap ids;
    hour_slot *slots; /* [device * hours + hour % hours] */
    int64_t until;    /* hours before this one are summarised; UNKNOWN */
    int64_t *loaded;  /* per ring position: the hour loaded there, or -1 */
    db_stamp *stamps; /* per ring position: the hour's change when loaded */
    int64_t *dirty;
    size_t n_dirty, cap_dirty;
} stream_cache;

struct rollup_cache {
    char *url;
    refresher *refresher;
    atomic_int stop; /* set before the refresher stops: a long load gives up */
    int hours;
    pthread_rwlock_t lock;
    stream_cache streams[2]; /* meter, vehicle */
    int64_t *want[2]; /* per stream: hours to (re)load, with their stamps */
    db_stamp *want_stamps[2];
    PGconn *conn;
    char store[128]; /* the tables' oids: a replay's switch changes them */
    db_stamp changed; /* the newest change of the snapshot loaded */
    uint64_t generation; /* see rollup_part */
    summary_notices *notices;
    uint64_t mark; /* the last complete refresh's (summary_notices_mark) */
    bool deaf;     /* the notices' connection failed: said in the log */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static stream_cache *stream_of(rollup_cache *c, reading_kind kind)
{
    return kind == READING_METER ? &c->streams[0] : kind == READING_VEHICLE ? &c->streams[1] : NULL;
}

static bool is_dirty(const stream_cache *s, int64_t hour)
{
    for (size_t i = 0; i < s->n_dirty; i++)
        if (s->dirty[i] == hour)
            return true;
    return false;
}

/* Called with the read lock held: whether the hours [a, b) are usable, and
 * then their sums for the device into out. Dirty hours are left out and
 * listed in out when out has room for them (skip_dirty), else unusable. */
static bool sum_hours(const rollup_cache *c, const stream_cache *s, const char *id, int64_t a,
                      int64_t b, bool skip_dirty, rollup_part *out)
{
    if (s->until == UNKNOWN || b > s->until)
        return false;
    out->n_skipped = 0;
    for (int64_t h = a; h < b; h++) {
        if (s->loaded[h % c->hours] != h)
            return false;
        if (is_dirty(s, h)) {
            if (!skip_dirty || out->n_skipped == ROLLUP_MAX_SKIPPED)
                return false;
            out->skipped[out->n_skipped++] = h;
        }
    }
    out->quiet = summary_notices_quiet(c->notices, c->mark, s->kind, a, b);
    long d = idmap_find(&s->ids, id);
    for (int64_t h = a, k = 0; d >= 0 && h < b; h++) {
        if (k < out->n_skipped && out->skipped[k] == h) {
            k++;
            continue;
        }
        const hour_slot *slot = &s->slots[(size_t)d * (size_t)c->hours + (size_t)(h % c->hours)];
        if (slot->hour != h)
            continue;
        out->readings += slot->readings;
        out->kwh += slot->kwh;
        out->temp_sum += slot->temp_sum;
    }
    return true;
}

bool rollup_cache_window(rollup_cache *c, reading_kind kind, const char *id, int64_t lo_ms,
                         int64_t hi_ms, rollup_part *out)
{
    memset(out, 0, sizeof *out);
    out->lo_ms = out->hi_ms = hi_ms;
    stream_cache *s = c ? stream_of(c, kind) : NULL;
    if (!s)
        return false;
    int64_t a = floor_div(lo_ms + HOUR_MS - 1, HOUR_MS), b = floor_div(hi_ms, HOUR_MS);
    bool ok = true;
    pthread_rwlock_rdlock(&c->lock);
    out->changed = c->changed;
    out->generation = c->generation;
    if (s->until == UNKNOWN) {
        ok = false;
    } else {
        if (b > s->until)
            b = s->until;
        if (a < b && (ok = sum_hours(c, s, id, a, b, true, out))) {
            out->lo_ms = a * HOUR_MS;
            out->hi_ms = b * HOUR_MS;
        }
        if (a >= b)
            out->quiet = true; /* no hour of the cache's used */
    }
    pthread_rwlock_unlock(&c->lock);
    return ok;
}

bool rollup_cache_hour(rollup_cache *c, reading_kind kind, const char *id, int64_t hour_ms,
                       rollup_part *out)
{
    memset(out, 0, sizeof *out);
    stream_cache *s = c ? stream_of(c, kind) : NULL;
    if (!s)
        return false;
    int64_t h = floor_div(hour_ms, HOUR_MS);
    out->lo_ms = h * HOUR_MS;
    out->hi_ms = out->lo_ms + HOUR_MS;
    pthread_rwlock_rdlock(&c->lock);
    out->changed = c->changed;
    out->generation = c->generation;
    bool ok = sum_hours(c, s, id, h, h + 1, false, out);
    if (ok)
        out->hour_stamp = s->stamps[h % c->hours];
    pthread_rwlock_unlock(&c->lock);
    return ok;
}

bool rollup_cache_hours_current(rollup_cache *c, uint64_t generation, reading_kind kind,
                                int64_t lo, int64_t hi, const hour_stamp *db, int n)
{
    stream_cache *s = c ? stream_of(c, kind) : NULL;
    if (!s)
        return false;
    int i = 0;
    while (i < n && (db[i].kind != kind || db[i].hour < lo))
        i++;
    pthread_rwlock_rdlock(&c->lock);
    bool ok = c->generation == generation;
    for (int64_t h = lo; ok && h < hi; h++) {
        while (i < n && db[i].kind == kind && db[i].hour < h)
            i++;
        db_stamp want = i < n && db[i].kind == kind && db[i].hour == h ? db[i].stamp : DB_STAMP_NONE;
        size_t pos = (size_t)(h % c->hours);
        ok = s->loaded[pos] == h && s->stamps[pos] == want;
    }
    pthread_rwlock_unlock(&c->lock);
    return ok;
}

/* Called with the write lock held. */
static void forget(rollup_cache *c, stream_cache *s)
{
    idmap_free(&s->ids);
    free(s->slots);
    s->slots = NULL;
    s->until = UNKNOWN;
    s->n_dirty = 0;
    c->generation++;
    for (int i = 0; i < c->hours; i++) {
        s->loaded[i] = -1;
        s->stamps[i] = DB_STAMP_UNKNOWN;
    }
}

/* Called with the write lock held: the device's slots, made when new. */
static hour_slot *device_slots(rollup_cache *c, stream_cache *s, const char *id)
{
    size_t n = s->ids.n, cap = s->ids.cap_ids;
    long d = idmap_add(&s->ids, id);
    if (d < 0)
        return NULL;
    size_t per = (size_t)c->hours;
    if (s->ids.cap_ids != cap) {
        s->slots = realloc(s->slots, s->ids.cap_ids * per * sizeof *s->slots);
        if (!s->slots)
            abort();
    }
    hour_slot *slots = &s->slots[(size_t)d * per];
    if (s->ids.n != n)
        for (size_t i = 0; i < per; i++)
            slots[i].hour = -1;
    return slots;
}

static int64_t hour_value(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Reads one hour's summaries (in the refresh's snapshot) into its ring
 * position, which the caller has invalidated. */
static int load_hour(rollup_cache *c, stream_cache *s, int64_t hour, db_stamp stamp,
                     eie_err *err)
{
    PGresult *res = data_summaries_of_hour(c->conn, s->kind, hour, err);
    if (!res)
        return -1;
    size_t pos = (size_t)(hour % c->hours);
    int n = PQntuples(res);
    pthread_rwlock_wrlock(&c->lock);
    for (size_t d = 0; d < s->ids.n; d++)
        s->slots[d * (size_t)c->hours + pos].hour = -1;
    for (int i = 0; i < n; i++) {
        if (i % REFRESH_ROWS_PER_LOCK == REFRESH_ROWS_PER_LOCK - 1) {
            pthread_rwlock_unlock(&c->lock);
            pthread_rwlock_wrlock(&c->lock);
        }
        hour_slot *slots = device_slots(c, s, PQgetvalue(res, i, DATA_SUMMARY_ID));
        if (!slots)
            continue;
        slots[pos] = (hour_slot){(int32_t)hour, (int32_t)hour_value(res, i, DATA_SUMMARY_READINGS),
                                 strtod(PQgetvalue(res, i, DATA_SUMMARY_KWH), NULL),
                                 strtod(PQgetvalue(res, i, DATA_SUMMARY_TEMP_SUM), NULL)};
    }
    s->loaded[pos] = hour;
    s->stamps[pos] = stamp;
    c->generation++;
    pthread_rwlock_unlock(&c->lock);
    PQclear(res);
    return 0;
}

/* The summaries' state in the snapshot: where they end, which hours are dirty,
 * and the change stamps of the hours the cache keeps. Publishes the first two
 * and invalidates each hour to (re)load; returns those hours in c->want. */
static int read_state(rollup_cache *c, size_t n_want[2], db_stamp *changed, eie_err *err)
{
    PGresult *res = data_summaries_state(c->conn, err);
    if (!res)
        return -1;
    int64_t until[2] = {UNKNOWN, UNKNOWN};
    const char *dirty[2] = {"", ""};
    for (int i = 0; i < PQntuples(res); i++)
        for (int k = 0; k < 2; k++)
            if (strcmp(PQgetvalue(res, i, DATA_SUMSTATE_STREAM), c->streams[k].name) == 0) {
                if (!PQgetisnull(res, i, DATA_SUMSTATE_UNTIL_HOUR))
                    until[k] = hour_value(res, i, DATA_SUMSTATE_UNTIL_HOUR);
                dirty[k] = PQgetvalue(res, i, DATA_SUMSTATE_DIRTY);
            }
    int64_t lowest = INT64_MAX;
    for (int k = 0; k < 2; k++)
        if (until[k] != UNKNOWN && until[k] - c->hours < lowest)
            lowest = until[k] - c->hours;
    PGresult *stamps = data_summary_changes(c->conn, lowest == INT64_MAX ? 0 : lowest, err);
    if (!stamps) {
        PQclear(res);
        return -1;
    }
    /* The cache is current with this stamp once the hours below are loaded:
     * refresh() records it then. */
    pthread_rwlock_wrlock(&c->lock);
    *changed = PQntuples(res) ? db_stamp_get(res, 0, DATA_SUMSTATE_CHANGED) : DB_STAMP_NONE;
    for (int k = 0; k < 2; k++) {
        stream_cache *s = &c->streams[k];
        s->until = until[k];
        s->n_dirty = 0;
        for (const char *p = dirty[k]; *p;) {
            if (s->n_dirty == s->cap_dirty) {
                s->cap_dirty = s->cap_dirty ? s->cap_dirty * 2 : 16;
                s->dirty = realloc(s->dirty, s->cap_dirty * sizeof *s->dirty);
                if (!s->dirty)
                    abort();
            }
            char *end;
            s->dirty[s->n_dirty++] = strtoll(p, &end, 10);
            p = *end == ',' ? end + 1 : end;
        }
        n_want[k] = 0;
        if (until[k] == UNKNOWN)
            continue;
        for (int64_t h = until[k] - c->hours; h < until[k]; h++) {
            if (h < 0)
                continue;
            db_stamp stamp = DB_STAMP_NONE;
            for (int i = 0; i < PQntuples(stamps); i++)
                if (hour_value(stamps, i, DATA_SUMCHANGE_HOUR) == h &&
                    strcmp(PQgetvalue(stamps, i, DATA_SUMCHANGE_STREAM), s->name) == 0) {
                    stamp = db_stamp_get(stamps, i, DATA_SUMCHANGE_STAMP);
                    break;
                }
            size_t pos = (size_t)(h % c->hours);
            if (s->loaded[pos] == h && s->stamps[pos] == stamp)
                continue;
            s->loaded[pos] = -1;
            c->generation++;
            c->want[k][n_want[k]] = h;
            c->want_stamps[k][n_want[k]] = stamp;
            n_want[k]++;
        }
    }
    pthread_rwlock_unlock(&c->lock);
    PQclear(stamps);
    PQclear(res);
    return 0;
}

/* Takes the summaries' notices, waiting up to ms for one; says in the log
 * when the cache stops and starts hearing them. Never fails: deaf, the cache
 * vouches for nothing by itself (summary_notices_quiet). */
static void hear(rollup_cache *c, long ms)
{
    eie_err err;
    if (summary_notices_take(c->notices, ms, &err) == 0) {
        if (c->deaf)
            log_info("rollup cache: hearing the summaries' notices again");
        c->deaf = false;
        return;
    }
    if (!c->deaf)
        log_warn("rollup cache: %s (reports check the database until it hears them again)",
                 err.msg);
    c->deaf = true;
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&nap, NULL);
}

static int wait_for_notices(void *arg, long ms, eie_err *err)
{
    (void)err;
    hear(arg, ms);
    return 0;
}

/* Reads what changed since the last refresh; see the top of this file. */
static int reload(rollup_cache *c, eie_err *err)
{
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        PQfinish(c->conn);
        if (!(c->conn = pg_connect(c->url, "eie-api rollup cache", err)))
            return -1;
        c->store[0] = '\0';
    }
    /* What this refresh reads is current but for what notices name after
     * the mark, taken before the snapshot. Without notices the cache still
     * works, its reports checked by a statement each. */
    hear(c, 0);
    uint64_t mark = summary_notices_mark(c->notices);
    /* One snapshot: the stamps, the dirty hours and the rows agree. */
    if (data_snapshot_begin(c->conn, err) < 0)
        return -1;
    int rc = -1;
    char tables[sizeof c->store];
    if (data_summary_tables(c->conn, tables, sizeof tables, err) < 0)
        goto done;
    if (strcmp(tables, c->store) != 0) {
        if (c->store[0])
            log_info("the summary tables were replaced (a replay's switch): reloading");
        snprintf(c->store, sizeof c->store, "%s", tables);
        pthread_rwlock_wrlock(&c->lock);
        forget(c, &c->streams[0]);
        forget(c, &c->streams[1]);
        pthread_rwlock_unlock(&c->lock);
    }
    size_t n_want[2];
    db_stamp changed;
    if (read_state(c, n_want, &changed, err) < 0)
        goto done;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < n_want[k]; i++) {
            hear(c, 0); /* a long reload still takes the notices as they come */
            if (c->stop ||
                load_hour(c, &c->streams[k], c->want[k][i], c->want_stamps[k][i], err) < 0)
                goto done;
        }
    pthread_rwlock_wrlock(&c->lock);
    if (c->changed != changed)
        c->generation++;
    c->changed = changed;
    c->mark = mark;
    pthread_rwlock_unlock(&c->lock);
    rc = 0;
done:
    data_snapshot_end(c->conn);
    return rc;
}

static int refresh(void *arg, eie_err *err)
{
    rollup_cache *c = arg;
    int rc = reload(c, err);
    if (rc < 0) {
        /* The notices taken since the last mark may name hours this refresh
         * did not reload: nothing is vouched for until one succeeds. */
        pthread_rwlock_wrlock(&c->lock);
        c->mark = 0;
        pthread_rwlock_unlock(&c->lock);
    }
    return rc;
}

rollup_cache *rollup_cache_start(const char *database_url, long refresh_ms, int hours,
                                 eie_err *err)
{
    rollup_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->url = strdup(database_url))) {
        free(c);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    c->hours = hours;
    c->notices = summary_notices_new(database_url, hours);
    for (int k = 0; k < 2; k++) {
        c->want[k] = calloc((size_t)hours, sizeof *c->want[k]);
        c->want_stamps[k] = calloc((size_t)hours, sizeof *c->want_stamps[k]);
        stream_cache *s = &c->streams[k];
        s->name = k == 0 ? "meter" : "vehicle";
        s->kind = k == 0 ? READING_METER : READING_VEHICLE;
        idmap_init(&s->ids, s->kind);
        s->loaded = malloc((size_t)hours * sizeof *s->loaded);
        s->stamps = malloc((size_t)hours * sizeof *s->stamps);
        if (!s->loaded || !s->stamps || !c->want[k] || !c->want_stamps[k])
            abort();
        forget(c, s);
    }
    pthread_rwlock_init(&c->lock, NULL);
    if (!(c->refresher = refresher_start("rollup cache", refresh_ms, refresh, wait_for_notices, c,
                                         err))) {
        rollup_cache_stop(c);
        return NULL;
    }
    return c;
}

void rollup_cache_stop(rollup_cache *c)
{
    if (!c)
        return;
    c->stop = 1;
    refresher_stop(c->refresher);
    PQfinish(c->conn);
    summary_notices_free(c->notices);
    pthread_rwlock_destroy(&c->lock);
    for (int k = 0; k < 2; k++) {
        forget(c, &c->streams[k]);
        free(c->streams[k].loaded);
        free(c->streams[k].stamps);
        free(c->streams[k].dirty);
        free(c->want[k]);
        free(c->want_stamps[k]);
    }
    free(c->url);
    free(c);
}
