/* A replay's reading of the topics: a static assignment of every partition
 * (or a share of them), each from the offset stored in the replay's own store,
 * or the first produced at or after a time, to a fixed end; see sink.h. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sink_internal.h"

void sink_replay_partition_done(sink *s, partition_state *part)
{
    if (!part->done) {
        part->done = 1;
        s->replay_left--;
    }
}

static rd_kafka_topic_partition_list_t *list_partitions(sink *s, eie_err *err)
{
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(64);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (!(s->store->kinds & (1u << k)))
            continue;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, s->topics.name[k], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (!e && (md->topic_cnt != 1 || md->topics[0].err))
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e) {
            eie_err_set(err, "reading the partitions of %s: %s", s->topics.name[k],
                        rd_kafka_err2str(e));
            if (md)
                rd_kafka_metadata_destroy(md);
            rd_kafka_topic_partition_list_destroy(all);
            return NULL;
        }
        const sink_replay *r = s->replay;
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int32_t id = md->topics[0].partitions[p].id;
            if (!r || r->shares <= 1 || id % r->shares == r->share)
                rd_kafka_topic_partition_list_add(all, s->topics.name[k], id);
        }
        rd_kafka_metadata_destroy(md);
    }
    return all;
}

/* Partitions the store holds no offset for start at the first message produced
 * at or after start_ms (at the end when there is none). */
static int seek_by_time(sink *s, rd_kafka_topic_partition_list_t *all, eie_err *err)
{
    rd_kafka_topic_partition_list_t *by_time = rd_kafka_topic_partition_list_new(all->cnt);
    for (int i = 0; i < all->cnt; i++)
        if (all->elems[i].offset == RD_KAFKA_OFFSET_BEGINNING)
            rd_kafka_topic_partition_list_add(by_time, all->elems[i].topic,
                                              all->elems[i].partition)
                ->offset = s->replay->start_ms;
    rd_kafka_resp_err_t e =
        by_time->cnt ? rd_kafka_offsets_for_times(s->rk, by_time, 10000) : RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; !e && i < by_time->cnt; i++) {
        if ((e = by_time->elems[i].err))
            break;
        rd_kafka_topic_partition_list_find(all, by_time->elems[i].topic,
                                           by_time->elems[i].partition)
            ->offset = by_time->elems[i].offset < 0 ? RD_KAFKA_OFFSET_END
                                                    : by_time->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(by_time);
    if (e)
        eie_err_set(err, "finding offsets by time: %s", rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* A replay's assignment: every partition of the store's topics, from the
 * offset stored in the replay's own store (or replay->start_ms) to its end. */
int sink_replay_start(sink *s, eie_err *err)
{
    sink_replay *r = s->replay;
    rd_kafka_topic_partition_list_t *all = list_partitions(s, err), *assign = NULL;
    int rc = -1;
    if (!all || sink_load_offsets(s, all, err) < 0 || (r->start_ms > 0 && seek_by_time(s, all, err) < 0))
        goto done;
    assign = rd_kafka_topic_partition_list_new(all->cnt);
    uint64_t total = 0;
    for (int i = 0; i < all->cnt; i++) {
        rd_kafka_topic_partition_t *p = &all->elems[i];
        int kind = sink_topic_kind(s, p->topic);
        int64_t lo, hi;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(s->rk, p->topic, p->partition, &lo, &hi, 10000);
        if (e) {
            eie_err_set(err, "reading the offsets of %s [%d]: %s", p->topic, (int)p->partition,
                        rd_kafka_err2str(e));
            goto done;
        }
        int64_t start = p->offset == RD_KAFKA_OFFSET_END ? hi : p->offset < 0 ? lo : p->offset;
        if (start < lo) {
            log_warn("%s [%d]: offsets %lld to %lld are gone (topic retention); replaying from "
                     "%lld",
                     p->topic, (int)p->partition, (long long)start, (long long)lo - 1,
                     (long long)lo);
            start = lo;
        }
        int64_t end = hi;
        if (r->ends) {
            end = start; /* not listed: nothing to read */
            for (size_t j = 0; j < r->n_ends; j++)
                if ((int)r->ends[j].kind == kind && r->ends[j].partition == p->partition)
                    end = r->ends[j].offset;
        }
        partition_state *st = sink_part(s, kind, p->partition);
        st->end = end;
        st->done = start >= end;
        if (st->done)
            continue;
        s->replay_left++;
        total += (uint64_t)(end - start);
        rd_kafka_topic_partition_list_add(assign, p->topic, p->partition)->offset = start;
    }
    r->total = total;
    rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, assign);
    if (e)
        eie_err_set(err, "assigning partitions: %s", rd_kafka_err2str(e));
    else
        rc = 0;
done:
    if (all)
        rd_kafka_topic_partition_list_destroy(all);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    return rc;
}
