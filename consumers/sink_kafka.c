/* The Kafka side of the sink loop (the main thread's): group membership and
 * rebalances, and where each partition starts (the offsets stored in
 * PostgreSQL, not Kafka's). Batches are collected in sink_collect.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "offsets.h"
#include "sink_internal.h"
#include "strbuf.h"
#include "timefmt.h"

partition_state *sink_part(sink *s, int kind, int32_t partition)
{
    if (partition >= s->parts_cap[kind]) {
        int32_t cap = partition + 64;
        partition_state *grown = realloc(s->parts[kind], (size_t)cap * sizeof *grown);
        if (!grown)
            abort();
        for (int32_t p = s->parts_cap[kind]; p < cap; p++)
            grown[p] = (partition_state){.pos = -1};
        s->parts[kind] = grown;
        s->parts_cap[kind] = cap;
    }
    return &s->parts[kind][partition];
}

/* What is known of the partitions' dead letters is replaced by what is on
 * the topic from their stored offsets on, read from their earliest last
 * commit (the beginning if one was never committed). */
static int look_for_dead_letters(sink *s, rd_kafka_topic_partition_list_t *parts,
                                 const offsets_stored *stored, eie_err *err)
{
    dead_seen_source *sources = calloc((size_t)parts->cnt + 1, sizeof *sources);
    if (!sources)
        abort();
    int64_t since_ms = INT64_MAX;
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (sink_topic_kind(s, p->topic) < 0 || p->partition < 0)
            continue;
        int64_t next = offsets_find(stored, p->topic, p->partition);
        int64_t committed = offsets_committed_ms(stored, p->topic, p->partition);
        since_ms = committed < since_ms ? committed : since_ms; /* -1: the beginning */
        sources[n++] = (dead_seen_source){p->topic, p->partition, next >= 0 ? next : 0};
        dead_seen_forget(s->seen, p->topic, p->partition);
    }
    int rc = dead_seen_scan(s->seen, sources, n, since_ms, err);
    free(sources);
    return rc;
}

/* A partition never stored starts at the beginning, since the topics are the
 * full history (a replay's start may say otherwise: see sink_replay.c). */
int sink_load_offsets(sink *s, rd_kafka_topic_partition_list_t *parts, eie_err *err)
{
    offsets_stored stored;
    sink_writer *w = &s->writers[0]; /* every writer is idle: see the callers */
    if (sink_db_ready(w, err) < 0 || offsets_read(w->conn, NULL, s->cfg->group, &stored, err) < 0)
        return -1;
    if (s->seen && look_for_dead_letters(s, parts, &stored, err) < 0) {
        offsets_release(&stored);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t next = offsets_find(&stored, p->topic, p->partition);
        p->offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
        int kind = sink_topic_kind(s, p->topic);
        if (kind >= 0 && p->partition >= 0) {
            partition_state *st = sink_part(s, kind, p->partition);
            st->owned = 1;
            st->pos = next;
        }
    }
    offsets_release(&stored);
    return 0;
}

static void disown(sink *s, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int kind = sink_topic_kind(s, parts->elems[i].topic);
        if (kind >= 0 && parts->elems[i].partition >= 0)
            sink_part(s, kind, parts->elems[i].partition)->owned = 0;
        if (s->seen) /* a next owner looks for itself */
            dead_seen_forget(s->seen, parts->elems[i].topic, parts->elems[i].partition);
    }
}

partition_state *sink_owned_part(sink *s, int kind, int32_t partition)
{
    if (kind < 0 || partition < 0 || partition >= s->parts_cap[kind] ||
        !s->parts[kind][partition].owned)
        return NULL;
    return &s->parts[kind][partition];
}

/* "T[0,2] U[1]": which partitions move, so that an operator (and
 * tests/integration/test_rebalance.sh) sees that a cooperative rebalance moved
 * only some of them. */
static void describe_parts(const rd_kafka_topic_partition_list_t *parts, strbuf *out)
{
    rd_kafka_topic_partition_list_t *sorted = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_topic_partition_list_sort(sorted, NULL, NULL); /* by topic, then partition */
    for (int i = 0; i < sorted->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &sorted->elems[i];
        int same_topic = i > 0 && strcmp(sorted->elems[i - 1].topic, p->topic) == 0;
        if (same_topic)
            strbuf_printf(out, ",%d", (int)p->partition);
        else
            strbuf_printf(out, "%s%s[%d", i ? "] " : "", p->topic, (int)p->partition);
    }
    if (sorted->cnt)
        strbuf_putc(out, ']');
    rd_kafka_topic_partition_list_destroy(sorted);
}

static void log_moved(rd_kafka_t *rk, const char *what,
                      const rd_kafka_topic_partition_list_t *parts, int cooperative)
{
    strbuf list = STRBUF_INIT;
    describe_parts(parts, &list);
    /* Lost: librdkafka gave up the assignment (the member was put out of the
     * group, or a request of it was refused as of an old generation), so every
     * partition moves, whatever the protocol. */
    log_info("%s %d partition%s (%s%s): %s", what, parts->cnt, parts->cnt == 1 ? "" : "s",
             cooperative ? "cooperative" : "eager",
             rd_kafka_assignment_lost(rk) ? ", assignment lost" : "",
             list.len ? list.data : "none");
    strbuf_free(&list);
}

/* Both protocols: eager (everything revoked, then everything assigned) and
 * cooperative (only the partitions that move), the default. */
static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sink *s = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        s->was_assigned = true;
        sink_drain(s); /* the connection is ours now */
        eie_err err;
        long wait_ms = 100;
        while (sink_load_offsets(s, parts, &err) < 0 && !*s->stop) {
            log_error("cannot read stored offsets or dead letters (retrying in %ld ms): %s",
                      wait_ms, err.msg);
            wait_ms = sink_backoff(s, wait_ms);
        }
        if (*s->stop) /* stopping: acknowledged below, but nothing of them is stored */
            disown(s, parts);
        else
            log_moved(rk, "assigned", parts, cooperative);
        sink_commit_assigned(s);
        /* librdkafka keeps a partition's pause through its revocation: one
         * paused while a batch failed to commit, revoked meanwhile and assigned
         * to this consumer again would stay paused for good. Set before the
         * assignment: after it, the version bump of a resume would discard
         * the lookup of the first offset, which librdkafka retries only after
         * 500 ms. */
        rd_kafka_resp_err_t pe = s->paused ? rd_kafka_pause_partitions(rk, parts)
                                           : rd_kafka_resume_partitions(rk, parts);
        if (pe)
            log_warn("%s the partitions assigned: %s", s->paused ? "pausing" : "resuming",
                     rd_kafka_err2str(pe));
        rd_kafka_error_t *error = NULL;
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (error) {
            log_error("assigning partitions: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        fetch_waker_poke(s->waker); /* their first fetch, without waiting */
    } else {
        /* The partitions may go to another consumer: store what was read first. */
        sink_hand_over(s);
        sink_drain(s);
        sink_commit_revoking(s, cooperative);
        disown(s, parts);
        log_moved(rk, "revoked", parts, cooperative);
        rd_kafka_error_t *error = NULL;
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        if (error) {
            log_error("revoking partitions: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
}

rd_kafka_t *sink_open_consumer(sink *s, eie_err *err)
{
    /* A replay never joins the group (it assigns partitions itself), but
     * librdkafka's consumer API wants a group id. */
    char replay_group[300];
    snprintf(replay_group, sizeof replay_group, "%s.replay", s->cfg->group);
    /* Offsets are ours to manage (see the top of this file). */
    const kafka_setting defaults[] = {
        {"group.id", s->replay ? replay_group : s->cfg->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        /* A replay learns that it has read a partition's end from these. */
        {"enable.partition.eof", s->replay ? "true" : "false"},
        /* Readings are small, so librdkafka's per-message overhead, not their
         * bytes, fills memory: a 64 MB default prefetch queue holds over 300 MB.
         * The queue need only hold the next batches, since the fetch waker
         * refills it as soon as there is room (fetch_waker.h): 1 MB (some
         * 20,000 readings) keeps a consumer near 42 MB at full speed, where
         * 3 MB gave 60 MB and no more speed (bench/ingest.sh). A replay reads
         * the whole history as fast as it can: larger fetches spare the
         * broker requests. */
        {"queued.max.messages.kbytes", s->replay ? "16384" : "1024"},
        {"max.partition.fetch.bytes", s->replay ? "1048576" : "65536"},
        {"fetch.max.bytes", s->replay ? "16777216" : "1048576"},
        /* Instances joining or leaving move only the partitions that change hands. */
        {"partition.assignment.strategy", "cooperative-sticky"},
    };
    rd_kafka_conf_t *conf = kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0],
                                           s->cfg->bootstrap, s->cfg->kafka_props, err);
    if (!conf)
        return NULL;
    if (!s->replay)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_t *rk = kafka_consumer_new(conf, "to read the readings", err);
    if (!rk || s->replay)
        return rk; /* NULL: err says why; a replay assigns: see replay_start */

    rd_kafka_topic_partition_list_t *subscription = rd_kafka_topic_partition_list_new(3);
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (s->store->kinds & (1u << k))
            rd_kafka_topic_partition_list_add(subscription, s->topics.name[k],
                                              RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subscription);
    if (e) {
        eie_err_set(err, "subscribing to %d topics: %s", subscription->cnt, rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(subscription);
        rd_kafka_destroy(rk);
        return NULL;
    }
    /* Known before the assignment, the topics' partitions have their leaders
     * by then: a partition assigned without one waits 500 ms (librdkafka's
     * retry) before it looks up its first offset. */
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (s->store->kinds & (1u << k))
            s->topic_handles[k] = rd_kafka_topic_new(rk, s->topics.name[k], NULL);
    log_info("%s consumer (group %s) subscribed to %d topics at %s", s->store->name,
             s->cfg->group, subscription->cnt, s->cfg->bootstrap);
    rd_kafka_topic_partition_list_destroy(subscription);
    return rk;
}

/* The partitions of the store's topics. */
void sink_reread_from_store(sink *s)
{
    sink_drain(s);
    batch_clear(s->collecting);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(s->rk, &parts) || !parts) {
        log_error("cannot read the assignment to seek back");
    } else {
        eie_err err;
        long wait_ms = 100;
        while (sink_load_offsets(s, parts, &err) < 0 && !*s->stop) {
            log_error("cannot read stored offsets (retrying in %ld ms): %s", wait_ms, err.msg);
            wait_ms = sink_backoff(s, wait_ms);
        }
        rd_kafka_error_t *error = *s->stop ? NULL : rd_kafka_seek_partitions(s->rk, parts, 10000);
        if (error) {
            log_error("seeking back: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else if (!*s->stop) {
            log_info("reading %d partition%s again from the offsets stored", parts->cnt,
                     parts->cnt == 1 ? "" : "s");
        }
    }
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    s->fenced = 0;
    pthread_mutex_lock(&s->lock); /* every batch is settled: the next ones may commit */
    s->chain_broken = false;
    pthread_mutex_unlock(&s->lock);
}

static int has_assignment(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int n = rd_kafka_assignment(rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts ? parts->cnt : 0;
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    return n > 0;
}

/* Before closing: librdkafka 2.0 can hang in rd_kafka_consumer_close when an
 * assignment arrives during the close (librdkafka issue 4527, fixed in 2.4;
 * seen here in test_scale_out). Leaving the group first and closing once
 * nothing is assigned avoids it. Messages still delivered meanwhile are not
 * stored: their offsets are not either, so the next owner reads them. */
#define LEAVE_GROUP_TIMEOUT_MS 10000

static void skip_message(rd_kafka_t *rk, int ms)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, ms);
    if (msg)
        rd_kafka_message_destroy(msg);
}

/* librdkafka 2.0 aborts in rd_kafka_destroy (an assertion in the
 * cooperative-sticky assignor) when the group's answer to the join chose the
 * assignor but no assignment has made its state yet: a consumer stopped
 * between joining and its first assignment (librdkafka issue 4312, fixed in
 * 2.3; seen in test_scale_out on a busy machine). The first assignment, even
 * of no partition, makes that state, so a consumer that has joined waits for
 * it before leaving. One that never heard from the group has nothing to wait
 * for: librdkafka gives it a member id only in the join's answer. */
static void await_first_assignment(sink *s)
{
    char *member = rd_kafka_memberid(s->rk);
    bool joining = member && *member;
    rd_kafka_mem_free(s->rk, member);
    if (!joining || s->was_assigned)
        return;
    for (int waited = 0; waited < LEAVE_GROUP_TIMEOUT_MS && !s->was_assigned; waited += 100)
        skip_message(s->rk, 100);
    if (!s->was_assigned)
        log_warn("no assignment within %d ms of stopping: librdkafka 2.0 may abort while closing "
                 "(issue 4312); nothing was stored, so nothing is lost",
                 LEAVE_GROUP_TIMEOUT_MS);
}

void sink_leave_group(sink *s)
{
    await_first_assignment(s);
    rd_kafka_resp_err_t e = rd_kafka_unsubscribe(s->rk);
    if (e)
        log_warn("leaving the group: %s", rd_kafka_err2str(e));
    for (int waited = 0; waited < LEAVE_GROUP_TIMEOUT_MS && has_assignment(s->rk); waited += 100)
        skip_message(s->rk, 100);
}
