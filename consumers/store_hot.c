/* The hot store: the latest reading of each device by event time, and the
 * vehicle-to-meter assignments with their history. A batch is folded in memory
 * to one reading per device, copied into a temporary table and merged with one
 * upsert that never lets an older reading replace a newer one. */
#include <stdlib.h>
#include <string.h>

#include "copy_rows.h"
#include "pg.h"
#include "sink.h"

typedef struct hot_state {
    const reading **sorted;
    size_t cap;
    strbuf copy;
} hot_state;

static int hot_prepare(sink_store *store, PGconn *conn, eie_err *err)
{
    /* ON COMMIT DELETE ROWS: the staging tables are empty at every batch start. */
    return pg_exec(conn,
                   "CREATE TEMP TABLE IF NOT EXISTS hot_meter (LIKE meter_state INCLUDING DEFAULTS) "
                   "ON COMMIT DELETE ROWS;"
                   "CREATE TEMP TABLE IF NOT EXISTS hot_vehicle (LIKE vehicle_state INCLUDING DEFAULTS) "
                   "ON COMMIT DELETE ROWS;"
                   "CREATE TEMP TABLE IF NOT EXISTS hot_assignment (LIKE vehicle_meter_assignment) "
                   "ON COMMIT DELETE ROWS",
                   err);
}

/* Orders by kind, then device, then newest first, so the first reading of each
 * device in the sorted run is the one to keep. */
static int compare_latest_first(const void *a, const void *b)
{
    const reading *x = *(const reading *const *)a, *y = *(const reading *const *)b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(reading_key(x), reading_key(y));
    if (c)
        return c;
    int64_t tx = reading_time_ms(x), ty = reading_time_ms(y);
    return tx > ty ? -1 : tx < ty ? 1 : 0;
}

static const char *const merge_sql[READING_KIND_COUNT] = {
    [READING_METER] =
        "INSERT INTO meter_state (meter_id, ts, kwh_consumed_ac, voltage) "
        "SELECT meter_id, ts, kwh_consumed_ac, voltage FROM hot_meter "
        "ON CONFLICT (meter_id) DO UPDATE SET ts = EXCLUDED.ts, "
        "kwh_consumed_ac = EXCLUDED.kwh_consumed_ac, voltage = EXCLUDED.voltage, "
        "updated_at = now() WHERE meter_state.ts < EXCLUDED.ts",
    [READING_VEHICLE] =
        "INSERT INTO vehicle_state (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp, charger_id) "
        "SELECT vehicle_id, ts, soc, kwh_delivered_dc, battery_temp, charger_id FROM hot_vehicle "
        "ON CONFLICT (vehicle_id) DO UPDATE SET ts = EXCLUDED.ts, soc = EXCLUDED.soc, "
        "kwh_delivered_dc = EXCLUDED.kwh_delivered_dc, battery_temp = EXCLUDED.battery_temp, "
        "charger_id = EXCLUDED.charger_id, updated_at = now() WHERE vehicle_state.ts < EXCLUDED.ts",
    /* The history takes every assignment; the current one only a newer one
     * (the newest per vehicle of the batch, since ON CONFLICT may touch a row
     * once per statement). */
    [READING_ASSIGNMENT] =
        "INSERT INTO vehicle_meter_assignment (vehicle_id, valid_from, meter_id) "
        "SELECT vehicle_id, valid_from, meter_id FROM hot_assignment "
        "ON CONFLICT (vehicle_id, valid_from) DO NOTHING;"
        "INSERT INTO vehicle_assignment_current (vehicle_id, meter_id, valid_from) "
        "SELECT DISTINCT ON (vehicle_id) vehicle_id, meter_id, valid_from FROM hot_assignment "
        "ORDER BY vehicle_id, valid_from DESC "
        "ON CONFLICT (vehicle_id) DO UPDATE SET meter_id = EXCLUDED.meter_id, "
        "valid_from = EXCLUDED.valid_from, updated_at = now() "
        "WHERE vehicle_assignment_current.valid_from < EXCLUDED.valid_from",
};
static const char *const staging_copy_sql[READING_KIND_COUNT] = {
    [READING_METER] =
        "COPY hot_meter (meter_id, ts, kwh_consumed_ac, voltage) FROM STDIN (FORMAT binary)",
    [READING_VEHICLE] = "COPY hot_vehicle (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp, "
                        "charger_id) FROM STDIN (FORMAT binary)",
    [READING_ASSIGNMENT] =
        "COPY hot_assignment (vehicle_id, valid_from, meter_id) FROM STDIN (FORMAT binary)",
};

static int hot_write(sink_store *store, PGconn *conn, const reading *rows, size_t n, eie_err *err)
{
    hot_state *st = store->state;
    if (n == 0) /* a batch of dead letters only */
        return 0;
    if (n > st->cap) {
        const reading **sorted = realloc(st->sorted, n * sizeof *sorted);
        if (!sorted) {
            eie_err_set(err, "out of memory folding a batch of %zu readings", n);
            return -1;
        }
        st->sorted = sorted;
        st->cap = n;
    }
    for (size_t i = 0; i < n; i++)
        st->sorted[i] = &rows[i];
    qsort(st->sorted, n, sizeof *st->sorted, compare_latest_first);

    size_t i = 0;
    while (i < n) {
        reading_kind kind = st->sorted[i]->kind;
        strbuf_reset(&st->copy);
        copy_rows_begin(&st->copy);
        const reading *prev = NULL;
        for (; i < n && st->sorted[i]->kind == kind; i++) {
            const reading *r = st->sorted[i];
            /* Assignments are history: every one is kept. Readings: newest only. */
            if (kind != READING_ASSIGNMENT && prev && strcmp(reading_key(prev), reading_key(r)) == 0)
                continue;
            copy_rows_append(&st->copy, r);
            prev = r;
        }
        copy_rows_end(&st->copy);
        if (pg_copy(conn, staging_copy_sql[kind], st->copy.data, st->copy.len, NULL, err) < 0 ||
            pg_exec(conn, merge_sql[kind], err) < 0)
            return -1;
    }
    return 0;
}

static void hot_destroy(sink_store *store)
{
    hot_state *st = store->state;
    free(st->sorted);
    strbuf_free(&st->copy);
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
    *store = (sink_store){"hot",
                          1u << READING_METER | 1u << READING_VEHICLE | 1u << READING_ASSIGNMENT,
                          hot_prepare,
                          hot_write,
                          NULL,
                          hot_destroy,
                          st};
    return store;
}
