/* eie-admin verify: compares the stores of two databases (a live one and one
 * rebuilt from the topics, say) device by device and day by day: row counts,
 * energy sums and a checksum of every row; the hot state device by device;
 * and the charging sessions as far as both stores have derived them. Exits 1
 * on any difference, listing the first ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "interrupt.h"
#include "log.h"
#include "pg.h"
#include "reading_sql.h"
#include "strbuf.h"
#include "verify.h"

/* Every column of a row but its device's, as text joined by '|': a checksum's
 * input that follows the description of the kind (reading.h). */
static void row_text(strbuf *sql, reading_kind kind)
{
    reading_sql_columns(sql, kind, "coalesce({}::text, '')", " || '|' || ", 1);
}

/* One line per (stream, device, day) of history and per device of state, in a
 * total order both sides share, so the two results merge like sorted lists. */
static void build_summary_sql(strbuf *sql)
{
    const char *meter_ts = reading_sql_time_column(READING_METER),
               *vehicle_ts = reading_sql_time_column(READING_VEHICLE),
               *valid_from = reading_sql_time_column(READING_ASSIGNMENT);
    strbuf_printf(sql, "SELECT * FROM ("
                       "SELECT 'history/meter' AS part, meter_id AS device,"
                       "       to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*) AS n,"
                       "       round(sum(kwh_consumed_ac)::numeric, 6)::text AS energy, md5(string_agg(",
                  meter_ts);
    row_text(sql, READING_METER);
    strbuf_printf(sql, ", ',' ORDER BY %s)) AS sum FROM meter_history GROUP BY 1, 2, 3 "
                       "UNION ALL "
                       "SELECT 'history/vehicle', vehicle_id,"
                       "       to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*),"
                       "       round(sum(kwh_delivered_dc)::numeric, 6)::text, md5(string_agg(",
                  meter_ts, vehicle_ts);
    row_text(sql, READING_VEHICLE);
    strbuf_printf(sql, ", ',' ORDER BY %s)) FROM vehicle_history GROUP BY 1, 2, 3 "
                       "UNION ALL "
                       "SELECT 'state/meter', meter_id, '', 1, kwh_consumed_ac::text, md5(",
                  vehicle_ts);
    row_text(sql, READING_METER);
    strbuf_printf(sql, ") FROM meter_state "
                       "UNION ALL "
                       "SELECT 'state/vehicle', vehicle_id, '', 1, kwh_delivered_dc::text, md5(");
    row_text(sql, READING_VEHICLE);
    strbuf_printf(sql, ") FROM vehicle_state "
                       "UNION ALL "
                       "SELECT 'assignments', vehicle_id, '', count(*), '', md5(string_agg(");
    row_text(sql, READING_ASSIGNMENT);
    strbuf_printf(
        sql,
        ", ',' ORDER BY %s)) FROM vehicle_meter_assignment GROUP BY 1, 2 "
        /* Sessions are derived after the fact (migration 011): compared up to
         * a time both stores have reached ($1, epoch seconds), energy rounded
         * as summaries and raw readings may add up in another order. */
        "UNION ALL "
        "SELECT 'sessions', vehicle_id, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*),"
        "       round(sum(dc_kwh)::numeric, 6)::text,"
        "       md5(string_agg(started_at::text || '|' || ended_at || '|' || readings || '|'"
        "                      || round(dc_kwh::numeric, 6) || '|' || round(ac_kwh::numeric, 6) || '|'"
        "                      || round(own_dc_kwh::numeric, 6) || '|' || meters::text, ','"
        "                      ORDER BY started_at))"
        "  FROM charging_session WHERE ended_at < to_timestamp($1::float8) GROUP BY 1, 2, 3"
        ") summary ORDER BY part COLLATE \"C\", device COLLATE \"C\", day COLLATE \"C\"",
        valid_from);
}

enum { COL_PART, COL_DEVICE, COL_DAY, COL_N, COL_ENERGY, COL_SUM };

/* How far a store's sessions are final, in epoch seconds: up to where its
 * housekeeping derived them (until), but not past an hour still to be
 * summarised again (late readings), a summary change or a late assignment it
 * has not taken in yet; less the gap, since a session that ended a gap
 * before that cannot grow any more. */
static const char *const sessions_final_sql =
    "SELECT CASE WHEN st.until IS NULL THEN '-infinity'::float8 ELSE extract(epoch FROM least("
    "  st.until, (SELECT min(hour) FROM hourly_rollup_dirty),"
    "  (SELECT min(c.hour) FROM hourly_summary_change c"
    "   WHERE c.changed_at > st.changes_seen AND c.hour < st.until),"
    "  (SELECT min(a.valid_from) FROM vehicle_meter_assignment a"
    "   WHERE a.stored_at > st.assignments_seen AND a.valid_from < st.until)) - st.gap) END "
    "FROM charging_session_state st";

static int sessions_final(const char *url, const char *which, double *out, eie_err *err)
{
    PGconn *conn = pg_connect(url, "eie-admin verify", err);
    if (!conn) {
        eie_err_prefix(err, "%s", which);
        return -1;
    }
    PGresult *res = admin_interrupt_watch(conn) ? PQexec(conn, sessions_final_sql) : NULL;
    admin_interrupt_watch(NULL);
    int rc = pg_check(res, PGRES_TUPLES_OK, which, err);
    if (rc == 0)
        *out = PQntuples(res) ? strtod(PQgetvalue(res, 0, 0), NULL) : -INFINITY;
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static PGresult *summarise(const char *url, const char *which, double sessions_until,
                           eie_err *err)
{
    PGconn *conn = pg_connect(url, "eie-admin verify", err);
    if (!conn) {
        eie_err_prefix(err, "%s", which);
        return NULL;
    }
    /* The whole comparison reads one consistent snapshot of each side. */
    pg_exec(conn, "SET TIME ZONE 'UTC'", err);
    char until[40];
    snprintf(until, sizeof until, "%.6f", sessions_until);
    const char *params[] = {isinf(sessions_until) ? "-infinity" : until};
    strbuf sql = STRBUF_INIT;
    build_summary_sql(&sql);
    PGresult *res = admin_interrupt_watch(conn)
                        ? PQexecParams(conn, sql.data, 1, NULL, params, NULL, NULL, 0)
                        : NULL;
    admin_interrupt_watch(NULL);
    strbuf_free(&sql);
    if (pg_check(res, PGRES_TUPLES_OK, which, err) < 0) {
        PQclear(res);
        res = NULL;
    }
    PQfinish(conn);
    return res;
}

static int compare_keys(const PGresult *a, int i, const PGresult *b, int j)
{
    for (int col = COL_PART; col <= COL_DAY; col++) {
        int c = strcmp(PQgetvalue(a, i, col), PQgetvalue(b, j, col));
        if (c)
            return c;
    }
    return 0;
}

static void describe(const PGresult *r, int row, char *buf, size_t size)
{
    snprintf(buf, size, "%s %s%s%s", PQgetvalue(r, row, COL_PART), PQgetvalue(r, row, COL_DEVICE),
             *PQgetvalue(r, row, COL_DAY) ? " " : "", PQgetvalue(r, row, COL_DAY));
}

int verify_stores(const char *url_a, const char *url_b, long max_listed, verify_result *out,
                  eie_err *err)
{
    memset(out, 0, sizeof *out);
    double until_a, until_b;
    if (sessions_final(url_a, "first database", &until_a, err) < 0 ||
        sessions_final(url_b, "second database", &until_b, err) < 0)
        return -1;
    double until = until_a < until_b ? until_a : until_b;
    PGresult *a = summarise(url_a, "first database", until, err);
    if (!a)
        return -1;
    PGresult *b = summarise(url_b, "second database", until, err);
    if (!b) {
        PQclear(a);
        return -1;
    }
    int i = 0, j = 0, na = PQntuples(a), nb = PQntuples(b);
    char what[256];
    while (i < na || j < nb) {
        int c = i >= na ? 1 : j >= nb ? -1 : compare_keys(a, i, b, j);
        const char *problem = NULL;
        char detail[512] = "";
        if (c < 0) {
            describe(a, i, what, sizeof what);
            problem = "only in the first";
            snprintf(detail, sizeof detail, "%s rows", PQgetvalue(a, i, COL_N));
            i++;
        } else if (c > 0) {
            describe(b, j, what, sizeof what);
            problem = "only in the second";
            snprintf(detail, sizeof detail, "%s rows", PQgetvalue(b, j, COL_N));
            j++;
        } else {
            describe(a, i, what, sizeof what);
            out->compared++;
            if (strcmp(PQgetvalue(a, i, COL_N), PQgetvalue(b, j, COL_N)) != 0 ||
                strcmp(PQgetvalue(a, i, COL_ENERGY), PQgetvalue(b, j, COL_ENERGY)) != 0 ||
                strcmp(PQgetvalue(a, i, COL_SUM), PQgetvalue(b, j, COL_SUM)) != 0) {
                problem = "differs";
                snprintf(detail, sizeof detail, "rows %s vs %s, energy %s vs %s, checksum %.8s vs %.8s",
                         PQgetvalue(a, i, COL_N), PQgetvalue(b, j, COL_N),
                         PQgetvalue(a, i, COL_ENERGY), PQgetvalue(b, j, COL_ENERGY),
                         PQgetvalue(a, i, COL_SUM), PQgetvalue(b, j, COL_SUM));
            }
            i++;
            j++;
        }
        if (problem) {
            out->differences++;
            if ((long)out->differences <= max_listed)
                printf("%s: %s (%s)\n", what, problem, detail);
        }
    }
    PQclear(a);
    PQclear(b);
    return 0;
}

int verify_main(int argc, char **argv)
{
    const char *url_a, *url_b;
    long max_listed;
    config_option options[] = {
        {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, &url_a, PG_DEFAULT_URL, 0, 0,
         "the first database (the live one, say)"},
        {"against", 'a', "EIE_VERIFY_AGAINST", CONFIG_STRING, &url_b, NULL, 0, 0,
         "the second database's URL (required)"},
        {"max-differences", 0, "EIE_VERIFY_MAX_DIFFERENCES", CONFIG_INT, &max_listed, "20", 0,
         1000000, "how many differences to list"},
    };
    config_spec spec = {"eie-admin verify", "--against URL [options]",
                        "Compares the stores of two databases: per device and day of history the\n"
                        "row count, the energy sum and a checksum of every row; per device the hot\n"
                        "state and the assignments; the charging sessions as far as both stores\n"
                        "have derived them. Exits 0 when they are identical, 1 when not\n"
                        "(listing the first differences) or when a database cannot be read, 2 on\n"
                        "bad usage.",
                        options, sizeof options / sizeof options[0], false, false};
    int first;
    config_result cr = config_parse(&spec, argc, argv, NULL, &first);
    if (cr != CONFIG_OK || !url_b) {
        if (cr == CONFIG_OK)
            fprintf(stderr, "eie-admin verify: --against (EIE_VERIFY_AGAINST) is required\n");
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    admin_interrupt_init();
    verify_result r;
    eie_err err;
    if (verify_stores(url_a, url_b, max_listed, &r, &err) < 0 || admin_interrupted()) {
        if (admin_interrupted())
            log_error("interrupted: the comparison under way was cancelled");
        else
            log_error("%s", err.msg);
        return 1;
    }
    printf("verify: %llu groups compared, %llu differences\n", (unsigned long long)r.compared,
           (unsigned long long)r.differences);
    return r.differences ? 1 : 0;
}
