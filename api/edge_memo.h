/* Sums of history ranges that can no longer change, kept for the next
 * request that asks for the same range (performance_cache.c).
 *
 * A range inside an hour that is summarised and not dirty changes only if a
 * late reading lands in it, and such a reading makes the hour dirty in the
 * transaction that stores it; the hour is clean again only once it is summed
 * anew, which moves that hour's stamp (hourly_summary_change). So a range's
 * sums read in a snapshot where its hour carried stamp X still hold in any
 * later snapshot where it carries X and is clean: the caller checks both
 * (edge_freshness) before using what it got from here. Other hours changing
 * meanwhile, as when the sinks catch up on earlier ones, does not matter.
 *
 * A fixed number of slots in buckets of eight, each key in its bucket (a new
 * key in a full bucket replaces one of the eight): a bounded cache, with no
 * eviction to run. */
#ifndef EIE_EDGE_MEMO_H
#define EIE_EDGE_MEMO_H

#include <stdbool.h>
#include <stddef.h>

#include "db_stamp.h"
#include "edge_batch.h"

typedef struct edge_memo edge_memo;

/* NULL when slots is below 8 (no memo) or memory is short. */
edge_memo *edge_memo_new(size_t slots);
void edge_memo_free(edge_memo *m);

/* The sums of r's range into r, and its hour's stamp they were read under
 * into stamp; false when the range is not kept. */
bool edge_memo_get(edge_memo *m, edge_range *r, db_stamp *stamp);
/* Keeps r's sums, read under its hour's stamp. */
void edge_memo_put(edge_memo *m, const edge_range *r, db_stamp stamp);

#endif
