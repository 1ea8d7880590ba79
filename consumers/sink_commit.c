/* The group's offsets committed to Kafka, kept for lag tools only: the truth
 * is sink_offsets, committed with the rows.
 *
 * librdkafka (2.0 at least) takes an offset commit answered with
 * ILLEGAL_GENERATION as the loss of the whole assignment, and revokes every
 * partition. A commit sent while this member's JoinGroup waits for the rest of
 * the group is answered so: the coordinator holds the connection's later
 * requests until the new generation is formed. A member that revoked partitions
 * in a cooperative rebalance rejoins at once and waits (up to a heartbeat) for
 * the others, so a commit after every batch turned each cooperative rebalance
 * into a full one (tests/integration/test_rebalance.sh). Hence commits are
 * gathered, sent by the main thread at most every COMMIT_EVERY_MS, at once when
 * partitions are revoked and at the end, and never from a revocation to the
 * assignment that ends the rebalance: in the cooperative protocol that is the
 * second one, since the revocation is followed by an assignment (maybe empty)
 * in the same round, then by the rejoin. What remains: a commit sent as this
 * member rejoins for a rebalance it has not been told of yet (up to a heartbeat
 * interval, while the others rejoin) is still refused, and every partition of
 * the member moves; rare at one commit per COMMIT_EVERY_MS, harmless to
 * exactly-once, and logged ("assignment lost"). */
#include <stdlib.h>

#include "log.h"
#include "sink_internal.h"
#include "timefmt.h"

#define COMMIT_EVERY_MS 5000
/* A rebalance that does not end as expected (the member put out of the group
 * meanwhile) must not keep the lag tools blind for good. */
#define HOLD_AT_MOST_MS 60000

void sink_commit_note(sink *s, const batch *b)
{
    if (s->replay) /* not a member of any group */
        return;
    pthread_mutex_lock(&s->commit_lock);
    for (size_t i = 0; i < b->n_offsets; i++) {
        const partition_offset *o = &b->offsets[i];
        size_t j = 0;
        while (j < s->n_commit_pending && (s->commit_pending[j].kind != o->kind ||
                                           s->commit_pending[j].partition != o->partition))
            j++;
        if (j == s->n_commit_pending) {
            if (s->n_commit_pending == s->cap_commit_pending) {
                s->cap_commit_pending = s->cap_commit_pending ? s->cap_commit_pending * 2 : 64;
                s->commit_pending =
                    realloc(s->commit_pending, s->cap_commit_pending * sizeof *s->commit_pending);
                if (!s->commit_pending)
                    abort();
            }
            s->n_commit_pending++;
        }
        s->commit_pending[j] = *o;
    }
    pthread_mutex_unlock(&s->commit_lock);
}

static void send_pending(sink *s)
{
    pthread_mutex_lock(&s->commit_lock);
    rd_kafka_topic_partition_list_t *list = NULL;
    if (s->n_commit_pending) {
        list = rd_kafka_topic_partition_list_new((int)s->n_commit_pending);
        for (size_t i = 0; i < s->n_commit_pending; i++)
            rd_kafka_topic_partition_list_add(list, s->topics.name[s->commit_pending[i].kind],
                                              s->commit_pending[i].partition)
                ->offset = s->commit_pending[i].next;
        s->n_commit_pending = 0;
    }
    pthread_mutex_unlock(&s->commit_lock);
    s->last_commit_sent_ms = timefmt_now_ms();
    if (!list)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, list, 1);
    if (e)
        log_warn("committing offsets to Kafka (for lag tools only): %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(list);
}

static bool held(sink *s)
{
    if (s->commit_hold_for && timefmt_now_ms() - s->commit_held_since_ms > HOLD_AT_MOST_MS)
        s->commit_hold_for = 0;
    return s->commit_hold_for > 0;
}

void sink_commit_tick(sink *s)
{
    if (!held(s) && timefmt_now_ms() - s->last_commit_sent_ms >= COMMIT_EVERY_MS)
        send_pending(s);
}

void sink_commit_revoking(sink *s, bool cooperative)
{
    /* A lost assignment's commit would fail the same way; the rejoin follows
     * at once, without an assignment first. */
    bool lost = rd_kafka_assignment_lost(s->rk);
    if (lost) { /* their next owners commit them */
        pthread_mutex_lock(&s->commit_lock);
        s->n_commit_pending = 0;
        pthread_mutex_unlock(&s->commit_lock);
    } else if (!held(s)) {
        send_pending(s);
    }
    s->commit_hold_for = cooperative && !lost ? 2 : 1;
    s->commit_held_since_ms = timefmt_now_ms();
}

void sink_commit_assigned(sink *s)
{
    if (s->commit_hold_for)
        s->commit_hold_for--;
}

void sink_commit_final(sink *s)
{
    if (!held(s) && !rd_kafka_assignment_lost(s->rk))
        send_pending(s);
}
