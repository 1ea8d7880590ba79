/* The hot store: the latest reading of each device by event time, and the
 * vehicle-to-meter assignments with their history. A batch is folded in memory
 * to one reading per device (a hash table: a replay's batches hold hundreds of
 * thousands), and merged with one upsert per kind, the readings passed as
 * arrays (array_params.h), that never lets an older reading replace a newer
 * one; between readings of the same time the first one stays, within a batch
 * as across batches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array_params.h"
#include "hot_notice.h"
#include "pg.h"
#include "reading_sql.h"
#include "sink.h"

typedef struct hot_state {
    const reading **newest; /* by (kind, device); NULL: a free slot */
    size_t cap;             /* a power of two, at least twice the batch */
    array_params params;
    strbuf merge_sql[READING_KIND_COUNT];
    hot_notice_writer notice; /* the readings the batch offers the state tables */
    strbuf notify_sql;
} hot_state;

static const char *const state_table[READING_KIND_COUNT] = {
    [READING_METER] = "meter_state", [READING_VEHICLE] = "vehicle_state"};
/* Nothing to set up: the readings come as parameters. (The temporary tables
 * of before, ON COMMIT DELETE ROWS, may linger in a session; they cost nothing
 * while no batch touches them.) */
static int hot_prepare(sink_store *store, PGconn *conn, eie_err *err)
{
    (void)store;
    (void)conn;
    (void)err;
    return 0;
}

/* Keeps r if it is the first reading of its device in the batch, or newer than
 * the one kept so far. */
static void fold(hot_state *st, const reading *r)
{
    size_t mask = st->cap - 1;
    for (size_t i = (size_t)reading_hash_id(r->kind, reading_key(r)) & mask;; i = (i + 1) & mask) {
        const reading *kept = st->newest[i];
        if (!kept) {
            st->newest[i] = r;
            return;
        }
        if (kept->kind == r->kind && strcmp(reading_key(kept), reading_key(r)) == 0) {
            if (reading_time_ms(r) > reading_time_ms(kept))
                st->newest[i] = r;
            return;
        }
    }
}

/* The upsert of the latest readings of a kind: never an older over a newer
 * one, and the first of the same time stays. */
static void build_state_merge(strbuf *sql, reading_kind kind)
{
    size_t n_fields;
    const char *device = reading_fields(kind, &n_fields)[0].column;
    strbuf_printf(sql, "INSERT INTO %s (", state_table[kind]);
    reading_sql_columns(sql, kind, "{}", ", ", 0);
    strbuf_printf(sql, ") SELECT * FROM ");
    array_params_unnest(sql, kind);
    strbuf_printf(sql, " ON CONFLICT (%s) DO UPDATE SET ", device);
    reading_sql_columns(sql, kind, "{} = EXCLUDED.{}", ", ", 1);
    strbuf_printf(sql, ", updated_at = now() WHERE %s.%s < EXCLUDED.%s", state_table[kind],
                  reading_sql_time_column(kind), reading_sql_time_column(kind));
}

/* The history takes every assignment; the current one only a newer one (the
 * newest per vehicle of the batch, since ON CONFLICT may touch a row once per
 * statement). */
static void build_assignment_merge(strbuf *sql)
{
    strbuf_puts(sql, "WITH a (");
    reading_sql_columns(sql, READING_ASSIGNMENT, "{}", ", ", 0);
    strbuf_puts(sql, ") AS (SELECT * FROM ");
    array_params_unnest(sql, READING_ASSIGNMENT);
    strbuf_puts(sql,
                "), history AS (INSERT INTO vehicle_meter_assignment (vehicle_id, valid_from, "
                "meter_id) SELECT vehicle_id, valid_from, meter_id FROM a "
                "ON CONFLICT (vehicle_id, valid_from) DO NOTHING) "
                "INSERT INTO vehicle_assignment_current (vehicle_id, meter_id, valid_from) "
                "SELECT DISTINCT ON (vehicle_id) vehicle_id, meter_id, valid_from FROM a "
                "ORDER BY vehicle_id, valid_from DESC "
                "ON CONFLICT (vehicle_id) DO UPDATE SET meter_id = EXCLUDED.meter_id, "
                "valid_from = EXCLUDED.valid_from, updated_at = now() "
                "WHERE vehicle_assignment_current.valid_from < EXCLUDED.valid_from");
}

static int write_kind(hot_state *st, PGconn *conn, reading_kind kind, const reading *rows,
                      size_t n, eie_err *err)
{
    array_params *p = &st->params;
    array_params_begin(p, kind);
    if (kind == READING_ASSIGNMENT) { /* history: every one is kept */
        for (size_t i = 0; i < n; i++)
            if (rows[i].kind == kind)
                array_params_add(p, &rows[i]);
    } else {
        for (size_t i = 0; i < st->cap; i++)
            if (st->newest[i] && st->newest[i]->kind == kind) {
                array_params_add(p, st->newest[i]);
                hot_notice_add(&st->notice, st->newest[i]);
            }
    }
    if (p->n_rows == 0)
        return 0;
    if (kind == READING_ASSIGNMENT)
        hot_notice_assignments(&st->notice);
    array_params_end(p);
    PGresult *res = PQexecParams(conn, st->merge_sql[kind].data, p->n_params, p->types, p->values,
                                 p->lengths, p->formats, 0);
    int rc = pg_check(res, PGRES_COMMAND_OK, "merging the latest readings", err);
    PQclear(res);
    return rc;
}

/* Past this share of PostgreSQL's notice queue in use, a commit gives its
 * stamp only. A listener that stays connected but stops reading (an API
 * process stopped by a debugger, a paused container) holds every notice
 * since; with the readings in them the queue (8 GB) would fill in about an
 * hour at 50,000 readings/s, and then every commit that notifies fails. A
 * stamp is some 20 bytes, and PostgreSQL keeps one of a transaction's
 * identical notices. */
#define NOTICE_QUEUE_FULL "0.05"

/* The commit's notices (hot_notice.h), delivered only if it commits, and
 * then after it. */
static int notify(hot_state *st, PGconn *conn, eie_err *err)
{
    const char *lists[HOT_NOTICE_MAX_NOTICES];
    int n = hot_notice_payloads(&st->notice, lists);
    strbuf_reset(&st->notify_sql);
    strbuf_puts(&st->notify_sql, "SELECT ");
    for (int i = 0; i < n; i++)
        strbuf_printf(&st->notify_sql,
                      "%spg_notify('" PG_HOT_STATE_CHANNEL "', stamp || "
                      "CASE WHEN crowded THEN '' ELSE $%d END)",
                      i ? ", " : "", i + 1);
    strbuf_puts(&st->notify_sql,
                " FROM (SELECT (extract(epoch FROM now()) * 1000000)::bigint::text AS stamp, "
                "pg_notification_queue_usage() >= " NOTICE_QUEUE_FULL " AS crowded) s");
    PGresult *res =
        PQexecParams(conn, st->notify_sql.data, n, NULL, lists, NULL, NULL, 0);
    int rc = pg_check(res, PGRES_TUPLES_OK, "announcing the commit", err);
    PQclear(res);
    return rc;
}

static int hot_write(sink_store *store, PGconn *conn, const reading *rows, size_t n, eie_err *err)
{
    hot_state *st = store->state;
    if (n == 0) /* a batch of dead letters only */
        return 0;
    if (n * 2 > st->cap) {
        size_t cap = 1024;
        while (cap < n * 2)
            cap *= 2;
        const reading **newest = realloc(st->newest, cap * sizeof *newest);
        if (!newest) {
            eie_err_set(err, "out of memory folding a batch of %zu readings", n);
            return -1;
        }
        st->newest = newest;
        st->cap = cap;
    }
    memset(st->newest, 0, st->cap * sizeof *st->newest);
    for (size_t i = 0; i < n; i++)
        if (rows[i].kind != READING_ASSIGNMENT)
            fold(st, &rows[i]);
    hot_notice_writer_reset(&st->notice);
    for (int kind = 0; kind < READING_KIND_COUNT; kind++)
        if (write_kind(st, conn, (reading_kind)kind, rows, n, err) < 0)
            return -1;
    return notify(st, conn, err);
}

static void hot_destroy(sink_store *store)
{
    hot_state *st = store->state;
    free(st->newest);
    array_params_free(&st->params);
    hot_notice_writer_free(&st->notice);
    strbuf_free(&st->notify_sql);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        strbuf_free(&st->merge_sql[k]);
    }
    free(st);
    free(store);
}

sink_store *store_hot_new(void)
{
    sink_store *store = calloc(1, sizeof *store);
    hot_state *st = calloc(1, sizeof *st);
    if (!store || !st) {
        free(store);
        free(st);
        return NULL;
    }
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (k == READING_ASSIGNMENT)
            build_assignment_merge(&st->merge_sql[k]);
        else
            build_state_merge(&st->merge_sql[k], (reading_kind)k);
    }
    *store = (sink_store){.name = "hot",
                          .kinds = 1u << READING_METER | 1u << READING_VEHICLE |
                                   1u << READING_ASSIGNMENT,
                          .prepare = hot_prepare,
                          .write = hot_write,
                          .destroy = hot_destroy,
                          .state = st};
    return store;
}
