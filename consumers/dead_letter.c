/* Dead-letter publishing; see dead_letter.h. */
#include "dead_letter.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dead_letter_item.h"
#include "kafka.h"
#include "log.h"
#include "timefmt.h"

static const char *const reason_names[DEAD_REASON_COUNT] = {
    [DEAD_BAD_FRAMING] = "bad-framing", [DEAD_UNKNOWN_SCHEMA] = "unknown-schema",
    [DEAD_BAD_BODY] = "bad-body",       [DEAD_WRONG_TOPIC] = "wrong-topic",
    [DEAD_INVALID] = "invalid",
};

static const char *const form_names[DEAD_FORM_COUNT] = {
    [DEAD_FORM_WHOLE] = "whole",
    [DEAD_FORM_TRUNCATED] = "truncated",
};

const char *dead_reason_name(dead_reason reason)
{
    return reason < DEAD_REASON_COUNT ? reason_names[reason] : "unknown";
}

const char *dead_form_name(dead_form form)
{
    return form < DEAD_FORM_COUNT ? form_names[form] : "unknown";
}

/* What a truncated dead letter keeps of the original's key and value. */
#define TRUNCATED_KEY_BYTES 256
#define TRUNCATED_VALUE_BYTES 4096
/* Room for the record's and the batch's framing, beyond key, value and
 * headers (Kafka's record batch header is 61 bytes, a record's own at most
 * about 20, a header's about 10). */
#define RECORD_OVERHEAD_BYTES 512
/* Used when the broker cannot be asked: librdkafka's own default, which
 * every broker's default (1 MiB plus framing) exceeds. */
#define FALLBACK_LIMIT_BYTES 1000000
#define DESCRIBE_TIMEOUT_MS 5000
/* Dead letters are given up by the producer before the publisher stops
 * waiting for them, so that no record is still in flight when a publish
 * returns (a retry would otherwise publish it twice). */
#define MESSAGE_TIMEOUT_MS 20000

struct dead_letters {
    char *bootstrap, *topic_name, *group;
    const config_props *props;
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    size_t limit;          /* the topic's max.message.bytes; 0: not known yet */
    size_t producer_limit; /* what the producer was made for */
    bool refresh_limit;
    /* Delivery reports of an earlier publish are ignored by round. */
    uint32_t round;
    dead_list *publishing;
    char last_error[256];
    _Atomic uint64_t published[DEAD_REASON_COUNT];
    _Atomic uint64_t forms[DEAD_FORM_COUNT];
    _Atomic uint64_t already;
};

static bool is_size_error(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    dead_letters *dl = opaque;
    uintptr_t tag = (uintptr_t)msg->_private;
    if ((uint32_t)(tag >> 32) != dl->round || !dl->publishing)
        return; /* from a publish that gave up waiting for it */
    size_t i = (size_t)(tag & 0xffffffffu);
    if (i >= dl->publishing->n)
        return;
    dead_letter *d = &dl->publishing->items[i];
    d->in_flight = false;
    d->delivery_err = msg->err;
    if (msg->err)
        snprintf(dl->last_error, sizeof dl->last_error, "%s", rd_kafka_err2str(msg->err));
    /* A timeout after the request went out: the broker may have stored it. */
    if (msg->err && rd_kafka_message_status(msg) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
        d->unsure = true;
}

/* A producer whose message.max.bytes and batch.size are the topic's limit, so
 * that neither librdkafka's default refuses a record the topic would take nor
 * a batch of several grows past what the topic takes. */
static int make_producer(dead_letters *dl, size_t limit, eie_err *err)
{
    char max_bytes[24];
    snprintf(max_bytes, sizeof max_bytes, "%zu", limit);
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%d", MESSAGE_TIMEOUT_MS);
    const kafka_setting defaults[] = {
        {"enable.idempotence", "true"}, {"acks", "all"},          {"linger.ms", "5"},
        {"message.max.bytes", max_bytes}, {"batch.size", max_bytes}, {"message.timeout.ms", timeout},
    };
    rd_kafka_conf_t *conf =
        kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0], dl->bootstrap, dl->props, err);
    if (!conf)
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    rd_kafka_conf_set_opaque(conf, dl);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        eie_err_set(err, "creating the dead-letter producer: %s", errstr);
        return -1;
    }
    /* rd_kafka_new() took ownership of conf. */
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, dl->topic_name, NULL);
    if (!topic) {
        eie_err_set(err, "dead-letter topic %s: %s", dl->topic_name,
                    rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(rk);
        return -1;
    }
    if (dl->topic)
        rd_kafka_topic_destroy(dl->topic);
    if (dl->rk)
        rd_kafka_destroy(dl->rk);
    dl->rk = rk;
    dl->topic = topic;
    dl->producer_limit = limit;
    return 0;
}

dead_letters *dead_letters_open(const char *bootstrap, const config_props *props,
                                const char *topic, const char *group, eie_err *err)
{
    if (sodium_init() < 0) {
        eie_err_set(err, "libsodium could not be initialised");
        return NULL;
    }
    dead_letters *dl = calloc(1, sizeof *dl);
    if (!dl || !(dl->group = strdup(group)) || !(dl->bootstrap = strdup(bootstrap)) ||
        !(dl->topic_name = strdup(topic))) {
        dead_letters_close(dl);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    dl->props = props;
    dl->refresh_limit = true;
    if (make_producer(dl, FALLBACK_LIMIT_BYTES, err) < 0) {
        dead_letters_close(dl);
        return NULL;
    }
    return dl;
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
    free(dl->bootstrap);
    free(dl->topic_name);
    free(dl);
}

/* Learns the limit when it is not known or was found wrong, and makes the
 * producer fit it. When the broker cannot be asked the last limit stays
 * (librdkafka's default before the first answer): a record the topic then
 * refuses is truncated on delivery, so the guess costs at most a retry. */
static void update_limit(dead_letters *dl)
{
    if (!dl->refresh_limit)
        return;
    size_t limit;
    eie_err err;
    if (kafka_topic_max_message_bytes(dl->rk, dl->topic_name, DESCRIBE_TIMEOUT_MS, &limit, &err) < 0) {
        log_warn("dead letters: %s; assuming %zu bytes", err.msg,
                 dl->limit ? dl->limit : (size_t)FALLBACK_LIMIT_BYTES);
        return;
    }
    dl->refresh_limit = false;
    dl->limit = limit;
    if (limit != dl->producer_limit && rd_kafka_outq_len(dl->rk) == 0 &&
        make_producer(dl, limit, &err) < 0)
        log_warn("dead letters: %s", err.msg);
}


static void add_number_header(rd_kafka_headers_t *h, const char *name, long long n)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", n);
    rd_kafka_header_add(h, name, -1, text, -1);
}

/* Our headers: why, and where the original came from. */
static rd_kafka_headers_t *headers_for(const dead_letters *dl, const dead_letter *d, bool truncated)
{
    rd_kafka_headers_t *h =
        truncated || !d->headers ? rd_kafka_headers_new(12) : rd_kafka_headers_copy(d->headers);
    rd_kafka_header_add(h, "eie.reason", -1, reason_names[d->reason], -1);
    rd_kafka_header_add(h, "eie.error", -1, d->detail, -1);
    rd_kafka_header_add(h, "eie.source.topic", -1, d->topic, -1);
    add_number_header(h, "eie.source.partition", d->partition);
    add_number_header(h, "eie.source.offset", d->offset);
    rd_kafka_header_add(h, "eie.consumer.group", -1, dl->group, -1);
    if (!truncated)
        return h;
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256(digest, d->value ? d->value : (const void *)"", d->value_len);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    rd_kafka_header_add(h, "eie.truncated", -1, "true", -1);
    add_number_header(h, "eie.original.size", (long long)d->value_len);
    add_number_header(h, "eie.original.key.size", (long long)d->key_len);
    add_number_header(h, "eie.original.headers", (long long)d->n_headers);
    rd_kafka_header_add(h, "eie.original.sha256", -1, hex, -1);
    return h;
}

static size_t current_limit(const dead_letters *dl)
{
    return dl->limit ? dl->limit : dl->producer_limit;
}

/* Our own headers' share of a record, generously. */
static size_t our_headers_bytes(const dead_letters *dl, const dead_letter *d)
{
    return strlen(d->detail) + strlen(d->topic) + strlen(dl->group) + 12 * 40 +
           2 * crypto_hash_sha256_BYTES;
}

/* The record as it would be published whole, against the topic's limit. */
static bool fits_whole(const dead_letters *dl, const dead_letter *d)
{
    size_t size = d->key_len + d->value_len + d->headers_bytes + our_headers_bytes(dl, d) +
                  RECORD_OVERHEAD_BYTES;
    return size <= current_limit(dl);
}

/* How much of the original's value a truncated dead letter keeps: up to
 * TRUNCATED_VALUE_BYTES, less when the topic's limit leaves less room. */
static size_t truncated_value_bytes(const dead_letters *dl, const dead_letter *d, size_t key_len)
{
    size_t fixed = key_len + our_headers_bytes(dl, d) + RECORD_OVERHEAD_BYTES;
    size_t room = current_limit(dl) > fixed ? current_limit(dl) - fixed : 0;
    size_t keep = room < TRUNCATED_VALUE_BYTES ? room : TRUNCATED_VALUE_BYTES;
    return keep < d->value_len ? keep : d->value_len;
}

/* Enqueues one dead letter; err set and -1 when librdkafka refuses it for a
 * reason other than its size (which makes it try the truncated form). */
static int enqueue(dead_letters *dl, dead_letter *d, size_t index, eie_err *err)
{
    if (!d->truncate && !fits_whole(dl, d))
        d->truncate = true;
    for (;;) {
        bool truncated = d->truncate;
        size_t key_len = truncated && d->key_len > TRUNCATED_KEY_BYTES ? TRUNCATED_KEY_BYTES : d->key_len;
        size_t value_len = truncated ? truncated_value_bytes(dl, d, key_len) : d->value_len;
        rd_kafka_headers_t *h = headers_for(dl, d, truncated);
        void *tag = (void *)(((uintptr_t)dl->round << 32) | (uintptr_t)index);
        rd_kafka_resp_err_t e;
        /* RD_KAFKA_V_HEADERS passes ownership of h on success only. */
        while ((e = rd_kafka_producev(dl->rk, RD_KAFKA_V_RKT(dl->topic),
                                      RD_KAFKA_V_KEY(d->key, key_len),
                                      RD_KAFKA_V_VALUE(d->value, value_len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(tag),
                                      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(dl->rk, 100);
        if (!e) {
            d->sent = d->in_flight = true;
            d->delivery_err = RD_KAFKA_RESP_ERR_NO_ERROR;
            return 0;
        }
        rd_kafka_headers_destroy(h);
        if (is_size_error(e) && !truncated) {
            d->truncate = true;
            continue;
        }
        char text[512];
        eie_err_set(err, "publishing a dead letter of %s [%d] at offset %lld: %s", d->topic,
                    (int)d->partition, (long long)d->offset,
                    kafka_err_text(dl->rk, e, text, sizeof text));
        return -1;
    }
}

/* Counts as acknowledged what is on the topic already. */
static void pass_over_seen(dead_letters *dl, dead_list *list, const dead_seen *seen)
{
    size_t already = 0;
    for (size_t i = 0; seen && i < list->n; i++) {
        dead_letter *d = &list->items[i];
        if (!d->acked && dead_seen_has(seen, d->topic, d->partition, d->offset)) {
            d->acked = true;
            list->n_acked++;
            already++;
        }
    }
    dl->already += already;
    if (already)
        log_info("dead letters: %zu already on the dead-letter topic; not published again", already);
}

int dead_letters_publish(dead_letters *dl, dead_list *list, const dead_seen *seen, int timeout_ms,
                         eie_err *err)
{
    pass_over_seen(dl, list, seen);
    if (list->n_acked == list->n)
        return 0;
    if (!list->first_sent_ms)
        list->first_sent_ms = timefmt_now_ms();
    update_limit(dl);
    /* A second pass publishes truncated what the broker refused as too large. */
    for (int pass = 0; pass < 2; pass++) {
        dl->round++;
        dl->publishing = list;
        dl->last_error[0] = '\0';
        int rc = 0;
        for (size_t i = 0; i < list->n; i++)
            list->items[i].sent = false;
        for (size_t i = 0; rc == 0 && i < list->n; i++)
            if (!list->items[i].acked)
                rc = enqueue(dl, &list->items[i], i, err);
        rd_kafka_flush(dl->rk, rc == 0 ? timeout_ms : 0);
        dl->publishing = NULL;
        size_t refused_for_size = 0, failed = 0, waiting = 0;
        for (size_t i = 0; i < list->n; i++) {
            dead_letter *d = &list->items[i];
            if (d->acked || !d->sent)
                continue;
            if (d->in_flight) {
                waiting++;
                d->in_flight = false;
                d->unsure = true;
            } else if (is_size_error(d->delivery_err) && !d->truncate) {
                d->truncate = true;
                refused_for_size++;
            } else if (d->delivery_err) {
                failed++;
            } else {
                d->acked = true;
                list->n_acked++;
                dl->published[d->reason]++;
                dl->forms[d->truncate ? DEAD_FORM_TRUNCATED : DEAD_FORM_WHOLE]++;
            }
        }
        list->n_unsure = 0;
        for (size_t i = 0; i < list->n; i++)
            list->n_unsure += !list->items[i].acked && list->items[i].unsure;
        if (rc < 0)
            return -1;
        if (refused_for_size) {
            /* The topic's limit is not what was believed: ask again. */
            dl->refresh_limit = true;
            update_limit(dl);
        }
        if (failed || waiting) {
            eie_err_set(err, "%zu dead letter(s) not acknowledged: %s", list->n - list->n_acked,
                        waiting && !failed ? "timed out" : dl->last_error);
            return -1;
        }
        if (!refused_for_size)
            return 0;
    }
    eie_err_set(err, "%zu dead letter(s) refused as too large even truncated",
                list->n - list->n_acked);
    return -1;
}


uint64_t dead_letters_count(const dead_letters *dl, dead_reason reason)
{
    return reason < DEAD_REASON_COUNT ? dl->published[reason] : 0;
}

uint64_t dead_letters_form_count(const dead_letters *dl, dead_form form)
{
    return form < DEAD_FORM_COUNT ? dl->forms[form] : 0;
}

uint64_t dead_letters_already_count(const dead_letters *dl)
{
    return dl->already;
}

size_t dead_letters_limit(const dead_letters *dl)
{
    return dl->limit;
}
