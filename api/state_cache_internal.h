/* What the state cache's two files share: the cache itself. Not for use
 * outside them.
 *
 *   state_cache.c         the tables in memory: what requests read, and how a
 *                         row read from the store is applied
 *   state_cache_follow.c  the refresher's side: what it reads from the store,
 *                         when, and the hot store's commit notices
 */
#ifndef EIE_STATE_CACHE_INTERNAL_H
#define EIE_STATE_CACHE_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "data.h"
#include "db_stamp.h"
#include "hot_notice.h"
#include "idmap.h"
#include "metrics.h"
#include "refresher.h"
#include "state_cache.h"

/* The readings applied from the hot store's commit notices themselves, and
 * the reads of the state tables by stamp after notices that gave none. */
#define STATE_NOTICE_ROWS_METRIC "eie_api_state_cache_notice_rows_total"
#define STATE_SCANS_METRIC "eie_api_state_cache_scans_total"

typedef struct meter_state_entry {
    double voltage;
    int64_t ts_ms; /* of the reading; INT64_MIN: none yet */
} meter_state_entry;

typedef struct vehicle_list {
    uint32_t *at; /* indexes into vehicles */
    size_t n, cap;
} vehicle_list;

struct state_cache {
    char *url;
    refresher *refresher;
    unsigned long rounds;
    pthread_rwlock_t lock;
    idmap vehicle_ids, meter_ids;
    vehicle_state_entry *vehicles; /* by vehicle_ids index */
    meter_state_entry *meters;     /* by meter_ids index */
    /* Per meter ever assigned (by assigned_meter_ids index): the vehicles
     * with a cached assignment to it, to tell whether a vehicle had its meter
     * to itself. Before horizon_ms the cache cannot tell: some vehicle's
     * older assignments were let go. */
    idmap assigned_meter_ids;
    vehicle_list *meter_vehicles;
    int64_t horizon_ms;
    PGconn *conn;
    bool listening; /* conn gets the hot store's notices */
    char store[96]; /* the tables' oids: a replay's switch changes them */
    char since[64]; /* when the last complete refresh began; "" none */
    db_stamp assignment_stored; /* the newest assignment then */
    bool following; /* see vehicle_state_entry; under the lock */
    metrics *metrics;
    hot_notice_round notices; /* the refresher's: the commits announced since it read */
    /* The refresher's: the last id of each state table's previous page
     * ("" to start over), by data_hot_table. */
    char page_after[DATA_HOT_TABLES][READING_ID_MAX + 1];
};

/* Called with the write lock held: a row of the store's (data.h) applied. */
void state_cache_apply_vehicle_state(state_cache *c, const PGresult *res, int row);
void state_cache_apply_meter_voltage(state_cache *c, const PGresult *res, int row);
void state_cache_apply_assignment(state_cache *c, const PGresult *res, int row);
/* Called with the write lock held: a reading the store was offered, kept
 * as the store keeps it (hot_notice.h): when it is newer than the row. */
void state_cache_apply_reading(state_cache *c, const reading *r);
/* Called with the write lock held: forgets everything. */
void state_cache_clear(state_cache *c);

/* The refresher's rounds (refresher.h). */
int state_cache_refresh_round(void *arg, eie_err *err);
int state_cache_wait_for_commits(void *arg, long ms, eie_err *err);

#endif
