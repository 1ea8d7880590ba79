/* eie-simulate: a fleet of vehicles V1..Vn and the meters of their depot (see
 * fleet.h for the physics and the depot: a meter per vehicle, or banks of
 * chargers behind one meter) reporting every interval, in real time, or with
 * --from as a backfill as fast as Kafka takes it, with a progress bar.
 * For testing it can inject faults at given rates: repeated, out-of-order,
 * late and invalid readings, and vehicles moving to another meter. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fleet.h"
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

typedef struct fault_rates {
    double duplicate, out_of_order, late, invalid, reassign;
    long late_max_s;
} fault_rates;

typedef struct delayed_reading {
    reading r;
    long release_tick;
} delayed_reading;

typedef struct simulation {
    kafka_producer producer;
    fleet fleet;
    double *dc;
    fault_rates faults;
    rng fault_rng; /* apart from the physics', so faults do not change the fleet */
    rng meter_rng; /* meters' voltage and clock: the physics' stream is the same
                      however many meters the depot has */
    delayed_reading *delayed;
    size_t n_delayed, cap_delayed;
    long interval_s;
    bool spread; /* real time: an interval's readings paced evenly over it */
    uint64_t duplicates, out_of_order, late, invalid, reassigned;
} simulation;

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

static int chance(simulation *sim, double rate)
{
    return rate > 0 && rng_uniform(&sim->fault_rng, 0, 1) < rate;
}

static void delay(simulation *sim, const reading *r, long release_tick)
{
    if (sim->n_delayed == sim->cap_delayed) {
        sim->cap_delayed = sim->cap_delayed ? sim->cap_delayed * 2 : 256;
        sim->delayed = realloc(sim->delayed, sim->cap_delayed * sizeof *sim->delayed);
        if (!sim->delayed)
            abort();
    }
    sim->delayed[sim->n_delayed++] = (delayed_reading){*r, release_tick};
}

/* Sends a reading, or a fault made of it. */
static int send_reading(simulation *sim, const reading *r, long tick, eie_err *err)
{
    const fault_rates *f = &sim->faults;
    if (chance(sim, f->invalid)) {
        reading bad = *r;
        if (bad.kind == READING_VEHICLE)
            bad.u.vehicle.soc = 150;
        else
            bad.u.meter.kwh_consumed_ac = -1;
        sim->invalid++;
        return kafka_producer_send(&sim->producer, &bad, err);
    }
    if (chance(sim, f->out_of_order)) { /* after the device's next reading */
        sim->out_of_order++;
        delay(sim, r, tick + 2);
        return 0;
    }
    if (chance(sim, f->late)) {
        long max_ticks = f->late_max_s / sim->interval_s;
        sim->late++;
        delay(sim, r, tick + 2 + (long)rng_uniform(&sim->fault_rng, 0, (double)(max_ticks > 1 ? max_ticks : 1)));
        return 0;
    }
    if (kafka_producer_send(&sim->producer, r, err) < 0)
        return -1;
    if (chance(sim, f->duplicate)) {
        sim->duplicates++;
        return kafka_producer_send(&sim->producer, r, err);
    }
    return 0;
}

/* Sends the delayed readings due by tick (all of them with tick < 0). */
static int release_delayed(simulation *sim, long tick, eie_err *err)
{
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; i < sim->n_delayed; i++) {
        if (rc == 0 && (tick < 0 || sim->delayed[i].release_tick <= tick))
            rc = kafka_producer_send(&sim->producer, &sim->delayed[i].r, err);
        else
            sim->delayed[kept++] = sim->delayed[i];
    }
    sim->n_delayed = kept;
    return rc;
}

static int send_assignment(simulation *sim, long vehicle, long meter, int64_t valid_from_ms,
                           eie_err *err)
{
    reading rd = {.kind = READING_ASSIGNMENT};
    snprintf(rd.u.assignment.vehicle_id, sizeof rd.u.assignment.vehicle_id, "V%ld", vehicle + 1);
    snprintf(rd.u.assignment.meter_id, sizeof rd.u.assignment.meter_id, "M%ld", meter + 1);
    rd.u.assignment.valid_from_ms = valid_from_ms;
    return kafka_producer_send(&sim->producer, &rd, err);
}

/* With --spread, the k-th of an interval's n readings waits for its share of
 * the interval, looked at every few readings (a clock read per reading would
 * cost more than the send). */
#define PACE_EVERY 64

static void pace(const simulation *sim, int64_t tick_ms, long k, long n)
{
    if (sim->spread && k % PACE_EVERY == 0)
        sleep_until(tick_ms + (int64_t)((double)k / (double)n * (double)sim->interval_s * 1000.0));
}

/* One interval: delayed readings that are due, reassignments, then a reading
 * of every meter and of every vehicle. */
static int send_interval(simulation *sim, long tick, int64_t tick_ms, eie_err *err)
{
    fleet *f = &sim->fleet;
    if (release_delayed(sim, tick, err) < 0)
        return -1;
    for (long i = 0; i < f->n; i++) {
        if (!chance(sim, sim->faults.reassign))
            continue;
        long j = fleet_reassign(f, i, tick, &sim->fault_rng);
        if (j < 0)
            continue;
        /* Both assignments start at the same moment: the two meters trade
         * vehicles, and neither feeds one more at any time. */
        sim->reassigned += 2;
        if (send_assignment(sim, i, f->vehicles[i].meter, tick_ms, err) < 0 ||
            send_assignment(sim, j, f->vehicles[j].meter, tick_ms, err) < 0)
            return -1;
    }
    fleet_step(f, (double)sim->interval_s / 3600.0, sim->dc);
    reading m = {.kind = READING_METER}, v = {.kind = READING_VEHICLE};
    /* Devices are not in lockstep: each reports up to 2 s after the tick, and
     * within the first half of the interval, so that a device's readings keep
     * their order and never share a time (at 1 s intervals, 2 s of jitter
     * repeated a time in a quarter of the cold sink's batches). */
    double jitter_ms = sim->interval_s * 500.0 < 2000 ? sim->interval_s * 500.0 : 2000;
    long n = f->meters + f->n;
    for (long i = 0; i < f->meters && !stop_requested; i++) {
        pace(sim, tick_ms, i, n);
        snprintf(m.u.meter.meter_id, sizeof m.u.meter.meter_id, "M%ld", i + 1);
        m.u.meter.kwh_consumed_ac = quantize(f->meter_ac[i], 0.001);
        m.u.meter.voltage = quantize(rng_uniform(&sim->meter_rng, 226, 234), 0.1);
        m.u.meter.ts_ms = tick_ms + (int64_t)rng_uniform(&sim->meter_rng, 0, jitter_ms);
        if (send_reading(sim, &m, tick, err) < 0)
            return -1;
    }
    for (long i = 0; i < f->n && !stop_requested; i++) {
        pace(sim, tick_ms, f->meters + i, n);
        snprintf(v.u.vehicle.vehicle_id, sizeof v.u.vehicle.vehicle_id, "V%ld", i + 1);
        v.u.vehicle.soc = quantize(f->vehicles[i].soc, 0.1);
        v.u.vehicle.kwh_delivered_dc = quantize(sim->dc[i], 0.001);
        v.u.vehicle.battery_temp = quantize(f->vehicles[i].battery_temp, 0.1);
        v.u.vehicle.ts_ms = tick_ms + (int64_t)rng_uniform(&f->r, 0, jitter_ms);
        if (send_reading(sim, &v, tick, err) < 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    log_init("eie-simulate");
    const char *bootstrap, *prefix, *from_text, *to_text;
    long vehicles, chargers_per_meter, ticks, seed;
    simulation sim = {0};
    config_option options[] = {
        KAFKA_OPTION_BOOTSTRAP(&bootstrap),
        KAFKA_OPTION_TOPIC_PREFIX(&prefix),
        {"vehicles", 'n', "EIE_SIM_VEHICLES", CONFIG_INT, &vehicles, "10000", 1, 10000000,
         "vehicles"},
        {"chargers-per-meter", 0, "EIE_SIM_CHARGERS_PER_METER", CONFIG_INT, &chargers_per_meter,
         "1", 1, 10000000,
         "the depot: 1 gives each vehicle a charger and meter of its own (a reassignment "
         "swaps two vehicles' meters); N > 1 puts banks of N chargers behind one meter, "
         "which draws the AC of every vehicle charging behind it (fewer meters than "
         "vehicles; at most --vehicles)"},
        {"interval-s", 'i', "EIE_SIM_INTERVAL_S", CONFIG_INT, &sim.interval_s, "60", 1, 86400,
         "seconds between two readings of a device"},
        {"spread", 0, "EIE_SIM_SPREAD", CONFIG_FLAG, &sim.spread, NULL, 0, 0,
         "real time: send each interval's readings evenly over it (a steady load) rather "
         "than all at its start"},
        {"ticks", 0, "EIE_SIM_TICKS", CONFIG_INT, &ticks, "0", 0, 1000000000,
         "stop after this many intervals (0: run until stopped, or until --to)"},
        {"from", 0, "EIE_SIM_FROM", CONFIG_STRING, &from_text, NULL, 0, 0,
         "backfill from this RFC 3339 time, as fast as possible"},
        {"to", 0, "EIE_SIM_TO", CONFIG_STRING, &to_text, NULL, 0, 0,
         "end of the backfill (default now)"},
        {"seed", 0, "EIE_SIM_SEED", CONFIG_INT, &seed, "1", 0, 9.2e18, "random seed"},
        {"duplicate-rate", 0, "EIE_SIM_DUPLICATE_RATE", CONFIG_DOUBLE, &sim.faults.duplicate, "0", 0,
         1, "share of readings sent twice"},
        {"out-of-order-rate", 0, "EIE_SIM_OUT_OF_ORDER_RATE", CONFIG_DOUBLE, &sim.faults.out_of_order,
         "0", 0, 1, "share of readings sent after the device's next one"},
        {"late-rate", 0, "EIE_SIM_LATE_RATE", CONFIG_DOUBLE, &sim.faults.late, "0", 0, 1,
         "share of readings sent late"},
        {"late-max-s", 0, "EIE_SIM_LATE_MAX_S", CONFIG_INT, &sim.faults.late_max_s, "3600", 1,
         864000, "how late a late reading may be"},
        {"invalid-rate", 0, "EIE_SIM_INVALID_RATE", CONFIG_DOUBLE, &sim.faults.invalid, "0", 0, 1,
         "share of readings sent with an invalid value (they end as dead letters)"},
        {"reassign-rate", 0, "EIE_SIM_REASSIGN_RATE", CONFIG_DOUBLE, &sim.faults.reassign, "0.0002",
         0, 1, "chance per vehicle and interval of moving to another meter (it swaps "
         "with a vehicle there, so a reassignment moves two)"},
    };
    config_spec spec = {
        "eie-simulate", "[options]",
        "Simulates a fleet: vehicles V1..Vn charging through meters M1..Mm, each reporting\n"
        "once per interval, in real time, or with --from as a backfill as fast as Kafka\n"
        "takes it. By default a meter per vehicle (m = n, Vi starts on Mi); with\n"
        "--chargers-per-meter N, banks of N chargers share a meter (m = n / N rounded up,\n"
        "Vi starts on M(1 + (i - 1) / N)). Deterministic for a --seed. Stops cleanly on\n"
        "SIGINT or SIGTERM after every record sent is acknowledged; exits non-zero if any\n"
        "was not.",
        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
    int64_t now = timefmt_now_ms(), from_ms = now / 1000 * 1000, to_ms = 0;
    int backfill = from_text != NULL;
    sim.spread = sim.spread && !backfill; /* a backfill goes as fast as Kafka takes it */
    const char *bad = from_text && timefmt_parse_rfc3339(from_text, &from_ms) < 0 ? "from"
                      : to_text && timefmt_parse_rfc3339(to_text, &to_ms) < 0    ? "to"
                                                                                 : NULL;
    if (bad) {
        fprintf(stderr, "eie-simulate: invalid --%s (EIE_SIM_%s): expected an RFC 3339 time such "
                        "as 2026-02-09T13:08:00Z\n", bad, bad[0] == 'f' ? "FROM" : "TO");
        config_props_free(&props);
        return 2;
    }
    if ((to_text && !backfill) || (backfill && to_text && to_ms <= from_ms) ||
        (backfill && !to_text && now <= from_ms)) {
        fprintf(stderr, "eie-simulate: %s\n", !backfill ? "--to needs --from"
                                                        : "--to (or now) must be after --from");
        config_props_free(&props);
        return 2;
    }
    if (chargers_per_meter > vehicles) {
        fprintf(stderr, "eie-simulate: invalid --chargers-per-meter (EIE_SIM_CHARGERS_PER_METER) "
                        "'%ld': more chargers than the %ld vehicles (--vehicles, EIE_SIM_VEHICLES) "
                        "to fill them\n",
                chargers_per_meter, vehicles);
        config_props_free(&props);
        return 2;
    }
    if (backfill) { /* the whole span, unless --ticks cuts it shorter */
        to_ms = to_text ? to_ms : now;
        long span = (long)((to_ms - from_ms + sim.interval_s * 1000 - 1) / (sim.interval_s * 1000));
        ticks = ticks && ticks < span ? ticks : span;
    }

    eie_err err;
    kafka_topics topics;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-simulate: --topic-prefix: %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    if (fleet_init(&sim.fleet, vehicles, chargers_per_meter, (uint64_t)seed) < 0 ||
        !(sim.dc = calloc((size_t)vehicles, sizeof *sim.dc)) ||
        kafka_producer_open(&sim.producer, bootstrap, &props, &topics, NULL, &err) < 0) {
        log_error("%s", sim.dc ? err.msg : "out of memory");
        fleet_free(&sim.fleet);
        free(sim.dc);
        config_props_free(&props);
        return 1;
    }
    rng_seed(&sim.fault_rng, (uint64_t)seed ^ 0x5bd1e995ULL);
    rng_seed(&sim.meter_rng, (uint64_t)seed ^ 0x27d4eb2fULL);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int failed = 0;
    for (long i = 0; i < vehicles && !failed; i++)
        failed = send_assignment(&sim, i, sim.fleet.vehicles[i].meter, from_ms, &err) < 0;
    progress bar;
    if (backfill) {
        log_info("backfilling %ld vehicles and %ld meters (%ld chargers each) over %ld intervals "
                 "of %ld s", vehicles, sim.fleet.meters, chargers_per_meter, ticks, sim.interval_s);
        progress_start(&bar, "backfill", (uint64_t)ticks * (uint64_t)(vehicles + sim.fleet.meters));
    } else {
        log_info("simulating %ld vehicles and %ld meters (%ld chargers each), one reading each "
                 "every %ld s", vehicles, sim.fleet.meters, chargers_per_meter, sim.interval_s);
    }
    for (long tick = 0; !failed && !stop_requested && (ticks == 0 || tick < ticks); tick++) {
        int64_t tick_ms = from_ms + tick * sim.interval_s * 1000;
        if (!backfill)
            sleep_until(tick_ms);
        failed = send_interval(&sim, tick, tick_ms, &err) < 0;
        if (backfill)
            progress_update(&bar, sim.producer.acked);
        else if (tick % 10 == 0)
            log_info("interval %ld: %llu records sent, %llu acknowledged, %llu failed", tick + 1,
                     (unsigned long long)sim.producer.produced,
                     (unsigned long long)sim.producer.acked, (unsigned long long)sim.producer.failed);
    }
    /* Readings held back as late are sent before stopping: nothing is dropped. */
    if (!failed)
        failed = release_delayed(&sim, -1, &err) < 0;
    if (failed)
        log_error("%s", err.msg);
    int outstanding = kafka_producer_flush(&sim.producer, 60000);
    if (backfill) {
        progress_update(&bar, sim.producer.acked);
        progress_finish(&bar);
    }
    log_info("stopped: %llu records sent, %llu acknowledged, %llu failed, %d unconfirmed; faults: "
             "%llu repeated, %llu out of order, %llu late, %llu invalid, %llu reassignments",
             (unsigned long long)sim.producer.produced, (unsigned long long)sim.producer.acked,
             (unsigned long long)sim.producer.failed, outstanding,
             (unsigned long long)sim.duplicates, (unsigned long long)sim.out_of_order,
             (unsigned long long)sim.late, (unsigned long long)sim.invalid,
             (unsigned long long)sim.reassigned);
    int ok = !failed && sim.producer.failed == 0 && outstanding == 0;
    char fatal[512];
    if (kafka_fatal_stop(fatal, sizeof fatal)) {
        log_error("stopped: %s", fatal);
        ok = 0;
    }
    kafka_producer_close(&sim.producer);
    fleet_free(&sim.fleet);
    free(sim.dc);
    free(sim.delayed);
    config_props_free(&props);
    return ok ? 0 : 1;
}
