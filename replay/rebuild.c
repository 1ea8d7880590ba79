/* The full rebuild of eie-replay; see rebuild.h. */
#include "rebuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hot_state.h"
#include "log.h"
#include "pg.h"
#include "replay_db.h"
#include "strbuf.h"
#include "timefmt.h"

/* Catch-up rounds go on while a round had more than this to read. */
#define CATCH_UP_RECORDS 20000
#define MAX_CATCH_UP_ROUNDS 5

static int schema_exists(PGconn *conn, const char *schema, bool *exists, eie_err *err)
{
    char got[8];
    const char *params[] = {schema};
    if (pg_query_value(conn, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", 1,
                       params, got, sizeof got, err) < 0)
        return -1;
    *exists = strcmp(got, "t") == 0;
    return 0;
}

/* The history's primary keys wait until the end of the build: one sorted
 * index build costs far less than keeping the index up to date row by row,
 * which took most of PostgreSQL's time (bench/replay.sh). Their definitions are
 * kept in eie_deferred_keys meanwhile, so that a resumed build restores them
 * too. */
static int defer_keys(PGconn *conn, eie_err *err)
{
    if (pg_exec(conn,
                "CREATE TABLE IF NOT EXISTS " REBUILD_SCHEMA ".eie_deferred_keys ("
                " tbl text PRIMARY KEY, conname text NOT NULL, def text NOT NULL);"
                "INSERT INTO " REBUILD_SCHEMA ".eie_deferred_keys "
                "SELECT r.relname, c.conname, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
                "WHERE r.relnamespace = '" REBUILD_SCHEMA "'::regnamespace AND c.contype = 'p' "
                "AND r.relname IN ('meter_history', 'vehicle_history') "
                "ON CONFLICT DO NOTHING",
                err) < 0)
        return -1;
    PGresult *res = PQexec(conn, "SELECT r.relname, c.conname FROM pg_constraint c "
                                 "JOIN pg_class r ON r.oid = c.conrelid "
                                 "JOIN " REBUILD_SCHEMA ".eie_deferred_keys k ON k.tbl = r.relname "
                                 "WHERE r.relnamespace = '" REBUILD_SCHEMA "'::regnamespace "
                                 "AND c.contype = 'p' AND c.conname = k.conname");
    int rc = pg_check(res, PGRES_TUPLES_OK, "listing the keys to defer", err);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = pg_exec_printf(conn, err, "ALTER TABLE " REBUILD_SCHEMA ".%s DROP CONSTRAINT %s",
                            PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    PQclear(res);
    return rc;
}

/* Adds the primary key to one partition. Readings repeated across batches are
 * still there (each batch stored only the first of its own): the key's build
 * fails on them, and then all but the one from the oldest transaction (the
 * first in the topics' order, as the live store keeps it) are deleted first. */
static int restore_partition_key(PGconn *conn, const char *part, const char *def, eie_err *err)
{
    strbuf sql = STRBUF_INIT;
    strbuf_printf(&sql, "ALTER TABLE " REBUILD_SCHEMA ".%s ADD CONSTRAINT %s_pkey %s", part, part,
                  def);
    PGresult *res = PQexec(conn, sql.data);
    int rc = pg_check(res, PGRES_COMMAND_OK, "adding a primary key", err);
    int repeated = rc < 0 && strcmp(pg_sqlstate(res), "23505") == 0;
    PQclear(res);
    if (repeated) {
        /* "PRIMARY KEY (vehicle_id, ts) INCLUDE (...)": the key's columns. */
        const char *open = strchr(def, '('), *close = open ? strchr(open, ')') : NULL;
        strbuf match = STRBUF_INIT;
        for (const char *c = open ? open + 1 : NULL; c && c < close;) {
            size_t len = strcspn(c, ",)");
            while (*c == ' ')
                c++, len--;
            strbuf_printf(&match, "a.%.*s = b.%.*s AND ", (int)len, c, (int)len, c);
            c += len + 1;
        }
        rc = pg_exec_printf(conn, err,
                            "DELETE FROM " REBUILD_SCHEMA ".%s a USING " REBUILD_SCHEMA ".%s b "
                            "WHERE %sage(a.xmin) < age(b.xmin)",
                            part, part, match.data ? match.data : "false AND ");
        strbuf_free(&match);
        if (rc == 0)
            rc = pg_exec(conn, sql.data, err);
    }
    strbuf_free(&sql);
    return rc;
}

/* Builds the history's primary keys, which the build goes without (see
 * defer_keys), removing readings repeated across batches first. */
static int restore_keys(PGconn *conn, eie_err *err)
{
    PGresult *keys = PQexec(conn, "SELECT tbl, conname, def FROM " REBUILD_SCHEMA
                                  ".eie_deferred_keys ORDER BY tbl");
    int rc = pg_check(keys, PGRES_TUPLES_OK, "reading the deferred keys", err);
    if (rc == 0)
        rc = pg_exec(conn, "SET maintenance_work_mem = '1GB'", err);
    for (int k = 0; rc == 0 && k < PQntuples(keys); k++) {
        const char *tbl = PQgetvalue(keys, k, 0), *conname = PQgetvalue(keys, k, 1),
                   *def = PQgetvalue(keys, k, 2);
        char parent[120];
        snprintf(parent, sizeof parent, REBUILD_SCHEMA ".%s", tbl);
        const char *params[] = {parent};
        PGresult *parts = PQexecParams(
            conn,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = $1::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') "
            "ORDER BY 1",
            1, NULL, params, NULL, NULL, 0);
        rc = pg_check(parts, PGRES_TUPLES_OK, "listing partitions", err);
        for (int i = 0; rc == 0 && i < PQntuples(parts); i++) {
            int64_t t0 = timefmt_now_ms();
            rc = restore_partition_key(conn, PQgetvalue(parts, i, 0), def, err);
            if (rc == 0)
                log_info("primary key of %s built in %.1f s", PQgetvalue(parts, i, 0),
                         (double)(timefmt_now_ms() - t0) / 1000.0);
        }
        PQclear(parts);
        /* The partitions' keys match: the parent's takes them over, no build. */
        if (rc == 0)
            rc = pg_exec_printf(conn, err,
                                "ALTER TABLE %s ADD CONSTRAINT %s %s;"
                                "DELETE FROM " REBUILD_SCHEMA ".eie_deferred_keys WHERE tbl = '%s'",
                                parent, conname, def, tbl);
    }
    PQclear(keys);
    if (rc == 0)
        rc = pg_exec(conn, "RESET maintenance_work_mem; DROP TABLE " REBUILD_SCHEMA ".eie_deferred_keys", err);
    return rc;
}

/* Prepares eie_rebuild: kept as it is when an interrupted build is there
 * (its offsets say where to go on), dropped first when restart; then migrated.
 * *resumed tells whether rows of an earlier run are there. */
static int prepare(PGconn *conn, bool restart, bool *resumed, eie_err *err)
{
    bool exists;
    char rows[32] = "0";
    *resumed = false;
    if (pg_exec(conn, "SET client_min_messages = warning", err) < 0 ||
        schema_exists(conn, REBUILD_SCHEMA, &exists, err) < 0 ||
        (exists && restart &&
         pg_exec(conn, "DROP SCHEMA " REBUILD_SCHEMA " CASCADE", err) < 0) ||
        pg_exec(conn, "CREATE SCHEMA IF NOT EXISTS " REBUILD_SCHEMA, err) < 0 ||
        pg_exec(conn, "SET search_path TO " REBUILD_SCHEMA, err) < 0)
        return -1;
    int applied = pg_migrate(conn, err);
    if (applied < 0 || pg_exec(conn, "RESET search_path", err) < 0 || defer_keys(conn, err) < 0 ||
        pg_query_value(conn, "SELECT count(*) FROM " REBUILD_SCHEMA ".sink_offsets", 0, NULL, rows,
                       sizeof rows, err) < 0)
        return -1;
    *resumed = exists && !restart && atol(rows) > 0;
    return 0;
}

/* The charging sessions of the rebuilt history, once both streams are
 * summarised, with the gap of the store it replaces (the consumers' setting). */
static int derive_sessions(const char *database_url, eie_err *err)
{
    PGconn *conn = pg_connect(database_url, "eie-replay", err);
    if (!conn)
        return -1;
    int rc = pg_exec(conn,
                     "SET search_path TO " REBUILD_SCHEMA ";"
                     "SELECT eie_refresh_sessions(coalesce((SELECT gap FROM "
                     "public.charging_session_state), interval '10 minutes'), 2147483647)",
                     err);
    PQfinish(conn);
    return rc;
}

/* Summarises every closed hour of the rebuilt history (006_hourly_rollups.sql),
 * both streams at once, on two connections: each is one pass over its
 * history that PostgreSQL runs on one core. */
static int summarise(const char *database_url, eie_err *err)
{
    static const char *const streams[] = {"meter", "vehicle"};
    PGconn *conns[2] = {NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SET search_path TO " REBUILD_SCHEMA ";"
                 "SELECT eie_rollup('15 minutes', 2147483647, '%s')",
                 streams[i]);
        if (!(conns[i] = pg_connect(database_url, "eie-replay", err)) || !PQsendQuery(conns[i], sql)) {
            if (conns[i])
                eie_err_set(err, "summarising hours: %s", PQerrorMessage(conns[i]));
            rc = -1;
        }
    }
    for (int i = 0; i < 2; i++) {
        PGresult *res;
        while (conns[i] && (res = PQgetResult(conns[i]))) {
            ExecStatusType st = PQresultStatus(res);
            if (rc == 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                rc = pg_check(res, PGRES_TUPLES_OK, "summarising hours", err);
            PQclear(res);
        }
        PQfinish(conns[i]);
    }
    return rc < 0 ? -1 : derive_sessions(database_url, err);
}

/* VACUUM (so that pages are all-visible and the analytics read indexes alone)
 * and ANALYZE the rebuilt tables, before they go live. */
static int vacuum(PGconn *conn, eie_err *err)
{
    return pg_exec(conn,
                   "VACUUM (ANALYZE) " REBUILD_SCHEMA ".meter_history, " REBUILD_SCHEMA
                   ".vehicle_history, " REBUILD_SCHEMA ".meter_state, " REBUILD_SCHEMA
                   ".vehicle_state, " REBUILD_SCHEMA ".vehicle_meter_assignment, " REBUILD_SCHEMA
                   ".vehicle_assignment_current, " REBUILD_SCHEMA ".meter_hourly, " REBUILD_SCHEMA
                   ".vehicle_hourly",
                   err);
}

/* Moves a table, with its partitions when it has some, or a view. */
static int move_relation(PGconn *conn, const char *from, const char *name, char relkind,
                         const char *to, eie_err *err)
{
    if (relkind == 'p') {
        char parent[200];
        snprintf(parent, sizeof parent, "%s.%s", from, name);
        const char *params[] = {parent};
        PGresult *res = PQexecParams(conn,
                                     "SELECT c.relname FROM pg_inherits i "
                                     "JOIN pg_class c ON c.oid = i.inhrelid "
                                     "WHERE i.inhparent = $1::regclass ORDER BY 1",
                                     1, NULL, params, NULL, NULL, 0);
        int rc = pg_check(res, PGRES_TUPLES_OK, "listing partitions", err);
        for (int i = 0; rc == 0 && i < PQntuples(res); i++)
            rc = pg_exec_printf(conn, err, "ALTER TABLE %s.%s SET SCHEMA %s", from,
                                PQgetvalue(res, i, 0), to);
        PQclear(res);
        if (rc < 0)
            return -1;
    }
    return pg_exec_printf(conn, err, "ALTER %s %s.%s SET SCHEMA %s",
                          relkind == 'v' ? "VIEW" : "TABLE", from, name, to);
}

/* The relations (partitions aside) or functions of the rebuilt store. */
static PGresult *rebuilt_objects(PGconn *conn, const char *sql, eie_err *err)
{
    PGresult *res = PQexec(conn, sql);
    if (pg_check(res, PGRES_TUPLES_OK, "listing the rebuilt tables", err) < 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

static int switch_in_transaction(PGconn *conn, const char *retired, eie_err *err)
{
    /* History first and offsets last, the order in which the consumers'
     * transactions take them, so that waiting for them cannot deadlock. */
    PGresult *rels = rebuilt_objects(
        conn,
        "SELECT c.relname, c.relkind, to_regclass('public.' || quote_ident(c.relname)) IS NOT NULL "
        "FROM pg_class c WHERE c.relnamespace = '" REBUILD_SCHEMA "'::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition "
        "ORDER BY c.relkind = 'p' DESC, c.relname = 'sink_offsets', c.relname",
        err);
    /* Functions go by name, every signature: a live one whose arguments have
     * since changed must not stay behind beside its successor. */
    PGresult *funcs = rels ? rebuilt_objects(
                                 conn,
                                 "SELECT p.proname, oidvectortypes(p.proargtypes), "
                                 "p.pronamespace = 'public'::regnamespace "
                                 "FROM pg_proc p WHERE p.proname IN (SELECT proname FROM pg_proc "
                                 "WHERE pronamespace = '" REBUILD_SCHEMA "'::regnamespace) "
                                 "AND p.pronamespace IN ('public'::regnamespace, '" REBUILD_SCHEMA
                                 "'::regnamespace) ORDER BY 3 DESC, 1",
                                 err)
                           : NULL;
    int rc = funcs ? 0 : -1;
    strbuf lock = STRBUF_INIT;
    for (int i = 0; rc == 0 && rels && i < PQntuples(rels); i++)
        if (*PQgetvalue(rels, i, 1) != 'v' && *PQgetvalue(rels, i, 2) == 't')
            strbuf_printf(&lock, "%spublic.%s", lock.len ? ", " : "LOCK TABLE ",
                          PQgetvalue(rels, i, 0));
    if (rc == 0 && lock.len) {
        strbuf_printf(&lock, " IN ACCESS EXCLUSIVE MODE");
        rc = replay_exec(conn, lock.data, err); /* REPLAY_VICTIM: the caller tries again */
    }
    strbuf_free(&lock);
    if (rc == 0)
        rc = pg_exec_printf(conn, err, "CREATE SCHEMA %s", retired);
    for (int i = 0; rc == 0 && i < PQntuples(rels); i++) {
        const char *name = PQgetvalue(rels, i, 0);
        char relkind = *PQgetvalue(rels, i, 1);
        if (*PQgetvalue(rels, i, 2) == 't')
            rc = move_relation(conn, "public", name, relkind, retired, err);
        if (rc == 0)
            rc = move_relation(conn, REBUILD_SCHEMA, name, relkind, "public", err);
    }
    /* The live ones first (ordered so), then the rebuilt ones take their place. */
    for (int i = 0; rc == 0 && i < PQntuples(funcs); i++) {
        const char *name = PQgetvalue(funcs, i, 0), *args = PQgetvalue(funcs, i, 1);
        if (*PQgetvalue(funcs, i, 2) == 't')
            rc = pg_exec_printf(conn, err, "ALTER FUNCTION public.%s(%s) SET SCHEMA %s", name, args,
                                retired);
        else
            rc = pg_exec_printf(conn, err,
                                "ALTER FUNCTION " REBUILD_SCHEMA ".%s(%s) SET SCHEMA public", name,
                                args);
    }
    PQclear(rels);
    PQclear(funcs);
    /* The API's rollup cache trusts what it holds while no notice names it:
     * every hour of the new store is news. Its state cache applies what the
     * hot store's notices carry: a stamp alone makes it read, and find the
     * tables replaced (hot_notice.h). */
    if (rc == 0)
        rc = pg_exec(conn,
                     "SELECT pg_notify('" PG_SUMMARIES_CHANNEL "', '*'), "
                     "pg_notify('" PG_HOT_STATE_CHANNEL "', "
                     "(extract(epoch FROM now()) * 1000000)::bigint::text)",
                     err);
    /* Not CASCADE: anything left in it was not moved, and must not vanish. */
    return rc == 0 ? pg_exec(conn, "DROP SCHEMA " REBUILD_SCHEMA, err) : rc;
}

/* The drop locks every old table in its own order, so a reader still
 * finishing a statement on them (an API request, a consumer's last batch
 * before it notices the switch) can make it a deadlock's victim: tried
 * again. */
static int drop_retired(PGconn *conn, const char *retired, eie_err *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", retired);
    for (int attempt = 1;; attempt++) {
        int rc = replay_exec(conn, sql, err);
        if (rc != REPLAY_VICTIM)
            return rc;
        if (attempt == REPLAY_VICTIM_ATTEMPTS)
            return -1;
        log_info("dropping %s: chosen as a deadlock's victim; trying again", retired);
        replay_victim_pause();
    }
}

/* The switch: in one transaction, every table, view and function of the store
 * in public moves to a schema eie_retired_<time> and those of eie_rebuild
 * take their place; the retired schema is dropped after the commit unless
 * keep_old. Consumers that wrote the old tables find their offsets changed
 * and read on from the rebuilt tables' offsets. *retired receives the name of
 * the schema that holds the old tables, or "" once they are dropped. */
static int switch_in(PGconn *conn, bool keep_old, char retired[64], eie_err *err)
{
    replay_retired_name(retired);
    for (int attempt = 1;; attempt++) {
        if (pg_exec(conn, "BEGIN; SET LOCAL lock_timeout = '30s'", err) < 0)
            return -1;
        int rc = switch_in_transaction(conn, retired, err);
        if (rc == 0 && pg_exec(conn, "COMMIT", err) == 0)
            break;
        eie_err ignored;
        pg_exec(conn, "ROLLBACK", &ignored);
        if (rc != REPLAY_VICTIM || attempt == REPLAY_VICTIM_ATTEMPTS)
            return -1;
        log_info("the switch was chosen as a deadlock's victim; trying again");
        replay_victim_pause();
    }
    /* Apart from the switch, whose locks would otherwise be held while the
     * files of every old table are removed (seconds, at full size). */
    if (!keep_old && drop_retired(conn, retired, err) < 0) {
        log_warn("the old tables are in schema %s and could not be dropped (%s): drop it by hand",
                 retired, err->msg);
        keep_old = true;
    }
    if (!keep_old)
        retired[0] = '\0';
    return 0;
}

/* Until the hot state is taken from the history (hot_state.h), the hot sink
 * reads the assignments alone, and the cold sinks' reads are the records'. */
static void read_readings_once(replay_job *jobs, size_t n_jobs, unsigned hot_kinds, bool once)
{
    jobs[0].store->kinds = once ? 1u << READING_ASSIGNMENT : hot_kinds;
    jobs[0].counts_records = true;
    for (size_t i = 1; i < n_jobs; i++)
        jobs[i].counts_records = once;
}

int replay_rebuild(PGconn *conn, replay_job *jobs, size_t n_jobs, bool restart, bool keep_old)
{
    eie_err err;
    bool resumed, hot_taken;
    int64_t start_ms = timefmt_now_ms();
    const char *hot_group = jobs[0].cfg.group, *cold_group = jobs[1].cfg.group;
    if (prepare(conn, restart, &resumed, &err) < 0 ||
        hot_state_taken(conn, hot_group, cold_group, &hot_taken, &err) < 0) {
        log_error("preparing schema %s: %s", REBUILD_SCHEMA, err.msg);
        return 1;
    }
    log_info("%s both stores into schema %s", resumed ? "resuming the rebuild of" : "rebuilding",
             REBUILD_SCHEMA);
    unsigned hot_kinds = jobs[0].store->kinds;
    read_readings_once(jobs, n_jobs, hot_kinds, !hot_taken);
    replay_totals totals = {0};
    int rc = replay_run_round(jobs, n_jobs, "rebuild", &totals, &err);
    /* What arrived meanwhile, in shorter rounds, then once more after the
     * vacuum: the switch then leaves the live consumers little to redo. */
    for (int round = 0;
         rc == 0 && totals.last_read > CATCH_UP_RECORDS && round < MAX_CATCH_UP_ROUNDS; round++)
        rc = replay_run_round(jobs, n_jobs, "catch-up", &totals, &err);
    if (rc == 0) {
        log_info("building the history's primary keys");
        int64_t t0 = timefmt_now_ms();
        if (restore_keys(conn, &err) < 0)
            rc = -1;
        else
            log_info("primary keys built in %.1f s", (double)(timefmt_now_ms() - t0) / 1000.0);
    }
    if (rc == 0 && !hot_taken) {
        if (hot_state_take(conn, hot_group, cold_group, &err) < 0)
            rc = -1;
        else
            read_readings_once(jobs, n_jobs, hot_kinds, false);
    }
    if (rc == 0) {
        int64_t t0 = timefmt_now_ms();
        if (summarise(jobs[0].cfg.database_url, &err) < 0)
            rc = -1;
        else
            log_info("hourly summaries built in %.1f s", (double)(timefmt_now_ms() - t0) / 1000.0);
    }
    if (rc == 0) {
        log_info("vacuuming and analysing the rebuilt tables");
        int64_t t0 = timefmt_now_ms();
        if (vacuum(conn, &err) < 0)
            rc = -1;
        else
            log_info("vacuumed in %.1f s", (double)(timefmt_now_ms() - t0) / 1000.0);
    }
    if (rc == 0)
        rc = replay_run_round(jobs, n_jobs, "catch-up", &totals, &err);
    if (rc == 1) {
        replay_log_interrupted();
        return 1;
    }
    char retired[64];
    int64_t switch_ms = timefmt_now_ms();
    if (rc < 0 || switch_in(conn, keep_old, retired, &err) < 0) {
        log_error("%s", err.msg);
        return 1;
    }
    switch_ms = timefmt_now_ms() - switch_ms;
    log_info("switched in %lld ms: the rebuilt stores are live; the old tables were %s%s",
             (long long)switch_ms, retired[0] ? "kept in schema " : "dropped", retired);
    replay_print_summary("rebuild", &totals, start_ms);
    return 0;
}
