/* A database time as the API's caches compare it: microseconds since the
 * epoch, from migration 013's eie_stamp, so that two reads of the same time
 * are equal as integers. */
#ifndef EIE_DB_STAMP_H
#define EIE_DB_STAMP_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>

#include "reading.h"

typedef int64_t db_stamp;

/* No such time: the table it comes from was empty. */
#define DB_STAMP_NONE INT64_MIN
/* Not read yet: equal to no stamp the database gives. */
#define DB_STAMP_UNKNOWN INT64_MAX

/* The stamp in a result's field (a bigint, NULL for none). */
static inline db_stamp db_stamp_get(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? DB_STAMP_NONE : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The change stamp of one hour's summaries (migration 008's
 * hourly_summary_change) of a stream. */
typedef struct hour_stamp {
    reading_kind kind; /* READING_METER or READING_VEHICLE */
    int64_t hour;      /* since 1970 */
    db_stamp stamp;
} hour_stamp;

#endif
