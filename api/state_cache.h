/* The latest state of every vehicle, kept in memory by a refresher thread that
 * reads from PostgreSQL what changed since it last looked (every refresh_ms):
 * GET /v1/vehicles/{id} then answers without a database round trip, at the
 * price of being up to a refresh behind (readings come every 60 s). */
#ifndef EIE_STATE_CACHE_H
#define EIE_STATE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "reading.h"

typedef struct vehicle_state_entry {
    char vehicle_id[READING_ID_MAX + 1];
    char meter_id[READING_ID_MAX + 1]; /* "" when none */
    int64_t ts_ms;
    double soc, kwh_delivered_dc, battery_temp;
} vehicle_state_entry;

typedef struct state_cache state_cache;

state_cache *state_cache_start(const char *database_url, long refresh_ms, eie_err *err);
void state_cache_stop(state_cache *c);

/* Copies the vehicle's entry into out; false when it is not (yet) cached. */
bool state_cache_get(state_cache *c, const char *vehicle_id, vehicle_state_entry *out);

#endif
