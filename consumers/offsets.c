/* sink_offsets access; see offsets.h. */
#include "offsets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "strbuf.h"

int offsets_read(PGconn *conn, const char *schema, const char *group, offsets_stored *out,
                 eie_err *err)
{
    /* Rows committed before committed_ms existed: updated_at, the server's
     * clock, is as good a bound within the dead-letter scan's margin. */
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT topic, partition, next_offset, coalesce(committed_ms, "
             "(extract(epoch FROM updated_at) * 1000)::bigint) FROM %s%ssink_offsets "
             "WHERE consumer_group = $1",
             schema ? schema : "", schema ? "." : "");
    const char *params[] = {group};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, "reading stored offsets", err) < 0) {
        PQclear(res);
        out->res = NULL;
        return -1;
    }
    out->res = res;
    return 0;
}

size_t offsets_count(const offsets_stored *stored)
{
    return stored->res ? (size_t)PQntuples(stored->res) : 0;
}

void offsets_row(const offsets_stored *stored, size_t i, const char **topic, int32_t *partition,
                 int64_t *next)
{
    *topic = PQgetvalue(stored->res, (int)i, 0);
    *partition = (int32_t)atoi(PQgetvalue(stored->res, (int)i, 1));
    *next = strtoll(PQgetvalue(stored->res, (int)i, 2), NULL, 10);
}

/* The partition's row; -1: none. */
static int find_row(const offsets_stored *stored, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < offsets_count(stored); i++) {
        const char *t;
        int32_t p;
        int64_t next;
        offsets_row(stored, i, &t, &p, &next);
        if (p == partition && strcmp(t, topic) == 0)
            return (int)i;
    }
    return -1;
}

int64_t offsets_find(const offsets_stored *stored, const char *topic, int32_t partition)
{
    int i = find_row(stored, topic, partition);
    return i < 0 ? -1 : strtoll(PQgetvalue(stored->res, i, 2), NULL, 10);
}

int64_t offsets_committed_ms(const offsets_stored *stored, const char *topic, int32_t partition)
{
    int i = find_row(stored, topic, partition);
    if (i < 0 || PQgetisnull(stored->res, i, 3))
        return -1;
    return strtoll(PQgetvalue(stored->res, i, 3), NULL, 10);
}

void offsets_release(offsets_stored *stored)
{
    PQclear(stored->res);
    stored->res = NULL;
}

/* Locks the rows of the moves' partitions and checks that they still hold
 * what the moves follow on from. */
static int check_prev(PGconn *conn, const char *group, const offsets_move *moves, size_t n,
                      const char *topics, const char *parts, eie_err *err)
{
    const char *params[] = {group, topics, parts};
    PGresult *res = PQexecParams(conn,
                                 "SELECT topic, partition, next_offset FROM sink_offsets "
                                 "WHERE consumer_group = $1 AND (topic, partition) IN "
                                 "(SELECT * FROM unnest($2::text[], $3::int[])) FOR UPDATE",
                                 3, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, "checking stored offsets", err) < 0) {
        PQclear(res);
        return -1;
    }
    offsets_stored locked = {res};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t stored = offsets_find(&locked, moves[i].topic, moves[i].partition);
        if (stored != moves[i].prev) {
            eie_err_set(err,
                        "the stored offset of %s [%d] is %lld, not %lld: the store changed "
                        "under this consumer (a replay switched stores, or another instance "
                        "wrote the partition)",
                        moves[i].topic, (int)moves[i].partition, (long long)stored,
                        (long long)moves[i].prev);
            rc = OFFSETS_MOVED;
        }
    }
    offsets_release(&locked);
    return rc;
}

/* One statement for all partitions: arrays of topics, partitions and offsets. */
int offsets_advance(PGconn *conn, const char *group, const offsets_move *moves, size_t n,
                    int64_t committed_ms, eie_err *err)
{
    strbuf topics = STRBUF_INIT, parts = STRBUF_INIT, nexts = STRBUF_INIT;
    strbuf_putc(&topics, '{');
    strbuf_putc(&parts, '{');
    strbuf_putc(&nexts, '{');
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? "," : "";
        /* Kafka topic names are [a-zA-Z0-9._-]: nothing to escape in an array. */
        strbuf_printf(&topics, "%s\"%s\"", sep, moves[i].topic);
        strbuf_printf(&parts, "%s%d", sep, (int)moves[i].partition);
        strbuf_printf(&nexts, "%s%lld", sep, (long long)moves[i].next);
    }
    strbuf_putc(&topics, '}');
    strbuf_putc(&parts, '}');
    strbuf_putc(&nexts, '}');
    int rc = check_prev(conn, group, moves, n, topics.data, parts.data, err);
    if (rc == 0) {
        char committed[24];
        snprintf(committed, sizeof committed, "%lld", (long long)committed_ms);
        const char *params[] = {group, topics.data, parts.data, nexts.data, committed};
        PGresult *res = PQexecParams(
            conn,
            "INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset, committed_ms) "
            "SELECT $1, t, p, o, $5 FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, o) "
            "ON CONFLICT (consumer_group, topic, partition) DO UPDATE "
            "SET next_offset = EXCLUDED.next_offset, committed_ms = EXCLUDED.committed_ms, "
            "updated_at = now()",
            5, NULL, params, NULL, NULL, 0);
        rc = pg_check(res, PGRES_COMMAND_OK, "saving offsets", err);
        PQclear(res);
    }
    strbuf_free(&topics);
    strbuf_free(&parts);
    strbuf_free(&nexts);
    return rc;
}
