/* The sink loop's batches (the main thread's): collecting decoded, validated
 * readings from the consumer, with the dead letters of what cannot be stored,
 * and pausing the partitions while the writer cannot take a batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sink_internal.h"
#include "timefmt.h"

static void note_offset(batch *b, reading_kind kind, int32_t partition, int64_t next,
                        int64_t prev)
{
    for (size_t i = 0; i < b->n_offsets; i++) {
        if (b->offsets[i].kind == kind && b->offsets[i].partition == partition) {
            if (next > b->offsets[i].next)
                b->offsets[i].next = next;
            return;
        }
    }
    if (b->n_offsets == b->cap_offsets) {
        b->cap_offsets = b->cap_offsets ? b->cap_offsets * 2 : 64;
        b->offsets = realloc(b->offsets, b->cap_offsets * sizeof *b->offsets);
        if (!b->offsets)
            abort();
    }
    b->offsets[b->n_offsets++] = (partition_offset){kind, partition, next, prev};
}

static void skip_message(sink *s, const rd_kafka_message_t *msg, dead_reason reason,
                         const char *detail)
{
    s->skipped++;
    if (s->replay) { /* the live consumers sent it to the dead letters already */
        log_debug("replay: passing over %s [%d] at offset %lld (%s): %s",
                  rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset,
                  dead_reason_name(reason), detail);
        return;
    }
    log_warn("skipping %s [%d] at offset %lld (%s): %s; sent to %s", rd_kafka_topic_name(msg->rkt),
             (int)msg->partition, (long long)msg->offset, dead_reason_name(reason), detail,
             s->topics.dead_letter);
    dead_list_add(&s->collecting->dead, msg, reason, detail);
}

static dead_reason reason_of(codec_status status)
{
    return status == CODEC_ERR_FRAMING          ? DEAD_BAD_FRAMING
           : status == CODEC_ERR_UNKNOWN_SCHEMA ? DEAD_UNKNOWN_SCHEMA
                                                : DEAD_BAD_BODY;
}

static void take_message(sink *s, const rd_kafka_message_t *msg)
{
    int kind = sink_topic_kind(s, rd_kafka_topic_name(msg->rkt));
    partition_state *part = sink_owned_part(s, kind, msg->partition);
    if (!part)
        return;
    if (s->replay) {
        if (part->done || msg->offset >= part->end)
            return; /* beyond the range: not this replay's to store */
        s->replay->read++;
        if (msg->offset + 1 >= part->end)
            sink_replay_partition_done(s, part);
    }
    batch *b = s->collecting;
    b->n_messages++;
    note_offset(b, (reading_kind)kind, msg->partition, msg->offset + 1, part->pos);
    part->pos = msg->offset + 1;

    if (b->n_rows == b->cap_rows) {
        b->cap_rows = b->cap_rows ? b->cap_rows * 2 : 1024;
        b->rows = realloc(b->rows, b->cap_rows * sizeof *b->rows);
        if (!b->rows)
            abort();
    }
    reading *r = &b->rows[b->n_rows];
    eie_err err;
    codec_status st = codec_decode(s->codec, msg->payload, msg->len, r, &err);
    if (st != CODEC_OK) {
        skip_message(s, msg, reason_of(st), err.msg);
        return;
    }
    if ((int)r->kind != kind) {
        eie_err_set(&err, "a %s reading on the %s topic", reading_kind_name(r->kind),
                    reading_kind_name((reading_kind)kind));
        skip_message(s, msg, DEAD_WRONG_TOPIC, err.msg);
        return;
    }
    /* "Now" is when the message was produced, not when it is read, so that a
     * replay judges a reading as the live consumer did. */
    rd_kafka_timestamp_type_t ts_type;
    int64_t produced_ms = rd_kafka_message_timestamp(msg, &ts_type);
    if (reading_validate(r, ts_type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? s->now_ms : produced_ms,
                         &err) < 0) {
        skip_message(s, msg, DEAD_INVALID, err.msg);
        return;
    }
    if (s->replay && s->replay->keep_to_ms) {
        int64_t t = reading_time_ms(r);
        if (t < s->replay->keep_from_ms || t >= s->replay->keep_to_ms)
            return; /* another day's: read, and passed over */
    }
    b->n_rows++;
}

/* A batch goes to an idle writer once it holds this share of batch_size even
 * while more messages are ready: while the writer is busy, batches grow to
 * full size; while it waits, it gets work sooner. Batch size so follows what
 * PostgreSQL takes. */
#define EARLY_HAND_OVER_DIVISOR 8
/* The most messages taken from librdkafka's queue in one call while they
 * flow. rd_kafka_consumer_poll reads the clock several times a message: a
 * tenth of a replay's CPU (perf), against once a call here. */
#define PULL_MAX 256
/* The longest poll, with no message in hand or for a busy writer to finish:
 * the caller's upkeep, and the pause of sink_hand_over_polling, get a turn. */
#define IDLE_POLL_MS 200
/* Messages polled between pokes of the fetch waker (fetch_waker.h): small
 * beside the prefetch queue (some 20,000 readings), so that it never runs
 * dry while librdkafka waits to decide again. */
#define FETCH_WAKE_EVERY 8192

/* What is ready, up to max messages, without waiting, while messages flow
 * (flowing); else one message, waiting up to timeout_ms. The batch call
 * purges what a rebalance inside it revoked (librdkafka 2.0, with a
 * rebalance callback), and take_message passes over partitions no longer
 * owned. */
static size_t pull(sink *s, bool flowing, int timeout_ms, rd_kafka_message_t **msgs, size_t max)
{
    ssize_t n = flowing ? rd_kafka_consume_batch_queue(s->poll_queue, 0, msgs, max) : 0;
    if (n > 0)
        return (size_t)n;
    msgs[0] = rd_kafka_consumer_poll(s->rk, timeout_ms);
    return msgs[0] != NULL;
}

/* Takes one polled message (or event) into the collecting batch. */
static void take_polled(sink *s, rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* The end of the log (control records included) is past a replay's
         * range only if nothing of the range is left. */
        partition_state *part =
            sink_owned_part(s, sink_topic_kind(s, rd_kafka_topic_name(msg->rkt)), msg->partition);
        if (s->replay && part && msg->offset >= part->end)
            sink_replay_partition_done(s, part);
    } else if (msg->err) {
        /* A fatal error (a static member fenced) comes this way too. */
        kafka_report_error(s->rk, msg->err, rd_kafka_message_errstr(msg));
    } else {
        take_message(s, msg);
    }
    rd_kafka_message_destroy(msg);
}

/* Collects messages until the batch is full, or until nothing more is ready
 * while the writer is idle: what is there is written at once, so a reading is
 * stored as soon as the broker has it, and under load batches grow by
 * themselves while the writer is busy (it wakes the poll when it is done: see
 * sink_writer.c). linger_ms, when set, makes an idle writer wait that long
 * after a batch's first message for more. Returns when no message comes for
 * IDLE_POLL_MS. */
void sink_collect_batch(sink *s)
{
    int64_t first_ms = 0;
    batch *b = s->collecting;
    size_t early = (size_t)s->cfg->batch_size / EARLY_HAND_OVER_DIVISOR;
    bool flowing = false;
    rd_kafka_message_t *msgs[PULL_MAX];
    while (!*s->stop && b->n_messages < (size_t)s->cfg->batch_size &&
           !(s->replay && s->replay_left == 0) && !s->fenced) {
        int writer_idle = s->writer_idle;
        if (b->n_messages >= early && b->n_messages > 0 && writer_idle)
            break;
        s->now_ms = timefmt_now_ms();
        int timeout = IDLE_POLL_MS;
        if (b->n_messages && writer_idle) {
            int64_t left = first_ms + s->cfg->linger_ms - s->now_ms;
            timeout = left <= 0 ? 0 : left < timeout ? (int)left : timeout;
        }
        size_t room = (size_t)s->cfg->batch_size - b->n_messages;
        size_t n = pull(s, flowing, timeout, msgs, room < PULL_MAX ? room : PULL_MAX);
        b = s->collecting; /* a rebalance inside the poll may have handed it over */
        flowing = n > 0;
        /* None: nothing more is ready for an idle writer, or the busy writer
         * finished (it wakes the poll), or none came for a while, and then
         * the caller waits for the writer (and keeps the group, see
         * sink_hand_over_polling). */
        if (n ? (s->polled_since_wake += (unsigned)n) >= FETCH_WAKE_EVERY : s->polled_since_wake > 0) {
            fetch_waker_poke(s->waker);
            s->polled_since_wake = 0;
        }
        if (!n) {
            if (b->n_messages == 0)
                return;
            break;
        }
        if (b->n_messages == 0)
            first_ms = s->now_ms;
        for (size_t i = 0; i < n; i++)
            take_polled(s, msgs[i]);
    }
}

void sink_pause(sink *s, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e = rd_kafka_assignment(s->rk, &parts);
    if (!e && parts && parts->cnt)
        e = pause ? rd_kafka_pause_partitions(s->rk, parts)
                  : rd_kafka_resume_partitions(s->rk, parts);
    s->paused = pause;
    if (e)
        log_warn("%s the partitions: %s", pause ? "pausing" : "resuming", rd_kafka_err2str(e));
    else if (parts && parts->cnt)
        log_info("%s %d partition%s while a batch %s", pause ? "paused" : "resumed", parts->cnt,
                 parts->cnt == 1 ? "" : "s", pause ? "fails to commit" : "was committed");
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
}

void sink_poll_paused(sink *s)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(s->rk, 0);
    if (msg) {
        s->now_ms = timefmt_now_ms();
        take_polled(s, msg);
    }
}

/* At each scrape: dead letters by reason, and the lag of every assigned
 * partition (high watermark minus the position read), summed per topic. */
