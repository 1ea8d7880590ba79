/* The sink loop; see sink.h, and sink_internal.h for how its files divide
 * the work.
 *
 * Exactly-once: a batch's rows and the next offset of every partition it read
 * are committed in one PostgreSQL transaction, and on every assignment the
 * consumer starts each partition from the offset stored there, not from Kafka's
 * committed offsets (which are updated too, but only for lag tools). A crash
 * between the two commits repeats nothing and loses nothing.
 *
 * Threads overlap the work: the main thread polls Kafka and decodes the next
 * batch while writer threads store the previous ones, each on its own
 * connection, so PostgreSQL is kept busy; batches commit in the order they
 * were read (sink_writer.c). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pg.h"
#include "sink_internal.h"
#include "timefmt.h"

#define MAX_BACKOFF_MS 10000
#define PROGRESS_EVERY_MS 10000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

long sink_backoff(sink *s, long ms)
{
    for (long slept = 0; slept < ms && !*s->stop; slept += 100)
        sleep_ms(100);
    return ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : ms * 2;
}

int sink_topic_kind(const sink *s, const char *topic)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (strcmp(s->topics.name[k], topic) == 0)
            return k;
    return -1;
}

void batch_clear(batch *b)
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

/* Store upkeep between batches; a failure is logged and retried later. */
static void housekeep(sink *s)
{
    /* Not while a batch is failing to commit: waiting for it here would poll
     * Kafka no more (see sink_hand_over_polling). */
    if (!s->store->housekeep || timefmt_now_ms() < s->next_housekeep_ms || sink_writer_busy(s))
        return;
    sink_drain(s);
    eie_err err;
    sink_writer *w = &s->writers[0];
    if (sink_db_ready(w, &err) < 0 || s->store->housekeep(s->store, w->conn, &err) < 0) {
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

static int migrate(sink *s, eie_err *err)
{
    /* Waits for PostgreSQL at start, as it does during a run. */
    long wait_ms = 100;
    PGconn *conn;
    while (!(conn = pg_connect(s->cfg->database_url, "eie-consumer", err)) && !*s->stop) {
        log_error("%s (retrying in %ld ms)", err->msg, wait_ms);
        wait_ms = sink_backoff(s, wait_ms);
    }
    int applied = conn ? pg_migrate(conn, err) : 0;
    PQfinish(conn);
    return applied < 0 || *s->stop ? -1 : 0;
}

/* librdkafka 2.0 can still hang in rd_kafka_consumer_close when a rebalance
 * comes at the wrong moment (issue 4527; sink_leave_group avoids most of it).
 * By then every batch is committed in PostgreSQL, rows and offsets, so past
 * this deadline the process ends rather than wait for ever: the group drops
 * it when its session times out. */
#define CLOSE_DEADLINE_S 15

static void *close_watchdog(void *arg)
{
    (void)arg;
    sleep(CLOSE_DEADLINE_S);
    log_warn("closing the Kafka consumer has not finished after %d s (librdkafka issue 4527); "
             "every batch is committed, so stopping anyway",
             CLOSE_DEADLINE_S);
    log_flush();
    _exit(0);
}

int sink_run(const sink_config *cfg, sink_store *const *stores, int n_stores,
             volatile sig_atomic_t *stop, eie_err *err)
{
    sink s = {.cfg = cfg, .store = stores[0], .stop = stop, .last_report_ms = timefmt_now_ms()};
    s.n_writers = n_stores < 1 ? 1 : n_stores > SINK_MAX_WRITERS ? SINK_MAX_WRITERS : n_stores;
    for (int i = 0; i < s.n_writers; i++)
        s.writers[i] = (sink_writer){.s = &s, .store = stores[i]};
    s.collecting = &s.batches[0];
    s.writer_idle = 1;
    s.metrics = metrics_new();
    snprintf(s.labels, sizeof s.labels, "store=\"%s\"", s.store->name);
    sink_health_init(&s);
    metrics_server *metrics_srv = NULL;
    pthread_mutex_init(&s.lock, NULL);
    pthread_mutex_init(&s.commit_lock, NULL);
    pthread_mutex_init(&s.dead_lock, NULL);
    pthread_cond_init(&s.changed, NULL);
    s.replay = cfg->replay;
    int rc = -1;
    if (kafka_topics_init(&s.topics, cfg->topic_prefix, err) < 0 || !(s.codec = codec_new(err)) ||
        !(s.dead = dead_letters_open(cfg->bootstrap, cfg->kafka_props, s.topics.dead_letter,
                                     cfg->group, err)))
        goto done;
    if (!s.replay && !(s.seen = dead_seen_new(cfg->bootstrap, cfg->kafka_props,
                                              s.topics.dead_letter, cfg->group, err)))
        goto done;
    if (cfg->migrate && migrate(&s, err) < 0)
        goto done;
    for (int i = 0; i < s.n_writers; i++) {
        if (pthread_create(&s.writers[i].thread, NULL, sink_writer_main, &s.writers[i]) != 0) {
            eie_err_set(err, "cannot start writer thread %d", i + 1);
            goto done;
        }
        s.writers[i].started = 1;
    }
    if (!(s.rk = sink_open_consumer(&s, err)))
        goto done;
    s.poll_queue = rd_kafka_queue_get_consumer(s.rk);
    if (!(s.waker = fetch_waker_start(s.rk)))
        log_warn("cannot start the fetch waker's thread: fetching may pause for up to a second "
                 "whenever the prefetch queue is full");
    if (!(metrics_srv = sink_health_serve(&s, err)) && cfg->metrics_port > 0)
        goto done;
    if (s.replay && sink_replay_start(&s, err) < 0)
        goto done;
    while (!*stop && !(s.replay && s.replay_left == 0)) {
        housekeep(&s);
        sink_collect_batch(&s);
        sink_hand_over_polling(&s);
        if (!s.replay)
            sink_commit_tick(&s);
        if (s.fenced)
            sink_reread_from_store(&s);
        if (!s.replay) /* a replay's caller shows its progress */
            report_progress(&s, 0);
    }
    if (!s.replay)
        log_info("stopping: writing the last batch and leaving the group");
    sink_hand_over(&s); /* one try each: see write_batch */
    sink_drain(&s);
    fetch_waker_stop(s.waker);
    s.waker = NULL;
    pthread_t watchdog;
    bool watched = false;
    if (!s.replay) {
        sink_commit_final(&s);
        sink_leave_group(&s);
        watched = pthread_create(&watchdog, NULL, close_watchdog, NULL) == 0;
    }
    rd_kafka_consumer_close(s.rk);
    if (watched) {
        pthread_cancel(watchdog);
        pthread_join(watchdog, NULL);
    }
    if (s.replay)
        s.replay->finished = !*stop && s.replay_left == 0 && !s.fenced;
    else
        report_progress(&s, 1);
    rc = 0;
done:
    metrics_server_stop(metrics_srv); /* before what its scrapes read goes away */
    pthread_mutex_lock(&s.lock);
    s.quit = 1;
    pthread_cond_broadcast(&s.changed);
    pthread_mutex_unlock(&s.lock);
    for (int i = 0; i < s.n_writers; i++)
        if (s.writers[i].started)
            pthread_join(s.writers[i].thread, NULL);
    fetch_waker_stop(s.waker);
    if (s.poll_queue)
        rd_kafka_queue_destroy(s.poll_queue);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (s.topic_handles[k])
            rd_kafka_topic_destroy(s.topic_handles[k]);
    if (s.rk)
        rd_kafka_destroy(s.rk);
    for (int i = 0; i < s.n_writers; i++)
        PQfinish(s.writers[i].conn);
    for (int i = 0; i <= s.n_writers; i++)
        batch_free(&s.batches[i]);
    codec_free(s.codec);
    dead_letters_close(s.dead);
    dead_seen_free(s.seen);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        free(s.parts[k]);
    metrics_free(s.metrics);
    sink_health_free(&s);
    pthread_mutex_destroy(&s.lock);
    pthread_mutex_destroy(&s.commit_lock);
    pthread_mutex_destroy(&s.dead_lock);
    free(s.commit_pending);
    pthread_cond_destroy(&s.changed);
    return rc;
}
