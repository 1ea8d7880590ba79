/* Kafka helpers; see kafka.h. */
#include "kafka.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static const char *const topic_suffix[READING_KIND_COUNT] = {
    [READING_METER] = "meter-readings",
    [READING_VEHICLE] = "vehicle-readings",
    [READING_ASSIGNMENT] = "vehicle-assignments",
};

int kafka_topics_init(kafka_topics *topics, const char *prefix, eie_err *err)
{
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        int n = snprintf(topics->name[k], sizeof topics->name[k], "%s%s", prefix, topic_suffix[k]);
        if (n < 0 || (size_t)n >= sizeof topics->name[k]) {
            eie_err_set(err, "topic prefix '%s' is too long", prefix);
            return -1;
        }
    }
    snprintf(topics->dead_letter, sizeof topics->dead_letter, "%sdead-letters", prefix);
    return 0;
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, eie_err *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        eie_err_set(err, "Kafka property %s=%s: %s", key, value, errstr);
        return -1;
    }
    return 0;
}

config_result kafka_config_parse(const config_spec *spec, int argc, char **argv,
                                 config_props *props, int *first_arg)
{
    config_result cr = config_parse(spec, argc, argv, props, first_arg);
    if (cr != CONFIG_OK)
        return cr;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    eie_err err;
    for (size_t i = 0; i < props->n && cr == CONFIG_OK; i++) {
        if (kafka_conf_set(conf, props->keys[i], props->values[i], &err) < 0) {
            fprintf(stderr, "%s: invalid -X (EIE_KAFKA_PROPERTIES): %s\n", spec->program, err.msg);
            cr = CONFIG_BAD_USAGE;
        }
    }
    rd_kafka_conf_destroy(conf);
    return cr;
}

int kafka_config_main(const config_spec *spec, int argc, char **argv, config_props *props,
                      int *first_arg)
{
    config_result cr = kafka_config_parse(spec, argc, argv, props, first_arg);
    if (cr == CONFIG_OK)
        return -1;
    config_props_free(props);
    return cr == CONFIG_HELP_SHOWN ? 0 : 2;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-3 errors, 4 warning, 5-6 info, 7 debug */
    log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    log_msg(l, "kafka %s: %s", fac, buf);
}

/* The first fatal error of any client: what the process stopped for. Clients
 * run on several threads (a replay's sinks, the API's delivery thread), so the
 * first to claim it writes the reason and publishes it. */
static struct {
    atomic_int claimed, published;
    char reason[512];
} kafka_fatal;

kafka_error_class kafka_error_classify(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL:
        return KAFKA_ERROR_FATAL;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return KAFKA_ERROR_PERSISTENT;
    default:
        /* librdkafka's own advice: whatever else its error callback reports
         * (brokers down, connections refused, names not resolved) it recovers
         * from by itself. */
        return KAFKA_ERROR_TRANSIENT;
    }
}

void kafka_report_error(rd_kafka_t *rk, rd_kafka_resp_err_t err, const char *reason)
{
    const char *client = rk ? rd_kafka_name(rk) : "client";
    kafka_error_class class = kafka_error_classify(err);
    if (class == KAFKA_ERROR_TRANSIENT) {
        log_warn("kafka %s: %s", client, reason);
        return;
    }
    if (class == KAFKA_ERROR_PERSISTENT) {
        log_error("kafka %s: %s (%s)", client, reason, rd_kafka_err2name(err));
        return;
    }
    char cause[400] = "";
    rd_kafka_resp_err_t underlying = rk ? rd_kafka_fatal_error(rk, cause, sizeof cause) : err;
    char what[sizeof kafka_fatal.reason];
    snprintf(what, sizeof what, "kafka %s: fatal error: %s (%s)", client,
             cause[0] ? cause : reason, rd_kafka_err2name(underlying ? underlying : err));
    log_error("%s; the client cannot go on, so the program stops", what);
    if (atomic_exchange(&kafka_fatal.claimed, 1) == 0) {
        memcpy(kafka_fatal.reason, what, sizeof what);
        atomic_store(&kafka_fatal.published, 1);
        kill(getpid(), SIGTERM);
    }
}

const char *kafka_err_text(rd_kafka_t *rk, rd_kafka_resp_err_t e, char *buf, size_t size)
{
    char cause[400] = "";
    if (e == RD_KAFKA_RESP_ERR__FATAL && rk)
        rd_kafka_fatal_error(rk, cause, sizeof cause);
    snprintf(buf, size, "%s%s%s", rd_kafka_err2str(e), cause[0] ? ": " : "", cause);
    return buf;
}

bool kafka_fatal_stop(char *reason, size_t size)
{
    if (!atomic_load(&kafka_fatal.published))
        return false;
    if (reason && size)
        snprintf(reason, size, "%s", kafka_fatal.reason);
    return true;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_report_error(rk, (rd_kafka_resp_err_t)err, reason);
}

rd_kafka_conf_t *kafka_conf_new(const kafka_setting *defaults, size_t n_defaults,
                                const char *bootstrap, const config_props *props, eie_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    for (size_t i = 0; i < n_defaults; i++)
        if (kafka_conf_set(conf, defaults[i].key, defaults[i].value, err) < 0)
            goto fail;
    if (kafka_conf_set(conf, "bootstrap.servers", bootstrap, err) < 0)
        goto fail;
    for (size_t i = 0; props && i < props->n; i++)
        if (kafka_conf_set(conf, props->keys[i], props->values[i], err) < 0)
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int kafka_create_topics(rd_kafka_t *rk, const kafka_topics *topics, int partitions,
                        long long retention_ms, int timeout_ms, eie_err *err)
{
    char errstr[512], retention[32];
    snprintf(retention, sizeof retention, "%lld", retention_ms);
    enum { N_TOPICS = READING_KIND_COUNT + 1 };
    const char *names[N_TOPICS];
    for (int k = 0; k < READING_KIND_COUNT; k++)
        names[k] = topics->name[k];
    names[READING_KIND_COUNT] = topics->dead_letter;
    rd_kafka_NewTopic_t *new_topics[N_TOPICS] = {0};
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *event = NULL;
    int rc = -1;

    rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof errstr);
    for (int k = 0; k < N_TOPICS; k++) {
        new_topics[k] = rd_kafka_NewTopic_new(names[k], partitions, 1, errstr, sizeof errstr);
        if (!new_topics[k]) {
            eie_err_set(err, "topic %s: %s", names[k], errstr);
            goto done;
        }
        /* History is the source of truth: keep it (retention.ms=-1 keeps forever). */
        if (rd_kafka_NewTopic_set_config(new_topics[k], "retention.ms", retention) ||
            rd_kafka_NewTopic_set_config(new_topics[k], "retention.bytes", "-1") ||
            rd_kafka_NewTopic_set_config(new_topics[k], "cleanup.policy", "delete")) {
            eie_err_set(err, "topic %s: cannot set its configuration", names[k]);
            goto done;
        }
    }
    rd_kafka_CreateTopics(rk, new_topics, N_TOPICS, options, queue);
    event = rd_kafka_queue_poll(queue, timeout_ms + 2000);
    if (!event) {
        eie_err_set(err, "creating topics: no answer from the broker within %d ms", timeout_ms);
        goto done;
    }
    if (rd_kafka_event_error(event)) {
        eie_err_set(err, "creating topics: %s", rd_kafka_event_error_string(event));
        goto done;
    }
    size_t n;
    const rd_kafka_topic_result_t **results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        const char *name = rd_kafka_topic_result_name(results[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            log_info("topic %s exists", name);
        } else if (e) {
            eie_err_set(err, "creating topic %s: %s", name, rd_kafka_topic_result_error_string(results[i]));
            goto done;
        } else {
            log_info("created topic %s (%d partitions, retention.ms=%s)", name, partitions, retention);
        }
    }
    rc = 0;
done:
    if (event)
        rd_kafka_event_destroy(event);
    for (int k = 0; k < N_TOPICS; k++)
        if (new_topics[k])
            rd_kafka_NewTopic_destroy(new_topics[k]);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    return rc;
}

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    kafka_producer *p = opaque;
    if (msg->err) {
        p->failed++;
        snprintf(p->last_error, sizeof p->last_error, "%s", rd_kafka_err2str(msg->err));
        log_error("record to %s not acknowledged: %s", rd_kafka_topic_name(msg->rkt),
                  rd_kafka_err2str(msg->err));
    } else {
        p->acked++;
    }
}

int kafka_producer_open(kafka_producer *p, const char *bootstrap, const config_props *props,
                        const kafka_topics *topics, const int *schema_versions, eie_err *err)
{
    memset(p, 0, sizeof *p);
    /* Readings are small: large batches and a deep local queue keep the
     * broker's round trips, not the queue, the limit on throughput. */
    static const kafka_setting defaults[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.type", "lz4"},
        {"linger.ms", "20"},
        {"batch.size", "1000000"},
        {"batch.num.messages", "100000"},
        {"queue.buffering.max.messages", "1000000"},
    };
    rd_kafka_conf_t *conf =
        kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0], bootstrap, props, err);
    if (!conf)
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    rd_kafka_conf_set_opaque(conf, p);

    char errstr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        eie_err_set(err, "creating the Kafka producer: %s", errstr);
        goto fail_conf;
    }
    /* rd_kafka_new() took ownership of conf. */
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        p->topics[k] = rd_kafka_topic_new(p->rk, topics->name[k], NULL);
        if (!p->topics[k]) {
            eie_err_set(err, "topic %s: %s", topics->name[k], rd_kafka_err2str(rd_kafka_last_error()));
            goto fail;
        }
    }
    if (!(p->codec = codec_new_versions(schema_versions, err)))
        goto fail;
    return 0;
fail_conf:
    rd_kafka_conf_destroy(conf);
    return -1;
fail:
    kafka_producer_close(p);
    return -1;
}

int kafka_producer_send(kafka_producer *p, const reading *r, eie_err *err)
{
    const void *value;
    size_t len;
    if (codec_encode(p->codec, r, &value, &len, err) < 0)
        return -1;
    const char *key = reading_key(r);
    for (;;) {
        if (rd_kafka_produce(p->topics[r->kind], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                             (void *)value, len, key, strlen(key), NULL) == 0)
            break;
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            char text[512];
            eie_err_set(err, "producing to %s: %s", rd_kafka_topic_name(p->topics[r->kind]),
                        kafka_err_text(p->rk, e, text, sizeof text));
            return -1;
        }
        rd_kafka_poll(p->rk, 5); /* let delivery reports free queue space */
    }
    /* Serving delivery reports every few hundred records is enough to keep
     * the counters current and costs far less than a call per record. */
    if (++p->produced % 256 == 0)
        rd_kafka_poll(p->rk, 0);
    return 0;
}

int kafka_producer_flush(kafka_producer *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

void kafka_producer_close(kafka_producer *p)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (p->topics[k])
            rd_kafka_topic_destroy(p->topics[k]);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    codec_free(p->codec);
    memset(p, 0, sizeof *p);
}
/* A config value of a described resource, as a size; 0 when absent. */
static size_t config_size(const rd_kafka_ConfigResource_t *res, const char *name)
{
    size_t n;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res, &n);
    for (size_t i = 0; i < n; i++) {
        const char *value = rd_kafka_ConfigEntry_value(entries[i]);
        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) == 0 && value)
            return (size_t)strtoull(value, NULL, 10);
    }
    return 0;
}

int kafka_topic_max_message_bytes(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                  size_t *limit, eie_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms)
                                : rd_kafka_last_error();
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (e || md->broker_cnt < 1) {
        eie_err_set(err, "reading the metadata of %s: %s", topic,
                    e ? rd_kafka_err2str(e) : "no brokers");
        if (md)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    bool topic_exists = md->topic_cnt == 1 && !md->topics[0].err;
    char broker_id[16];
    snprintf(broker_id, sizeof broker_id, "%d", (int)md->brokers[0].id);
    rd_kafka_metadata_destroy(md);

    rd_kafka_ConfigResource_t *res[2] = {
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, broker_id),
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic),
    };
    size_t n_res = topic_exists ? 2 : 1;
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, res, n_res, NULL, queue);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, timeout_ms);
    int rc = -1;
    const rd_kafka_DescribeConfigs_result_t *result =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    if (!ev) {
        eie_err_set(err, "describing %s: timed out", topic);
    } else if (rd_kafka_event_error(ev) || !result) {
        eie_err_set(err, "describing %s: %s", topic,
                    result ? rd_kafka_event_error_string(ev) : "unexpected answer");
    } else {
        size_t n;
        const rd_kafka_ConfigResource_t **described =
            rd_kafka_DescribeConfigs_result_resources(result, &n);
        size_t broker_limit = 0, topic_limit = 0;
        for (size_t i = 0; i < n; i++) {
            if (rd_kafka_ConfigResource_error(described[i]))
                continue;
            if (rd_kafka_ConfigResource_type(described[i]) == RD_KAFKA_RESOURCE_BROKER)
                broker_limit = config_size(described[i], "message.max.bytes");
            else
                topic_limit = config_size(described[i], "max.message.bytes");
        }
        /* A topic's own setting overrides the broker's. */
        *limit = topic_limit ? topic_limit : broker_limit;
        if (*limit) {
            log_info("kafka: %s takes records up to %zu bytes (broker message.max.bytes "
                     "%zu, topic max.message.bytes %zu%s)",
                     topic, *limit, broker_limit, topic_limit,
                     topic_exists ? "" : ": not created yet");
            rc = 0;
        } else {
            eie_err_set(err, "describing %s: no message size limit in the answer", topic);
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(queue);
    rd_kafka_ConfigResource_destroy(res[0]);
    rd_kafka_ConfigResource_destroy(res[1]);
    return rc;
}

rd_kafka_t *kafka_consumer_new(rd_kafka_conf_t *conf, const char *what, eie_err *err)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eie_err_set(err, "creating a Kafka consumer %s: %s", what, errstr);
        return NULL;
    }
    /* rd_kafka_new() took ownership of conf. */
    rd_kafka_poll_set_consumer(rk);
    return rk;
}
