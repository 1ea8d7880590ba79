/* The simulated fleet's physics: vehicles that drive and charge in sessions,
 * each charging through the meter it is assigned to. While a vehicle charges,
 * its meter draws AC energy and the battery receives less as DC, by the
 * vehicle's efficiency (mostly 0.85-0.95, a few degraded units near 0.7); state
 * of charge rises while charging and falls while driving; battery temperature
 * follows the load. Deterministic for a seed. */
#ifndef EIE_FLEET_H
#define EIE_FLEET_H

#include <stdint.h>

typedef struct rng {
    uint64_t s;
} rng;

void rng_seed(rng *r, uint64_t seed);
double rng_uniform(rng *r, double lo, double hi);

typedef struct vehicle_sim {
    double capacity_kwh, efficiency, charger_kw;
    double soc, battery_temp;
    int charging;
    long meter; /* index of the meter it charges through */
} vehicle_sim;

typedef struct fleet {
    long n; /* vehicles, and as many meters */
    vehicle_sim *vehicles;
    double *meter_ac; /* AC drawn by each meter in the current interval */
    rng r;
} fleet;

int fleet_init(fleet *f, long n, uint64_t seed);
void fleet_free(fleet *f);

/* Advances every vehicle by one interval of the given length and adds the AC
 * each draws to its meter's meter_ac; dc[i] is what vehicle i's battery got. */
void fleet_step(fleet *f, double hours, double *dc);

#endif
