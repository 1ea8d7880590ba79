/* The simulated fleet's physics: vehicles that drive and charge in sessions,
 * each charging through the meter it is assigned to. While a vehicle charges,
 * its meter draws AC energy and the battery receives less as DC, by the
 * vehicle's efficiency (mostly 0.85-0.95, a few degraded units near 0.7); state
 * of charge rises while charging and falls while driving; battery temperature
 * follows the load. Deterministic for a seed.
 *
 * The depot: every meter has chargers_per_meter chargers behind it. With one,
 * each vehicle has a charger and meter of its own; with N, banks of N chargers
 * share a meter, which draws the AC of every vehicle charging behind it. The
 * vehicles fill the chargers in order (Vi on meter i / N), and a reassignment
 * swaps two vehicles behind different meters, both at the same moment: how
 * many vehicles a meter feeds never changes, so with one charger per meter no
 * two vehicles ever share one, and no spare meter is needed (nor reported). */
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
    long meter;    /* index of the meter it charges through */
    long moved_at; /* the interval of its last reassignment, or -1 */
} vehicle_sim;

typedef struct fleet {
    long n;                  /* vehicles */
    long meters;             /* ceil(n / chargers_per_meter) */
    long chargers_per_meter;
    vehicle_sim *vehicles;
    double *meter_ac; /* AC drawn by each meter in the current interval */
    rng r;
} fleet;

/* The meters a depot of n vehicles needs with that many chargers per meter. */
long fleet_meter_count(long n, long chargers_per_meter);

int fleet_init(fleet *f, long n, long chargers_per_meter, uint64_t seed);
void fleet_free(fleet *f);

/* Reassigns vehicle i in the given interval: swaps its charger with that of a
 * vehicle, chosen with r, behind another meter and not yet moved in this
 * interval (a vehicle moves at most once an interval, so its assignments start
 * at distinct times). Returns the other vehicle, or -1 when i has moved in
 * this interval already or no such vehicle was found. */
long fleet_reassign(fleet *f, long i, long interval, rng *r);

/* Advances every vehicle by one interval of the given length and adds the AC
 * each draws to its meter's meter_ac (meters entries); dc[i] is what vehicle
 * i's battery got, its AC times its efficiency. */
void fleet_step(fleet *f, double hours, double *dc);

#endif
