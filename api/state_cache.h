/* The hot store in memory: each vehicle's latest state and its newest meter
 * assignments, and each meter's latest voltage, kept by a refresher thread
 * that reads from PostgreSQL what changed since it last looked (every
 * refresh_ms), and in between what each hot store commit announces
 * (PG_HOT_STATE_CHANNEL). GET /v1/vehicles/{id} and the performance report
 * then answer without those round trips, milliseconds behind the store. */
#ifndef EIE_STATE_CACHE_H
#define EIE_STATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db_stamp.h"
#include "err.h"
#include "metrics.h"
#include "reading.h"

/* Assignments kept per vehicle, newest ones; enough for weeks of a vehicle
 * that changes chargers daily. */
#define STATE_CACHE_ASSIGNMENTS 32

typedef struct cached_assignment {
    int64_t valid_from_ms;
    char meter_id[READING_ID_MAX + 1];
} cached_assignment;

typedef struct vehicle_state_entry {
    char vehicle_id[READING_ID_MAX + 1];
    char meter_id[READING_ID_MAX + 1]; /* of the newest assignment; "" when none */
    bool has_state;                    /* false: only assignments are known */
    /* The state is a reading read from the broker (state_cache_offer) that
     * the store did not hold yet when it was applied. */
    bool from_broker;
    int64_t ts_ms;
    double soc, kwh_delivered_dc, battery_temp;
    /* Oldest first. older_assignments: the vehicle has assignments before
     * these that the cache does not keep. */
    int n_assignments;
    bool older_assignments;
    cached_assignment assignments[STATE_CACHE_ASSIGNMENTS];
    /* When copied out: the newest assignment the cache had then: the
     * assignments are current while the database's newest (DATA_ASSIGNMENTS_STORED)
     * is the same. */
    db_stamp assignment_stored;
    /* And whether the cache was following the hot store's commits then
     * (listening, every assignment announced so far applied): its
     * assignments are then current but for the last milliseconds' commits,
     * without asking the database. */
    bool following;
} vehicle_state_entry;

typedef struct state_cache state_cache;

state_cache *state_cache_start(const char *database_url, long refresh_ms, metrics *m,
                               eie_err *err);
void state_cache_stop(state_cache *c);

/* Copies the vehicle's entry into out, its assignments only when asked;
 * false when nothing about it is cached (yet). */
bool state_cache_vehicle(state_cache *c, const char *vehicle_id, vehicle_state_entry *out,
                         bool with_assignments);

/* Whether no vehicle but vehicle_id had a cached assignment to the meter
 * during [lo_ms, hi_ms); false also when the cache cannot tell (assignments
 * that old were let go). What it says is as current as the assignment stamp
 * of an entry copied just before (state_cache_vehicle). */
bool state_cache_meter_alone(state_cache *c, const char *meter_id, const char *vehicle_id,
                             int64_t lo_ms, int64_t hi_ms);

/* Vehicle readings read from the broker, ahead of the hot store (state_tail.h):
 * each becomes its vehicle's state when newer than the one held, as the store
 * will keep it; rows read back from the store do not replace it with older
 * ones. Other kinds are passed over. */
void state_cache_offer(state_cache *c, const reading *rows, size_t n);

/* The meter's latest voltage; false when the meter is not cached. */
bool state_cache_meter_voltage(state_cache *c, const char *meter_id, double *voltage);

#endif
