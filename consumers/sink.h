/* The sink loop that both consumer groups run: poll a batch from Kafka, decode
 * and validate it, hand the good readings to a store, and commit the rows with
 * the next offsets of every partition in one PostgreSQL transaction. A store
 * only says how a batch is written; everything else is here, once. */
#ifndef EIE_SINK_H
#define EIE_SINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <signal.h>

#include "config.h"
#include "err.h"
#include "reading.h"

typedef struct sink_store sink_store;

struct sink_store {
    const char *name;          /* "hot" or "cold" */
    unsigned kinds;            /* bit (1 << kind) for each kind of reading it consumes */
    /* After every (re)connection: session set-up such as temporary tables. */
    int (*prepare)(sink_store *store, PGconn *conn, eie_err *err);
    /* Inside the batch's transaction: store n readings (n may be 0). */
    int (*write)(sink_store *store, PGconn *conn, const reading *rows, size_t n, eie_err *err);
    /* Periodic upkeep outside any batch (may be NULL): run at start and every
     * housekeep_ms. */
    int (*housekeep)(sink_store *store, PGconn *conn, eie_err *err);
    void (*destroy)(sink_store *store);
    void *state;
};

sink_store *store_hot_new(void);
/* ahead_days: day partitions prepared beyond today; retention_days: whole days
 * of history kept before today (0 keeps everything). */
sink_store *store_cold_new(int ahead_days, int retention_days);

typedef struct sink_config {
    const char *bootstrap;
    const char *database_url;
    const char *topic_prefix;
    const char *group;
    long batch_size;
    long linger_ms;
    long housekeep_ms;
    long metrics_port; /* 0: no /metrics */
    const char *metrics_host;
    bool migrate;
    const config_props *kafka_props;
} sink_config;

/* Runs until *stop becomes non-zero. Returns 0 after a clean shutdown, -1 when
 * it cannot start (err says why). */
int sink_run(const sink_config *cfg, sink_store *store, volatile sig_atomic_t *stop,
             eie_err *err);

#endif
