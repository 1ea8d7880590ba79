/* The vehicle topic read for the state cache; see state_tail.h. */
#include "state_tail.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"
#include "kafka.h"
#include "log.h"
#include "timefmt.h"

#define TAIL_READINGS_METRIC "eie_api_state_tail_readings_total"
#define TAIL_SKIPPED_METRIC "eie_api_state_tail_skipped_total"

/* Records taken per turn, and so per hold of the cache's write lock. */
#define TAIL_BATCH 256
/* The longest wait for a record: how soon a stop is seen. */
#define POLL_MS 100
/* How often the topic's partitions are looked up: until it has some (the API
 * may start before the topics are made), and then for partitions added. */
#define TOPIC_WAIT_MS 2000
#define PARTITION_LOOK_MS 30000
#define METADATA_TIMEOUT_MS 1000

struct state_tail {
    state_cache *cache;
    metrics *metrics;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    codec *codec;
    char topic[200];
    int n_assigned; /* partitions 0 .. n_assigned-1 are read */
    pthread_t thread;
    atomic_bool stop;
};

/* Reads partitions added since the last look (Kafka numbers them from 0, and
 * never takes one away) from their end: what came before is the store's. */
static void follow_new_partitions(state_tail *t)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->rk, t->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        rkt ? rd_kafka_metadata(t->rk, 0, rkt, &md, METADATA_TIMEOUT_MS) : rd_kafka_last_error();
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    int count = !e && md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (count <= t->n_assigned)
        return;
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(count - t->n_assigned);
    for (int p = t->n_assigned; p < count; p++)
        rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_error_t *error = rd_kafka_incremental_assign(t->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (error) {
        log_warn("state cache: cannot read %s from the broker: %s", t->topic,
                 rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return;
    }
    log_info("state cache: reading partitions %d to %d of %s from their end", t->n_assigned,
             count - 1, t->topic);
    t->n_assigned = count;
}

/* Whether msg holds a vehicle reading the consumers would store, decoded into
 * out: the same decoding and checks as theirs (sink_collect.c), "now" being
 * when the record was produced. */
static bool take(state_tail *t, const rd_kafka_message_t *msg, reading *out)
{
    if (msg->err) { /* no partition ends: enable.partition.eof is off */
        kafka_report_error(t->rk, msg->err, rd_kafka_message_errstr(msg));
        return false;
    }
    eie_err err;
    if (codec_decode(t->codec, msg->payload, msg->len, out, &err) != CODEC_OK ||
        out->kind != READING_VEHICLE)
        return false;
    rd_kafka_timestamp_type_t ts_type;
    int64_t produced_ms = rd_kafka_message_timestamp(msg, &ts_type);
    return reading_validate(out,
                            ts_type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? timefmt_now_ms()
                                                                        : produced_ms,
                            &err) == 0;
}

static void *tail_main(void *arg)
{
    state_tail *t = arg;
    rd_kafka_message_t *msgs[TAIL_BATCH];
    reading *readings = malloc(TAIL_BATCH * sizeof *readings);
    if (!readings)
        abort();
    int64_t next_look = 0;
    while (!t->stop) {
        if (timefmt_monotonic_ms() >= next_look) {
            follow_new_partitions(t);
            next_look = timefmt_monotonic_ms() + (t->n_assigned ? PARTITION_LOOK_MS : TOPIC_WAIT_MS);
        }
        /* Wait for one record, then take what else is there. */
        size_t n = 0;
        if ((msgs[0] = rd_kafka_consumer_poll(t->rk, POLL_MS))) {
            ssize_t more = rd_kafka_consume_batch_queue(t->queue, 0, msgs + 1, TAIL_BATCH - 1);
            n = 1 + (more > 0 ? (size_t)more : 0);
        }
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (take(t, msgs[i], &readings[kept]))
                kept++;
            rd_kafka_message_destroy(msgs[i]);
        }
        if (kept) {
            state_cache_offer(t->cache, readings, kept);
            metrics_add(t->metrics, TAIL_READINGS_METRIC, "", (double)kept);
        }
        if (n > kept)
            metrics_add(t->metrics, TAIL_SKIPPED_METRIC, "", (double)(n - kept));
    }
    free(readings);
    return NULL;
}

/* A consumer that joins no group (it assigns partitions itself) and commits
 * nothing, whatever -X says; librdkafka's consumer wants a group id. */
static rd_kafka_t *tail_client(const char *bootstrap, const char *topic_prefix,
                               const config_props *props, eie_err *err)
{
    char group[300];
    snprintf(group, sizeof group, "%sapi-state-tail", topic_prefix);
    const kafka_setting defaults[] = {{"group.id", group},
                                      {"client.id", "eie-api-state"},
                                      /* The prefetch, bounded: at most a second's worth. */
                                      {"queued.max.messages.kbytes", "4096"}};
    rd_kafka_conf_t *conf =
        kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0], bootstrap, props, err);
    if (!conf)
        return NULL;
    if (kafka_conf_set(conf, "enable.auto.commit", "false", err) < 0 ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", err) < 0 ||
        kafka_conf_set(conf, "enable.partition.eof", "false", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return kafka_consumer_new(conf, "to read the vehicle topic for the state cache", err);
}

state_tail *state_tail_start(state_cache *cache, const char *bootstrap, const char *topic_prefix,
                             const config_props *props, metrics *m, eie_err *err)
{
    kafka_topics topics;
    if (kafka_topics_init(&topics, topic_prefix, err) < 0)
        return NULL;
    state_tail *t = calloc(1, sizeof *t);
    if (!t) {
        eie_err_set(err, "out of memory");
        return NULL;
    }
    t->cache = cache;
    t->metrics = m;
    snprintf(t->topic, sizeof t->topic, "%s", topics.name[READING_VEHICLE]);
    metrics_describe(m, TAIL_READINGS_METRIC, METRIC_COUNTER,
                     "vehicle readings the state cache read from the broker, ahead of the hot "
                     "store");
    metrics_describe(m, TAIL_SKIPPED_METRIC, METRIC_COUNTER,
                     "records of the vehicle topic the state cache passed over: ones the "
                     "consumers would not store either");
    if (!(t->codec = codec_new(err)) ||
        !(t->rk = tail_client(bootstrap, topic_prefix, props, err))) {
        codec_free(t->codec);
        free(t);
        return NULL;
    }
    t->queue = rd_kafka_queue_get_consumer(t->rk);
    int rc = pthread_create(&t->thread, NULL, tail_main, t);
    if (rc != 0) {
        eie_err_set(err, "starting the state cache's broker thread: error %d", rc);
        rd_kafka_queue_destroy(t->queue);
        rd_kafka_destroy(t->rk);
        codec_free(t->codec);
        free(t);
        return NULL;
    }
    return t;
}

void state_tail_stop(state_tail *t)
{
    if (!t)
        return;
    t->stop = true;
    pthread_join(t->thread, NULL);
    rd_kafka_queue_destroy(t->queue);
    rd_kafka_consumer_close(t->rk);
    rd_kafka_destroy(t->rk);
    codec_free(t->codec);
    free(t);
}
