/* The data layer's history sums, edge_batch.c's one statement: the ranges of
 * many requests in its parameters, their sums and the summaries' freshness in
 * its rows; see data.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "log.h"
#include "timefmt.h"

/* How current the summaries and assignments are: the dirty hours with their
 * streams, the newest summary change, the newest assignment stored. */
#define FRESHNESS_ROWS                                                                           \
    "SELECT 4, count(*), string_agg(stream || ':' || floor(extract(epoch FROM hour) / 3600), ',')" \
    "  FROM hourly_rollup_dirty"                                                                 \
    " UNION ALL SELECT 2, 0, " DATA_SUMMARIES_CHANGED "::text"                                  \
    " UNION ALL SELECT 3, 0, " DATA_ASSIGNMENTS_STORED "::text"

/* Each range joins its device's index in its own day partition(s): the
 * partitions are pruned per range at run time. Three more rows say how current
 * the summaries and assignments are, in the same snapshot. The tables come in
 * the order a replay's switch locks them (the histories, meter first, then the
 * others by name), which is the order this statement locks them in: against
 * the other order the two deadlocked (test_replay, in CI). */
static const char *const batch_sql =
    "SELECT 1, r.i, (SELECT row(coalesce(sum(h.kwh_consumed_ac), 0), count(*), 0)"
    "  FROM meter_history h"
    "  WHERE h.meter_id = r.id AND h.ts >= r.lo AND h.ts < r.hi)::text"
    " FROM unnest($4::text[], $5::timestamptz[], $6::timestamptz[]) WITH ORDINALITY r(id, lo, hi, i)"
    " UNION ALL "
    "SELECT 0, r.i, (SELECT row(coalesce(sum(h.kwh_delivered_dc), 0), count(*),"
    "    coalesce(sum(h.battery_temp), 0)) FROM vehicle_history h"
    "  WHERE h.vehicle_id = r.id AND h.ts >= r.lo AND h.ts < r.hi)::text"
    " FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY r(id, lo, hi, i)"
    " UNION ALL " FRESHNESS_ROWS;

/* When every range came from edge_memo.c: the freshness alone, without the
 * history's partitions to open (0.019 ms against 0.109 ms for the whole
 * statement, pg_stat_statements under bench/api.sh). */
static const char *const freshness_sql = FRESHNESS_ROWS;

/* When the newest change is not the one the caches had: the stamps of the
 * hours they used, meter hours [$1, $2) and vehicle hours [$3, $4), one more
 * than fit at most. A statement of its own, run only then: as a branch of the
 * one above, even skipped, it cost the performance report at rest a tenth of
 * its throughput and doubled its p99 (bench/api.sh, two runs of each build,
 * alternating). */
#define STRINGIFY(x) #x
#define STRINGIFY_VALUE(x) STRINGIFY(x)
static const char *const hour_stamps_sql =
    "SELECT floor(extract(epoch FROM hour) / 3600)::bigint, stream, eie_stamp(changed_at)"
    " FROM hourly_summary_change"
    " WHERE stream = 'meter' AND hour >= to_timestamp($1::bigint * 3600.0)"
    "     AND hour < to_timestamp($2::bigint * 3600.0)"
    "   OR stream = 'vehicle' AND hour >= to_timestamp($3::bigint * 3600.0)"
    "     AND hour < to_timestamp($4::bigint * 3600.0)"
    " LIMIT " STRINGIFY_VALUE(EDGE_MAX_HOUR_STAMPS) " + 1";

/* Appends one element of a text[] literal: quoted, with " and \ escaped. */
static void put_text_element(strbuf *b, bool first, const char *s)
{
    strbuf_putc(b, first ? '{' : ',');
    strbuf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            strbuf_putc(b, '\\');
        strbuf_putc(b, *s);
    }
    strbuf_putc(b, '"');
}

/* The dirty hours, "stream:hour,...", as hourly_rollup_dirty has them. */
static void read_dirty(edge_freshness *f, long count, const char *list)
{
    f->n_dirty = 0;
    if (count > EDGE_MAX_DIRTY) {
        f->n_dirty = -1;
        return;
    }
    for (const char *p = list; *p && f->n_dirty < EDGE_MAX_DIRTY;) {
        const char *colon = strchr(p, ':');
        if (!colon) {
            f->n_dirty = -1; /* not as written above: trust no cache */
            return;
        }
        char *end;
        f->dirty[f->n_dirty].kind = strncmp(p, "meter:", 6) == 0 ? READING_METER : READING_VEHICLE;
        f->dirty[f->n_dirty++].hour = strtoll(colon + 1, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
}

void data_sums_add(data_sums *bt, edge_range *r)
{
    int k = r->kind == READING_METER;
    bool first = bt->n[k] == 0;
    put_text_element(&bt->ids[k], first, r->id);
    char t[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(r->lo_ms, t);
    strbuf_putc(&bt->los[k], first ? '{' : ',');
    strbuf_puts(&bt->los[k], t);
    timefmt_format_rfc3339(r->hi_ms, t);
    strbuf_putc(&bt->his[k], first ? '{' : ',');
    strbuf_puts(&bt->his[k], t);
    bt->by_kind[k][bt->n[k]++] = r;
}

void data_sums_ask_hours(data_sums *bt, const edge_hours *h)
{
    edge_hours *to = &bt->asked;
    if (bt->n_asked++ == 0)
        *to = (edge_hours){.changed = h->changed};
    else if (to->changed != h->changed)
        to->changed = DB_STAMP_UNKNOWN; /* equal to none the database has */
    for (reading_kind k = READING_METER; k <= READING_VEHICLE; k++)
        edge_hours_widen(to, k, h->lo[k], h->hi[k]);
}

static int by_kind_and_hour(const void *a, const void *b)
{
    const hour_stamp *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->hour < y->hour ? -1 : x->hour > y->hour;
}

/* The stamps of the hours the batch's reports used, sorted, into fresh;
 * n_hours -1 when more than fit. 0, or the HTTP status to answer. */
static int read_hour_stamps(PGconn *conn, const edge_hours *asked, edge_freshness *fresh)
{
    char bounds[4][24];
    const char *params[4];
    for (int k = 0; k < 2; k++) {
        bool any = asked->lo[k] < asked->hi[k];
        snprintf(bounds[2 * k], sizeof bounds[0], "%lld", any ? (long long)asked->lo[k] : 0LL);
        snprintf(bounds[2 * k + 1], sizeof bounds[0], "%lld", any ? (long long)asked->hi[k] : 0LL);
        params[2 * k] = bounds[2 * k];
        params[2 * k + 1] = bounds[2 * k + 1];
    }
    int status = 0;
    PGresult *res = data_exec(conn, "hours' stamps", hour_stamps_sql, 4, params, &status);
    if (!res)
        return status;
    int rows = PQntuples(res);
    fresh->n_hours = rows > EDGE_MAX_HOUR_STAMPS ? -1 : rows;
    for (int i = 0; i < fresh->n_hours; i++) {
        hour_stamp *h = &fresh->hours[i];
        h->hour = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        h->kind = strcmp(PQgetvalue(res, i, 1), "meter") == 0 ? READING_METER : READING_VEHICLE;
        h->stamp = db_stamp_get(res, i, 2);
    }
    if (fresh->n_hours > 0)
        qsort(fresh->hours, (size_t)fresh->n_hours, sizeof *fresh->hours, by_kind_and_hour);
    PQclear(res);
    return 0;
}

/* A row of the sums as text, "(kwh,readings,temp_sum)". */
static bool parse_sums(const char *text, double *kwh, long long *n, double *temp)
{
    char *end;
    if (*text++ != '(')
        return false;
    *kwh = strtod(text, &end);
    if (end == text || *end != ',')
        return false;
    text = end + 1;
    *n = strtoll(text, &end, 10);
    if (end == text || *end != ',')
        return false;
    text = end + 1;
    *temp = strtod(text, &end);
    return end != text && end[0] == ')' && end[1] == '\0';
}

int data_sums_run(PGconn *conn, data_sums *bt, edge_freshness *fresh)
{
    const char *params[6];
    for (int k = 0; k < 2; k++) {
        if (bt->n[k] == 0) {
            strbuf_puts(&bt->ids[k], "{");
            strbuf_puts(&bt->los[k], "{");
            strbuf_puts(&bt->his[k], "{");
        }
        strbuf_putc(&bt->ids[k], '}');
        strbuf_putc(&bt->los[k], '}');
        strbuf_putc(&bt->his[k], '}');
        params[3 * k] = bt->ids[k].data;
        params[3 * k + 1] = bt->los[k].data;
        params[3 * k + 2] = bt->his[k].data;
    }
    int status = 0;
    PGresult *res = bt->n[0] + bt->n[1] == 0
                        ? data_exec(conn, "summaries' freshness", freshness_sql, 0, NULL, &status)
                        : data_exec(conn, "history sums", batch_sql, 6, params, &status);
    if (!res)
        return status;
    int rows = PQntuples(res);
    fresh->n_hours = -1;
    for (int i = 0; i < rows && status == 0; i++) {
        int k = atoi(PQgetvalue(res, i, 0));
        long at = strtol(PQgetvalue(res, i, 1), NULL, 10) - 1;
        if (k == 2 || k == 3) {
            *(k == 2 ? &fresh->summaries_changed : &fresh->assignment_stored) =
                db_stamp_get(res, i, 2);
            continue;
        }
        if (k == 4) {
            read_dirty(fresh, at + 1, PQgetvalue(res, i, 2));
            continue;
        }
        double kwh, temp;
        long long n;
        if (k < 0 || k > 1 || at < 0 || at >= bt->n[k] ||
            !parse_sums(PQgetvalue(res, i, 2), &kwh, &n, &temp)) {
            /* Cannot happen with the statement above: say so rather than guess. */
            log_error("history sums: unexpected row %d: %s %s %s", i, PQgetvalue(res, i, 0),
                      PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
            status = 503;
            break;
        }
        edge_range *r = bt->by_kind[k][at];
        r->kwh = kwh;
        r->readings = n;
        r->temp_sum = temp;
    }
    if (status == 0 && rows != bt->n[0] + bt->n[1] + 3) {
        log_error("history sums: %d rows for %d ranges", rows, bt->n[0] + bt->n[1]);
        status = 503;
    }
    PQclear(res);
    /* Later than the statement above, and as good: an hour's stamp only ever
     * moves on, so one the same as the cache's now was the same then. */
    if (status == 0 && bt->n_asked && fresh->summaries_changed != bt->asked.changed)
        status = read_hour_stamps(conn, &bt->asked, fresh);
    return status;
}

void data_sums_reset(data_sums *bt)
{
    for (int k = 0; k < 2; k++) {
        strbuf_reset(&bt->ids[k]);
        strbuf_reset(&bt->los[k]);
        strbuf_reset(&bt->his[k]);
        bt->n[k] = 0;
    }
    bt->n_asked = 0;
}

void data_sums_free(data_sums *bt)
{
    for (int k = 0; k < 2; k++) {
        strbuf_free(&bt->ids[k]);
        strbuf_free(&bt->los[k]);
        strbuf_free(&bt->his[k]);
    }
}
