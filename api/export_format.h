/* What an export is written as, and the COPY statement that has PostgreSQL
 * write it. Two formats: CSV with a header row, and JSON Lines (one object a
 * line). A request chooses with ?format=csv|jsonl, or else with its Accept
 * header; neither given: CSV.
 *
 * An export is described once, as its columns (the name a client sees and
 * the SQL that computes it) and the rest of its SELECT; both formats are
 * built from that description, so their columns cannot drift apart. */
#ifndef EIE_EXPORT_FORMAT_H
#define EIE_EXPORT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <ulfius.h>

#include "strbuf.h"

typedef enum export_format { EXPORT_CSV, EXPORT_JSONL } export_format;

/* The chosen format, with the media type to answer with (the one the
 * client named when it named one). */
typedef struct export_choice {
    export_format format;
    const char *content_type;
} export_choice;

/* 0 with *out set; -1 with *status 400 (an unknown ?format=) or 406 (an
 * Accept header that admits neither format) and a message in msg
 * (PARAM_MSG_LEN bytes). */
int export_format_choose(const struct _u_request *req, export_choice *out, unsigned *status,
                         char *msg);

/* The file name extension of a format, without the dot. */
const char *export_format_extension(export_format f);

/* A column: its name in the CSV header and as the JSON key, and the SQL
 * expression that gives its value. csv_sql, when not NULL, replaces sql in
 * CSV, for a value whose text form would differ from its JSON (a boolean,
 * an array). */
typedef struct export_column {
    const char *name;
    const char *sql;
    const char *csv_sql;
} export_column;

/* Appends the COPY ... TO STDOUT statement that writes, in format f, the
 * rows of SELECT <columns> <rest> (rest: FROM, WHERE and ORDER BY, its values
 * already SQL literals: COPY takes no parameters). */
void export_format_copy_sql(export_format f, const export_column *columns, size_t n_columns,
                            const char *rest, strbuf *out);

/* The SQL expression of a timestamp as RFC 3339 in UTC with milliseconds:
 * "2026-02-09T13:08:00.000Z", one width for every row. */
#define EXPORT_RFC3339(col) \
    "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#endif
