/* What the rollup cache hears of the hourly summaries' changes as they commit
 * (PG_SUMMARIES_CHANNEL, schemas/sql/016_summary_notices.sql), on a
 * connection of its own that is never inside a transaction, so that a notice
 * is taken within milliseconds even while a refresh reads.
 *
 * Each batch of notices taken gets the next number; each ring position of each
 * stream remembers the number of the last notice that named an hour there.
 * A refresh takes a mark (the number so far) before its snapshot: once it
 * completes, the hours it read are current except those named by a notice
 * numbered after its mark. Not listening (not connected yet, the connection
 * lost) counts as a notice that names everything, since notices sent
 * meanwhile are lost. Only the refresher thread takes notices; requests read
 * the numbers concurrently. */
#ifndef EIE_SUMMARY_NOTICES_H
#define EIE_SUMMARY_NOTICES_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "reading.h"

typedef struct summary_notices summary_notices;

/* For a cache of `hours` ring positions per stream (hour h at h % hours). */
summary_notices *summary_notices_new(const char *database_url, int hours);
void summary_notices_free(summary_notices *n);

/* Listens when not (connecting), then takes the notices that arrived, waiting
 * up to wait_ms for the first. -1 with err when the connection failed: it is
 * tried again at the next call. */
int summary_notices_take(summary_notices *n, long wait_ms, eie_err *err);

/* A refresh's mark: the notices taken so far; 0 when not listening (what the
 * refresh reads then is vouched for by nothing). */
uint64_t summary_notices_mark(summary_notices *n);

/* Whether the hours [lo, hi) of a stream, as read by a refresh that took
 * mark, are still current: listening, and no notice since the mark named
 * them (or everything). */
bool summary_notices_quiet(const summary_notices *n, uint64_t mark, reading_kind kind, int64_t lo,
                           int64_t hi);

#endif
