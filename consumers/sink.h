/* The sink loop that both consumer groups run: poll a batch from Kafka, decode
 * and validate it, hand the good readings to a store, and commit the rows with
 * the next offsets of every partition in one PostgreSQL transaction. A store
 * only says how a batch is written; everything else is here, once. */
#ifndef EIE_SINK_H
#define EIE_SINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "reading.h"

typedef struct sink_store sink_store;

struct sink_store {
    const char *name;          /* "hot" or "cold" */
    unsigned kinds;            /* bit (1 << kind) for each kind of reading it consumes */
    /* After every (re)connection: session set-up such as temporary tables. */
    int (*prepare)(sink_store *store, PGconn *conn, eie_err *err);
    /* Before the batch's transaction (may be NULL): what must not hold its locks
     * for the whole transaction, such as creating day partitions (an
     * ACCESS EXCLUSIVE lock on the parent, which readers of two tables could
     * otherwise deadlock against). */
    int (*before_write)(sink_store *store, PGconn *conn, const reading *rows, size_t n,
                        eie_err *err);
    /* Inside the batch's transaction: store n readings (n may be 0). With
     * several writers (the cold store's), the batches before this one may
     * still be uncommitted meanwhile: write touches only rows of its own. */
    int (*write)(sink_store *store, PGconn *conn, const reading *rows, size_t n, eie_err *err);
    /* Then, once every batch before this one has committed (may be NULL):
     * what other batches touch too, such as the hours marked dirty. */
    int (*finish)(sink_store *store, PGconn *conn, const reading *rows, size_t n, eie_err *err);
    /* Periodic upkeep outside any batch (may be NULL): run at start and every
     * housekeep_ms. */
    int (*housekeep)(sink_store *store, PGconn *conn, eie_err *err);
    void (*destroy)(sink_store *store);
    void *state;
};

sink_store *store_hot_new(void);
/* ahead_days: day partitions prepared beyond today; retention_days: whole days
 * of history kept before today (0 keeps everything). */
sink_store *store_cold_new(int ahead_days, int retention_days, int session_gap_s);
/* For a rebuild, which builds the history without its primary key (which
 * otherwise keeps the first of a repeated reading): stores only the first
 * reading of each device and time within a batch, so that across batches the
 * oldest transaction's row is the first; and leaves the hourly summaries to
 * the rebuild's end. */
void store_cold_rebuilding(sink_store *store);

/* Where a replay stops reading one partition. */
typedef struct replay_end {
    reading_kind kind;
    int32_t partition;
    int64_t offset; /* exclusive */
} replay_end;

/* A replay reads fixed ranges of the topics with a static assignment instead of
 * following a consumer group, commits nothing to Kafka, publishes no dead
 * letters (the live consumers did), and returns once every range is read. */
typedef struct sink_replay {
    /* Where a partition with no offset in the store starts: 0 for the
     * beginning, else the first message produced at or after this time. */
    int64_t start_ms;
    /* Only readings with keep_from_ms <= time < keep_to_ms are stored (both 0:
     * all); the others are read and passed over. */
    int64_t keep_from_ms, keep_to_ms;
    /* Several replays may share the partitions: this one takes those whose
     * number modulo shares is share (shares 0 or 1: all). */
    int32_t share, shares;
    /* NULL: every partition's high watermark when the replay starts. */
    const replay_end *ends;
    size_t n_ends;
    /* Progress, for other threads to read while it runs. */
    _Atomic uint64_t total, read, stored;
    bool finished; /* every range read and stored (not stopped) */
} sink_replay;

typedef struct sink_config {
    const char *bootstrap;
    const char *database_url;
    const char *topic_prefix;
    const char *group;
    long batch_size;
    long linger_ms;
    long housekeep_ms;
    long metrics_port; /* 0: no /metrics, /healthz, /readyz */
    const char *metrics_host;
    /* Not ready once a batch has failed to commit for this long. */
    long stall_after_ms;
    bool migrate;
    const config_props *kafka_props;
    /* PostgreSQL search_path for the store's tables ("eie_rebuild"); NULL: the
     * database's default. */
    const char *search_path;
    sink_replay *replay; /* NULL: a member of the consumer group */
} sink_config;

/* The most writers a sink runs: sink_run's stores. */
#define SINK_MAX_WRITERS 8

/* Runs until *stop becomes non-zero (a replay: or until its ranges are read),
 * with one writer thread and connection per store given (n_stores of them, at
 * most SINK_MAX_WRITERS, each store of the same kind; the first one's housekeeping runs).
 * Returns 0 after a clean shutdown or a finished replay, -1 when it cannot start
 * (err says why). */
int sink_run(const sink_config *cfg, sink_store *const *stores, int n_stores,
             volatile sig_atomic_t *stop, eie_err *err);

#endif
