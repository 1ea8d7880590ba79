/* CSV input for the importer: a header line naming the reading's fields
 * (meterId,kwhConsumedAc,voltage,timestamp and so on), then one reading per
 * line, turned into the same JSON objects the JSON Lines input gives, so both
 * formats meet one set of rules. RFC 4180 quoting within a line. */
#ifndef EIE_CSV_ROWS_H
#define EIE_CSV_ROWS_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

typedef struct csv_header {
    char **names;
    size_t n;
} csv_header;

int csv_header_parse(csv_header *h, const char *line, size_t len, eie_err *err);
void csv_header_free(csv_header *h);

/* One data line as a JSON object (new reference), or NULL with err set. */
json_t *csv_row_to_json(const csv_header *h, const char *line, size_t len, eie_err *err);

#endif
