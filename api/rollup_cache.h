/* The hourly summaries of the last hours in memory (migration 006's
 * meter_hourly and vehicle_hourly), kept by a refresher thread that reloads
 * the hours whose summaries changed (migration 008 stamps them) every
 * refresh_ms. The performance report then asks PostgreSQL only for the
 * minutes at a window's edges. Like the state cache, it may be up to a refresh
 * behind: a late reading that marks its hour dirty is seen at the next
 * refresh. Between refreshes it hears the summaries' changes as they commit
 * (summary_notices.h), which tells the hours that are current from those that
 * may not be. */
#ifndef EIE_ROLLUP_CACHE_H
#define EIE_ROLLUP_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "db_stamp.h"
#include "err.h"
#include "reading.h"

typedef struct rollup_cache rollup_cache;

/* Keeps the last `hours` summarised hours of both streams. */
rollup_cache *rollup_cache_start(const char *database_url, long refresh_ms, int hours,
                                 eie_err *err);
void rollup_cache_stop(rollup_cache *c);

/* The sums of a device's summarised whole hours [lo_ms, hi_ms) within a
 * window; lo_ms == hi_ms when the window has none. */
#define ROLLUP_MAX_SKIPPED 8
typedef struct rollup_part {
    int64_t lo_ms, hi_ms;
    /* Hours in [lo_ms, hi_ms) left out of the sums: dirty (a late reading
     * stored for them), to be read from the history instead; since 1970. */
    int n_skipped;
    int64_t skipped[ROLLUP_MAX_SKIPPED];
    long readings;
    double kwh;      /* AC consumed by a meter, DC delivered to a vehicle */
    double temp_sum; /* vehicles: battery temperatures summed */
    /* The newest change of the summaries these sums come from: the sums are
     * current while the database's newest (DATA_SUMMARIES_CHANGED) is the same. */
    db_stamp changed;
    /* Which state of the cache they were read from: every load or drop of an
     * hour makes another. */
    uint64_t generation;
    /* rollup_cache_hour: that hour's own change stamp as loaded. */
    db_stamp hour_stamp;
    /* No notice named these hours (or everything) since the refresh the
     * cache read them in: while it hears the notices, the sums are current
     * without asking the database (summary_notices.h). */
    bool quiet;
} rollup_part;

/* For one device (kind READING_METER or READING_VEHICLE) and the window
 * [lo_ms, hi_ms): the whole hours in it whose summaries the cache holds, so
 * that only [lo_ms, out->lo_ms), [out->hi_ms, hi_ms) and the skipped dirty
 * hours remain to be read from the history. False when the window's
 * summarised hours are not all in the cache (older than it keeps, not loaded
 * yet) or more than ROLLUP_MAX_SKIPPED are dirty: ask the database. */
bool rollup_cache_window(rollup_cache *c, reading_kind kind, const char *id, int64_t lo_ms,
                         int64_t hi_ms, rollup_part *out);

/* The summary of the one hour that holds hour_ms, for a device; false when
 * the cache cannot vouch for it (see rollup_cache_window), or it is dirty. */
bool rollup_cache_hour(rollup_cache *c, reading_kind kind, const char *id, int64_t hour_ms,
                       rollup_part *out);

/* Whether the cache is still in the state `generation` and, in it, holds the
 * hours [lo, hi) of a stream as the database has them: each loaded with the
 * stamp it has in `db` (n of them, sorted by kind then hour; an hour missing
 * there has none). When the newest change differs, sums of these hours are
 * still current if this holds: other hours changed, not these. */
bool rollup_cache_hours_current(rollup_cache *c, uint64_t generation, reading_kind kind,
                                int64_t lo, int64_t hi, const hour_stamp *db, int n);

#endif
