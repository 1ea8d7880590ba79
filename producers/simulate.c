/* eie-simulate: a fleet of vehicles V1..Vn, each charging through meter M1..Mn
 * (V1 on M1 and so on), reporting every interval. While a vehicle charges its
 * meter draws AC energy and the battery receives less as DC, by the vehicle's
 * efficiency; state of charge rises while charging and falls while driving,
 * and battery temperature follows the load.
 *
 * Real time by default; with --from it backfills [from, to) as fast as Kafka
 * takes it, with a progress bar. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "progress.h"
#include "timefmt.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct vehicle_sim {
    double capacity_kwh, efficiency, charger_kw;
    double soc, battery_temp;
    int charging;
} vehicle_sim;

typedef struct rng {
    uint64_t s;
} rng;

/* xorshift64*: small, fast and reproducible from --seed on every platform. */
static double rng_next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (double)((r->s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double uniform(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_next(r);
}

static void vehicle_init(vehicle_sim *v, rng *r)
{
    v->capacity_kwh = uniform(r, 50, 100);
    v->efficiency = rng_next(r) < 0.03 ? uniform(r, 0.68, 0.74) : uniform(r, 0.85, 0.95);
    v->charger_kw = uniform(r, 7, 22);
    v->soc = uniform(r, 15, 80);
    v->battery_temp = uniform(r, 18, 28);
    v->charging = rng_next(r) < 0.8;
}

/* Advances one interval; fills the AC the meter drew and the DC the battery got. */
static void vehicle_step(vehicle_sim *v, rng *r, double hours, double *ac, double *dc)
{
    *ac = *dc = 0;
    if (v->charging) {
        /* Charging tapers above 80% state of charge, as lithium cells need. */
        double taper = v->soc > 80 ? (100 - v->soc) / 20 : 1;
        *ac = v->charger_kw * taper * hours * uniform(r, 0.97, 1.03);
        *dc = *ac * v->efficiency;
        v->soc += *dc / v->capacity_kwh * 100;
        if (v->soc >= uniform(r, 88, 96))
            v->charging = 0;
    } else {
        v->soc -= uniform(r, 0, 25) * hours / v->capacity_kwh * 100; /* driving */
        if (v->soc < uniform(r, 20, 35))
            v->charging = 1;
    }
    if (v->soc > 100)
        v->soc = 100;
    if (v->soc < 0)
        v->soc = 0;
    double target = 22 + (v->charging ? v->charger_kw * 0.6 : 4);
    v->battery_temp += (target - v->battery_temp) * (1 - 1 / (1 + hours * 6));
}

static void sleep_until(int64_t when_ms)
{
    while (!stop_requested) {
        int64_t left = when_ms - timefmt_now_ms();
        if (left <= 0)
            return;
        struct timespec ts = {0, (left > 200 ? 200 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Devices report at a fixed resolution: values as a meter or a BMS prints them. */
static double quantize(double v, double step)
{
    return round(v / step) * step;
}

typedef struct simulation {
    kafka_producer producer;
    vehicle_sim *fleet;
    long vehicles;
    rng r;
} simulation;

static int send_assignments(simulation *sim, int64_t valid_from_ms, eie_err *err)
{
    reading rd = {.kind = READING_ASSIGNMENT};
    for (long i = 0; i < sim->vehicles; i++) {
        snprintf(rd.u.assignment.vehicle_id, sizeof rd.u.assignment.vehicle_id, "V%ld", i + 1);
        snprintf(rd.u.assignment.meter_id, sizeof rd.u.assignment.meter_id, "M%ld", i + 1);
        rd.u.assignment.valid_from_ms = valid_from_ms;
        if (kafka_producer_send(&sim->producer, &rd, err) < 0)
            return -1;
    }
    return 0;
}

/* One interval of every device: a meter reading and a vehicle reading each. */
static int send_interval(simulation *sim, int64_t tick_ms, double hours, eie_err *err)
{
    reading m = {.kind = READING_METER}, v = {.kind = READING_VEHICLE};
    for (long i = 0; i < sim->vehicles && !stop_requested; i++) {
        vehicle_sim *veh = &sim->fleet[i];
        double ac, dc;
        vehicle_step(veh, &sim->r, hours, &ac, &dc);
        int64_t jitter = (int64_t)uniform(&sim->r, 0, 2000); /* devices are not in lockstep */
        snprintf(m.u.meter.meter_id, sizeof m.u.meter.meter_id, "M%ld", i + 1);
        m.u.meter.kwh_consumed_ac = quantize(ac, 0.001);
        m.u.meter.voltage = quantize(uniform(&sim->r, 226, 234), 0.1);
        m.u.meter.ts_ms = tick_ms + jitter;
        snprintf(v.u.vehicle.vehicle_id, sizeof v.u.vehicle.vehicle_id, "V%ld", i + 1);
        v.u.vehicle.soc = quantize(veh->soc, 0.1);
        v.u.vehicle.kwh_delivered_dc = quantize(dc, 0.001);
        v.u.vehicle.battery_temp = quantize(veh->battery_temp, 0.1);
        v.u.vehicle.ts_ms = tick_ms + jitter;
        if (kafka_producer_send(&sim->producer, &m, err) < 0 ||
            kafka_producer_send(&sim->producer, &v, err) < 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    log_init("eie-simulate");
    const char *bootstrap, *prefix, *from_text, *to_text;
    long interval_s, ticks, seed;
    simulation sim = {0};
    config_option options[] = {
        {"bootstrap-servers", 'b', "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STRING, &bootstrap,
         KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers"},
        {"topic-prefix", 0, "EIE_TOPIC_PREFIX", CONFIG_STRING, &prefix, KAFKA_DEFAULT_TOPIC_PREFIX,
         0, 0, "prefix of the topic names"},
        {"vehicles", 'n', "EIE_SIM_VEHICLES", CONFIG_INT, &sim.vehicles, "100", 1, 10000000,
         "vehicles, and as many meters"},
        {"interval-s", 'i', "EIE_SIM_INTERVAL_S", CONFIG_INT, &interval_s, "60", 1, 86400,
         "seconds between two readings of a device"},
        {"ticks", 0, "EIE_SIM_TICKS", CONFIG_INT, &ticks, "0", 0, 1000000000,
         "stop after this many intervals (0: run until stopped, or until --to)"},
        {"from", 0, "EIE_SIM_FROM", CONFIG_STRING, &from_text, NULL, 0, 0,
         "backfill from this RFC 3339 time, as fast as possible"},
        {"to", 0, "EIE_SIM_TO", CONFIG_STRING, &to_text, NULL, 0, 0,
         "end of the backfill (default now)"},
        {"seed", 0, "EIE_SIM_SEED", CONFIG_INT, &seed, "1", 0, 9.2e18, "random seed"},
    };
    config_spec spec = {
        "eie-simulate", "[options]",
        "Simulates a fleet: vehicles V1..Vn charging through meters M1..Mn (Vi assigned to\n"
        "Mi), each reporting once per interval, in real time, or with --from as a backfill\n"
        "as fast as Kafka takes it. Stops cleanly on SIGINT or SIGTERM after every record\n"
        "sent is acknowledged; exits non-zero if any was not.",
        options, sizeof options / sizeof options[0], true};
    config_props props = {0};
    int first;
    config_result cr = kafka_config_parse(&spec, argc, argv, &props, &first);
    if (cr != CONFIG_OK || first != argc) {
        if (cr == CONFIG_OK)
            fprintf(stderr, "eie-simulate: unexpected argument '%s'\n", argv[first]);
        config_props_free(&props);
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    int64_t now = timefmt_now_ms(), from_ms = now / 1000 * 1000, to_ms = 0;
    int backfill = from_text != NULL;
    const char *bad = from_text && timefmt_parse_rfc3339(from_text, &from_ms) < 0 ? "from"
                      : to_text && timefmt_parse_rfc3339(to_text, &to_ms) < 0    ? "to"
                                                                                 : NULL;
    if (bad) {
        fprintf(stderr, "eie-simulate: invalid --%s (EIE_SIM_%s): expected an RFC 3339 time such "
                        "as 2026-02-09T13:08:00Z\n", bad, bad[0] == 'f' ? "FROM" : "TO");
        config_props_free(&props);
        return 2;
    }
    if (to_text && !backfill) {
        fprintf(stderr, "eie-simulate: --to needs --from\n");
        config_props_free(&props);
        return 2;
    }
    if (backfill && !to_text)
        to_ms = now;
    if (backfill && to_ms <= from_ms) {
        fprintf(stderr, "eie-simulate: --to must be after --from\n");
        config_props_free(&props);
        return 2;
    }
    if (backfill) { /* the whole span, unless --ticks cuts it shorter */
        long span = (long)((to_ms - from_ms + interval_s * 1000 - 1) / (interval_s * 1000));
        ticks = ticks && ticks < span ? ticks : span;
    }

    eie_err err;
    kafka_topics topics;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-simulate: --topic-prefix: %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    sim.fleet = calloc((size_t)sim.vehicles, sizeof *sim.fleet);
    if (!sim.fleet || kafka_producer_open(&sim.producer, bootstrap, &props, &topics, &err) < 0) {
        log_error("%s", sim.fleet ? err.msg : "out of memory");
        free(sim.fleet);
        config_props_free(&props);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    sim.r = (rng){(uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1};
    for (long i = 0; i < sim.vehicles; i++)
        vehicle_init(&sim.fleet[i], &sim.r);

    int failed = send_assignments(&sim, from_ms, &err) < 0;
    double hours = (double)interval_s / 3600.0;
    progress bar;
    if (backfill) {
        log_info("backfilling %ld vehicles and %ld meters over %ld intervals of %ld s",
                 sim.vehicles, sim.vehicles, ticks, interval_s);
        progress_start(&bar, "backfill", (uint64_t)ticks * 2 * (uint64_t)sim.vehicles);
    } else {
        log_info("simulating %ld vehicles and %ld meters, one reading each every %ld s",
                 sim.vehicles, sim.vehicles, interval_s);
    }
    for (long tick = 0; !failed && !stop_requested && (ticks == 0 || tick < ticks); tick++) {
        int64_t tick_ms = from_ms + tick * interval_s * 1000;
        if (!backfill)
            sleep_until(tick_ms);
        failed = send_interval(&sim, tick_ms, hours, &err) < 0;
        if (backfill)
            progress_update(&bar, sim.producer.acked);
        else if (tick % 10 == 0)
            log_info("interval %ld: %llu records sent, %llu acknowledged, %llu failed", tick + 1,
                     (unsigned long long)sim.producer.produced,
                     (unsigned long long)sim.producer.acked, (unsigned long long)sim.producer.failed);
    }
    if (failed)
        log_error("%s", err.msg);
    int outstanding = kafka_producer_flush(&sim.producer, 60000);
    if (backfill) {
        progress_update(&bar, sim.producer.acked);
        progress_finish(&bar);
    }
    log_info("stopped: %llu records sent, %llu acknowledged, %llu failed, %d unconfirmed",
             (unsigned long long)sim.producer.produced, (unsigned long long)sim.producer.acked,
             (unsigned long long)sim.producer.failed, outstanding);
    int ok = !failed && sim.producer.failed == 0 && outstanding == 0;
    kafka_producer_close(&sim.producer);
    free(sim.fleet);
    config_props_free(&props);
    return ok ? 0 : 1;
}
