/* The engine under both modes of eie-replay: sink jobs (consumers/sink.h in
 * replay mode, each a thread with its own Kafka consumer and PostgreSQL
 * connection) run side by side in rounds, each round until every job has read
 * the ranges it was given, with one progress bar for all and totals for the
 * summary line that scripts read. */
#ifndef EIE_REPLAY_ROUNDS_H
#define EIE_REPLAY_ROUNDS_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "sink.h"

/* Set by SIGINT and SIGTERM (main.c): every job stops at its next batch. */
extern volatile sig_atomic_t replay_stop_requested;

typedef struct replay_job {
    sink_config cfg;
    sink_store *store;
    sink_replay replay;
    /* Its reads count as the round's records read: no other job of the round
     * reads the same topics. */
    bool counts_records;
    pthread_t thread;
    atomic_int ended;
    int rc;
    eie_err err;
} replay_job;

/* What the rounds of one run read (by the jobs that count records) and
 * stored. */
typedef struct replay_totals {
    uint64_t records, stored;
    uint64_t last_read; /* by the last round */
} replay_totals;

/* Runs the jobs side by side until each has read its ranges, drawing their
 * progress as one, and adds to totals. Returns 0 when all finished, 1 when
 * stopped by a signal, -1 on failure (err set). */
int replay_run_round(replay_job *jobs, size_t n, const char *label, replay_totals *totals,
                     eie_err *err);

/* The run's summary line, on standard output for scripts. */
void replay_print_summary(const char *what, const replay_totals *totals, int64_t start_ms);

/* Says that a stopped replay left the live stores as they were. */
void replay_log_interrupted(void);

#endif
