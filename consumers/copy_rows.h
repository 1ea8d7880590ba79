/* Readings in PostgreSQL's binary COPY format, shared by both stores. Binary
 * rather than text: formatting doubles and timestamps as text cost the consumer
 * more CPU than everything else together, and the server parses binary fields
 * for next to nothing. A body is copy_rows_begin, rows, copy_rows_end. */
#ifndef EIE_COPY_ROWS_H
#define EIE_COPY_ROWS_H

#include "reading.h"
#include "strbuf.h"

/* "(meter_id, ts, kwh_consumed_ac, voltage)" and so on: the column list, in the
 * order copy_rows_append writes the fields of that kind. */
const char *copy_rows_columns(reading_kind kind);

void copy_rows_begin(strbuf *out);
void copy_rows_append(strbuf *out, const reading *r);
void copy_rows_end(strbuf *out);

#endif
