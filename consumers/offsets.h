/* sink_offsets: where each consumer group has got to in each partition, kept
 * in PostgreSQL beside the rows so that both commit in one transaction. Every
 * read and write of the table goes through here: the sink loop, its lag gauge
 * and the replay. */
#ifndef EIE_OFFSETS_H
#define EIE_OFFSETS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A group's stored offsets, as read. */
typedef struct offsets_stored {
    PGresult *res;
} offsets_stored;

/* schema: where the table is ("public", "eie_rebuild"); NULL: the session's
 * search_path. */
int offsets_read(PGconn *conn, const char *schema, const char *group, offsets_stored *out,
                 eie_err *err);
size_t offsets_count(const offsets_stored *stored);
/* Row i's topic, partition and next offset. */
void offsets_row(const offsets_stored *stored, size_t i, const char **topic, int32_t *partition,
                 int64_t *next);
/* The next offset stored for a partition; -1 when none is. */
int64_t offsets_find(const offsets_stored *stored, const char *topic, int32_t partition);
/* The committing consumer's wall clock (ms since the epoch) when the
 * partition's offset was last stored; -1 when none is. */
int64_t offsets_committed_ms(const offsets_stored *stored, const char *topic, int32_t partition);
void offsets_release(offsets_stored *stored);

/* One partition's move in a batch: prev is what the store must still hold for
 * the batch to follow on from it (-1: no row yet), next what it holds after. */
typedef struct offsets_move {
    const char *topic;
    int32_t partition;
    int64_t prev, next;
} offsets_move;

#define OFFSETS_MOVED (-2)

/* Inside the batch's transaction: locks the partitions' rows, checks that each
 * still holds prev, and stores next with committed_ms, the caller's wall clock
 * (where a search of the dead letters published since may start: see
 * dead_seen.h). Returns OFFSETS_MOVED (err says which)
 * when the store changed under the caller: a replay switched stores, or
 * another instance wrote the partition. */
int offsets_advance(PGconn *conn, const char *group, const offsets_move *moves, size_t n,
                    int64_t committed_ms, eie_err *err);

#endif
