/* The COPY text form of readings, shared by both stores: one line per reading,
 * columns in the order of copy_rows_columns(). */
#ifndef EIE_COPY_ROWS_H
#define EIE_COPY_ROWS_H

#include "reading.h"
#include "strbuf.h"

/* "(meter_id, ts, kwh_consumed_ac, voltage)" and so on: the column list that
 * matches copy_rows_append for that kind. */
const char *copy_rows_columns(reading_kind kind);

void copy_rows_append(strbuf *out, const reading *r);

#endif
