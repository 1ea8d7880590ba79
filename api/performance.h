/* A vehicle's performance report over a window: its energy cut by the
 * attribution rule of migration 010 (schemas/sql/010_energy_attribution.sql)
 * into what is its own (attributable: it was its meter's only assignee),
 * what it shared with other vehicles on one meter, and what it drew before
 * any assignment, with a snapshot of its latest state.
 *
 * Two ways to the same answer: from the caches (performance_cache.c), for a
 * vehicle that had its meters to itself over the whole window, and from the
 * database (data_performance.c) for everything else. */
#ifndef EIE_PERFORMANCE_H
#define EIE_PERFORMANCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <ulfius.h>

#include "api.h"
#include "reading.h"

/* Energy and time of one share of the window. */
typedef struct energy_share {
    double seconds;
    double ac_kwh; /* the meters' AC over that time (0 for unassigned) */
    long long ac_readings;
    double dc_kwh; /* the vehicle's own DC over that time */
    long long dc_readings;
} energy_share;

/* A stretch of time during which the vehicle shared a meter. */
typedef struct shared_period {
    char meter_id[READING_ID_MAX + 1];
    int64_t from_ms, to_ms;
    json_t *others;         /* the other vehicles' ids, a JSON array */
    double ac_kwh;          /* the meter's AC then: the group's, not the vehicle's */
    double dc_kwh;          /* the vehicle's own DC then */
    double others_dc_kwh;   /* the other vehicles' DC then */
} shared_period;

typedef struct performance {
    char meter_id[READING_ID_MAX + 1]; /* assigned at the window's end; "" none */
    bool has_state, has_voltage;
    int64_t last_ms;
    double soc, battery_temp, voltage;
    energy_share attributable, shared, unassigned;
    double others_dc_kwh; /* over all shared periods */
    double temp_sum;      /* battery temperatures of every reading in the window */
    shared_period *periods; /* the shared ones, in time order */
    size_t n_periods, cap_periods;
    /* From the caches without a statement: the notices vouched for them. */
    bool from_memory;
} performance;

void performance_free(performance *p);

/* 1: answered, 0: ask the database instead, -1: the response is set. */
int performance_from_caches(api_context *ctx, struct _u_response *resp, const char *vehicle_id,
                            int64_t from_ms, int64_t to_ms, performance *p);

/* 1: found, 0: unknown vehicle, -1: the response is set (an error). */
int performance_from_database(api_context *ctx, struct _u_response *resp,
                              const char *vehicle_id, int64_t from_ms, int64_t to_ms,
                              performance *p);

#endif
