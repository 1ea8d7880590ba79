/* What the sink loop's files share: the sink itself, its batches, and the
 * functions each file offers the others. Not for use outside the sink.
 *
 *   sink.c          start-up, the main loop, housekeeping, progress, shutdown
 *   sink_kafka.c    the consumer: group membership, rebalances, batch collection
 *   sink_commit.c   the offsets committed to Kafka too, for lag tools
 *   sink_writer.c   the writer thread: a batch and its offsets in one transaction
 *   sink_replay.c   a replay's static assignment over fixed ranges
 *   sink_health.c   /metrics, /healthz, /readyz: stalls and lag
 *   offsets.c       the sink_offsets table
 *
 * Threads: the main thread polls Kafka and collects; the writer threads store,
 * each on its own connection, committing in the order the batches were read;
 * the metrics server's threads read the health fields and Kafka's watermarks.
 * Only the main thread hands batches over, and it touches the database itself
 * (on the first writer's connection) only after waiting for every writer to
 * be idle (sink_drain), so a connection is never used by two threads at once. */
#ifndef EIE_SINK_INTERNAL_H
#define EIE_SINK_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "codec.h"
#include "dead_letter.h"
#include "fetch_waker.h"
#include "kafka.h"
#include "metrics.h"
#include "sink.h"

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
    uint64_t seq; /* its place in the commit order */
    partition_offset *offsets;
    size_t n_offsets, cap_offsets;
    dead_list dead;
} batch;

/* How the writers are doing, for /readyz and /metrics (read by other
 * threads); each writer's failing batch is in sink_writer. */
typedef struct sink_health {
    _Atomic int64_t last_commit_ms; /* the start, until a batch commits */
    pthread_mutex_t lock; /* for last_error, and the lag's own connection */
    char last_error[512];
    PGconn *monitor; /* the lag gauge's, so that it never waits for the writer */
    /* The lag gauge's own Kafka client: on the consumer's connections a
     * request for offsets waits behind the fetch in flight (up to
     * fetch.wait.max.ms, for each partition asked). */
    rd_kafka_t *watermarks;
} sink_health;

struct sink;

/* One writer thread, with its connection and its store. With several, the
 * batches are written at once, each on its own connection, and committed in
 * the order they were collected (sink_writer.c). */
typedef struct sink_writer {
    struct sink *s;
    sink_store *store;
    PGconn *conn;
    pthread_t thread;
    int started;
    batch *handed;  /* waiting for the writer; under sink.lock */
    batch *current; /* being written; under sink.lock */
    atomic_int backend_pid; /* of its connection (0: none) */
    /* Its health (sink_health.c): the worst writer's is the sink's. */
    _Atomic int64_t failing_since_ms; /* first failed attempt of the current batch; 0: none */
    atomic_int consecutive_failures;
    _Atomic size_t failing_messages;
} sink_writer;

typedef struct sink {
    const sink_config *cfg;
    sink_store *store; /* the first writer's: its name, kinds and housekeeping */
    volatile sig_atomic_t *stop;
    kafka_topics topics;
    rd_kafka_t *rk;
    /* The queue the main thread polls; the writer wakes that poll when it
     * becomes idle, so the next batch is handed over at once. */
    rd_kafka_queue_t *poll_queue;
    fetch_waker *waker;
    rd_kafka_topic_t *topic_handles[READING_KIND_COUNT]; /* see sink_open_consumer */
    unsigned polled_since_wake; /* the main thread's */
    codec *codec;
    dead_letters *dead;
    /* The group's dead letters on the topic for records not committed yet
     * (NULL for a replay, which publishes none). */
    dead_seen *seen;
    /* The writers' use of dead and seen, which are not thread-safe (the main
     * thread uses them only while every writer is idle). */
    pthread_mutex_t dead_lock;
    sink_writer writers[SINK_MAX_WRITERS];
    int n_writers;
    /* One batch collecting, and one for each writer. */
    batch batches[SINK_MAX_WRITERS + 1];
    batch *collecting; /* the main thread's */
    /* Every writer is, and batches are handed over early; while one is busy,
     * they grow to full size. Read without the lock by collect_batch. */
    atomic_int writer_idle;
    /* Commit order, under lock: batches are numbered as they are handed over
     * (the main thread's next_seq), and each is settled (committed, or
     * dropped) only after the one before it. Once one is dropped, those after
     * it are too, until the main thread reads again from the store. */
    uint64_t next_seq, settled_seq;
    bool chain_broken;
    partition_state *parts[READING_KIND_COUNT];
    int32_t parts_cap[READING_KIND_COUNT];
    sink_replay *replay;
    size_t replay_left; /* partitions whose range is not read yet */
    atomic_int fenced; /* the writer found the store's offsets moved */
    bool paused;       /* the main thread's: sink_pause */
    bool was_assigned; /* a rebalance assigned partitions (or none) once */
    /* Hand-over to the writer threads. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int quit; /* the writers should end */
    metrics *metrics; /* for /metrics; labels hold the store's name */
    char labels[64];
    sink_health health;
    /* Totals, for the periodic progress line. */
    _Atomic uint64_t stored, batches_written;
    uint64_t skipped, last_stored;
    int64_t last_report_ms, next_housekeep_ms;
    int64_t now_ms; /* read once per poll, not per message */
    /* Offsets for Kafka's commit, noted by the writer, sent by the main thread
     * (sink_commit.c). */
    pthread_mutex_t commit_lock;
    partition_offset *commit_pending;
    size_t n_commit_pending, cap_commit_pending;
    /* The main thread's: assignments to wait for before committing again. */
    int commit_hold_for;
    int64_t commit_held_since_ms, last_commit_sent_ms;
} sink;

/* sink.c */
/* Sleeps for the backoff, in small steps so that a stop request is not kept
 * waiting, and returns the next backoff. */
long sink_backoff(sink *s, long ms);
int sink_topic_kind(const sink *s, const char *topic);
void batch_clear(batch *b);

/* sink_writer.c */
/* Connects (again) when needed, with the session set up for the store. */
int sink_db_ready(sink_writer *w, eie_err *err);
void *sink_writer_main(void *arg);
/* Waits until every writer has nothing in hand. */
void sink_drain(sink *s);
/* Gives the collected batch to an idle writer (waiting for one) and
 * continues with a free one. */
void sink_hand_over(sink *s);
/* The same from the main loop: while every writer is busy for long, it pauses
 * the partitions and keeps polling Kafka, to stay in the group. Never from
 * inside a rebalance callback (which polls nothing). */
void sink_hand_over_polling(sink *s);
/* Whether some writer has a batch in hand. */
bool sink_writer_busy(sink *s);

/* sink_kafka.c */
rd_kafka_t *sink_open_consumer(sink *s, eie_err *err);
/* Fills each partition's offset from sink_offsets and marks them owned; a
 * member of the group then looks for its dead letters of them already on the
 * topic (dead_seen.h). */
int sink_load_offsets(sink *s, rd_kafka_topic_partition_list_t *parts, eie_err *err);
partition_state *sink_part(sink *s, int kind, int32_t partition);
partition_state *sink_owned_part(sink *s, int kind, int32_t partition);
void sink_collect_batch(sink *s);
/* Pauses (or resumes) every assigned partition. */
void sink_pause(sink *s, bool pause);
/* One poll while paused: serves rebalances; a message fetched before the
 * pause goes into the collecting batch. */
void sink_poll_paused(sink *s);
/* After the writer found the store's offsets moved. */
void sink_reread_from_store(sink *s);
void sink_leave_group(sink *s);

/* sink_commit.c */
/* The writer's: a committed batch's offsets, to be committed to Kafka too. */
void sink_commit_note(sink *s, const batch *b);
/* The main thread's: sends what was noted if it is time; around rebalances
 * (from the rebalance callback); at the end. */
void sink_commit_tick(sink *s);
void sink_commit_revoking(sink *s, bool cooperative);
void sink_commit_assigned(sink *s);
void sink_commit_final(sink *s);

/* sink_replay.c */
int sink_replay_start(sink *s, eie_err *err);
void sink_replay_partition_done(sink *s, partition_state *part);

/* sink_health.c */
void sink_health_init(sink *s);
void sink_health_free(sink *s);
/* A writer's reports: an attempt at a batch first tried at started_ms
 * failed (err); a batch committed. */
void sink_health_failed(sink_writer *w, const batch *b, int64_t started_ms, const char *err);
void sink_health_committed(sink_writer *w);
/* Serves /metrics, /healthz and /readyz when a port is set. */
metrics_server *sink_health_serve(sink *s, eie_err *err);

#endif
