/* eie-simulate: a fleet of vehicles V1..Vn, each charging through meter M1..Mn
 * (V1 on M1 and so on), reporting every interval. While a vehicle charges its
 * meter draws AC energy and the battery receives less as DC, by the vehicle's
 * efficiency; state of charge rises while charging and falls while driving,
 * and battery temperature follows the load. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
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

int main(int argc, char **argv)
{
    log_init("eie-simulate");
    const char *bootstrap, *prefix;
    long vehicles, interval_s, ticks, seed;
    config_option options[] = {
        {"bootstrap-servers", 'b', "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STRING, &bootstrap,
         KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers"},
        {"topic-prefix", 0, "EIE_TOPIC_PREFIX", CONFIG_STRING, &prefix, KAFKA_DEFAULT_TOPIC_PREFIX,
         0, 0, "prefix of the topic names"},
        {"vehicles", 'n', "EIE_SIM_VEHICLES", CONFIG_INT, &vehicles, "100", 1, 10000000,
         "vehicles, and as many meters"},
        {"interval-s", 'i', "EIE_SIM_INTERVAL_S", CONFIG_INT, &interval_s, "60", 1, 86400,
         "seconds between two readings of a device"},
        {"ticks", 0, "EIE_SIM_TICKS", CONFIG_INT, &ticks, "0", 0, 1000000000,
         "stop after this many intervals (0: run until stopped)"},
        {"seed", 0, "EIE_SIM_SEED", CONFIG_INT, &seed, "1", 0, 9.2e18, "random seed"},
    };
    config_spec spec = {
        "eie-simulate", "[options]",
        "Simulates a fleet in real time: vehicles V1..Vn charging through meters M1..Mn\n"
        "(Vi assigned to Mi), each reporting once per interval. Stops cleanly on SIGINT or\n"
        "SIGTERM after every record sent is acknowledged.",
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
    eie_err err;
    kafka_topics topics;
    kafka_producer producer;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-simulate: --topic-prefix: %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    vehicle_sim *fleet = calloc((size_t)vehicles, sizeof *fleet);
    if (!fleet || kafka_producer_open(&producer, bootstrap, &props, &topics, &err) < 0) {
        log_error("%s", fleet ? err.msg : "out of memory");
        free(fleet);
        config_props_free(&props);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rng r = {(uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1};
    for (long i = 0; i < vehicles; i++)
        vehicle_init(&fleet[i], &r);

    int64_t start_ms = timefmt_now_ms() / 1000 * 1000;
    int failed = 0;
    reading rd;
    for (long i = 0; i < vehicles && !failed; i++) {
        rd.kind = READING_ASSIGNMENT;
        snprintf(rd.u.assignment.vehicle_id, sizeof rd.u.assignment.vehicle_id, "V%ld", i + 1);
        snprintf(rd.u.assignment.meter_id, sizeof rd.u.assignment.meter_id, "M%ld", i + 1);
        rd.u.assignment.valid_from_ms = start_ms;
        failed = kafka_producer_send(&producer, &rd, &err) < 0;
    }
    log_info("simulating %ld vehicles and %ld meters, one reading each every %ld s", vehicles,
             vehicles, interval_s);
    double hours = (double)interval_s / 3600.0;
    for (long tick = 0; !failed && !stop_requested && (ticks == 0 || tick < ticks); tick++) {
        int64_t tick_ms = start_ms + tick * interval_s * 1000;
        sleep_until(tick_ms);
        for (long i = 0; i < vehicles && !failed && !stop_requested; i++) {
            double ac, dc;
            vehicle_step(&fleet[i], &r, hours, &ac, &dc);
            int64_t jitter = (int64_t)uniform(&r, 0, 2000); /* devices are not in lockstep */
            rd.kind = READING_METER;
            snprintf(rd.u.meter.meter_id, sizeof rd.u.meter.meter_id, "M%ld", i + 1);
            rd.u.meter.kwh_consumed_ac = ac;
            rd.u.meter.voltage = uniform(&r, 226, 234);
            rd.u.meter.ts_ms = tick_ms + jitter;
            failed = kafka_producer_send(&producer, &rd, &err) < 0;
            rd.kind = READING_VEHICLE;
            snprintf(rd.u.vehicle.vehicle_id, sizeof rd.u.vehicle.vehicle_id, "V%ld", i + 1);
            rd.u.vehicle.soc = fleet[i].soc;
            rd.u.vehicle.kwh_delivered_dc = dc;
            rd.u.vehicle.battery_temp = fleet[i].battery_temp;
            rd.u.vehicle.ts_ms = tick_ms + jitter;
            failed = failed || kafka_producer_send(&producer, &rd, &err) < 0;
        }
        if (tick % 10 == 0)
            log_info("interval %ld: %llu records sent, %llu acknowledged, %llu failed", tick + 1,
                     (unsigned long long)producer.produced, (unsigned long long)producer.acked,
                     (unsigned long long)producer.failed);
    }
    if (failed)
        log_error("%s", err.msg);
    int outstanding = kafka_producer_flush(&producer, 30000);
    log_info("stopped: %llu records sent, %llu acknowledged, %llu failed, %d unconfirmed",
             (unsigned long long)producer.produced, (unsigned long long)producer.acked,
             (unsigned long long)producer.failed, outstanding);
    int ok = !failed && producer.failed == 0 && outstanding == 0;
    kafka_producer_close(&producer);
    free(fleet);
    config_props_free(&props);
    return ok ? 0 : 1;
}
