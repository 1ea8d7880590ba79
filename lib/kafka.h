/* Kafka client set-up shared by every program: configuration with -X
 * passthrough, what a client's errors mean for the program, our topic names,
 * topic creation, and a producer whose delivery reports are the truth about
 * what was sent. */
#ifndef EIE_KAFKA_H
#define EIE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "reading.h"

#define KAFKA_DEFAULT_BOOTSTRAP "127.0.0.1:9092"
#define KAFKA_DEFAULT_TOPIC_PREFIX "eie."

/* One topic per reading kind: <prefix>meter-readings, <prefix>vehicle-readings,
 * <prefix>vehicle-assignments; and <prefix>dead-letters for what the consumers
 * could not store. */
typedef struct kafka_topics {
    char name[READING_KIND_COUNT][200];
    char dead_letter[200];
} kafka_topics;

int kafka_topics_init(kafka_topics *topics, const char *prefix, eie_err *err);

typedef struct kafka_setting {
    const char *key, *value;
} kafka_setting;

/* A configuration: the program's defaults, then bootstrap.servers, then the
 * passthrough properties, so that -X can override anything we set. Logs go
 * through log.h, errors to kafka_report_error. Returns NULL with err set. */
rd_kafka_conf_t *kafka_conf_new(const kafka_setting *defaults, size_t n_defaults,
                                const char *bootstrap, const config_props *props, eie_err *err);

/* ---- Errors ----
 * Every client made from kafka_conf_new reports its errors through
 * librdkafka's error callback to kafka_report_error; a group consumer gets
 * its fatal error from its poll instead, and its caller passes it on.
 *
 * Most errors pass: librdkafka reconnects and retries by itself. A fatal one
 * does not: an idempotent producer that can no longer keep its promise (no
 * duplicates, order kept), or a static group member fenced by another
 * instance with its id, refuses all further work. A program that went on
 * would look alive while it does nothing, so it is asked to stop the way an
 * operator would ask: SIGTERM to its own process, which every program takes
 * as a clean stop (a service's /readyz says not ready meanwhile). */

typedef enum {
    KAFKA_ERROR_TRANSIENT,  /* retried until it passes (a broker down): a warning */
    KAFKA_ERROR_PERSISTENT, /* retried, but it will not pass by itself (credentials, access
                               rights, TLS): an error, for someone to act on */
    KAFKA_ERROR_FATAL,      /* the client cannot go on: the program stops */
} kafka_error_class;

/* What an error reported by a client calls for. */
kafka_error_class kafka_error_classify(rd_kafka_resp_err_t err);

/* Logs a client's error as its class says; for a fatal one, with the
 * underlying error and reason (rd_kafka_fatal_error), and then asks the
 * program to stop (above), once per process. */
void kafka_report_error(rd_kafka_t *rk, rd_kafka_resp_err_t err, const char *reason);

/* For error messages: rd_kafka_err2str(e), followed for a fatal error by its
 * underlying error (rd_kafka_fatal_error). Returns buf. */
const char *kafka_err_text(rd_kafka_t *rk, rd_kafka_resp_err_t e, char *buf, size_t size);

/* Whether a client's fatal error has asked the program to stop; if so, and
 * reason is not NULL, what it was. For main() to say why it stopped and exit
 * non-zero, and for a readiness check. */
bool kafka_fatal_stop(char *reason, size_t size);

/* config_parse for programs that talk to Kafka: it also checks that
 * librdkafka knows every -X property and accepts its value, so a typo is bad
 * usage (exit 2) before anything starts. */
config_result kafka_config_parse(const config_spec *spec, int argc, char **argv,
                                 config_props *props, int *first_arg);

/* The option rows (config.h) of the settings every Kafka program shares,
 * written once: their flag, variable, default and help. */
#define KAFKA_OPTION_BOOTSTRAP(value)                                                            \
    {"bootstrap-servers", 'b', "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STRING, value,                  \
     KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers"}
#define KAFKA_OPTION_TOPIC_PREFIX(value)                                                         \
    {"topic-prefix", 0, "EIE_TOPIC_PREFIX", CONFIG_STRING, value, KAFKA_DEFAULT_TOPIC_PREFIX, 0, 0, \
     "prefix of the topic names"}

/* kafka_config_parse for a main(): -1 to go on, or the status main() returns
 * (0 after --help, 2 on bad usage), props then freed. */
int kafka_config_main(const config_spec *spec, int argc, char **argv, config_props *props,
                      int *first_arg);

/* A consumer from conf (taken over, destroyed on failure too) whose events
 * all come through rd_kafka_consumer_poll. err says what failed of making
 * the client for what ("to read the dead letters"). */
rd_kafka_t *kafka_consumer_new(rd_kafka_conf_t *conf, const char *what, eie_err *err);

/* Sets one property; err names it. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, eie_err *err);

/* Creates the topics (dead letters included) that do not exist yet; existing
 * ones are left alone. */
int kafka_create_topics(rd_kafka_t *rk, const kafka_topics *topics, int partitions,
                        long long retention_ms, int timeout_ms, eie_err *err);

/* The largest record a topic takes: its max.message.bytes, or the broker's
 * message.max.bytes when the topic does not exist yet (what it would get if
 * created), as the broker reports them (DescribeConfigs). Logged. */
int kafka_topic_max_message_bytes(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                  size_t *limit, eie_err *err);

/* ---- Producer ---- */

typedef struct kafka_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topics[READING_KIND_COUNT];
    codec *codec;
    /* Updated by delivery reports, which run inside rd_kafka_poll/flush on the
     * calling thread. */
    uint64_t produced, acked, failed;
    char last_error[256];
} kafka_producer;

/* Idempotent, acks=all, lz4-compressed, keyed by device id. props override.
 * schema_versions (may be NULL) pins the version written per kind (0: newest),
 * for producers that must keep writing an older version during an upgrade. */
int kafka_producer_open(kafka_producer *p, const char *bootstrap, const config_props *props,
                        const kafka_topics *topics, const int *schema_versions, eie_err *err);

/* Encodes and enqueues one reading; blocks (serving delivery reports) while the
 * local queue is full. */
int kafka_producer_send(kafka_producer *p, const reading *r, eie_err *err);

/* Waits until every enqueued record is acknowledged or failed, up to timeout_ms.
 * Returns the number still outstanding (0 when all are settled). */
int kafka_producer_flush(kafka_producer *p, int timeout_ms);

void kafka_producer_close(kafka_producer *p);

#endif
