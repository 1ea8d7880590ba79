/* Dead letters already on the topic; see dead_seen.h. The set is a sorted
 * array of source coordinates (a consumer's uncommitted dead letters are few),
 * filled by reading the dead-letter topic's tail with a client of its own. */
#include "dead_seen.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "timefmt.h"

/* The longest a scan may take, and any one request of it. */
#define SCAN_TIMEOUT_MS 60000
#define REQUEST_TIMEOUT_MS 10000

typedef struct seen_entry {
    uint32_t topic; /* index in dead_seen.topics */
    int32_t partition;
    int64_t offset;
} seen_entry;

typedef struct entry_list {
    seen_entry *items;
    size_t n, cap;
} entry_list;

struct dead_seen {
    char *bootstrap, *topic, *group;
    const config_props *props;
    char **topics; /* the source topics met so far, each once */
    size_t n_topics;
    entry_list seen; /* sorted, no repeats */
};

dead_seen *dead_seen_new(const char *bootstrap, const config_props *props, const char *topic,
                         const char *group, eie_err *err)
{
    dead_seen *seen = calloc(1, sizeof *seen);
    if (!seen || !(seen->bootstrap = strdup(bootstrap)) || !(seen->topic = strdup(topic)) ||
        !(seen->group = strdup(group))) {
        dead_seen_free(seen);
        eie_err_set(err, "out of memory");
        return NULL;
    }
    seen->props = props;
    return seen;
}

void dead_seen_free(dead_seen *seen)
{
    if (!seen)
        return;
    for (size_t i = 0; i < seen->n_topics; i++)
        free(seen->topics[i]);
    free(seen->topics);
    free(seen->seen.items);
    free(seen->bootstrap);
    free(seen->topic);
    free(seen->group);
    free(seen);
}

/* The index of a source topic (len bytes, not terminated); -1: not met yet. */
static int find_topic(const dead_seen *seen, const char *name, size_t len)
{
    for (size_t i = 0; i < seen->n_topics; i++)
        if (strlen(seen->topics[i]) == len && memcmp(seen->topics[i], name, len) == 0)
            return (int)i;
    return -1;
}

static uint32_t intern_topic(dead_seen *seen, const char *name)
{
    int i = find_topic(seen, name, strlen(name));
    if (i >= 0)
        return (uint32_t)i;
    char **grown = realloc(seen->topics, (seen->n_topics + 1) * sizeof *grown);
    if (!grown || !(grown[seen->n_topics] = strdup(name)))
        abort();
    seen->topics = grown;
    return (uint32_t)seen->n_topics++;
}

static void entry_add(entry_list *list, seen_entry e)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        if (!list->items)
            abort();
    }
    list->items[list->n++] = e;
}

static int entry_cmp(const void *a, const void *b)
{
    const seen_entry *x = a, *y = b;
    if (x->topic != y->topic)
        return x->topic < y->topic ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

bool dead_seen_has(const dead_seen *seen, const char *topic, int32_t partition, int64_t offset)
{
    int t = seen ? find_topic(seen, topic, strlen(topic)) : -1;
    if (t < 0 || seen->seen.n == 0)
        return false;
    seen_entry key = {(uint32_t)t, partition, offset};
    return bsearch(&key, seen->seen.items, seen->seen.n, sizeof key, entry_cmp) != NULL;
}

/* Drops the partition's entries of offsets below `below` (INT64_MAX: all). */
static void forget(dead_seen *seen, const char *topic, int32_t partition, int64_t below)
{
    int t = find_topic(seen, topic, strlen(topic));
    if (t < 0)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < seen->seen.n; i++) {
        const seen_entry *e = &seen->seen.items[i];
        if (!(e->topic == (uint32_t)t && e->partition == partition && e->offset < below))
            seen->seen.items[kept++] = *e;
    }
    seen->seen.n = kept;
}

void dead_seen_forget_below(dead_seen *seen, const char *topic, int32_t partition, int64_t next)
{
    forget(seen, topic, partition, next);
}

void dead_seen_forget(dead_seen *seen, const char *topic, int32_t partition)
{
    forget(seen, topic, partition, INT64_MAX);
}

size_t dead_seen_count(const dead_seen *seen)
{
    return seen ? seen->seen.n : 0;
}

/* ---- Reading the topic's tail ---- */

/* One partition of the dead-letter topic, read up to end. */
typedef struct scan_part {
    int32_t partition;
    int64_t end;
    bool done;
} scan_part;

typedef struct scan {
    dead_seen *seen;
    const dead_seen_source *sources;
    size_t n_sources;
    rd_kafka_t *rk;
    scan_part *parts;
    size_t n_parts, left;
    entry_list found;
    uint64_t records;
} scan;

/* A consumer that joins no group (it assigns partitions itself) and commits
 * nothing, whatever -X says; librdkafka's consumer wants a group id. */
static rd_kafka_t *scan_client(const dead_seen *seen, eie_err *err)
{
    char group[300];
    snprintf(group, sizeof group, "%s.dead-letter-scan", seen->group);
    const kafka_setting defaults[] = {{"group.id", group}, {"auto.offset.reset", "earliest"}};
    rd_kafka_conf_t *conf =
        kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0], seen->bootstrap,
                       seen->props, err);
    if (!conf)
        return NULL;
    if (kafka_conf_set(conf, "enable.auto.commit", "false", err) < 0 ||
        kafka_conf_set(conf, "enable.partition.eof", "true", err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char what[256];
    snprintf(what, sizeof what, "to read %s", seen->topic);
    return kafka_consumer_new(conf, what, err);
}

/* The topic's partitions; none when it does not exist (then nothing was
 * published to it). */
static rd_kafka_topic_partition_list_t *topic_partitions(scan *sc, eie_err *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(sc->rk, sc->seen->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(sc->rk, 0, rkt, &md, REQUEST_TIMEOUT_MS)
                                : rd_kafka_last_error();
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (!e && md->topic_cnt != 1)
        e = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    else if (!e && md->topics[0].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        e = md->topics[0].err;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (e) {
        eie_err_set(err, "reading the partitions of %s: %s", sc->seen->topic, rd_kafka_err2str(e));
    } else {
        parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt + 1);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, sc->seen->topic,
                                              md->topics[0].partitions[p].id);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    return parts;
}

/* Where each partition's reading starts: the first record stamped at or after
 * from_ms (0: the beginning); RD_KAFKA_OFFSET_END when none is. */
static int start_offsets(scan *sc, rd_kafka_topic_partition_list_t *parts, int64_t from_ms,
                         eie_err *err)
{
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = from_ms > 0 ? from_ms : RD_KAFKA_OFFSET_BEGINNING;
    if (from_ms <= 0 || parts->cnt == 0)
        return 0;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(sc->rk, parts, REQUEST_TIMEOUT_MS);
    for (int i = 0; !e && i < parts->cnt; i++) {
        e = parts->elems[i].err;
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    if (e)
        eie_err_set(err, "finding the dead letters of %s since %lld: %s", sc->seen->topic,
                    (long long)from_ms, rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* Assigns every partition with records to read, from its start to its high
 * watermark at this moment: what was acknowledged before the scan began. */
static int assign_tail(scan *sc, rd_kafka_topic_partition_list_t *parts, eie_err *err)
{
    sc->parts = calloc((size_t)parts->cnt + 1, sizeof *sc->parts);
    if (!sc->parts)
        abort();
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(parts->cnt + 1);
    int rc = 0;
    for (int i = 0; rc == 0 && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(sc->rk, p->topic, p->partition,
                                                                 &lo, &hi, REQUEST_TIMEOUT_MS);
        if (e) {
            eie_err_set(err, "reading the offsets of %s [%d]: %s", p->topic, (int)p->partition,
                        rd_kafka_err2str(e));
            rc = -1;
            break;
        }
        int64_t start = p->offset == RD_KAFKA_OFFSET_END         ? hi
                        : p->offset == RD_KAFKA_OFFSET_BEGINNING ? lo
                        : p->offset < lo                         ? lo
                                                                 : p->offset;
        if (start >= hi)
            continue;
        sc->parts[sc->n_parts++] = (scan_part){p->partition, hi, false};
        rd_kafka_topic_partition_list_add(assign, p->topic, p->partition)->offset = start;
    }
    sc->left = sc->n_parts;
    rd_kafka_resp_err_t e = rc == 0 && assign->cnt ? rd_kafka_assign(sc->rk, assign) : 0;
    if (e) {
        eie_err_set(err, "assigning %s: %s", sc->seen->topic, rd_kafka_err2str(e));
        rc = -1;
    }
    rd_kafka_topic_partition_list_destroy(assign);
    return rc;
}

static void part_reached(scan *sc, int32_t partition, int64_t next)
{
    for (size_t i = 0; i < sc->n_parts; i++) {
        scan_part *p = &sc->parts[i];
        if (p->partition == partition && !p->done && next >= p->end) {
            p->done = true;
            sc->left--;
        }
    }
}

/* A header's last value (ours come after the original's) as a string. */
static bool header_text(rd_kafka_headers_t *h, const char *name, char *out, size_t cap)
{
    const void *value;
    size_t size;
    if (rd_kafka_header_get_last(h, name, &value, &size) || !value || size >= cap)
        return false;
    memcpy(out, value, size);
    out[size] = '\0';
    return true;
}

/* Keeps the dead letter if it is the group's, of one of the sources. */
static void take(scan *sc, const rd_kafka_message_t *msg)
{
    sc->records++;
    rd_kafka_headers_t *h;
    char group[256], topic[256], partition[24], offset[24];
    if (rd_kafka_message_headers(msg, &h) ||
        !header_text(h, "eie.consumer.group", group, sizeof group) ||
        strcmp(group, sc->seen->group) != 0 ||
        !header_text(h, "eie.source.topic", topic, sizeof topic) ||
        !header_text(h, "eie.source.partition", partition, sizeof partition) ||
        !header_text(h, "eie.source.offset", offset, sizeof offset))
        return;
    int32_t p = (int32_t)strtol(partition, NULL, 10);
    int64_t o = strtoll(offset, NULL, 10);
    for (size_t i = 0; i < sc->n_sources; i++) {
        const dead_seen_source *s = &sc->sources[i];
        if (s->partition == p && o >= s->from && strcmp(s->topic, topic) == 0) {
            entry_add(&sc->found, (seen_entry){intern_topic(sc->seen, topic), p, o});
            return;
        }
    }
}

/* Reads every assigned partition to its end, or fails after SCAN_TIMEOUT_MS. */
static int read_tail(scan *sc, eie_err *err)
{
    int64_t deadline = timefmt_now_ms() + SCAN_TIMEOUT_MS;
    char last_error[256] = "no error reported";
    while (sc->left > 0) {
        if (timefmt_now_ms() > deadline) {
            eie_err_set(err, "reading %s to its end took over %d s (%zu partitions left; %s)",
                        sc->seen->topic, SCAN_TIMEOUT_MS / 1000, sc->left, last_error);
            return -1;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(sc->rk, 100);
        if (!msg)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            part_reached(sc, msg->partition, msg->offset);
        } else if (msg->err) {
            snprintf(last_error, sizeof last_error, "%s", rd_kafka_message_errstr(msg));
        } else {
            take(sc, msg);
            part_reached(sc, msg->partition, msg->offset + 1);
        }
        rd_kafka_message_destroy(msg);
    }
    return 0;
}

/* Adds what a scan found, keeping the set sorted and without repeats. */
static void merge_found(dead_seen *seen, const entry_list *found)
{
    if (found->n == 0)
        return;
    for (size_t i = 0; i < found->n; i++)
        entry_add(&seen->seen, found->items[i]);
    qsort(seen->seen.items, seen->seen.n, sizeof *seen->seen.items, entry_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < seen->seen.n; i++)
        if (kept == 0 || entry_cmp(&seen->seen.items[kept - 1], &seen->seen.items[i]) != 0)
            seen->seen.items[kept++] = seen->seen.items[i];
    seen->seen.n = kept;
}

int dead_seen_scan(dead_seen *seen, const dead_seen_source *sources, size_t n, int64_t since_ms,
                   eie_err *err)
{
    if (n == 0)
        return 0;
    int64_t started = timefmt_now_ms();
    int64_t from_ms =
        since_ms > DEAD_SEEN_CLOCK_MARGIN_MS ? since_ms - DEAD_SEEN_CLOCK_MARGIN_MS : 0;
    scan sc = {.seen = seen, .sources = sources, .n_sources = n};
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = -1;
    if ((sc.rk = scan_client(seen, err)) && (parts = topic_partitions(&sc, err)) &&
        start_offsets(&sc, parts, from_ms, err) == 0 && assign_tail(&sc, parts, err) == 0 &&
        read_tail(&sc, err) == 0) {
        merge_found(seen, &sc.found);
        char since[TIMEFMT_RFC3339_LEN] = "its beginning";
        if (from_ms > 0)
            timefmt_format_rfc3339(from_ms, since);
        log_info("dead letters: read %llu records of %s from %s in %lld ms: %zu of this "
                 "group's for the %zu partitions looked for",
                 (unsigned long long)sc.records, seen->topic, since,
                 (long long)(timefmt_now_ms() - started), sc.found.n, n);
        rc = 0;
    }
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (sc.rk) {
        rd_kafka_assign(sc.rk, NULL);
        rd_kafka_consumer_close(sc.rk);
        rd_kafka_destroy(sc.rk);
    }
    free(sc.parts);
    free(sc.found.items);
    return rc;
}
