/* Dead letters already on the topic: what makes dead-lettering exactly once
 * per consumer group.
 *
 * A batch's dead letters are acknowledged by Kafka before its rows and offsets
 * commit to PostgreSQL; a consumer killed in between reads the batch again
 * after its restart. The dead-letter topic itself is the record of what was
 * published: every dead letter names its group and its source (headers
 * eie.consumer.group, eie.source.topic, eie.source.partition,
 * eie.source.offset). So before a partition's first batch is written by a
 * consumer that was just given it, the tail of the dead-letter topic is read
 * (a client of its own, no group, up to the high watermarks) and the sources
 * at or after the partition's stored offset that its own group dead-lettered
 * are kept here; the publisher passes over those. Once a batch commits, the
 * partition's entries below its new offset are dropped: those records are
 * never read again by this group.
 *
 * How far back to read: a dead letter of an uncommitted record was published
 * after the partition's last commit (the writer publishes a batch's dead
 * letters only after the batch before it committed, and any later owner after
 * taking the partition). sink_offsets keeps the committing consumer's wall
 * clock of that commit (committed_ms), the clock that also stamps the dead
 * letters (CreateTime), so the scan starts at the first dead letter stamped at
 * or after the earliest such time over the partitions, less
 * DEAD_SEEN_CLOCK_MARGIN_MS for clocks of several hosts that differ or were set
 * back. A partition never committed has no bound: the scan then reads the
 * topic from its beginning (once, for a new group's first batches).
 *
 * What stays at least once: a dead letter still travelling to the broker when
 * its publisher was killed, which the broker appends only after the new owner
 * read the tail (milliseconds, against a restart and a rebalance), and the
 * dead letters of a consumer that was alive but had lost its partitions (out
 * of the group) while a new owner read the tail.
 *
 * Used by the writer thread and by the main thread only while the writer is
 * idle (sink_drain), like the PostgreSQL connection; not locked. */
#ifndef EIE_DEAD_SEEN_H
#define EIE_DEAD_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

/* Clocks of the hosts that commit and publish are taken to be within this of
 * each other (and never set back by more). */
#define DEAD_SEEN_CLOCK_MARGIN_MS 60000

typedef struct dead_seen dead_seen;

/* The group's dead letters on the topic; the Kafka client is made per scan
 * (props apply to it, as to every client of ours). Keeps copies of the
 * strings; props must outlive it. */
dead_seen *dead_seen_new(const char *bootstrap, const config_props *props, const char *topic,
                         const char *group, eie_err *err);
void dead_seen_free(dead_seen *seen);

/* One source partition to look for: its dead letters of offsets from `from`
 * on. */
typedef struct dead_seen_source {
    const char *topic;
    int32_t partition;
    int64_t from;
} dead_seen_source;

/* Reads the dead-letter topic from the first record stamped at or after
 * since_ms less DEAD_SEEN_CLOCK_MARGIN_MS (since_ms <= 0: from its beginning)
 * up to its high watermarks, and adds the group's dead letters of the sources
 * found there. Returns -1 (err set) when the topic could not be read to its
 * end; what was known stays. */
int dead_seen_scan(dead_seen *seen, const dead_seen_source *sources, size_t n, int64_t since_ms,
                   eie_err *err);

/* Whether the group's dead letter of this source record is on the topic. */
bool dead_seen_has(const dead_seen *seen, const char *topic, int32_t partition, int64_t offset);
/* A batch committed the partition up to next: its records below are done. */
void dead_seen_forget_below(dead_seen *seen, const char *topic, int32_t partition, int64_t next);
/* The partition is revoked, or about to be looked for again. */
void dead_seen_forget(dead_seen *seen, const char *topic, int32_t partition);
size_t dead_seen_count(const dead_seen *seen);

#endif
