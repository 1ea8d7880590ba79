/* Column lists for SQL, built from the description of each reading kind
 * (reading.h), so that statements naming every column follow a new field. */
#ifndef EIE_READING_SQL_H
#define EIE_READING_SQL_H

#include "reading.h"
#include "strbuf.h"

/* Appends each column of kind (in the description's order; without the
 * device's, the first, when skip_device) written through tmpl, in which every
 * "{}" stands for the column's name, with sep between them:
 * ("{} = EXCLUDED.{}", ", ") gives "soc = EXCLUDED.soc, ...". */
void reading_sql_columns(strbuf *out, reading_kind kind, const char *tmpl, const char *sep,
                         int skip_device);

/* The column of kind's event time (its FIELD_TIME). */
const char *reading_sql_time_column(reading_kind kind);

#endif
