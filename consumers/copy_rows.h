/* Readings in PostgreSQL's binary COPY format, shared by both stores. Binary
 * rather than text: formatting doubles and timestamps as text cost the consumer
 * more CPU than everything else together, and the server parses binary fields
 * for next to nothing. A body is copy_rows_begin, rows, copy_rows_end. */
#ifndef EIE_COPY_ROWS_H
#define EIE_COPY_ROWS_H

#include "reading.h"
#include "strbuf.h"

/* Appends "COPY table (columns) FROM STDIN (FORMAT binary)", the columns in
 * the order copy_rows_append writes the fields of that kind. */
void copy_rows_statement(strbuf *out, const char *table, reading_kind kind);

void copy_rows_begin(strbuf *out);
/* One field's value in the binary form COPY and binary arrays share (a 32-bit
 * length, -1 for NULL, then the type's send form), at p, which must have room
 * for COPY_ROWS_FIELD_MAX bytes; returns the end. */
#define COPY_ROWS_FIELD_MAX (4 + READING_ID_MAX)
char *copy_rows_put_field(char *p, reading_field_type type, const void *v);
void copy_rows_append(strbuf *out, const reading *r);
void copy_rows_end(strbuf *out);

#endif
