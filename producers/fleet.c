/* Fleet physics; see fleet.h. */
#include "fleet.h"

#include <stdlib.h>
#include <string.h>

/* xorshift64*: small, fast and reproducible from --seed on every platform. */
static double rng_next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (double)((r->s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

void rng_seed(rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ULL + 1;
}

double rng_uniform(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_next(r);
}

static void vehicle_init(vehicle_sim *v, rng *r, long meter)
{
    v->capacity_kwh = rng_uniform(r, 50, 100);
    v->efficiency = rng_next(r) < 0.03 ? rng_uniform(r, 0.68, 0.74) : rng_uniform(r, 0.85, 0.95);
    v->charger_kw = rng_uniform(r, 7, 22);
    v->soc = rng_uniform(r, 15, 80);
    v->battery_temp = rng_uniform(r, 18, 28);
    v->charging = rng_next(r) < 0.8;
    v->meter = meter;
    v->moved_at = -1;
}

long fleet_meter_count(long n, long chargers_per_meter)
{
    return (n + chargers_per_meter - 1) / chargers_per_meter;
}

int fleet_init(fleet *f, long n, long chargers_per_meter, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->chargers_per_meter = chargers_per_meter;
    f->meters = fleet_meter_count(n, chargers_per_meter);
    f->vehicles = calloc((size_t)n, sizeof *f->vehicles);
    f->meter_ac = calloc((size_t)f->meters, sizeof *f->meter_ac);
    if (!f->vehicles || !f->meter_ac) {
        fleet_free(f);
        return -1;
    }
    rng_seed(&f->r, seed);
    for (long i = 0; i < n; i++)
        vehicle_init(&f->vehicles[i], &f->r, i / chargers_per_meter);
    return 0;
}

void fleet_free(fleet *f)
{
    free(f->vehicles);
    free(f->meter_ac);
    memset(f, 0, sizeof *f);
}

long fleet_reassign(fleet *f, long i, long interval, rng *r)
{
    vehicle_sim *v = &f->vehicles[i];
    if (f->meters < 2 || v->moved_at == interval)
        return -1;
    /* Drawn among the other vehicles until one fits; bounded, because in a
     * small fleet whose vehicles all moved this interval none may. */
    for (int attempt = 0; attempt < 64; attempt++) {
        long j = (i + 1 + (long)rng_uniform(r, 0, (double)(f->n - 1))) % f->n;
        vehicle_sim *w = &f->vehicles[j];
        if (w->meter == v->meter || w->moved_at == interval)
            continue;
        long meter = v->meter;
        v->meter = w->meter;
        w->meter = meter;
        v->moved_at = w->moved_at = interval;
        return j;
    }
    return -1;
}

static void vehicle_step(vehicle_sim *v, rng *r, double hours, double *ac, double *dc)
{
    *ac = *dc = 0;
    if (v->charging) {
        /* Charging tapers above 80% state of charge, as lithium cells need. */
        double taper = v->soc > 80 ? (100 - v->soc) / 20 : 1;
        *ac = v->charger_kw * taper * hours * rng_uniform(r, 0.97, 1.03);
        *dc = *ac * v->efficiency;
        v->soc += *dc / v->capacity_kwh * 100;
        if (v->soc >= rng_uniform(r, 88, 96))
            v->charging = 0;
    } else {
        v->soc -= rng_uniform(r, 0, 25) * hours / v->capacity_kwh * 100; /* driving */
        if (v->soc < rng_uniform(r, 20, 35))
            v->charging = 1;
    }
    if (v->soc > 100)
        v->soc = 100;
    if (v->soc < 0)
        v->soc = 0;
    double target = 22 + (v->charging ? v->charger_kw * 0.6 : 4);
    v->battery_temp += (target - v->battery_temp) * (1 - 1 / (1 + hours * 6));
}

void fleet_step(fleet *f, double hours, double *dc)
{
    memset(f->meter_ac, 0, (size_t)f->meters * sizeof *f->meter_ac);
    for (long i = 0; i < f->n; i++) {
        double ac;
        vehicle_step(&f->vehicles[i], &f->r, hours, &ac, &dc[i]);
        f->meter_ac[f->vehicles[i].meter] += ac;
    }
}
