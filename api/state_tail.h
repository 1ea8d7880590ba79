/* The state cache's broker side: the API reads the newest records of the
 * vehicle topic itself and offers every reading the consumers would store to
 * the state cache (state_cache_offer), so that a vehicle's state shows on
 * GET /v1/vehicles/{id} as soon as the broker has it, without waiting for the
 * hot sink's next commit. Under a background load of 50,000 readings/s those
 * commits slowed to 40-130 ms in bursts while the cold sink worked beside
 * them, and the state route's p99 was 128 ms (bench/freshness.sh).
 *
 * The hot store stays the record: the tail joins no group, commits nothing,
 * starts at the end of each partition and only ever shows a reading ahead of
 * the store, which then stores the same one (the same decoding, checks and
 * newer-wins rule). Meters are not followed: only the vehicle route needs it. */
#ifndef EIE_STATE_TAIL_H
#define EIE_STATE_TAIL_H

#include "config.h"
#include "err.h"
#include "metrics.h"
#include "state_cache.h"

typedef struct state_tail state_tail;

/* Starts the thread; the broker need not be up yet (it then keeps trying, as
 * librdkafka does). NULL with err set when the client cannot be made. */
state_tail *state_tail_start(state_cache *cache, const char *bootstrap, const char *topic_prefix,
                             const config_props *props, metrics *m, eie_err *err);
void state_tail_stop(state_tail *t);

#endif
