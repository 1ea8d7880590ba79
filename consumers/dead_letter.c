/* Dead-letter publishing; see dead_letter.h. */
#include "dead_letter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

static const char *const reason_names[DEAD_REASON_COUNT] = {
    [DEAD_BAD_FRAMING] = "bad-framing", [DEAD_UNKNOWN_SCHEMA] = "unknown-schema",
    [DEAD_BAD_BODY] = "bad-body",       [DEAD_WRONG_TOPIC] = "wrong-topic",
    [DEAD_INVALID] = "invalid",
};

const char *dead_reason_name(dead_reason reason)
{
    return reason < DEAD_REASON_COUNT ? reason_names[reason] : "unknown";
}

struct dead_letter {
    dead_reason reason;
    char *detail, *topic;
    int32_t partition;
    int64_t offset;
    void *key, *value;
    size_t key_len, value_len;
};

struct dead_letters {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    char *group;
    uint64_t failed_in_publish; /* delivery failures seen by the current publish */
    char last_error[256];
    _Atomic uint64_t published[DEAD_REASON_COUNT];
};

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    dead_letters *dl = opaque;
    if (msg->err) {
        dl->failed_in_publish++;
        snprintf(dl->last_error, sizeof dl->last_error, "%s", rd_kafka_err2str(msg->err));
    }
}

dead_letters *dead_letters_open(const char *bootstrap, const config_props *props,
                                const char *topic, const char *group, eie_err *err)
{
    static const kafka_setting defaults[] = {
        {"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "5"},
    };
    dead_letters *dl = calloc(1, sizeof *dl);
    if (!dl || !(dl->group = strdup(group))) {
        free(dl);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf =
        kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0], bootstrap, props, err);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    rd_kafka_conf_set_opaque(conf, dl);
    char errstr[512];
    if (!(dl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(conf);
        eie_err_set(err, "creating the dead-letter producer: %s", errstr);
        goto fail;
    }
    if (!(dl->topic = rd_kafka_topic_new(dl->rk, topic, NULL))) {
        eie_err_set(err, "dead-letter topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    return dl;
fail:
    dead_letters_close(dl);
    return NULL;
}

void dead_letters_close(dead_letters *dl)
{
    if (!dl)
        return;
    if (dl->topic)
        rd_kafka_topic_destroy(dl->topic);
    if (dl->rk)
        rd_kafka_destroy(dl->rk);
    free(dl->group);
    free(dl);
}

static void *copy_bytes(const void *src, size_t len)
{
    void *dst = malloc(len ? len : 1);
    if (!dst)
        abort();
    if (len)
        memcpy(dst, src, len);
    return dst;
}

void dead_list_add(dead_list *list, const rd_kafka_message_t *msg, dead_reason reason,
                   const char *detail)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        if (!list->items)
            abort();
    }
    dead_letter *d = &list->items[list->n++];
    *d = (dead_letter){reason, strdup(detail), strdup(rd_kafka_topic_name(msg->rkt)),
                       msg->partition, msg->offset, NULL, NULL, msg->key_len, msg->len};
    d->key = msg->key ? copy_bytes(msg->key, msg->key_len) : NULL;
    d->value = msg->payload ? copy_bytes(msg->payload, msg->len) : NULL;
}

static rd_kafka_headers_t *headers_for(const dead_letters *dl, const dead_letter *d)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%d", (int)d->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)d->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "eie.reason", -1, reason_names[d->reason], -1);
    rd_kafka_header_add(h, "eie.error", -1, d->detail, -1);
    rd_kafka_header_add(h, "eie.source.topic", -1, d->topic, -1);
    rd_kafka_header_add(h, "eie.source.partition", -1, partition, -1);
    rd_kafka_header_add(h, "eie.source.offset", -1, offset, -1);
    rd_kafka_header_add(h, "eie.consumer.group", -1, dl->group, -1);
    return h;
}

int dead_letters_publish(dead_letters *dl, dead_list *list, int timeout_ms, eie_err *err)
{
    if (list->n_acked == list->n)
        return 0;
    dl->failed_in_publish = 0;
    for (size_t i = list->n_acked; i < list->n; i++) {
        dead_letter *d = &list->items[i];
        rd_kafka_headers_t *h = headers_for(dl, d);
        rd_kafka_resp_err_t e;
        /* RD_KAFKA_V_HEADERS passes ownership of h on success only. */
        while ((e = rd_kafka_producev(dl->rk, RD_KAFKA_V_RKT(dl->topic),
                                      RD_KAFKA_V_KEY(d->key, d->key_len),
                                      RD_KAFKA_V_VALUE(d->value, d->value_len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(dl->rk, 100);
        if (e) {
            rd_kafka_headers_destroy(h);
            eie_err_set(err, "publishing a dead letter: %s", rd_kafka_err2str(e));
            return -1;
        }
    }
    rd_kafka_flush(dl->rk, timeout_ms);
    if (rd_kafka_outq_len(dl->rk) > 0 || dl->failed_in_publish) {
        eie_err_set(err, "%zu dead letter(s) not acknowledged: %s", list->n - list->n_acked,
                    dl->failed_in_publish ? dl->last_error : "timed out");
        return -1;
    }
    for (size_t i = list->n_acked; i < list->n; i++)
        dl->published[list->items[i].reason]++;
    list->n_acked = list->n;
    return 0;
}

void dead_list_clear(dead_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].detail);
        free(list->items[i].topic);
        free(list->items[i].key);
        free(list->items[i].value);
    }
    list->n = list->n_acked = 0;
}

void dead_list_free(dead_list *list)
{
    dead_list_clear(list);
    free(list->items);
    memset(list, 0, sizeof *list);
}

uint64_t dead_letters_count(const dead_letters *dl, dead_reason reason)
{
    return reason < DEAD_REASON_COUNT ? dl->published[reason] : 0;
}
