/* The writer thread: stores one batch while the main thread collects the
 * next, so PostgreSQL is kept busy. A batch's rows and the next offset of every
 * partition it read are committed in one transaction (exactly-once: see
 * sink.c); dead letters are acknowledged by Kafka before that commit, and
 * those already on the topic from an earlier attempt are not published again
 * (dead_seen.h). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "offsets.h"
#include "pg.h"
#include "sink_internal.h"
#include "timefmt.h"

#define DEAD_LETTER_TIMEOUT_MS 30000

int sink_db_ready(sink *s, eie_err *err)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    PQfinish(s->conn);
    char name[64]; /* pg_stat_activity tells the stores apart */
    snprintf(name, sizeof name, "eie-consumer %s", s->store->name);
    s->conn = pg_connect(s->cfg->database_url, name, err);
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

static int save_offsets(sink *s, const batch *b, eie_err *err)
{
    offsets_move *moves = malloc((b->n_offsets ? b->n_offsets : 1) * sizeof *moves);
    if (!moves)
        abort();
    for (size_t i = 0; i < b->n_offsets; i++) {
        const partition_offset *o = &b->offsets[i];
        moves[i] = (offsets_move){s->topics.name[o->kind], o->partition, o->prev, o->next};
    }
    int rc = offsets_advance(s->conn, s->cfg->group, moves, b->n_offsets, timefmt_now_ms(), err);
    free(moves);
    return rc;
}

/* Dead letters of an earlier attempt that timed out may have been stored all
 * the same: those found on the topic are not published again. */
static int look_for_unsure(sink *s, batch *b, eie_err *err)
{
    if (!s->seen || b->dead.n_unsure == 0)
        return 0;
    dead_seen_source *sources = malloc(b->dead.n * sizeof *sources);
    if (!sources)
        abort();
    size_t n = dead_list_unsure(&b->dead, sources);
    int rc = dead_seen_scan(s->seen, sources, n, b->dead.first_sent_ms, err);
    free(sources);
    if (rc == 0)
        dead_list_unsure_checked(&b->dead);
    return rc;
}

static int write_batch_once(sink *s, batch *b, eie_err *err)
{
    /* Dead letters first: once the offsets are committed, nothing would send
     * them again. */
    if (look_for_unsure(s, b, err) < 0 ||
        dead_letters_publish(s->dead, &b->dead, s->seen, DEAD_LETTER_TIMEOUT_MS, err) < 0)
        return -1;
    if (sink_db_ready(s, err) < 0)
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
    return rc == OFFSETS_MOVED ? OFFSETS_MOVED : -1;
}

/* Writes the batch, retrying with backoff while PostgreSQL (or the dead-letter
 * topic) is unavailable; the consumer reads nothing new meanwhile, since the
 * main thread waits for the writer, and /readyz says so once it lasts. Once
 * asked to stop it gives up after a failed attempt: the batch is then dropped
 * unwritten, and read again on restart, since its offsets were not stored.
 * Clears the batch either way. */
static void write_batch(sink *s, batch *b)
{
    if (b->n_messages == 0)
        return;
    long wait_ms = 100;
    int attempts = 0, rc;
    eie_err err;
    int64_t started_ms = timefmt_now_ms();
    while ((rc = write_batch_once(s, b, &err)) < 0) {
        if (rc == OFFSETS_MOVED) {
            /* Dropped: the main thread seeks back to what the store holds. */
            log_warn("%s; dropping the batch of %zu messages and reading again from the "
                     "stored offsets",
                     err.msg, b->n_messages);
            s->fenced = 1;
            batch_clear(b);
            return;
        }
        attempts++;
        sink_health_failed(s, b, started_ms, err.msg);
        if (*s->stop) {
            log_warn("stopping with a batch of %zu messages unwritten (it will be read again): %s",
                     b->n_messages, err.msg);
            batch_clear(b);
            return;
        }
        log_error("writing a batch of %zu messages (%zu readings, %zu dead letters) failed "
                  "(attempt %d, retrying in %ld ms): %s",
                  b->n_messages, b->n_rows, b->dead.n, attempts, wait_ms, err.msg);
        wait_ms = sink_backoff(s, wait_ms);
    }
    sink_health_committed(s);
    if (attempts)
        log_info("batch written after %d failed attempt%s", attempts, attempts == 1 ? "" : "s");
    sink_commit_note(s, b); /* Kafka is told too, so that lag tools see progress */
    for (size_t i = 0; s->seen && i < b->n_offsets; i++) /* never read again by this group */
        dead_seen_forget_below(s->seen, s->topics.name[b->offsets[i].kind], b->offsets[i].partition,
                               b->offsets[i].next);
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

void *sink_writer_main(void *arg)
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
        if (s->poll_queue) /* the main thread may be waiting in a poll to hand over */
            rd_kafka_queue_yield(s->poll_queue);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

void sink_drain(sink *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->handed || s->writing)
        pthread_cond_wait(&s->changed, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

bool sink_writer_busy(sink *s)
{
    pthread_mutex_lock(&s->lock);
    bool busy = s->handed || s->writing;
    pthread_mutex_unlock(&s->lock);
    return busy;
}

/* Waits up to ms for the writer to be idle; returns whether it still is not. */
static bool wait_writer(sink *s, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while ((s->handed || s->writing) &&
           pthread_cond_timedwait(&s->changed, &s->lock, &until) == 0)
        ;
    bool busy = s->handed || s->writing;
    pthread_mutex_unlock(&s->lock);
    return busy;
}

/* A member that does not poll Kafka for max.poll.interval.ms (300 s by
 * default) is put out of the group, and its partitions go to others while it
 * still holds a batch of them. So while a batch fails to commit (PostgreSQL
 * down, the dead-letter topic refusing), the main thread, which has the next
 * batch ready, pauses its partitions (nothing more is fetched; what was
 * fetched and not yet polled is fetched again on resuming, from the position
 * polled) and keeps polling, which also serves rebalances. */
#define PAUSE_AFTER_MS 5000
#define POLL_PAUSED_EVERY_MS 500

void sink_hand_over_polling(sink *s)
{
    if (s->collecting->n_messages == 0)
        return;
    if (!s->replay && wait_writer(s, PAUSE_AFTER_MS) && !*s->stop) {
        sink_pause(s, true);
        while (wait_writer(s, POLL_PAUSED_EVERY_MS) && !*s->stop)
            sink_poll_paused(s);
        sink_pause(s, false);
    }
    sink_hand_over(s);
}

/* The other batch is free once the writer is idle: there are only two. */
void sink_hand_over(sink *s)
{
    if (s->collecting->n_messages == 0)
        return;
    sink_drain(s);
    pthread_mutex_lock(&s->lock);
    s->handed = s->collecting;
    s->writer_idle = 0; /* from now, not from when the writer thread wakes */
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    s->collecting = s->collecting == &s->batches[0] ? &s->batches[1] : &s->batches[0];
}
