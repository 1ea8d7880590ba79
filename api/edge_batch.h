/* Sums over ranges of the history (a device's kWh, readings and battery
 * temperatures between two times), for many requests in one statement.
 *
 * Requests hand their ranges to a queue; each of a few worker threads takes
 * everything queued, runs one statement over all of it on a pooled
 * connection, and hands each request its sums. Under light load a batch holds
 * one request; under heavy load the statement's fixed cost (parse, plan
 * start-up, round trip, a backend's wake-up) is shared: with pgbench, batches
 * of 16 requests' ranges served 16,800 requests a second on 2 connections,
 * where a statement per request served 7,600 on 4. */
#ifndef EIE_EDGE_BATCH_H
#define EIE_EDGE_BATCH_H

#include <stdint.h>

#include "db_pool.h"
#include "db_stamp.h"
#include "err.h"
#include "reading.h"

typedef struct edge_batch edge_batch;

edge_batch *edge_batch_start(db_pool *db, int workers, eie_err *err);
void edge_batch_stop(edge_batch *b);

typedef struct edge_range {
    reading_kind kind; /* READING_METER or READING_VEHICLE */
    const char *id;
    int64_t lo_ms, hi_ms;
    /* Out: */
    double kwh, temp_sum; /* temp_sum: vehicles only */
    long long readings;
} edge_range;

/* How current the database's summaries and assignments were when the sums
 * were read, for the caller to check its caches against: their stamps, and
 * the dirty hours. */
#define EDGE_MAX_DIRTY 64
typedef struct edge_freshness {
    db_stamp summaries_changed;              /* newest hourly_summary_change */
    db_stamp assignment_stored;              /* newest assignment stored */
    int n_dirty;                             /* -1: more than EDGE_MAX_DIRTY */
    struct {
        reading_kind kind;                   /* whose summaries */
        int64_t hour;                        /* hours since 1970 */
    } dirty[EDGE_MAX_DIRTY];
} edge_freshness;

/* Fills in the sums of each range (none is fine) and the freshness at that
 * moment; 0, or the HTTP status to answer when the database could not (503,
 * or 504 when the statement timed out). */
int edge_batch_sum(edge_batch *b, edge_range *ranges, int n, edge_freshness *fresh);

#endif
