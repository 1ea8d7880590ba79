/* What a consumer tells its operators: /metrics, /healthz and /readyz on its
 * metrics port. A consumer whose batch keeps failing reads nothing new (the
 * main thread waits for the writer), so "stalled" is measured where it
 * happens, in the writer, and the lag is measured against what PostgreSQL
 * holds, not against what this process has read: a stalled consumer's own
 * position stops moving, and Kafka's cached watermarks stop being refreshed
 * once it stops fetching, so both would hide the growing lag. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "offsets.h"
#include "pg.h"
#include "sink_internal.h"
#include "timefmt.h"

#define WATERMARK_TIMEOUT_MS 2000

void sink_health_init(sink *s)
{
    sink_health *h = &s->health;
    pthread_mutex_init(&h->lock, NULL);
    h->last_commit_ms = timefmt_now_ms();
}

void sink_health_free(sink *s)
{
    PQfinish(s->health.monitor);
    if (s->health.watermarks)
        rd_kafka_destroy(s->health.watermarks);
    pthread_mutex_destroy(&s->health.lock);
}

void sink_health_failed(sink_writer *w, const batch *b, int64_t started_ms, const char *err)
{
    sink_health *h = &w->s->health;
    pthread_mutex_lock(&h->lock);
    snprintf(h->last_error, sizeof h->last_error, "%s", err);
    pthread_mutex_unlock(&h->lock);
    if (w->failing_since_ms == 0)
        w->failing_since_ms = started_ms;
    w->failing_messages = b->n_messages;
    w->consecutive_failures++;
}

void sink_health_committed(sink_writer *w)
{
    w->failing_since_ms = 0;
    w->consecutive_failures = 0;
    w->s->health.last_commit_ms = timefmt_now_ms();
}

/* The writer whose batch has failed for longest (NULL: none is failing): one
 * writer committing does not make another's failing batch any better. */
static const sink_writer *worst_writer(const sink *s)
{
    const sink_writer *worst = NULL;
    for (int i = 0; i < s->n_writers; i++) {
        int64_t since = s->writers[i].failing_since_ms;
        if (since && (!worst || since < worst->failing_since_ms))
            worst = &s->writers[i];
    }
    return worst;
}

static bool is_ready(void *arg, strbuf *reason)
{
    sink *s = arg;
    sink_health *h = &s->health;
    char fatal[512];
    if (kafka_fatal_stop(fatal, sizeof fatal)) {
        strbuf_printf(reason, "stopping: %s", fatal);
        return false;
    }
    const sink_writer *w = worst_writer(s);
    int64_t since = w ? w->failing_since_ms : 0;
    int64_t failing_ms = since ? timefmt_now_ms() - since : 0;
    if (!since || failing_ms < s->cfg->stall_after_ms)
        return true;
    pthread_mutex_lock(&h->lock);
    strbuf_printf(reason,
                  "stalled: a batch of %zu messages has failed to commit for %lld s "
                  "(%d attempts, nothing newer is read meanwhile); last error: %s",
                  (size_t)w->failing_messages, (long long)(failing_ms / 1000),
                  (int)w->consecutive_failures, h->last_error);
    pthread_mutex_unlock(&h->lock);
    return false;
}

/* Connects the lag's own connection when needed; under h->lock. */
static PGconn *monitor_conn(sink *s)
{
    sink_health *h = &s->health;
    if (h->monitor && PQstatus(h->monitor) == CONNECTION_OK)
        return h->monitor;
    PQfinish(h->monitor);
    eie_err err;
    h->monitor = pg_connect(s->cfg->database_url, "eie-consumer-monitor", &err);
    if (h->monitor && s->cfg->search_path) {
        char sql[160];
        snprintf(sql, sizeof sql, "SET search_path TO %s", s->cfg->search_path);
        if (pg_exec(h->monitor, sql, &err) < 0) {
            PQfinish(h->monitor);
            h->monitor = NULL;
        }
    }
    if (!h->monitor)
        log_warn("lag gauge: %s", err.msg);
    return h->monitor;
}

/* The Kafka client for watermarks, made on first use; under h->lock. A
 * producer handle: it joins no group and fetches nothing. */
static rd_kafka_t *watermark_client(sink *s)
{
    sink_health *h = &s->health;
    if (h->watermarks)
        return h->watermarks;
    eie_err err;
    rd_kafka_conf_t *conf = kafka_conf_new(NULL, 0, s->cfg->bootstrap, s->cfg->kafka_props, &err);
    char errstr[512] = "";
    if (conf && !(h->watermarks = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(conf);
        log_warn("lag gauge: a Kafka client for offsets: %s", errstr);
    } else if (!conf) {
        log_warn("lag gauge: %s", err.msg);
    }
    return h->watermarks;
}

/* Per partition this instance holds: the broker's high watermark, asked of
 * the broker at each scrape (all partitions in one request per broker), less
 * the next offset stored in PostgreSQL. When either cannot be had the gauges
 * are left out rather than guessed. */
static void scrape_lag(sink *s, metrics *m)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!s->rk || rd_kafka_assignment(s->rk, &parts) || !parts)
        return;
    sink_health *h = &s->health;
    pthread_mutex_lock(&h->lock);
    offsets_stored stored = {0};
    eie_err err;
    PGconn *conn = monitor_conn(s);
    bool have_offsets = conn && offsets_read(conn, NULL, s->cfg->group, &stored, &err) == 0;
    if (conn && !have_offsets) {
        log_warn("lag gauge: %s", err.msg);
        PQfinish(h->monitor);
        h->monitor = NULL;
    }
    /* Offsets for time "latest" are the high watermarks. */
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_END;
    rd_kafka_t *client = have_offsets ? watermark_client(s) : NULL;
    rd_kafka_resp_err_t e =
        client ? rd_kafka_offsets_for_times(client, parts, WATERMARK_TIMEOUT_MS) : RD_KAFKA_RESP_ERR__STATE;
    if (client && e)
        log_warn("lag gauge: asking for the high watermarks: %s", rd_kafka_err2str(e));
    /* A partition with nothing stored lags by all that its log holds: from
     * the log's start, asked for only then. */
    rd_kafka_topic_partition_list_t *starts = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; !e && i < parts->cnt; i++)
        if (offsets_find(&stored, parts->elems[i].topic, parts->elems[i].partition) < 0)
            rd_kafka_topic_partition_list_add(starts, parts->elems[i].topic, parts->elems[i].partition)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (!e && starts->cnt > 0)
        e = rd_kafka_offsets_for_times(client, starts, WATERMARK_TIMEOUT_MS);
    metrics_drop(m, "eie_consumer_lag_messages");
    for (int i = 0; !e && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->err || p->offset < 0)
            continue;
        int64_t next = offsets_find(&stored, p->topic, p->partition);
        if (next < 0) {
            const rd_kafka_topic_partition_t *start =
                rd_kafka_topic_partition_list_find(starts, p->topic, p->partition);
            if (!start || start->err || start->offset < 0)
                continue;
            next = start->offset;
        }
        int64_t lag = p->offset - next;
        char labels[300];
        snprintf(labels, sizeof labels, "%s,topic=\"%s\",partition=\"%d\"", s->labels, p->topic,
                 (int)p->partition);
        metrics_set(m, "eie_consumer_lag_messages", labels, lag > 0 ? (double)lag : 0);
    }
    rd_kafka_topic_partition_list_destroy(starts);
    offsets_release(&stored);
    pthread_mutex_unlock(&h->lock);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void on_scrape(metrics *m, void *arg)
{
    sink *s = arg;
    sink_health *h = &s->health;
    char labels[160];
    for (int r = 0; r < DEAD_REASON_COUNT; r++) {
        snprintf(labels, sizeof labels, "%s,reason=\"%s\"", s->labels,
                 dead_reason_name((dead_reason)r));
        metrics_set(m, "eie_consumer_dead_letters_total", labels,
                    (double)dead_letters_count(s->dead, (dead_reason)r));
    }
    for (int f = 0; f < DEAD_FORM_COUNT; f++) {
        snprintf(labels, sizeof labels, "%s,form=\"%s\"", s->labels,
                 dead_form_name((dead_form)f));
        metrics_set(m, "eie_consumer_dead_letter_forms_total", labels,
                    (double)dead_letters_form_count(s->dead, (dead_form)f));
    }
    metrics_set(m, "eie_consumer_dead_letters_already_total", s->labels,
                (double)dead_letters_already_count(s->dead));
    const sink_writer *worst = worst_writer(s);
    int64_t now = timefmt_now_ms(), since = worst ? worst->failing_since_ms : 0;
    strbuf ignored = STRBUF_INIT;
    metrics_set(m, "eie_consumer_ready", s->labels, is_ready(s, &ignored) ? 1 : 0);
    strbuf_free(&ignored);
    metrics_set(m, "eie_consumer_batch_failing_seconds", s->labels,
                since ? (double)(now - since) / 1000.0 : 0);
    metrics_set(m, "eie_consumer_consecutive_failures", s->labels,
                worst ? worst->consecutive_failures : 0);
    metrics_set(m, "eie_consumer_last_commit_age_seconds", s->labels,
                (double)(now - h->last_commit_ms) / 1000.0);
    scrape_lag(s, m);
}

static void describe_metrics(metrics *m)
{
    metrics_describe(m, "eie_consumer_rows_written_total", METRIC_COUNTER,
                     "readings committed to PostgreSQL");
    metrics_describe(m, "eie_consumer_batches_total", METRIC_COUNTER, "batches committed");
    metrics_describe(m, "eie_consumer_batch_retries_total", METRIC_COUNTER,
                     "failed attempts to write a batch (PostgreSQL or the dead-letter topic "
                     "unavailable)");
    metrics_describe(m, "eie_consumer_batch_seconds", METRIC_HISTOGRAM,
                     "time to write and commit one batch");
    metrics_describe(m, "eie_consumer_dead_letters_total", METRIC_COUNTER,
                     "messages sent to the dead-letter topic, by reason");
    metrics_describe(m, "eie_consumer_dead_letter_forms_total", METRIC_COUNTER,
                     "dead letters by form: whole, or truncated (too large for the dead-letter "
                     "topic as they were)");
    metrics_describe(m, "eie_consumer_dead_letters_already_total", METRIC_COUNTER,
                     "dead letters not published since they were found on the dead-letter topic "
                     "already (a batch read again after a crash)");
    metrics_describe(m, "eie_consumer_ready", METRIC_GAUGE,
                     "1 when ready, 0 while stalled (a batch failing for longer than "
                     "--stall-after-ms)");
    metrics_describe(m, "eie_consumer_batch_failing_seconds", METRIC_GAUGE,
                     "how long the current batch has been failing to commit (0: none is)");
    metrics_describe(m, "eie_consumer_consecutive_failures", METRIC_GAUGE,
                     "failed attempts at the current batch");
    metrics_describe(m, "eie_consumer_last_commit_age_seconds", METRIC_GAUGE,
                     "seconds since the last batch committed (since start before the first)");
    metrics_describe(m, "eie_consumer_lag_messages", METRIC_GAUGE,
                     "per partition held: the broker's high watermark less the offset stored "
                     "in PostgreSQL");
}

metrics_server *sink_health_serve(sink *s, eie_err *err)
{
    describe_metrics(s->metrics);
    if (s->cfg->metrics_port <= 0)
        return NULL;
    metrics_on_scrape(s->metrics, on_scrape, s);
    metrics_server *srv = metrics_serve(s->metrics, s->cfg->metrics_host,
                                        (int)s->cfg->metrics_port, is_ready, s, err);
    if (srv)
        log_info("metrics and health on http://%s:%ld (/metrics, /healthz, /readyz)",
                 s->cfg->metrics_host, s->cfg->metrics_port);
    return srv;
}
