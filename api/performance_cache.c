/* The performance report from the caches (see performance.h): the vehicle's
 * state and assignments (state_cache) and the summaries of whole hours
 * (rollup_cache) come from memory, and the minutes at the window's edges from
 * the history, in a statement shared with other requests (edge_batch). Only
 * for a vehicle that was assigned over the whole window and had each of its
 * meters to itself: all its energy is then attributable, and the other cases
 * go to the database. */
#include <stdio.h>
#include <string.h>

#include "data.h"
#include "edge_batch.h"
#include "edge_memo.h"
#include "performance.h"
#include "rollup_cache.h"
#include "state_cache.h"

/* What is left of the window once the cached hours are taken out: the
 * vehicle's history before its first whole hour and after its last summarised
 * one, and the same of each meter period; summed by the edge batcher. An edge
 * that covers most of its hour is read the other way round: the hour's
 * summary less the few minutes outside the edge (sign -1), so that a window
 * from 16:59 to 16:59 reads two minutes of each device, not two hours. */
#define MAX_EDGES (2 + 2 * STATE_CACHE_ASSIGNMENTS + 2 * ROLLUP_MAX_SKIPPED)
#define MAX_USED (4 * MAX_EDGES)
#define HOUR_MS 3600000LL

/* Hours [lo, hi) since 1970 whose summaries a report used: the database must
 * not have them dirty (cache_current). */
typedef struct used_hours {
    reading_kind kind;
    int64_t lo, hi;
} used_hours;

typedef struct edges {
    edge_range r[MAX_EDGES];
    int sign[MAX_EDGES];
    /* Within an hour summarised and clean: sums that stay (edge_memo.h)
     * while that hour's stamp does. DB_STAMP_UNKNOWN: not settled. */
    db_stamp hour_stamp[MAX_EDGES];
    bool remembered[MAX_EDGES]; /* sums from the memo */
    int n;
    used_hours used[MAX_USED];
    int n_used;
    bool overflow; /* more edges or used hours than fit: ask the database instead */
    db_stamp changed; /* of every part used */
    uint64_t generation;
    bool have_changed;
    bool quiet; /* no notice named a part used since the cache read it */
} edges;

typedef struct sums {
    double kwh, temp_sum;
    long long readings;
} sums;

/* settled: the stamp of the summarised hour the edge is in; DB_STAMP_UNKNOWN
 * for none. */
static void edges_add(edges *e, int sign, db_stamp settled, reading_kind kind, const char *id,
                      int64_t lo_ms, int64_t hi_ms)
{
    if (hi_ms <= lo_ms)
        return;
    if (e->n == MAX_EDGES) {
        e->overflow = true;
        return;
    }
    e->sign[e->n] = sign;
    e->hour_stamp[e->n] = settled;
    e->r[e->n++] = (edge_range){.kind = kind, .id = id, .lo_ms = lo_ms, .hi_ms = hi_ms};
}

static bool is_settled(const edges *e, int i)
{
    return e->hour_stamp[i] != DB_STAMP_UNKNOWN;
}

static void used_add(edges *e, reading_kind kind, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return;
    if (e->n_used == MAX_USED) {
        e->overflow = true;
        return;
    }
    e->used[e->n_used++] = (used_hours){.kind = kind, .lo = lo, .hi = hi};
}

/* Whether a part read from the cache agrees with the others (a refresh in
 * between would mix two states). */
static bool same_state(edges *e, const rollup_part *part)
{
    e->quiet = e->quiet && part->quiet;
    if (!e->have_changed) {
        e->changed = part->changed;
        e->generation = part->generation;
        e->have_changed = true;
        return true;
    }
    return e->changed == part->changed && e->generation == part->generation;
}

static void add_part(sums *to, const rollup_part *part)
{
    to->kwh += part->kwh;
    to->temp_sum += part->temp_sum;
    to->readings += part->readings;
}

/* The edge [lo, hi), within the hour that starts at hour_ms: raw, or that
 * hour's summary less the rest of the hour when that is less to read. */
static bool add_edge(api_context *ctx, edges *e, sums *to, reading_kind kind, const char *id,
                     int64_t hour_ms, int64_t lo_ms, int64_t hi_ms)
{
    if (hi_ms <= lo_ms)
        return true;
    rollup_part hour;
    bool summarised = rollup_cache_hour(ctx->rollups, kind, id, hour_ms, &hour);
    if (summarised && !same_state(e, &hour))
        return false;
    if (summarised)
        used_add(e, kind, hour_ms / HOUR_MS, hour_ms / HOUR_MS + 1);
    if (summarised && (hi_ms - lo_ms) * 2 > HOUR_MS) {
        add_part(to, &hour);
        edges_add(e, -1, hour.hour_stamp, kind, id, hour_ms, lo_ms);
        edges_add(e, -1, hour.hour_stamp, kind, id, hi_ms, hour_ms + HOUR_MS);
        return true;
    }
    edges_add(e, 1, summarised ? hour.hour_stamp : DB_STAMP_UNKNOWN, kind, id, lo_ms, hi_ms);
    return true;
}

/* A device's share of the window, [lo, hi): its summarised whole hours from
 * the cache into to, the rest as edges. */
static bool add_span(api_context *ctx, edges *e, sums *to, reading_kind kind, const char *id,
                     int64_t lo_ms, int64_t hi_ms)
{
    rollup_part part;
    if (!rollup_cache_window(ctx->rollups, kind, id, lo_ms, hi_ms, &part) || !same_state(e, &part))
        return false;
    if (part.lo_ms == part.hi_ms) { /* no whole hour summarised */
        /* Within two hours (a short meter period): an edge in each. */
        int64_t first_hour_ms = lo_ms - (lo_ms % HOUR_MS + HOUR_MS) % HOUR_MS;
        int64_t second_hour_ms = first_hour_ms + HOUR_MS;
        if (hi_ms <= second_hour_ms + HOUR_MS)
            return add_edge(ctx, e, to, kind, id, first_hour_ms, lo_ms,
                            hi_ms < second_hour_ms ? hi_ms : second_hour_ms) &&
                   add_edge(ctx, e, to, kind, id, second_hour_ms, second_hour_ms, hi_ms);
        edges_add(e, 1, DB_STAMP_UNKNOWN, kind, id, lo_ms, hi_ms);
        return true;
    }
    add_part(to, &part);
    /* Dirty hours were left out of the part: read raw. */
    int64_t from_hour = part.lo_ms / HOUR_MS;
    for (int k = 0; k < part.n_skipped; k++) {
        used_add(e, kind, from_hour, part.skipped[k]);
        from_hour = part.skipped[k] + 1;
        edges_add(e, 1, DB_STAMP_UNKNOWN, kind, id, part.skipped[k] * HOUR_MS,
                  (part.skipped[k] + 1) * HOUR_MS);
    }
    used_add(e, kind, from_hour, part.hi_ms / HOUR_MS);
    /* Before the first whole hour: within one hour. After the last summarised
     * one: within one hour too, unless hours there are not summarised yet. */
    if (!add_edge(ctx, e, to, kind, id, part.lo_ms - HOUR_MS, lo_ms, part.lo_ms))
        return false;
    if (hi_ms - part.hi_ms < HOUR_MS)
        return add_edge(ctx, e, to, kind, id, part.hi_ms, part.hi_ms, hi_ms);
    edges_add(e, 1, DB_STAMP_UNKNOWN, kind, id, part.hi_ms, hi_ms);
    return true;
}

/* The vehicle's meter periods within [from, to), each with its cached hours;
 * false when the cache cannot vouch for them, or when they do not make all
 * of the window attributable: part of it before the first assignment, or a
 * meter shared with another vehicle. */
static bool add_meters(api_context *ctx, const vehicle_state_entry *v, int64_t from_ms,
                       int64_t to_ms, performance *p, edges *e, sums *ac)
{
    if (v->n_assignments == 0 || v->assignments[0].valid_from_ms > from_ms)
        return false;
    for (int i = 0, next; i < v->n_assignments; i = next) {
        const cached_assignment *a = &v->assignments[i];
        if (a->valid_from_ms < to_ms)
            snprintf(p->meter_id, sizeof p->meter_id, "%s", a->meter_id);
        /* Assigned to the same meter again (a fleet that announces its
         * assignments periodically): still one period on it, so its edges are
         * those of the stay, not of each announcement. */
        for (next = i + 1;
             next < v->n_assignments && strcmp(v->assignments[next].meter_id, a->meter_id) == 0;
             next++)
            ;
        int64_t lo = a->valid_from_ms > from_ms ? a->valid_from_ms : from_ms;
        int64_t hi = next < v->n_assignments && v->assignments[next].valid_from_ms < to_ms
                         ? v->assignments[next].valid_from_ms
                         : to_ms;
        if (lo < hi && (!state_cache_meter_alone(ctx->state, a->meter_id, v->vehicle_id, lo, hi) ||
                        !add_span(ctx, e, ac, READING_METER, a->meter_id, lo, hi)))
            return false;
    }
    return true;
}

/* Whether the summaries the report used are the database's: none changed
 * since the caches read them, or (while others change, as when the sinks
 * catch up on earlier hours) each hour used has the stamp the cache loaded. */
static bool summaries_current(api_context *ctx, const edges *e, const edge_freshness *f)
{
    if (!e->have_changed || e->changed == f->summaries_changed)
        return true;
    if (f->n_hours < 0)
        return false;
    for (int k = 0; k < e->n_used; k++)
        if (!rollup_cache_hours_current(ctx->rollups, e->generation, e->used[k].kind,
                                        e->used[k].lo, e->used[k].hi, f->hours, f->n_hours))
            return false;
    return true;
}

/* Whether what the caches said holds at the moment the edges were read: the
 * summaries used are current, no assignment arrived since the caches were
 * read, and no summary the report used is of an hour dirty now (a late
 * reading stored for it); hours the caches knew dirty were read raw. */
static bool cache_current(api_context *ctx, const edges *e, const vehicle_state_entry *v,
                          const edge_freshness *f)
{
    if (!summaries_current(ctx, e, f) || v->assignment_stored != f->assignment_stored ||
        f->n_dirty < 0)
        return false;
    for (int i = 0; i < f->n_dirty; i++)
        for (int k = 0; k < e->n_used; k++)
            if (e->used[k].kind == f->dirty[i].kind && e->used[k].lo <= f->dirty[i].hour &&
                f->dirty[i].hour < e->used[k].hi)
                return false;
    return true;
}

/* The hours the report used, per stream, for the database to give their
 * stamps. */
static edge_hours hours_used(const edges *e)
{
    edge_hours h = {.changed = e->have_changed ? e->changed : DB_STAMP_UNKNOWN};
    for (int k = 0; k < e->n_used; k++)
        edge_hours_widen(&h, e->used[k].kind, e->used[k].lo, e->used[k].hi);
    return h;
}

/* The edges' sums: those of settled ranges from the memo when read under the
 * stamp their hour has in the cache (cache_current then holds the database to
 * it too), the others from the history. With none to read, the database is
 * asked nothing when the notices vouch for the caches (vouched; *asked_db
 * then false); else it says whether the caches are as current as it is, so that a
 * reading stored a moment ago counts. */
static int sum_edges(api_context *ctx, edges *e, bool vouched, edge_freshness *fresh,
                     bool *asked_db)
{
    edge_range asked[MAX_EDGES];
    int where[MAX_EDGES], n = 0;
    for (int i = 0; i < e->n; i++) {
        db_stamp stamp;
        e->remembered[i] = is_settled(e, i) && edge_memo_get(ctx->memo, &e->r[i], &stamp) &&
                           stamp == e->hour_stamp[i];
        if (!e->remembered[i]) {
            where[n] = i;
            asked[n++] = e->r[i];
        }
    }
    *asked_db = n > 0 || !vouched;
    if (!*asked_db)
        return 0;
    edge_hours used = hours_used(e);
    int status = edge_batch_sum(ctx->edges, asked, n, &used, fresh);
    for (int k = 0; status == 0 && k < n; k++)
        e->r[where[k]] = asked[k];
    return status;
}

int performance_from_caches(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                            int64_t from_ms, int64_t to_ms, performance *p)
{
    vehicle_state_entry v;
    edges e = {.quiet = true};
    sums ac = {0}, dc = {0};
    if (!ctx->state || !ctx->rollups || !ctx->edges ||
        !state_cache_vehicle(ctx->state, vehicle_id, &v, true) ||
        !add_meters(ctx, &v, from_ms, to_ms, p, &e, &ac) ||
        !add_span(ctx, &e, &dc, READING_VEHICLE, vehicle_id, from_ms, to_ms))
        return 0;
    /* Unknown here may be only not cached yet: the database says which. */
    if (e.overflow || (!v.has_state && !p->meter_id[0]))
        return 0;
    /* Both caches hear of each change as it commits: the summaries' notices
     * named none of the hours used, and the state cache has applied every
     * assignment announced. What they hold is then the database's but for
     * the last milliseconds' commits, as on the state route. */
    bool vouched = e.quiet && v.following;
    edge_freshness fresh;
    bool asked_db;
    int status = sum_edges(ctx, &e, vouched, &fresh, &asked_db);
    if (status) {
        data_respond_error(resp, status);
        return -1;
    }
    if (asked_db && !cache_current(ctx, &e, &v, &fresh))
        return 0;
    p->from_memory = !asked_db;
    for (int i = 0; i < e.n; i++)
        if (is_settled(&e, i) && !e.remembered[i])
            edge_memo_put(ctx->memo, &e.r[i], e.hour_stamp[i]);
    for (int i = 0; i < e.n; i++) {
        sums *to = e.r[i].kind == READING_VEHICLE ? &dc : &ac;
        to->kwh += e.sign[i] * e.r[i].kwh;
        to->temp_sum += e.sign[i] * e.r[i].temp_sum;
        to->readings += e.sign[i] * e.r[i].readings;
    }
    p->attributable = (energy_share){.seconds = (double)(to_ms - from_ms) / 1000,
                                     .ac_kwh = ac.kwh,
                                     .ac_readings = ac.readings,
                                     .dc_kwh = dc.kwh,
                                     .dc_readings = dc.readings};
    p->temp_sum = dc.temp_sum;
    p->has_state = v.has_state;
    p->last_ms = v.ts_ms;
    p->soc = v.soc;
    p->battery_temp = v.battery_temp;
    p->has_voltage = p->meter_id[0] && state_cache_meter_voltage(ctx->state, p->meter_id, &p->voltage);
    return 1;
}

