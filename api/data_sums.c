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
}

void data_sums_free(data_sums *bt)
{
    for (int k = 0; k < 2; k++) {
        strbuf_free(&bt->ids[k]);
        strbuf_free(&bt->los[k]);
        strbuf_free(&bt->his[k]);
    }
}
