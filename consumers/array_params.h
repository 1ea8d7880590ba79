/* Readings as PostgreSQL arrays, one binary parameter per field, for a
 * statement that reads them through unnest($1::text[], ...). The hot store
 * upserts its batches this way rather than by COPY into a temporary table:
 * a table ON COMMIT DELETE ROWS is truncated at every commit that touched
 * it, and that truncation (files shortened on disk) cost 1.5 to 2 ms of a
 * batch that takes 8 under a steady 50,000 readings/s. Binary, like the COPY
 * (copy_rows.h), so no value is formatted as text. */
#ifndef EIE_ARRAY_PARAMS_H
#define EIE_ARRAY_PARAMS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "reading.h"
#include "strbuf.h"

#define ARRAY_PARAMS_MAX 8 /* fields of the widest kind */

typedef struct array_params {
    reading_kind kind;
    int n_params; /* the kind's fields */
    size_t n_rows;
    strbuf arrays[ARRAY_PARAMS_MAX];
    const char *values[ARRAY_PARAMS_MAX];
    int lengths[ARRAY_PARAMS_MAX], formats[ARRAY_PARAMS_MAX];
    Oid types[ARRAY_PARAMS_MAX];
} array_params;

/* "unnest($1::text[], $2::float8[], ...)": the kind's fields in the order of
 * its description (reading.h), as reading_sql_columns names them. */
void array_params_unnest(strbuf *sql, reading_kind kind);

void array_params_begin(array_params *p, reading_kind kind);
void array_params_add(array_params *p, const reading *r);
/* Completes the arrays; then p's values, lengths, formats and types are
 * PQexecParams' parameters. */
void array_params_end(array_params *p);
void array_params_free(array_params *p);

#endif
