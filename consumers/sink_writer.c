/* The writer threads: each stores a batch while the main thread collects the
 * next, so PostgreSQL is kept busy; with more than one, batches are written
 * at once on as many connections, and committed in the order they were read.
 * A batch's rows and the next offset of every partition it read are committed
 * in one transaction (exactly-once: see sink.c); dead letters are acknowledged
 * by Kafka before that commit, and those already on the topic from an earlier
 * attempt are not published again (dead_seen.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "offsets.h"
#include "pg.h"
#include "sink_internal.h"
#include "timefmt.h"

#define DEAD_LETTER_TIMEOUT_MS 30000

int sink_db_ready(sink_writer *w, eie_err *err)
{
    sink *s = w->s;
    if (w->conn && PQstatus(w->conn) == CONNECTION_OK)
        return 0;
    PQfinish(w->conn);
    char name[64]; /* pg_stat_activity tells the stores apart */
    snprintf(name, sizeof name, "eie-consumer %s", w->store->name);
    w->backend_pid = 0;
    w->conn = pg_connect(s->cfg->database_url, name, err);
    if (!w->conn)
        return -1;
    w->backend_pid = PQbackendPID(w->conn);
    /* Asynchronous commit cannot break exactly-once here: a server crash may
     * lose the last commits, but it loses their offsets with their rows, and
     * the consumer reads those messages again. It spares a WAL flush per batch. */
    char search_path[160] = "";
    if (s->cfg->search_path)
        snprintf(search_path, sizeof search_path, "SET search_path TO %s", s->cfg->search_path);
    if (pg_exec(w->conn, "SET synchronous_commit = off", err) < 0 ||
        (search_path[0] && pg_exec(w->conn, search_path, err) < 0) ||
        w->store->prepare(w->store, w->conn, err) < 0) {
        PQfinish(w->conn);
        w->conn = NULL;
        return -1;
    }
    return 0;
}

static int save_offsets(sink_writer *w, const batch *b, eie_err *err)
{
    sink *s = w->s;
    offsets_move *moves = malloc((b->n_offsets ? b->n_offsets : 1) * sizeof *moves);
    if (!moves)
        abort();
    for (size_t i = 0; i < b->n_offsets; i++) {
        const partition_offset *o = &b->offsets[i];
        moves[i] = (offsets_move){s->topics.name[o->kind], o->partition, o->prev, o->next};
    }
    int rc = offsets_advance(w->conn, s->cfg->group, moves, b->n_offsets, timefmt_now_ms(), err);
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

static int publish_dead_letters(sink *s, batch *b, eie_err *err)
{
    if (b->dead.n == 0)
        return 0;
    pthread_mutex_lock(&s->dead_lock);
    int rc = look_for_unsure(s, b, err) < 0 ||
                     dead_letters_publish(s->dead, &b->dead, s->seen, DEAD_LETTER_TIMEOUT_MS, err) < 0
                 ? -1
                 : 0;
    pthread_mutex_unlock(&s->dead_lock);
    return rc;
}

/* A batch whose rows are written waits, in its transaction, for the batches
 * before it to commit. One before it may meanwhile wait for a row of this one
 * (a reading in both, which this one inserted first): PostgreSQL cannot tell
 * that is a deadlock, since this one waits here, not in PostgreSQL. So every
 * TURN_CHECK_MS it asks whether it blocks an earlier batch's backend, and then
 * rolls back and waits holding nothing; past TURN_TIMEOUT_MS it does so in
 * any case (a wait through some other session). */
#define TURN_CHECK_MS 20
#define TURN_TIMEOUT_MS 10000

/* write_batch_once's outcomes besides 0, -1 and OFFSETS_MOVED. */
enum { TURN_LOST = -100, CHAIN_BROKEN = -101 };

/* Waits until every batch before seq is settled, for up to ms (-1: for
 * ever); returns whether they are. */
static bool wait_turn(sink *s, uint64_t seq, long ms)
{
    struct timespec until = timefmt_deadline(ms);
    pthread_mutex_lock(&s->lock);
    while (s->settled_seq + 1 < seq) {
        if (ms < 0)
            pthread_cond_wait(&s->changed, &s->lock);
        else if (pthread_cond_timedwait(&s->changed, &s->lock, &until) != 0)
            break;
    }
    bool turn = s->settled_seq + 1 >= seq;
    pthread_mutex_unlock(&s->lock);
    return turn;
}

static bool chain_broken(sink *s)
{
    pthread_mutex_lock(&s->lock);
    bool broken = s->chain_broken;
    pthread_mutex_unlock(&s->lock);
    return broken;
}

/* The batch's fate is known (stored, or dropped): the next may commit. Only
 * on its turn. */
static void settle(sink *s, const batch *b, bool dropped)
{
    pthread_mutex_lock(&s->lock);
    s->settled_seq = b->seq;
    if (dropped)
        s->chain_broken = true;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

/* Whether this writer's transaction blocks the backend of a writer holding an
 * earlier batch (-1: the question failed). */
static int blocks_an_earlier_batch(sink_writer *w, const batch *b, eie_err *err)
{
    sink *s = w->s;
    strbuf pids = STRBUF_INIT;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_writers; i++) {
        const sink_writer *o = &s->writers[i];
        if (o != w && o->current && o->current->seq < b->seq && o->backend_pid)
            strbuf_printf(&pids, "%s%d", pids.len ? "," : "{", (int)o->backend_pid);
    }
    pthread_mutex_unlock(&s->lock);
    if (pids.len == 0) {
        strbuf_free(&pids);
        return 0;
    }
    strbuf_putc(&pids, '}');
    const char *params[] = {pids.data};
    PGresult *res = PQexecParams(w->conn,
                                 "SELECT coalesce(bool_or(pg_backend_pid() = ANY(pg_blocking_pids(p))), "
                                 "false) FROM unnest($1::int[]) AS p",
                                 1, NULL, params, NULL, NULL, 0);
    strbuf_free(&pids);
    int rc = pg_check(res, PGRES_TUPLES_OK, "looking for batches waiting on this one", err);
    if (rc == 0)
        rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return rc;
}

/* Waits for the batch's turn, in its transaction: 1 on its turn, 0 when it
 * must roll back and wait holding nothing (see TURN_CHECK_MS), -1 on a
 * failure. */
static int wait_turn_holding(sink_writer *w, const batch *b, eie_err *err)
{
    for (long waited = 0; !wait_turn(w->s, b->seq, TURN_CHECK_MS); waited += TURN_CHECK_MS) {
        if (waited >= TURN_TIMEOUT_MS)
            return 0;
        int blocks = blocks_an_earlier_batch(w, b, err);
        if (blocks != 0)
            return blocks < 0 ? -1 : 0;
    }
    return 1;
}

/* Leaves the session clean for the retry: rolled back, and after a failure
 * the store's session state (such as partitions it believes exist) prepared
 * anew. */
static void roll_back(sink_writer *w, bool failed)
{
    if (PQstatus(w->conn) != CONNECTION_OK)
        return;
    eie_err ignored;
    pg_exec(w->conn, "ROLLBACK", &ignored);
    if (failed && w->store->prepare(w->store, w->conn, &ignored) < 0) {
        PQfinish(w->conn);
        w->conn = NULL;
    }
}

/* The rows first, then, on the batch's turn, what other batches touch too
 * (the store's finish, the offsets) and the commit. Batches commit in order,
 * so a partition's offsets move only forward, as with a single writer. */
static int write_batch_once(sink_writer *w, batch *b, eie_err *err)
{
    sink *s = w->s;
    sink_store *store = w->store;
    /* Dead letters first: once the offsets are committed, nothing would send
     * them again. */
    if (publish_dead_letters(s, b, err) < 0 || sink_db_ready(w, err) < 0)
        return -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int64_t t0 = timefmt_now_ms();
    int rc = -1;
    if ((store->before_write && store->before_write(store, w->conn, b->rows, b->n_rows, err) < 0) ||
        pg_exec(w->conn, "BEGIN", err) < 0 ||
        store->write(store, w->conn, b->rows, b->n_rows, err) < 0) {
        roll_back(w, true);
        return -1;
    }
    int turn = wait_turn_holding(w, b, err);
    if (turn <= 0) {
        roll_back(w, turn < 0);
        return turn < 0 ? -1 : TURN_LOST;
    }
    if (chain_broken(s)) {
        roll_back(w, false);
        return CHAIN_BROKEN;
    }
    int64_t t1 = timefmt_now_ms();
    if ((!store->finish || store->finish(store, w->conn, b->rows, b->n_rows, err) == 0) &&
        (rc = save_offsets(w, b, err)) == 0) {
        if (pg_exec(w->conn, "COMMIT", err) == 0) {
            log_debug("batch %llu: %zu messages, %zu rows; write %lld ms, turn and commit %lld ms",
                      (unsigned long long)b->seq, b->n_messages, b->n_rows, (long long)(t1 - t0),
                      (long long)(timefmt_now_ms() - t1));
            struct timespec end;
            clock_gettime(CLOCK_MONOTONIC, &end);
            metrics_observe(s->metrics, "eie_consumer_batch_seconds", s->labels,
                            (double)(end.tv_sec - start.tv_sec) +
                                (double)(end.tv_nsec - start.tv_nsec) / 1e9);
            return 0;
        }
        rc = -1;
    }
    roll_back(w, true);
    return rc == OFFSETS_MOVED ? OFFSETS_MOVED : -1;
}

/* Drops the batch unwritten, on its turn: it is read again (on restart, or
 * from the stored offsets). */
static void drop_batch(sink_writer *w, batch *b)
{
    wait_turn(w->s, b->seq, -1);
    settle(w->s, b, true);
    batch_clear(b);
}

/* Writes the batch, retrying with backoff while PostgreSQL (or the dead-letter
 * topic) is unavailable; the consumer reads nothing new meanwhile, since the
 * main thread waits for the writer, and /readyz says so once it lasts. Once
 * asked to stop it gives up after a failed attempt: the batch is then dropped
 * unwritten, and read again on restart, since its offsets were not stored.
 * Clears the batch either way. */
static void write_batch(sink_writer *w, batch *b)
{
    sink *s = w->s;
    long wait_ms = 100;
    int attempts = 0, rc;
    eie_err err;
    int64_t started_ms = timefmt_now_ms();
    while ((rc = write_batch_once(w, b, &err)) < 0) {
        if (rc == TURN_LOST) { /* not a failure: try again once it is its turn */
            log_debug("batch %llu: rolled back for a batch before it, which waits for one of "
                      "its rows",
                      (unsigned long long)b->seq);
            wait_turn(s, b->seq, -1);
            continue;
        }
        if (rc == CHAIN_BROKEN) {
            log_debug("dropping batch %llu: one before it was not stored",
                      (unsigned long long)b->seq);
            drop_batch(w, b);
            return;
        }
        if (rc == OFFSETS_MOVED) {
            /* Dropped: the main thread seeks back to what the store holds. */
            log_warn("%s; dropping the batch of %zu messages and reading again from the "
                     "stored offsets",
                     err.msg, b->n_messages);
            s->fenced = 1;
            drop_batch(w, b);
            return;
        }
        attempts++;
        sink_health_failed(w, b, started_ms, err.msg);
        if (*s->stop) {
            log_warn("stopping with a batch of %zu messages unwritten (it will be read again): %s",
                     b->n_messages, err.msg);
            drop_batch(w, b);
            return;
        }
        log_error("writing a batch of %zu messages (%zu readings, %zu dead letters) failed "
                  "(attempt %d, retrying in %ld ms): %s",
                  b->n_messages, b->n_rows, b->dead.n, attempts, wait_ms, err.msg);
        wait_ms = sink_backoff(s, wait_ms);
    }
    sink_health_committed(w);
    if (attempts)
        log_info("batch written after %d failed attempt%s", attempts, attempts == 1 ? "" : "s");
    sink_commit_note(s, b); /* Kafka is told too, so that lag tools see progress */
    settle(s, b, false);   /* after the note, which must follow the batches' order */
    if (s->seen) {
        pthread_mutex_lock(&s->dead_lock);
        for (size_t i = 0; i < b->n_offsets; i++) /* never read again by this group */
            dead_seen_forget_below(s->seen, s->topics.name[b->offsets[i].kind],
                                   b->offsets[i].partition, b->offsets[i].next);
        pthread_mutex_unlock(&s->dead_lock);
    }
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

static bool busy(const sink_writer *w)
{
    return w->handed || w->current;
}

/* An idle writer (NULL: none is); under the lock. */
static sink_writer *idle_writer(sink *s)
{
    for (int i = 0; i < s->n_writers; i++)
        if (!busy(&s->writers[i]))
            return &s->writers[i];
    return NULL;
}

static bool any_busy(const sink *s)
{
    for (int i = 0; i < s->n_writers; i++)
        if (busy(&s->writers[i]))
            return true;
    return false;
}

void *sink_writer_main(void *arg)
{
    sink_writer *w = arg;
    sink *s = w->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!w->handed && !s->quit)
            pthread_cond_wait(&s->changed, &s->lock);
        if (!w->handed)
            break;
        batch *b = w->handed;
        w->handed = NULL;
        w->current = b;
        pthread_mutex_unlock(&s->lock);
        write_batch(w, b);
        pthread_mutex_lock(&s->lock);
        w->current = NULL;
        s->writer_idle = !any_busy(s);
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
    while (any_busy(s))
        pthread_cond_wait(&s->changed, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

bool sink_writer_busy(sink *s)
{
    pthread_mutex_lock(&s->lock);
    bool b = any_busy(s);
    pthread_mutex_unlock(&s->lock);
    return b;
}

/* Waits up to ms for a writer to be idle; returns whether none is yet. */
static bool wait_writer(sink *s, long ms)
{
    struct timespec until = timefmt_deadline(ms);
    pthread_mutex_lock(&s->lock);
    while (!idle_writer(s) && pthread_cond_timedwait(&s->changed, &s->lock, &until) == 0)
        ;
    bool none = !idle_writer(s);
    pthread_mutex_unlock(&s->lock);
    return none;
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

/* A batch that no writer holds: with one more batch than writers, there is
 * one once the collected batch is handed over. Under the lock. */
static batch *free_batch(sink *s)
{
    for (int i = 0; i <= s->n_writers; i++) {
        batch *b = &s->batches[i];
        bool held = b == s->collecting;
        for (int k = 0; !held && k < s->n_writers; k++)
            held = s->writers[k].handed == b || s->writers[k].current == b;
        if (!held)
            return b;
    }
    abort(); /* cannot happen: see above */
}

void sink_hand_over(sink *s)
{
    if (s->collecting->n_messages == 0)
        return;
    pthread_mutex_lock(&s->lock);
    sink_writer *w;
    while (!(w = idle_writer(s)))
        pthread_cond_wait(&s->changed, &s->lock);
    s->collecting->seq = ++s->next_seq;
    w->handed = s->collecting;
    s->writer_idle = 0; /* from now, not from when the writer wakes */
    pthread_cond_broadcast(&s->changed);
    batch *next = free_batch(s);
    pthread_mutex_unlock(&s->lock);
    s->collecting = next;
}
