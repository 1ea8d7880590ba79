/* The sink loop; see sink.h.
 *
 * Exactly-once: a batch's rows and the next offset of every partition it read
 * are committed in one PostgreSQL transaction, and on every assignment the
 * consumer starts each partition from the offset stored there, not from Kafka's
 * committed offsets (which are updated too, but only for lag tools). A crash
 * between the two commits repeats nothing and loses nothing.
 *
 * Two threads overlap the work: the main thread polls Kafka and decodes the
 * next batch while a writer thread stores the previous one, so PostgreSQL is
 * kept busy. Only the main thread hands batches over, and it touches the
 * database itself only after waiting for the writer to be idle (sink_drain), so
 * the one connection is never used by both at once. */
#include "sink.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "dead_letter.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "timefmt.h"

typedef struct partition_offset {
    reading_kind kind; /* which topic */
    int32_t partition;
    int64_t next;
    int64_t prev; /* what the store must hold for the batch to commit; -1: no row */
} partition_offset;

/* What the main thread knows of one partition. */
typedef struct partition_state {
    /* Assigned to this consumer: a message from any other (left in the local
     * queue after a revocation) is not ours to store. */
    unsigned char owned;
    unsigned char done; /* a replay has read its range */
    /* The next offset the store holds once every batch handed over so far has
     * committed (-1: no row). A batch commits only if the store still holds
     * the value its first message of the partition found here: a store whose
     * offsets moved under us (a replay's switch, or another instance that took
     * the partition) makes it re-read from what is stored instead. */
    int64_t pos;
    int64_t end; /* a replay's end (exclusive) */
} partition_state;

/* What one transaction stores: good readings, dead letters, and the next
 * offset of each partition the messages came from. */
typedef struct batch {
    reading *rows;
    size_t n_rows, cap_rows, n_messages;
    partition_offset *offsets;
    size_t n_offsets, cap_offsets;
    dead_list dead;
} batch;

typedef struct sink {
    const sink_config *cfg;
    sink_store *store;
    volatile sig_atomic_t *stop;
    kafka_topics topics;
    rd_kafka_t *rk;
    PGconn *conn;
    codec *codec;
    dead_letters *dead;
    batch batches[2];
    batch *collecting; /* the main thread's */
    partition_state *parts[READING_KIND_COUNT];
    int32_t parts_cap[READING_KIND_COUNT];
    sink_replay *replay;
    size_t replay_left; /* partitions whose range is not read yet */
    atomic_int fenced; /* the writer found the store's offsets moved */
    /* Hand-over to the writer thread. */
    pthread_t writer;
    int writer_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    batch *handed;     /* waiting for the writer */
    int writing, quit; /* the writer holds a batch; the writer should end */
    atomic_int writer_idle; /* read without the lock by collect_batch */
    metrics *metrics; /* for /metrics; labels hold the store's name */
    char labels[64];
    /* Totals, for the periodic progress line. */
    _Atomic uint64_t stored, batches_written;
    uint64_t skipped, last_stored;
    int64_t last_report_ms, next_housekeep_ms;
    int64_t now_ms; /* read once per poll, not per message */
} sink;

#define MAX_BACKOFF_MS 10000
#define PROGRESS_EVERY_MS 10000
#define DEAD_LETTER_TIMEOUT_MS 30000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleeps for the backoff, in small steps so that a stop request is not kept
 * waiting, and returns the next backoff. */
static long backoff(sink *s, long ms)
{
    for (long slept = 0; slept < ms && !*s->stop; slept += 100)
        sleep_ms(100);
    return ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : ms * 2;
}

static int topic_kind(const sink *s, const char *topic)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (strcmp(s->topics.name[k], topic) == 0)
            return k;
    return -1;
}

static void batch_clear(batch *b)
{
    b->n_rows = b->n_messages = b->n_offsets = 0;
    dead_list_clear(&b->dead);
}

static void batch_free(batch *b)
{
    free(b->rows);
    free(b->offsets);
    dead_list_free(&b->dead);
}

/* ---- PostgreSQL side (the writer's, or the main thread's after sink_drain) ---- */

static int db_ready(sink *s, eie_err *err)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    PQfinish(s->conn);
    s->conn = pg_connect(s->cfg->database_url, "eie-consumer", err);
    if (!s->conn)
        return -1;
    /* Asynchronous commit cannot break exactly-once here: a server crash may
     * lose the last commits, but it loses their offsets with their rows, and
     * the consumer reads those messages again. It spares a WAL flush per batch. */
    char search_path[160] = "";
    if (s->cfg->search_path)
        snprintf(search_path, sizeof search_path, "SET search_path TO %s", s->cfg->search_path);
    if (pg_exec(s->conn, "SET synchronous_commit = off", err) < 0 ||
        (search_path[0] && pg_exec(s->conn, search_path, err) < 0) ||
        s->store->prepare(s->store, s->conn, err) < 0) {
        PQfinish(s->conn);
        s->conn = NULL;
        return -1;
    }
    return 0;
}

#define FENCED (-2)

/* Locks the batch's rows of sink_offsets and checks that they still hold what
 * the batch follows on from; FENCED if not. */
static int check_offsets(sink *s, const batch *b, const char *topics, const char *parts,
                         eie_err *err)
{
    const char *params[] = {s->cfg->group, topics, parts};
    PGresult *res = PQexecParams(
        s->conn,
        "SELECT topic, partition, next_offset FROM sink_offsets "
        "WHERE consumer_group = $1 AND (topic, partition) IN "
        "(SELECT * FROM unnest($2::text[], $3::int[])) FOR UPDATE",
        3, NULL, params, NULL, NULL, 0);
    int rc = pg_check(res, PGRES_TUPLES_OK, "checking stored offsets", err);
    for (size_t i = 0; rc == 0 && i < b->n_offsets; i++) {
        const partition_offset *o = &b->offsets[i];
        int64_t stored = -1;
        for (int row = 0; row < PQntuples(res); row++)
            if (atoi(PQgetvalue(res, row, 1)) == o->partition &&
                strcmp(PQgetvalue(res, row, 0), s->topics.name[o->kind]) == 0)
                stored = strtoll(PQgetvalue(res, row, 2), NULL, 10);
        if (stored != o->prev) {
            eie_err_set(err,
                        "the stored offset of %s [%d] is %lld, not %lld: the store changed "
                        "under this consumer (a replay switched stores, or another instance "
                        "wrote the partition)",
                        s->topics.name[o->kind], (int)o->partition, (long long)stored,
                        (long long)o->prev);
            rc = FENCED;
        }
    }
    PQclear(res);
    return rc;
}

/* One statement for all partitions: arrays of topics, partitions and offsets. */
static int save_offsets(sink *s, const batch *b, eie_err *err)
{
    strbuf topics = STRBUF_INIT, parts = STRBUF_INIT, nexts = STRBUF_INIT;
    strbuf_putc(&topics, '{');
    strbuf_putc(&parts, '{');
    strbuf_putc(&nexts, '{');
    for (size_t i = 0; i < b->n_offsets; i++) {
        const partition_offset *o = &b->offsets[i];
        const char *sep = i ? "," : "";
        /* Kafka topic names are [a-zA-Z0-9._-]: nothing to escape in an array. */
        strbuf_printf(&topics, "%s\"%s\"", sep, s->topics.name[o->kind]);
        strbuf_printf(&parts, "%s%d", sep, (int)o->partition);
        strbuf_printf(&nexts, "%s%lld", sep, (long long)o->next);
    }
    strbuf_putc(&topics, '}');
    strbuf_putc(&parts, '}');
    strbuf_putc(&nexts, '}');
    int rc = check_offsets(s, b, topics.data, parts.data, err);
    if (rc < 0) {
        strbuf_free(&topics);
        strbuf_free(&parts);
        strbuf_free(&nexts);
        return rc;
    }
    const char *params[] = {s->cfg->group, topics.data, parts.data, nexts.data};
    PGresult *res = PQexecParams(
        s->conn,
        "INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) "
        "SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, o) "
        "ON CONFLICT (consumer_group, topic, partition) DO UPDATE "
        "SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        4, NULL, params, NULL, NULL, 0);
    rc = pg_check(res, PGRES_COMMAND_OK, "saving offsets", err);
    PQclear(res);
    strbuf_free(&topics);
    strbuf_free(&parts);
    strbuf_free(&nexts);
    return rc;
}

static int write_batch_once(sink *s, batch *b, eie_err *err)
{
    /* Dead letters first: once the offsets are committed, nothing would send
     * them again. */
    if (dead_letters_publish(s->dead, &b->dead, DEAD_LETTER_TIMEOUT_MS, err) < 0)
        return -1;
    if (db_ready(s, err) < 0)
        return -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int64_t t0 = timefmt_now_ms();
    int rc = -1;
    if ((!s->store->before_write ||
         s->store->before_write(s->store, s->conn, b->rows, b->n_rows, err) == 0) &&
        pg_exec(s->conn, "BEGIN", err) == 0 &&
        s->store->write(s->store, s->conn, b->rows, b->n_rows, err) == 0 &&
        (rc = save_offsets(s, b, err)) == 0) {
        int64_t t1 = timefmt_now_ms();
        if (pg_exec(s->conn, "COMMIT", err) == 0) {
            log_debug("batch: %zu messages, %zu rows; write %lld ms, commit %lld ms", b->n_messages,
                      b->n_rows, (long long)(t1 - t0), (long long)(timefmt_now_ms() - t1));
            struct timespec end;
            clock_gettime(CLOCK_MONOTONIC, &end);
            metrics_observe(s->metrics, "eie_consumer_batch_seconds", s->labels,
                            (double)(end.tv_sec - start.tv_sec) +
                                (double)(end.tv_nsec - start.tv_nsec) / 1e9);
            return 0;
        }
        rc = -1;
    }
    /* Leave the session clean for the retry: rolled back, and the store's
     * session state (such as partitions it believes exist) prepared anew. */
    if (PQstatus(s->conn) == CONNECTION_OK) {
        eie_err ignored;
        pg_exec(s->conn, "ROLLBACK", &ignored);
        if (s->store->prepare(s->store, s->conn, &ignored) < 0) {
            PQfinish(s->conn);
            s->conn = NULL;
        }
    }
    return rc == FENCED ? FENCED : -1;
}

/* Tells Kafka too, so that lag tools see progress; PostgreSQL stays the truth. */
static void commit_to_kafka(sink *s, const batch *b)
{
    if (s->replay) /* not a member of any group */
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)b->n_offsets);
    for (size_t i = 0; i < b->n_offsets; i++)
        rd_kafka_topic_partition_list_add(list, s->topics.name[b->offsets[i].kind],
                                          b->offsets[i].partition)
            ->offset = b->offsets[i].next;
    rd_kafka_commit(s->rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
}

/* Writes the batch, retrying with backoff while PostgreSQL is unavailable; the
 * consumer reads nothing new meanwhile, since the main thread waits for the
 * writer. Once asked to stop it gives up after a failed attempt: the batch is
 * then dropped unwritten, and read again on restart, since its offsets were
 * not stored. Clears the batch either way. */
static void write_batch(sink *s, batch *b)
{
    if (b->n_messages == 0)
        return;
    long wait_ms = 100;
    int attempts = 0, rc;
    eie_err err;
    while ((rc = write_batch_once(s, b, &err)) < 0) {
        if (rc == FENCED) {
            /* Dropped: the main thread seeks back to what the store holds. */
            log_warn("%s; dropping the batch of %zu messages and reading again from the "
                     "stored offsets",
                     err.msg, b->n_messages);
            s->fenced = 1;
            batch_clear(b);
            return;
        }
        attempts++;
        if (*s->stop) {
            log_warn("stopping with a batch of %zu messages unwritten (it will be read again): %s",
                     b->n_messages, err.msg);
            batch_clear(b);
            return;
        }
        log_error("writing a batch of %zu readings failed (attempt %d, retrying in %ld ms): %s",
                  b->n_rows, attempts, wait_ms, err.msg);
        wait_ms = backoff(s, wait_ms);
    }
    if (attempts)
        log_info("batch written after %d failed attempt%s", attempts, attempts == 1 ? "" : "s");
    commit_to_kafka(s, b);
    s->stored += b->n_rows;
    if (s->replay)
        s->replay->stored += b->n_rows;
    s->batches_written++;
    metrics_add(s->metrics, "eie_consumer_rows_written_total", s->labels, (double)b->n_rows);
    metrics_add(s->metrics, "eie_consumer_batches_total", s->labels, 1);
    if (attempts)
        metrics_add(s->metrics, "eie_consumer_batch_retries_total", s->labels, attempts);
    batch_clear(b);
}

static void *writer_main(void *arg)
{
    sink *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->handed && !s->quit)
            pthread_cond_wait(&s->changed, &s->lock);
        if (!s->handed)
            break;
        batch *b = s->handed;
        s->handed = NULL;
        s->writing = 1;
        s->writer_idle = 0;
        pthread_mutex_unlock(&s->lock);
        write_batch(s, b);
        pthread_mutex_lock(&s->lock);
        s->writing = 0;
        s->writer_idle = 1;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Waits until the writer has nothing in hand. */
static void sink_drain(sink *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->handed || s->writing)
        pthread_cond_wait(&s->changed, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

/* Gives the collected batch to the writer and continues with the other one,
 * which the writer has finished with by then. */
static void sink_hand_over(sink *s)
{
    if (s->collecting->n_messages == 0)
        return;
    sink_drain(s);
    pthread_mutex_lock(&s->lock);
    s->handed = s->collecting;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    s->collecting = s->collecting == &s->batches[0] ? &s->batches[1] : &s->batches[0];
}

/* ---- Kafka side (the main thread's) ---- */

/* The state of a partition, created on first use. */
static partition_state *part_of(sink *s, int kind, int32_t partition)
{
    if (partition >= s->parts_cap[kind]) {
        int32_t cap = partition + 64;
        partition_state *grown = realloc(s->parts[kind], (size_t)cap * sizeof *grown);
        if (!grown)
            abort();
        for (int32_t p = s->parts_cap[kind]; p < cap; p++)
            grown[p] = (partition_state){.pos = -1};
        s->parts[kind] = grown;
        s->parts_cap[kind] = cap;
    }
    return &s->parts[kind][partition];
}

/* Fills each partition's offset from sink_offsets, and marks the partitions
 * owned; a partition never stored starts at the beginning, since the topics
 * are the full history (a replay's start may say otherwise: see
 * replay_start). */
static int load_offsets(sink *s, rd_kafka_topic_partition_list_t *parts, eie_err *err)
{
    if (db_ready(s, err) < 0)
        return -1;
    const char *params[] = {s->cfg->group};
    PGresult *res = PQexecParams(
        s->conn, "SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1",
        1, NULL, params, NULL, NULL, 0);
    if (pg_check(res, PGRES_TUPLES_OK, "reading stored offsets", err) < 0) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        p->offset = RD_KAFKA_OFFSET_BEGINNING;
        for (int row = 0; row < PQntuples(res); row++) {
            if (strcmp(PQgetvalue(res, row, 0), p->topic) == 0 &&
                atoi(PQgetvalue(res, row, 1)) == p->partition) {
                p->offset = strtoll(PQgetvalue(res, row, 2), NULL, 10);
                break;
            }
        }
        int kind = topic_kind(s, p->topic);
        if (kind >= 0 && p->partition >= 0) {
            partition_state *st = part_of(s, kind, p->partition);
            st->owned = 1;
            st->pos = p->offset >= 0 ? p->offset : -1;
        }
    }
    PQclear(res);
    return 0;
}

static void disown(sink *s, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int kind = topic_kind(s, parts->elems[i].topic);
        if (kind >= 0 && parts->elems[i].partition >= 0)
            part_of(s, kind, parts->elems[i].partition)->owned = 0;
    }
}

static partition_state *owned_part(sink *s, int kind, int32_t partition)
{
    if (kind < 0 || partition < 0 || partition >= s->parts_cap[kind] ||
        !s->parts[kind][partition].owned)
        return NULL;
    return &s->parts[kind][partition];
}

static void replay_partition_done(sink *s, partition_state *part)
{
    if (!part->done) {
        part->done = 1;
        s->replay_left--;
    }
}

/* Both protocols: eager (everything revoked, then everything assigned) and
 * cooperative (only the partitions that move), the default. */
static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sink *s = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        sink_drain(s); /* the connection is ours now */
        eie_err err;
        long wait_ms = 100;
        while (load_offsets(s, parts, &err) < 0 && !*s->stop) {
            log_error("cannot read stored offsets (retrying in %ld ms): %s", wait_ms, err.msg);
            wait_ms = backoff(s, wait_ms);
        }
        if (*s->stop) /* stopping: acknowledged below, but nothing of them is stored */
            disown(s, parts);
        else
            log_info("assigned %d partition%s", parts->cnt, parts->cnt == 1 ? "" : "s");
        rd_kafka_error_t *error = NULL;
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (error) {
            log_error("assigning partitions: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        /* The partitions may go to another consumer: store what was read first. */
        sink_hand_over(s);
        sink_drain(s);
        disown(s, parts);
        log_info("revoked %d partition%s", parts->cnt, parts->cnt == 1 ? "" : "s");
        rd_kafka_error_t *error = NULL;
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        if (error) {
            log_error("revoking partitions: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
}

static void note_offset(batch *b, reading_kind kind, int32_t partition, int64_t next,
                        int64_t prev)
{
    for (size_t i = 0; i < b->n_offsets; i++) {
        if (b->offsets[i].kind == kind && b->offsets[i].partition == partition) {
            if (next > b->offsets[i].next)
                b->offsets[i].next = next;
            return;
        }
    }
    if (b->n_offsets == b->cap_offsets) {
        b->cap_offsets = b->cap_offsets ? b->cap_offsets * 2 : 64;
        b->offsets = realloc(b->offsets, b->cap_offsets * sizeof *b->offsets);
        if (!b->offsets)
            abort();
    }
    b->offsets[b->n_offsets++] = (partition_offset){kind, partition, next, prev};
}

static void skip_message(sink *s, const rd_kafka_message_t *msg, dead_reason reason,
                         const char *detail)
{
    s->skipped++;
    if (s->replay) { /* the live consumers sent it to the dead letters already */
        log_debug("replay: passing over %s [%d] at offset %lld (%s): %s",
                  rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset,
                  dead_reason_name(reason), detail);
        return;
    }
    log_warn("skipping %s [%d] at offset %lld (%s): %s; sent to %s", rd_kafka_topic_name(msg->rkt),
             (int)msg->partition, (long long)msg->offset, dead_reason_name(reason), detail,
             s->topics.dead_letter);
    dead_list_add(&s->collecting->dead, msg, reason, detail);
}

static dead_reason reason_of(codec_status status)
{
    return status == CODEC_ERR_FRAMING          ? DEAD_BAD_FRAMING
           : status == CODEC_ERR_UNKNOWN_SCHEMA ? DEAD_UNKNOWN_SCHEMA
                                                : DEAD_BAD_BODY;
}

static void take_message(sink *s, const rd_kafka_message_t *msg)
{
    int kind = topic_kind(s, rd_kafka_topic_name(msg->rkt));
    partition_state *part = owned_part(s, kind, msg->partition);
    if (!part)
        return;
    if (s->replay) {
        if (part->done || msg->offset >= part->end)
            return; /* beyond the range: not this replay's to store */
        s->replay->read++;
        if (msg->offset + 1 >= part->end)
            replay_partition_done(s, part);
    }
    batch *b = s->collecting;
    b->n_messages++;
    note_offset(b, (reading_kind)kind, msg->partition, msg->offset + 1, part->pos);
    part->pos = msg->offset + 1;

    if (b->n_rows == b->cap_rows) {
        b->cap_rows = b->cap_rows ? b->cap_rows * 2 : 1024;
        b->rows = realloc(b->rows, b->cap_rows * sizeof *b->rows);
        if (!b->rows)
            abort();
    }
    reading *r = &b->rows[b->n_rows];
    eie_err err;
    codec_status st = codec_decode(s->codec, msg->payload, msg->len, r, &err);
    if (st != CODEC_OK) {
        skip_message(s, msg, reason_of(st), err.msg);
        return;
    }
    if ((int)r->kind != kind) {
        eie_err_set(&err, "a %s reading on the %s topic", reading_kind_name(r->kind),
                    reading_kind_name((reading_kind)kind));
        skip_message(s, msg, DEAD_WRONG_TOPIC, err.msg);
        return;
    }
    /* "Now" is when the message was produced, not when it is read, so that a
     * replay judges a reading as the live consumer did. */
    rd_kafka_timestamp_type_t ts_type;
    int64_t produced_ms = rd_kafka_message_timestamp(msg, &ts_type);
    if (reading_validate(r, ts_type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? s->now_ms : produced_ms,
                         &err) < 0) {
        skip_message(s, msg, DEAD_INVALID, err.msg);
        return;
    }
    if (s->replay && s->replay->keep_to_ms) {
        int64_t t = reading_time_ms(r);
        if (t < s->replay->keep_from_ms || t >= s->replay->keep_to_ms)
            return; /* another day's: read, and passed over */
    }
    b->n_rows++;
}

/* Store upkeep between batches; a failure is logged and retried later. */
static void housekeep(sink *s)
{
    if (!s->store->housekeep || timefmt_now_ms() < s->next_housekeep_ms)
        return;
    sink_drain(s);
    eie_err err;
    if (db_ready(s, &err) < 0 || s->store->housekeep(s->store, s->conn, &err) < 0) {
        log_error("housekeeping failed (retrying in a minute): %s", err.msg);
        s->next_housekeep_ms = timefmt_now_ms() + 60000;
        return;
    }
    s->next_housekeep_ms = timefmt_now_ms() + s->cfg->housekeep_ms;
}

static void report_progress(sink *s, int force)
{
    int64_t now = timefmt_now_ms();
    if (!force && now - s->last_report_ms < PROGRESS_EVERY_MS)
        return;
    uint64_t stored = s->stored;
    if (stored != s->last_stored || force) {
        double secs = (double)(now - s->last_report_ms) / 1000.0;
        strbuf dead = STRBUF_INIT;
        for (int r = 0; r < DEAD_REASON_COUNT; r++) {
            uint64_t n = dead_letters_count(s->dead, (dead_reason)r);
            if (n)
                strbuf_printf(&dead, "%s%s %llu", dead.len ? ", " : " (",
                              dead_reason_name((dead_reason)r), (unsigned long long)n);
        }
        log_info("%s: %llu readings stored (%.0f/s) in %llu batches; %llu dead letters%s%s",
                 s->store->name, (unsigned long long)stored,
                 secs > 0 ? (double)(stored - s->last_stored) / secs : 0.0,
                 (unsigned long long)s->batches_written, (unsigned long long)s->skipped,
                 dead.len ? dead.data : "", dead.len ? ")" : "");
        strbuf_free(&dead);
    }
    s->last_stored = stored;
    s->last_report_ms = now;
}

static rd_kafka_t *open_consumer(sink *s, eie_err *err)
{
    /* A replay never joins the group (it assigns partitions itself), but
     * librdkafka's consumer API wants a group id. */
    char replay_group[300];
    snprintf(replay_group, sizeof replay_group, "%s.replay", s->cfg->group);
    /* Offsets are ours to manage (see the top of this file). */
    const kafka_setting defaults[] = {
        {"group.id", s->replay ? replay_group : s->cfg->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        /* A replay learns that it has read a partition's end from these. */
        {"enable.partition.eof", s->replay ? "true" : "false"},
        /* Readings are small, so librdkafka's per-message overhead, not their
         * bytes, fills memory: a 64 MB default prefetch queue holds over 300 MB.
         * These keep a consumer near 60 MB at full speed (bench/ingest.sh). A
         * replay reads the whole history as fast as it can: larger fetches
         * spare the broker requests. */
        {"queued.max.messages.kbytes", s->replay ? "16384" : "3072"},
        {"max.partition.fetch.bytes", s->replay ? "1048576" : "65536"},
        {"fetch.max.bytes", s->replay ? "16777216" : "1048576"},
        /* Instances joining or leaving move only the partitions that change hands. */
        {"partition.assignment.strategy", "cooperative-sticky"},
    };
    rd_kafka_conf_t *conf = kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0],
                                           s->cfg->bootstrap, s->cfg->kafka_props, err);
    if (!conf)
        return NULL;
    if (!s->replay)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, s);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eie_err_set(err, "creating the Kafka consumer: %s", errstr);
        return NULL;
    }
    /* rd_kafka_new() took ownership of conf. */
    rd_kafka_poll_set_consumer(rk);
    if (s->replay)
        return rk; /* see replay_start */

    rd_kafka_topic_partition_list_t *subscription = rd_kafka_topic_partition_list_new(3);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (s->store->kinds & (1u << k))
            rd_kafka_topic_partition_list_add(subscription, s->topics.name[k],
                                              RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subscription);
    if (e) {
        eie_err_set(err, "subscribing to %d topics: %s", subscription->cnt, rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(subscription);
        rd_kafka_destroy(rk);
        return NULL;
    }
    log_info("%s consumer (group %s) subscribed to %d topics at %s", s->store->name,
             s->cfg->group, subscription->cnt, s->cfg->bootstrap);
    rd_kafka_topic_partition_list_destroy(subscription);
    return rk;
}

/* The partitions of the store's topics. */
static rd_kafka_topic_partition_list_t *list_partitions(sink *s, eie_err *err)
{
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(64);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (!(s->store->kinds & (1u << k)))
            continue;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, s->topics.name[k], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (!e && (md->topic_cnt != 1 || md->topics[0].err))
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e) {
            eie_err_set(err, "reading the partitions of %s: %s", s->topics.name[k],
                        rd_kafka_err2str(e));
            if (md)
                rd_kafka_metadata_destroy(md);
            rd_kafka_topic_partition_list_destroy(all);
            return NULL;
        }
        const sink_replay *r = s->replay;
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int32_t id = md->topics[0].partitions[p].id;
            if (!r || r->shares <= 1 || id % r->shares == r->share)
                rd_kafka_topic_partition_list_add(all, s->topics.name[k], id);
        }
        rd_kafka_metadata_destroy(md);
    }
    return all;
}

/* Partitions the store holds no offset for start at the first message produced
 * at or after start_ms (at the end when there is none). */
static int seek_by_time(sink *s, rd_kafka_topic_partition_list_t *all, eie_err *err)
{
    rd_kafka_topic_partition_list_t *by_time = rd_kafka_topic_partition_list_new(all->cnt);
    for (int i = 0; i < all->cnt; i++)
        if (all->elems[i].offset == RD_KAFKA_OFFSET_BEGINNING)
            rd_kafka_topic_partition_list_add(by_time, all->elems[i].topic,
                                              all->elems[i].partition)
                ->offset = s->replay->start_ms;
    rd_kafka_resp_err_t e =
        by_time->cnt ? rd_kafka_offsets_for_times(s->rk, by_time, 10000) : RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; !e && i < by_time->cnt; i++) {
        if ((e = by_time->elems[i].err))
            break;
        rd_kafka_topic_partition_list_find(all, by_time->elems[i].topic,
                                           by_time->elems[i].partition)
            ->offset = by_time->elems[i].offset < 0 ? RD_KAFKA_OFFSET_END
                                                    : by_time->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(by_time);
    if (e)
        eie_err_set(err, "finding offsets by time: %s", rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* A replay's assignment: every partition of the store's topics, from the
 * offset stored in the replay's own store (or replay->start_ms) to its end. */
static int replay_start(sink *s, eie_err *err)
{
    sink_replay *r = s->replay;
    rd_kafka_topic_partition_list_t *all = list_partitions(s, err), *assign = NULL;
    int rc = -1;
    if (!all || load_offsets(s, all, err) < 0 || (r->start_ms > 0 && seek_by_time(s, all, err) < 0))
        goto done;
    assign = rd_kafka_topic_partition_list_new(all->cnt);
    uint64_t total = 0;
    for (int i = 0; i < all->cnt; i++) {
        rd_kafka_topic_partition_t *p = &all->elems[i];
        int kind = topic_kind(s, p->topic);
        int64_t lo, hi;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(s->rk, p->topic, p->partition, &lo, &hi, 10000);
        if (e) {
            eie_err_set(err, "reading the offsets of %s [%d]: %s", p->topic, (int)p->partition,
                        rd_kafka_err2str(e));
            goto done;
        }
        int64_t start = p->offset == RD_KAFKA_OFFSET_END ? hi : p->offset < 0 ? lo : p->offset;
        if (start < lo) {
            log_warn("%s [%d]: offsets %lld to %lld are gone (topic retention); replaying from "
                     "%lld",
                     p->topic, (int)p->partition, (long long)start, (long long)lo - 1,
                     (long long)lo);
            start = lo;
        }
        int64_t end = hi;
        if (r->ends) {
            end = start; /* not listed: nothing to read */
            for (size_t j = 0; j < r->n_ends; j++)
                if ((int)r->ends[j].kind == kind && r->ends[j].partition == p->partition)
                    end = r->ends[j].offset;
        }
        partition_state *st = part_of(s, kind, p->partition);
        st->end = end;
        st->done = start >= end;
        if (st->done)
            continue;
        s->replay_left++;
        total += (uint64_t)(end - start);
        rd_kafka_topic_partition_list_add(assign, p->topic, p->partition)->offset = start;
    }
    r->total = total;
    rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, assign);
    if (e)
        eie_err_set(err, "assigning partitions: %s", rd_kafka_err2str(e));
    else
        rc = 0;
done:
    if (all)
        rd_kafka_topic_partition_list_destroy(all);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    return rc;
}

/* After the writer found the store's offsets moved: drops what was collected
 * and reads again from what the store holds. */
static void reread_from_store(sink *s)
{
    sink_drain(s);
    batch_clear(s->collecting);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(s->rk, &parts) || !parts) {
        log_error("cannot read the assignment to seek back");
    } else {
        eie_err err;
        long wait_ms = 100;
        while (load_offsets(s, parts, &err) < 0 && !*s->stop) {
            log_error("cannot read stored offsets (retrying in %ld ms): %s", wait_ms, err.msg);
            wait_ms = backoff(s, wait_ms);
        }
        rd_kafka_error_t *error = *s->stop ? NULL : rd_kafka_seek_partitions(s->rk, parts, 10000);
        if (error) {
            log_error("seeking back: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else if (!*s->stop) {
            log_info("reading %d partition%s again from the offsets stored", parts->cnt,
                     parts->cnt == 1 ? "" : "s");
        }
    }
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    s->fenced = 0;
}

static int has_assignment(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int n = rd_kafka_assignment(rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts ? parts->cnt : 0;
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    return n > 0;
}

/* Before closing: librdkafka 2.0 can hang in rd_kafka_consumer_close when an
 * assignment arrives during the close (librdkafka issue 4527, fixed in 2.4;
 * seen here in test_scale_out). Leaving the group first and closing once
 * nothing is assigned avoids it. Messages still delivered meanwhile are not
 * stored: their offsets are not either, so the next owner reads them. */
#define LEAVE_GROUP_TIMEOUT_MS 10000

static void leave_group(sink *s)
{
    rd_kafka_resp_err_t e = rd_kafka_unsubscribe(s->rk);
    if (e)
        log_warn("leaving the group: %s", rd_kafka_err2str(e));
    for (int waited = 0; waited < LEAVE_GROUP_TIMEOUT_MS && has_assignment(s->rk); waited += 100) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(s->rk, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
}

/* A batch goes to an idle writer once it holds this share of batch_size: while
 * the writer is busy, batches grow to full size; while it waits, it gets work
 * sooner. Batch size so follows what PostgreSQL takes. */
#define EARLY_HAND_OVER_DIVISOR 8
#define CLOCK_EVERY_MESSAGES 64

/* Collects messages until the batch is full (or big enough for an idle writer)
 * or linger_ms have passed since its first message; returns early when no
 * message comes, so the caller's upkeep gets a turn. */
static void collect_batch(sink *s)
{
    int64_t first_ms = 0;
    batch *b = s->collecting;
    size_t early = (size_t)s->cfg->batch_size / EARLY_HAND_OVER_DIVISOR;
    int idle = 1;
    while (!*s->stop && b->n_messages < (size_t)s->cfg->batch_size &&
           !(s->replay && s->replay_left == 0) && !s->fenced) {
        if (b->n_messages >= early && b->n_messages > 0 && s->writer_idle)
            break;
        int timeout = 200;
        /* The clock every few messages: read per message, it cost several
         * percent of a replay (perf). */
        if (b->n_messages % CLOCK_EVERY_MESSAGES == 0 || idle)
            s->now_ms = timefmt_now_ms();
        if (b->n_messages) {
            int64_t left = first_ms + s->cfg->linger_ms - s->now_ms;
            if (left <= 0)
                break;
            timeout = left < timeout ? (int)left : timeout;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(s->rk, timeout);
        b = s->collecting; /* a rebalance inside the poll may have handed it over */
        idle = !msg;
        if (!msg) {
            if (b->n_messages == 0)
                return;
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* The end of the log (control records included) is past a replay's
             * range only if nothing of the range is left. */
            partition_state *part =
                owned_part(s, topic_kind(s, rd_kafka_topic_name(msg->rkt)), msg->partition);
            if (s->replay && part && msg->offset >= part->end)
                replay_partition_done(s, part);
        } else if (msg->err) {
            log_warn("kafka: %s", rd_kafka_message_errstr(msg));
        } else {
            if (b->n_messages == 0)
                first_ms = s->now_ms;
            take_message(s, msg);
        }
        rd_kafka_message_destroy(msg);
    }
}

/* At each scrape: dead letters by reason, and the lag of every assigned
 * partition (high watermark minus the position read), summed per topic. */
static void on_scrape(metrics *m, void *arg)
{
    sink *s = arg;
    char labels[160];
    for (int r = 0; r < DEAD_REASON_COUNT; r++) {
        snprintf(labels, sizeof labels, "%s,reason=\"%s\"", s->labels,
                 dead_reason_name((dead_reason)r));
        metrics_set(m, "eie_consumer_dead_letters_total", labels,
                    (double)dead_letters_count(s->dead, (dead_reason)r));
    }
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!s->rk || rd_kafka_assignment(s->rk, &parts) || !parts)
        return;
    rd_kafka_position(s->rk, parts);
    double lag[READING_KIND_COUNT] = {0};
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        int kind = topic_kind(s, parts->elems[i].topic);
        if (kind < 0 || rd_kafka_get_watermark_offsets(s->rk, parts->elems[i].topic,
                                                       parts->elems[i].partition, &lo, &hi))
            continue;
        int64_t pos = parts->elems[i].offset >= 0 ? parts->elems[i].offset : lo;
        if (hi > pos)
            lag[kind] += (double)(hi - pos);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (!(s->store->kinds & (1u << k)))
            continue;
        snprintf(labels, sizeof labels, "%s,topic=\"%s\"", s->labels, s->topics.name[k]);
        metrics_set(m, "eie_consumer_lag_messages", labels, lag[k]);
    }
}

static void describe_metrics(metrics *m)
{
    metrics_describe(m, "eie_consumer_rows_written_total", METRIC_COUNTER,
                     "readings committed to PostgreSQL");
    metrics_describe(m, "eie_consumer_batches_total", METRIC_COUNTER, "batches committed");
    metrics_describe(m, "eie_consumer_batch_retries_total", METRIC_COUNTER,
                     "failed attempts to write a batch (PostgreSQL unavailable)");
    metrics_describe(m, "eie_consumer_batch_seconds", METRIC_HISTOGRAM,
                     "time to write and commit one batch");
    metrics_describe(m, "eie_consumer_dead_letters_total", METRIC_COUNTER,
                     "messages sent to the dead-letter topic, by reason");
    metrics_describe(m, "eie_consumer_lag_messages", METRIC_GAUGE,
                     "messages in Kafka not yet read, by topic");
}

static int migrate(sink *s, eie_err *err)
{
    /* Waits for PostgreSQL at start, as it does during a run. */
    long wait_ms = 100;
    PGconn *conn;
    while (!(conn = pg_connect(s->cfg->database_url, "eie-consumer", err)) && !*s->stop) {
        log_error("%s (retrying in %ld ms)", err->msg, wait_ms);
        wait_ms = backoff(s, wait_ms);
    }
    int applied = conn ? pg_migrate(conn, err) : 0;
    PQfinish(conn);
    return applied < 0 || *s->stop ? -1 : 0;
}

int sink_run(const sink_config *cfg, sink_store *store, volatile sig_atomic_t *stop, eie_err *err)
{
    sink s = {.cfg = cfg, .store = store, .stop = stop, .last_report_ms = timefmt_now_ms()};
    s.collecting = &s.batches[0];
    s.writer_idle = 1;
    s.metrics = metrics_new();
    snprintf(s.labels, sizeof s.labels, "store=\"%s\"", store->name);
    describe_metrics(s.metrics);
    metrics_server *metrics_srv = NULL;
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.changed, NULL);
    s.replay = cfg->replay;
    int rc = -1;
    if (kafka_topics_init(&s.topics, cfg->topic_prefix, err) < 0 || !(s.codec = codec_new(err)) ||
        !(s.dead = dead_letters_open(cfg->bootstrap, cfg->kafka_props, s.topics.dead_letter,
                                     cfg->group, err)))
        goto done;
    if (cfg->migrate && migrate(&s, err) < 0)
        goto done;
    if (pthread_create(&s.writer, NULL, writer_main, &s) != 0) {
        eie_err_set(err, "cannot start the writer thread");
        goto done;
    }
    s.writer_started = 1;
    if (!(s.rk = open_consumer(&s, err)))
        goto done;
    if (cfg->metrics_port > 0) {
        metrics_on_scrape(s.metrics, on_scrape, &s);
        if (!(metrics_srv = metrics_serve(s.metrics, cfg->metrics_host, (int)cfg->metrics_port, err)))
            goto done;
        log_info("metrics on http://%s:%ld/metrics", cfg->metrics_host, cfg->metrics_port);
    }
    if (s.replay && replay_start(&s, err) < 0)
        goto done;
    while (!*stop && !(s.replay && s.replay_left == 0)) {
        housekeep(&s);
        collect_batch(&s);
        sink_hand_over(&s);
        if (s.fenced)
            reread_from_store(&s);
        if (!s.replay) /* a replay's caller shows its progress */
            report_progress(&s, 0);
    }
    if (!s.replay)
        log_info("stopping: writing the last batch and leaving the group");
    sink_hand_over(&s); /* one try each: see write_batch */
    sink_drain(&s);
    if (!s.replay)
        leave_group(&s);
    rd_kafka_consumer_close(s.rk);
    if (s.replay)
        s.replay->finished = !*stop && s.replay_left == 0 && !s.fenced;
    else
        report_progress(&s, 1);
    rc = 0;
done:
    metrics_server_stop(metrics_srv); /* before what its scrapes read goes away */
    if (s.writer_started) {
        pthread_mutex_lock(&s.lock);
        s.quit = 1;
        pthread_cond_broadcast(&s.changed);
        pthread_mutex_unlock(&s.lock);
        pthread_join(s.writer, NULL);
    }
    if (s.rk)
        rd_kafka_destroy(s.rk);
    PQfinish(s.conn);
    codec_free(s.codec);
    dead_letters_close(s.dead);
    batch_free(&s.batches[0]);
    batch_free(&s.batches[1]);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        free(s.parts[k]);
    metrics_free(s.metrics);
    pthread_mutex_destroy(&s.lock);
    pthread_cond_destroy(&s.changed);
    return rc;
}
