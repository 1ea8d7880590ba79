/* HTTP ingest producer; see ingest.h. Delivery reports are served by a thread
 * of their own and routed to the request that sent the record, through the
 * per-message opaque pointer. */
#include "ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "kafka.h"
#include "log.h"

typedef struct pending_request {
    pthread_mutex_t lock;
    pthread_cond_t done;
    size_t outstanding;
    unsigned char *status;
    char last_error[160];
} pending_request;

typedef struct record_slot {
    pending_request *req;
    size_t index;
} record_slot;

struct ingest {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topics[READING_KIND_COUNT];
    kafka_topics names;
    codec *codec;
    pthread_mutex_t codec_lock; /* the codec reuses its buffers */
    pthread_t poller;
    int poller_started;
    atomic_int stop;
};

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    record_slot *slot = msg->_private;
    pending_request *req = slot->req;
    pthread_mutex_lock(&req->lock);
    req->status[slot->index] = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (msg->err)
        snprintf(req->last_error, sizeof req->last_error, "%s", rd_kafka_err2str(msg->err));
    if (--req->outstanding == 0)
        pthread_cond_signal(&req->done);
    pthread_mutex_unlock(&req->lock);
}

static void *poll_main(void *arg)
{
    ingest *in = arg;
    while (!in->stop)
        rd_kafka_poll(in->rk, 100);
    return NULL;
}

ingest *ingest_open(const char *bootstrap, const char *topic_prefix, const config_props *props,
                    int timeout_ms, eie_err *err)
{
    ingest *in = calloc(1, sizeof *in);
    if (!in) {
        eie_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&in->codec_lock, NULL);
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d", timeout_ms);
    const kafka_setting defaults[] = {
        {"enable.idempotence", "true"}, {"acks", "all"},          {"compression.type", "lz4"},
        {"linger.ms", "2"},             {"message.timeout.ms", timeout},
        /* A record's timeout is checked when its broker's thread wakes, which
         * with a broker down is at the next reconnect (librdkafka backs off up
         * to 10 s): 1 s keeps a 503 within about --ingest-timeout-ms. */
        {"reconnect.backoff.max.ms", "1000"},
    };
    rd_kafka_conf_t *conf;
    if (kafka_topics_init(&in->names, topic_prefix, err) < 0 ||
        !(conf = kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0], bootstrap, props,
                                err)))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    char errstr[512];
    if (!(in->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(conf);
        eie_err_set(err, "creating the Kafka producer: %s", errstr);
        goto fail;
    }
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (!(in->topics[k] = rd_kafka_topic_new(in->rk, in->names.name[k], NULL))) {
            eie_err_set(err, "topic %s: %s", in->names.name[k],
                        rd_kafka_err2str(rd_kafka_last_error()));
            goto fail;
        }
    if (!(in->codec = codec_new(err)))
        goto fail;
    if (pthread_create(&in->poller, NULL, poll_main, in) != 0) {
        eie_err_set(err, "cannot start the delivery-report thread");
        goto fail;
    }
    in->poller_started = 1;
    return in;
fail:
    ingest_close(in);
    return NULL;
}

void ingest_close(ingest *in)
{
    if (!in)
        return;
    if (in->rk)
        rd_kafka_flush(in->rk, 10000);
    if (in->poller_started) {
        in->stop = 1;
        pthread_join(in->poller, NULL);
    }
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (in->topics[k])
            rd_kafka_topic_destroy(in->topics[k]);
    if (in->rk)
        rd_kafka_destroy(in->rk);
    codec_free(in->codec);
    pthread_mutex_destroy(&in->codec_lock);
    free(in);
}

const char *ingest_topic(const ingest *in, reading_kind kind)
{
    return in->names.name[kind];
}

size_t ingest_send(ingest *in, const reading *records, size_t n, unsigned char *status, eie_err *err)
{
    pending_request req = {.status = status};
    record_slot *slots = calloc(n ? n : 1, sizeof *slots);
    if (!slots) {
        eie_err_set(err, "out of memory");
        memset(status, 0, n);
        return 0;
    }
    pthread_mutex_init(&req.lock, NULL);
    pthread_cond_init(&req.done, NULL);
    memset(status, 0, n);

    for (size_t i = 0; i < n; i++) {
        const void *value;
        size_t len;
        const char *key = reading_key(&records[i]);
        slots[i] = (record_slot){&req, i};
        pthread_mutex_lock(&in->codec_lock);
        int rc = codec_encode(in->codec, &records[i], &value, &len, err);
        /* Counted before producing: the report may arrive before produce returns. */
        if (rc == 0) {
            pthread_mutex_lock(&req.lock);
            req.outstanding++;
            pthread_mutex_unlock(&req.lock);
            if (rd_kafka_produce(in->topics[records[i].kind], RD_KAFKA_PARTITION_UA,
                                 RD_KAFKA_MSG_F_COPY, (void *)value, len, key, strlen(key),
                                 &slots[i]) != 0) {
                snprintf(req.last_error, sizeof req.last_error, "%s",
                         rd_kafka_err2str(rd_kafka_last_error()));
                pthread_mutex_lock(&req.lock);
                req.outstanding--;
                pthread_mutex_unlock(&req.lock);
            }
        }
        pthread_mutex_unlock(&in->codec_lock);
    }
    /* Every produced record gets exactly one report, by message.timeout.ms at
     * the latest, so this wait is bounded and the slots outlive their use. */
    pthread_mutex_lock(&req.lock);
    while (req.outstanding > 0)
        pthread_cond_wait(&req.done, &req.lock);
    pthread_mutex_unlock(&req.lock);

    size_t acked = 0;
    for (size_t i = 0; i < n; i++)
        acked += status[i];
    if (acked < n)
        eie_err_set(err, "%zu of %zu records not acknowledged by Kafka: %s", n - acked, n,
                    req.last_error[0] ? req.last_error : "unknown error");
    pthread_mutex_destroy(&req.lock);
    pthread_cond_destroy(&req.done);
    free(slots);
    return acked;
}

int ingest_kafka_reachable(ingest *in, int timeout_ms)
{
    /* After a fatal error the producer takes nothing more, brokers up or
     * not; the program is stopping (kafka.h). */
    if (rd_kafka_fatal_error(in->rk, NULL, 0))
        return 0;
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(in->rk, 0, in->topics[READING_METER], &md, timeout_ms) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    int ok = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_metadata_destroy(md);
    return ok;
}
