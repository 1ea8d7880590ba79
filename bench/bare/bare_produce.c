/* eie-bench-bare-produce: bench/produce.sh's baseline, librdkafka alone. It
 * produces ready-made records (one meter and one vehicle reading, encoded
 * once, keyed by device in turn) with the producer settings of eie-simulate
 * and eie-produce (kafka_producer_open: idempotent, acks=all, lz4, the same
 * batching) as fast as librdkafka and the broker take them. The simulator's
 * share of this one's rate is what building and encoding readings costs,
 * whatever the machine. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One reading of each kind, encoded once: their bytes are every record's. */
typedef struct ready_record {
    reading_kind kind;
    char *value;
    size_t len;
} ready_record;

static int encode(kafka_producer *p, reading_kind kind, ready_record *out, eie_err *err)
{
    reading r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    int64_t now = timefmt_now_ms() / 60000 * 60000;
    if (kind == READING_METER) {
        strcpy(r.u.meter.meter_id, "M1");
        r.u.meter.kwh_consumed_ac = 0.25;
        r.u.meter.voltage = 230.1;
        r.u.meter.ts_ms = now;
    } else {
        strcpy(r.u.vehicle.vehicle_id, "V1");
        r.u.vehicle.soc = 80.5;
        r.u.vehicle.kwh_delivered_dc = 0.22;
        r.u.vehicle.battery_temp = 31.5;
        r.u.vehicle.ts_ms = now;
    }
    const void *value;
    if (codec_encode(p->codec, &r, &value, &out->len, err) < 0)
        return -1;
    out->kind = kind;
    out->value = malloc(out->len);
    if (!out->value)
        abort();
    memcpy(out->value, value, out->len);
    return 0;
}

int main(int argc, char **argv)
{
    log_init("eie-bench-bare-produce");
    const char *bootstrap, *prefix;
    long devices, records;
    config_option options[] = {
        KAFKA_OPTION_BOOTSTRAP(&bootstrap),
        KAFKA_OPTION_TOPIC_PREFIX(&prefix),
        {"devices", 0, "EIE_BENCH_DEVICES", CONFIG_INT, &devices, "10000", 1, 10000000,
         "keys per kind: meters M1.. and vehicles V1.."},
        {"records", 0, "EIE_BENCH_RECORDS", CONFIG_INT, &records, "10000000", 1, 1000000000,
         "records to produce, meter and vehicle readings in turn"},
    };
    config_spec spec = {"eie-bench-bare-produce", "[options]",
                        "Produces ready-made readings as fast as librdkafka takes them, with the\n"
                        "settings of eie-simulate: the baseline of bench/produce.sh.",
                        options, sizeof options / sizeof options[0], true, false};
    config_props props = {0};
    int first;
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
    eie_err err;
    kafka_topics topics;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-bench-bare-produce: --topic-prefix: %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    kafka_producer p;
    if (kafka_producer_open(&p, bootstrap, &props, &topics, NULL, &err) < 0) {
        log_error("%s", err.msg);
        config_props_free(&props);
        return 1;
    }
    ready_record ready[2] = {{0}};
    if (encode(&p, READING_METER, &ready[0], &err) < 0 ||
        encode(&p, READING_VEHICLE, &ready[1], &err) < 0) {
        log_error("%s", err.msg);
        kafka_producer_close(&p);
        config_props_free(&props);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = 0;
    long sent = 0;
    for (; sent < records && !stop_requested && rc == 0; sent++) {
        const ready_record *rec = &ready[sent % 2];
        char key[32];
        int key_len = snprintf(key, sizeof key, "%c%ld", rec->kind == READING_METER ? 'M' : 'V',
                               sent / 2 % devices + 1);
        while (rd_kafka_produce(p.topics[rec->kind], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                rec->value, rec->len, key, (size_t)key_len, NULL) != 0) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                log_error("producing: %s", rd_kafka_err2str(rd_kafka_last_error()));
                rc = 1;
                break;
            }
            rd_kafka_poll(p.rk, 5);
        }
        if (sent % 256 == 0)
            rd_kafka_poll(p.rk, 0);
    }
    int outstanding = kafka_producer_flush(&p, 60000);
    fprintf(stderr, "eie-bench-bare-produce: %ld sent, %llu acknowledged, %llu failed, %d unconfirmed\n",
            sent, (unsigned long long)p.acked, (unsigned long long)p.failed, outstanding);
    if (outstanding || p.failed || (long)p.acked != sent)
        rc = 1;
    kafka_producer_close(&p);
    free(ready[0].value);
    free(ready[1].value);
    config_props_free(&props);
    return rc;
}
