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
 * streams, the newest summary change, the newest assignment stored; and when
 * the newest change is not the one the caches had (CHANGED), the stamps of
 * the hours they used (meter hours [MLO, MHI), vehicle hours [VLO, VHI)),
 * one more than fit at most. The parameters' numbers are the statement's. */
#define FRESHNESS_ROWS(CHANGED, MLO, MHI, VLO, VHI)                                              \
    "SELECT 4, count(*), string_agg(stream || ':' || floor(extract(epoch FROM hour) / 3600), ',')" \
    "  FROM hourly_rollup_dirty"                                                                 \
    " UNION ALL SELECT 2, 0, " DATA_SUMMARIES_CHANGED "::text"                                  \
    " UNION ALL SELECT 3, 0, " DATA_ASSIGNMENTS_STORED "::text"                                 \
    " UNION ALL (SELECT 5, floor(extract(epoch FROM hour) / 3600)::bigint,"                      \
    "    stream || ':' || eie_stamp(changed_at) FROM hourly_summary_change"                     \
    "  WHERE " DATA_SUMMARIES_CHANGED " IS DISTINCT FROM " CHANGED "::bigint"                   \
    "    AND (stream = 'meter' AND hour >= to_timestamp(" MLO "::bigint * 3600.0)"              \
    "           AND hour < to_timestamp(" MHI "::bigint * 3600.0)"                              \
    "      OR stream = 'vehicle' AND hour >= to_timestamp(" VLO "::bigint * 3600.0)"            \
    "           AND hour < to_timestamp(" VHI "::bigint * 3600.0))"                             \
    "  LIMIT " HOUR_STAMPS_LIMIT ")"
#define STRINGIFY(x) #x
#define STRINGIFY_VALUE(x) STRINGIFY(x)
#define HOUR_STAMPS_LIMIT STRINGIFY_VALUE(EDGE_MAX_HOUR_STAMPS) " + 1"

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
    " UNION ALL " FRESHNESS_ROWS("$7", "$8", "$9", "$10", "$11");

/* When every range came from edge_memo.c: the freshness alone, without the
 * history's partitions to open (0.019 ms against 0.109 ms for the whole
 * statement, pg_stat_statements under bench/api.sh). */
static const char *const freshness_sql = FRESHNESS_ROWS("$1", "$2", "$3", "$4", "$5");

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
    if (bt->n_asked++ == 0) {
        *to = *h;
        return;
    }
    if (to->changed != h->changed)
        to->changed = DB_STAMP_UNKNOWN; /* equal to none the database has */
    for (int k = 0; k < 2; k++) {
        if (h->lo[k] >= h->hi[k])
            continue;
        if (to->lo[k] >= to->hi[k]) {
            to->lo[k] = h->lo[k];
            to->hi[k] = h->hi[k];
            continue;
        }
        if (h->lo[k] < to->lo[k])
            to->lo[k] = h->lo[k];
        if (h->hi[k] > to->hi[k])
            to->hi[k] = h->hi[k];
    }
}

/* An hour's stamp, "stream:stamp" after its hour, into fresh; false when
 * not as the statement writes it. */
static bool read_hour_stamp(edge_freshness *f, long long hour, const char *text)
{
    const char *colon = strchr(text, ':');
    if (!colon)
        return false;
    if (f->n_hours < 0 || f->n_hours == EDGE_MAX_HOUR_STAMPS) {
        f->n_hours = -1; /* more than fit: the caller cannot tell */
        return true;
    }
    char *end;
    hour_stamp *h = &f->hours[f->n_hours++];
    h->kind = strncmp(text, "meter:", 6) == 0 ? READING_METER : READING_VEHICLE;
    h->hour = hour;
    h->stamp = strtoll(colon + 1, &end, 10);
    return end != colon + 1 && *end == '\0';
}

static int by_kind_and_hour(const void *a, const void *b)
{
    const hour_stamp *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->hour < y->hour ? -1 : x->hour > y->hour;
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
    const char *params[11];
    char hours[5][24];
    const edge_hours *asked = &bt->asked;
    db_stamp changed = bt->n_asked ? asked->changed : DB_STAMP_UNKNOWN;
    snprintf(hours[0], sizeof hours[0], "%lld", (long long)changed);
    for (int k = 0; k < 2; k++) {
        bool any = bt->n_asked && asked->lo[k] < asked->hi[k];
        snprintf(hours[1 + 2 * k], sizeof hours[0], "%lld", any ? (long long)asked->lo[k] : 0LL);
        snprintf(hours[2 + 2 * k], sizeof hours[0], "%lld", any ? (long long)asked->hi[k] : 0LL);
    }
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
    for (int i = 0; i < 5; i++)
        params[6 + i] = hours[i];
    int status = 0;
    PGresult *res = bt->n[0] + bt->n[1] == 0
                        ? data_exec(conn, "summaries' freshness", freshness_sql, 5, params + 6, &status)
                        : data_exec(conn, "history sums", batch_sql, 11, params, &status);
    if (!res)
        return status;
    int rows = PQntuples(res), hour_rows = 0;
    fresh->n_hours = 0;
    for (int i = 0; i < rows && status == 0; i++) {
        int k = atoi(PQgetvalue(res, i, 0));
        long at = strtol(PQgetvalue(res, i, 1), NULL, 10) - 1;
        if (k == 5) {
            hour_rows++;
            if (!read_hour_stamp(fresh, at + 1, PQgetvalue(res, i, 2))) {
                log_error("history sums: unexpected hour stamp %s", PQgetvalue(res, i, 2));
                status = 503;
            }
            continue;
        }
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
    if (fresh->n_hours > 0)
        qsort(fresh->hours, (size_t)fresh->n_hours, sizeof *fresh->hours, by_kind_and_hour);
    if (status == 0 && rows - hour_rows != bt->n[0] + bt->n[1] + 3) {
        log_error("history sums: %d rows for %d ranges", rows, bt->n[0] + bt->n[1]);
        status = 503;
    }
    PQclear(res);
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
